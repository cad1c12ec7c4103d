"""playbooks/status.yml through real ansible-core: license expiry, stale syncs, sponsorship sync state, metrics,
unreadable hosts (also under --limit), and entry-point validation in every playbook."""

import datetime
import time
import json
import re
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from helpers.ansible_run import assert_no_secrets, override_host_vars, run_playbook

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
STALE_SYNC = "2026-01-02T03:04:05+00:00"


def fleet_secrets(fleet):
    secrets = []
    for name in fleet.names:
        host = fleet.host_vars(name)
        secrets += [host["billing_sync_client_secret"], host["billing_sync_token"]]
    return secrets


def status(fleet, report_dir, inventory=None, **extra):
    return run_playbook(PLAYBOOKS / "status.yml", inventory or fleet.inventory, limit=extra.pop("limit", None),
                        extra_vars={"billing_sync_report_dir": str(report_dir),
                                    "billing_sync_metrics_path": str(report_dir) + "/{{ inventory_hostname }}.prom",
                                    **extra})


def rows_of(report_dir):
    return {row["host"]: row for row in json.loads((report_dir / "billing-sync-report.json").read_text())}


def metrics(path):
    found = {}
    for family in text_string_to_metric_families(Path(path).read_text()):
        for sample in family.samples:
            found[(sample.name, sample.labels["host"], sample.labels.get("state"))] = sample.value
    return found


def backdate_license_sync(fleet, name):
    """An owner saves the connection with an old LastLicenseSync (the update route stores what it is sent)."""
    host, state = fleet.host_vars(name), fleet.client.instance(name)
    session = requests.Session()
    session.trust_env = False
    url = state["url"]
    token = session.post(url + "/identity/connect/token", headers={"Bitwarden-Client-Version": "2026.8.0"}, timeout=10, data={
        "grant_type": "client_credentials", "scope": "api", "client_id": host["billing_sync_client_id"],
        "client_secret": host["billing_sync_client_secret"], "deviceType": "22", "deviceIdentifier": "test-backdate",
        "deviceName": "test"}).json()["access_token"]
    headers = {"Authorization": "Bearer " + token, "Bitwarden-Client-Version": "2026.8.0"}
    conn = session.get("%s/api/organizations/connections/%s/1" % (url, state["organization_id"]), headers=headers, timeout=10).json()
    body = {"organizationId": state["organization_id"], "type": 1, "enabled": True,
            "config": {"billingSyncKey": host["billing_sync_token"], "lastLicenseSync": STALE_SYNC}}
    response = session.put("%s/api/organizations/connections/%s" % (url, conn["id"]), json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def first_state(fleet, name, sponsorships=0):
    """The sponsorship state right after a restart: the trigger's first run is start + Random.Next(24) h (contract
    4.1), so 1 api start in 24 runs it at once; the simulator's schedule tells which (its next run is then a day on)."""
    due = fleet.client.instance(name)["sponsorship_job_due"]
    if due is not None and due - time.time() > 23 * 3600:
        return "synced" if sponsorships else "no_sponsorships"
    return "pending"


def test_expiring_license_stale_sync_and_sponsorships_in_every_output(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-soon", "subscription_days": 20}, {"name": "bw-stale"},
                       {"name": "bw-sponsor", "sponsorships": 2}], restart_delay=0.2, warmup=0.1)
    run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory).assert_ok()
    backdate_license_sync(fleet, "bw-stale")
    report_dir = tmp_path / "report"
    report_dir.mkdir()

    first = status(fleet, report_dir).assert_ok()
    rows = rows_of(report_dir)
    assert rows["bw-soon"]["license_expiring"] is True and rows["bw-soon"]["license_days_left"] in (19, 20)
    assert rows["bw-stale"]["license_expiring"] is False and rows["bw-stale"]["license_days_left"] in (364, 365)
    assert rows["bw-stale"]["license_sync_stale"] is True and rows["bw-stale"]["last_license_sync"] == STALE_SYNC
    assert rows["bw-soon"]["license_sync_stale"] is False
    # cloud communication was turned on by the rollout's restart: the job's first run is still due
    expected = {name: first_state(fleet, name, 2 if name == "bw-sponsor" else 0) for name in fleet.names}
    assert {name: row["sponsorship_sync"] for name, row in rows.items()} == expected
    assert all(row["error"] is None for row in rows.values())
    # The server never syncs its license by itself: a sync older than the max age is due, the rollout's own rule.
    assert {name: row["drift"] for name, row in rows.items() if row["drift"]} == {"bw-stale": [rows["bw-stale"]["drift"][0]]}
    assert rows["bw-stale"]["drift"][0].startswith("license sync due (last sync ")

    table = first.stdout
    soon = next(line for line in table.splitlines() if line.startswith("bw-soon"))
    stale = next(line for line in table.splitlines() if line.startswith("bw-stale"))
    assert "EXPIRING" in soon and " d)" in soon and "EXPIRING" not in stale
    assert re.search(r"STALE \d+ d ago", stale) and "STALE" not in soon
    markdown = (report_dir / "billing-sync-report.md").read_text()
    assert "| EXPIRING %s (%s d) |" % (rows["bw-soon"]["license_expiration_without_grace"][:10],
                                       rows["bw-soon"]["license_days_left"]) in markdown
    assert re.search(r"\| STALE \d+ d ago \|", markdown)

    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    for host_file in ("bw-soon", "bw-stale", "bw-sponsor"):
        host_metrics = metrics(report_dir / ("%s.prom" % host_file))
        assert {key[1] for key in host_metrics} == {host_file}
    fleet_metrics = metrics(report_dir / "billing-sync-fleet.prom")
    soon_end = fleet_metrics[("selfhost_bitwarden_license_expiry_without_grace_timestamp_seconds", "bw-soon", None)]
    assert 19 * 86400 < soon_end - now < 21 * 86400
    stale_sync = fleet_metrics[("selfhost_bitwarden_license_last_sync_timestamp_seconds", "bw-stale", None)]
    assert stale_sync == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc).timestamp()
    assert now - fleet_metrics[("selfhost_bitwarden_license_last_sync_timestamp_seconds", "bw-soon", None)] < 3600
    for name in fleet.names:
        assert fleet_metrics[("selfhost_bitwarden_cloud_communication_enabled", name, None)] == 1
        assert fleet_metrics[("selfhost_bitwarden_billing_sync_enabled", name, None)] == 1
        assert fleet_metrics[("selfhost_bitwarden_read_error", name, None)] == 0
        assert fleet_metrics[("selfhost_bitwarden_drift", name, None)] == (1 if name == "bw-stale" else 0)  # sync due
        assert fleet_metrics[("selfhost_bitwarden_sponsorship_sync_state", name, expected[name])] == 1

    # The job fires (as its trigger would): with sponsorships the org syncs, without it ran with nothing to send.
    fleet.client.run_job("bw-sponsor")
    fleet.client.run_job("bw-soon")
    status(fleet, report_dir).assert_ok()
    rows = rows_of(report_dir)
    assert rows["bw-sponsor"]["sponsorship_sync"] == "synced" and rows["bw-sponsor"]["sponsorship_last_sync"]
    assert rows["bw-soon"]["sponsorship_sync"] == "no_sponsorships"
    assert rows["bw-stale"]["sponsorship_sync"] == expected["bw-stale"]
    fleet_text = (report_dir / "billing-sync-fleet.prom").read_text()
    fleet_metrics = metrics(report_dir / "billing-sync-fleet.prom")
    assert fleet_metrics[("selfhost_bitwarden_sponsorship_last_sync_timestamp_seconds", "bw-sponsor", None)] > now - 3600
    assert fleet_metrics[("selfhost_bitwarden_sponsorship_sync_state", "bw-soon", "no_sponsorships")] == 1

    everything = first.output + markdown + fleet_text + (report_dir / "billing-sync-report.json").read_text()
    everything += "".join((report_dir / ("%s.prom" % name)).read_text() for name in fleet.names)
    assert_no_secrets(everything, fleet_secrets(fleet))
    for name in fleet.names:
        assert "token" not in (report_dir / ("%s.prom" % name)).read_text().lower()


def test_unreadable_host_fails_the_run_also_under_limit(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-ok"}, {"name": "bw-badkey"}, {"name": "bw-2022", "version": "2022.9.0"}])
    bad_key = override_host_vars(tmp_path, {"bw-badkey": {"billing_sync_client_secret": "not-the-secret"}})
    inventory = [fleet.inventory, bad_key]

    run = status(fleet, tmp_path, inventory)
    assert run.rc != 0
    assert "bw-badkey could not be read: " in run.output and "invalid_client" in run.output
    rows = rows_of(tmp_path)
    assert rows["bw-badkey"]["error"].startswith("could not be read: ") and rows["bw-badkey"]["drift"] == []
    # the rollout's comparison: the env file still has cloud communication off
    assert rows["bw-ok"]["error"] is None
    assert rows["bw-ok"]["drift"][0].startswith("env file: globalSettings__enableCloudCommunication")
    # 2022.9 has connections but no /api/config: readable, version from /api/version
    assert rows["bw-2022"]["error"] is None and rows["bw-2022"]["version"] == "2022.9.0"
    assert metrics(tmp_path / "bw-badkey.prom")[("selfhost_bitwarden_read_error", "bw-badkey", None)] == 1
    assert "| bw-badkey | standard | - |" in (tmp_path / "billing-sync-report.md").read_text()

    gate = status(fleet, tmp_path, inventory, billing_sync_fail_on_drift=True)
    assert gate.rc != 0 and "could not be read" in gate.output and "drifted" not in gate.output

    before = rows_of(tmp_path)
    limited = status(fleet, tmp_path, inventory, limit="bw-badkey")
    assert limited.rc != 0 and "bw-badkey could not be read: " in limited.output
    # the fleet files keep the hosts this run did not read, as they were; the Markdown is this run's
    after = rows_of(tmp_path)
    assert sorted(after) == ["bw-2022", "bw-badkey", "bw-ok"]
    assert after["bw-ok"] == before["bw-ok"] and after["bw-badkey"]["read_at"] >= before["bw-badkey"]["read_at"]
    assert {key[1] for key in metrics(tmp_path / "billing-sync-fleet.prom")} == {"bw-2022", "bw-badkey", "bw-ok"}
    assert "| bw-ok |" not in (tmp_path / "billing-sync-report.md").read_text()

    healthy = status(fleet, tmp_path, inventory, limit="bw-ok")
    assert healthy.rc == 0, healthy.output
    assert sorted(rows_of(tmp_path)) == ["bw-2022", "bw-badkey", "bw-ok"]
    drift_gate = status(fleet, tmp_path, inventory, limit="bw-ok", billing_sync_fail_on_drift=True)
    assert drift_gate.rc != 0 and "bw-ok drifted" in drift_gate.output
    assert_no_secrets(run.output + limited.output + gate.output, fleet_secrets(fleet) + ["not-the-secret"])


def test_region_outside_the_choices_fails_validation_in_every_playbook(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-1"}])
    for playbook in ("status.yml", "rotate_token.yml", "rollout.yml"):
        run = run_playbook(PLAYBOOKS / playbook, fleet.inventory,
                           extra_vars={"billing_sync_region": "APAC", "billing_sync_report_dir": str(tmp_path)})
        assert run.rc != 0, playbook
        assert "Validation of arguments failed" in run.output and "APAC" in run.output, (playbook, run.output)
        assert_no_secrets(run.output, fleet_secrets(fleet))
    state = fleet.client.instance("bw-1")
    assert state["counters"]["writes"] == 0 and fleet.client.bitwarden_sh_calls("bw-1") == []
