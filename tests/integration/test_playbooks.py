"""The fleet playbooks users run: status (read-only report), rollout (canary ramp), rotate_token (no restarts)."""

import json
from pathlib import Path

from helpers.ansible_run import assert_no_secrets, override_host_vars, run_playbook

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"


def fleet_secrets(fleet):
    secrets = []
    for name in fleet.names:
        host = fleet.host_vars(name)
        secrets += [host["billing_sync_client_secret"], host["billing_sync_token"]]
    return secrets


def test_status_reports_drift_then_sync_and_writes_json_and_markdown(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-a"}, {"name": "bw-b", "region": "EU"}, {"name": "bw-c", "version": "2025.12.0"}],
                      restart_delay=0.2, warmup=0.1)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    before = run_playbook(PLAYBOOKS / "status.yml", fleet.inventory,
                          extra_vars={"billing_sync_report_dir": str(report_dir)}).assert_ok()
    # read-only: the report files on the controller are written but not counted as changes (issue 25 item 6)
    assert before.changed_total() == 0, before.output
    rows = {row["host"]: row for row in json.loads((report_dir / "billing-sync-report.json").read_text())}
    assert sorted(rows) == ["bw-a", "bw-b", "bw-c"]
    # bitwarden_drift's words (status compares through it since issue 24)
    assert rows["bw-a"]["drift"][0].startswith("env file: globalSettings__enableCloudCommunication")
    assert rows["bw-a"]["drift"][-1].endswith("never synced")
    assert rows["bw-b"]["drift"][0].startswith("env file: globalSettings__enableCloudCommunication")
    assert rows["bw-c"]["version"] == "2025.12.0"
    markdown = (report_dir / "billing-sync-report.md").read_text()
    assert len([line for line in markdown.splitlines() if line.startswith("|")]) == 2 + 3
    assert "| bw-b | standard | 2026.8.0 | EU | off | not set | never |" in markdown
    for name in fleet.names:
        assert fleet.client.instance(name)["counters"]["writes"] == 0
        assert fleet.client.bitwarden_sh_calls(name) == []

    drift_gate = run_playbook(PLAYBOOKS / "status.yml", fleet.inventory,
                              extra_vars={"billing_sync_report_dir": str(report_dir), "billing_sync_fail_on_drift": True})
    assert drift_gate.rc != 0
    assert "bw-a, bw-b, bw-c drifted" in drift_gate.output

    run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory).assert_ok()
    after = run_playbook(PLAYBOOKS / "status.yml", fleet.inventory,
                         extra_vars={"billing_sync_report_dir": str(report_dir), "billing_sync_fail_on_drift": True}).assert_ok()
    rows = {row["host"]: row for row in json.loads((report_dir / "billing-sync-report.json").read_text())}
    assert all(row["drift"] == [] for row in rows.values()), rows
    assert rows["bw-b"]["region"] == "EU"
    table = after.stdout[after.stdout.index("host  kind"):]
    assert table.splitlines()[0].split()[:4] == ["host", "kind", "version", "region"]
    assert [line.split()[-1] for line in table.splitlines()[1:4]] == ["sync"] * 3
    assert_no_secrets(before.output + drift_gate.output + after.output + markdown, fleet_secrets(fleet))


def test_status_reports_an_unreadable_host_instead_of_stopping(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-ok"}, {"name": "bw-badkey"}])
    bad_key = override_host_vars(tmp_path, {"bw-badkey": {"billing_sync_client_secret": "not-the-secret"}})
    run = run_playbook(PLAYBOOKS / "status.yml", [fleet.inventory, bad_key],
                       extra_vars={"billing_sync_report_dir": str(tmp_path)})
    assert run.rc != 0, run.output  # the report is written, then the run fails: a host could not be read
    rows = {row["host"]: row for row in json.loads((tmp_path / "billing-sync-report.json").read_text())}
    assert rows["bw-ok"]["drift"][0].startswith("env file: globalSettings__enableCloudCommunication")  # still off
    assert rows["bw-badkey"]["drift"] == []
    assert rows["bw-badkey"]["error"].startswith("could not be read: ") and "invalid_client" in rows["bw-badkey"]["error"]


def test_rollout_canary_stops_the_fleet_at_the_first_failed_batch(sim_fleet):
    fleet = sim_fleet([{"name": "bw-1", "faults": {"restart": "fail"}}] + [{"name": "bw-%d" % i} for i in range(2, 6)],
                      restart_delay=0.2, warmup=0.1)
    run = run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory)
    assert run.rc != 0
    # bw-1 is the canary batch; its failure must keep the other four untouched.
    for name in ("bw-2", "bw-3", "bw-4", "bw-5"):
        assert fleet.client.bitwarden_sh_calls(name) == []
        assert fleet.client.instance(name)["counters"]["writes"] == 0


def test_rotate_token_updates_without_restart_and_proves_the_new_token(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-rot-1"}, {"name": "bw-rot-2"}], restart_delay=0.2, warmup=0.1)
    run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory).assert_ok()
    synced_before = {name: fleet.client.instance(name)["connection"]["config"]["LastLicenseSync"] for name in fleet.names}

    new_tokens = {name: fleet.client.rotate_billing_sync_token(name) for name in fleet.names}
    for name in fleet.names:
        fleet.client.reset_counters(name)
    # Each organization has its own token: host variables, as in a real inventory.
    inventory = [fleet.inventory, override_host_vars(tmp_path, {name: {"billing_sync_token": token} for name, token in new_tokens.items()})]
    rotated = run_playbook(PLAYBOOKS / "rotate_token.yml", inventory).assert_ok()
    for name in fleet.names:
        state = fleet.client.instance(name)
        assert state["connection"]["config"]["BillingSyncKey"] == new_tokens[name]
        assert state["connection"]["config"]["LastLicenseSync"] > synced_before[name]
        assert state["counters"]["cloud_calls"] > 0
        assert len([call for call in fleet.client.bitwarden_sh_calls(name) if call["command"] == "restart"]) == 1
    assert_no_secrets(rotated.output, list(new_tokens.values()))
    # Each proving sync made the server ask the cloud for a token: each took its slot of the egress's budget.
    task = "selfhost.bitwarden.billing_sync : Apply the new billing sync token and prove it with a license sync"
    assert all("paced_wait" in event["result"] for event in rotated.results(task)), rotated.output
    assert len(rotated.results(task)) == 2

    again = run_playbook(PLAYBOOKS / "rotate_token.yml", inventory).assert_ok()
    assert again.changed_total() == 0
    assert not any("paced_wait" in event["result"] for event in again.results(task))  # a token in place costs no slot


def test_rotate_token_with_a_refused_token_puts_the_previous_one_back(sim_fleet, tmp_path):
    """Issue 25 item 4: 0.3.0 stored the wrong token, then failed, and the working token was gone."""
    fleet = sim_fleet([{"name": "bw-good"}, {"name": "bw-typo"}], restart_delay=0.2, warmup=0.1)
    run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory).assert_ok()
    working = fleet.host_vars("bw-typo")["billing_sync_token"]
    before = fleet.client.instance("bw-typo")["connection"]["config"]
    wrong = "Wr0ngT0kenFromAnOldMail"
    inventory = [fleet.inventory, override_host_vars(tmp_path, {"bw-typo": {"billing_sync_token": wrong}})]
    run = run_playbook(PLAYBOOKS / "rotate_token.yml", inventory, limit="bw-typo")
    assert run.rc != 0
    text = " ".join(run.output.split())
    assert "the cloud refused the new billing sync token, so the previous token is back in place" in text, text
    assert "Invalid Billing Sync Key" in text
    assert "run rotate_token again with it (billing_sync_token)" in text
    after = fleet.client.instance("bw-typo")["connection"]["config"]
    assert after["BillingSyncKey"] == working and after["LastLicenseSync"] == before["LastLicenseSync"]
    assert fleet.client.instance("bw-good")["connection"]["config"]["BillingSyncKey"] == fleet.host_vars("bw-good")["billing_sync_token"]
    # A re-run with the working token finds it in place: nothing to change.
    proof = run_playbook(PLAYBOOKS / "rotate_token.yml", fleet.inventory, limit="bw-typo").assert_ok()
    assert proof.changed_total() == 0
    assert_no_secrets(run.output + proof.output, [wrong, working, fleet.host_vars("bw-typo")["billing_sync_client_secret"]])
