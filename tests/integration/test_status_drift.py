"""playbooks/status.yml tells what the rollout would see (issue 24, issue 22 items 7 and 9): drift from the same
comparison as `rollout --check` (token and env file included) in the table, the report files and the metrics; fleet
files that keep every host; no report file that outlives a failed read."""

import json
from pathlib import Path

from helpers.ansible_run import assert_no_secrets, override_host_vars, run_playbook
from helpers.prom import free_port
from prometheus_client.parser import text_string_to_metric_families

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
OTHER_TOKEN = "other-token-3f9c2a71d0"


def status(inventory, report_dir, limit=None, **extra):
    return run_playbook(PLAYBOOKS / "status.yml", inventory, limit=limit,
                        extra_vars={"billing_sync_report_dir": str(report_dir),
                                    "billing_sync_metrics_path": str(report_dir) + "/{{ inventory_hostname }}.prom", **extra})


def rows_of(report_dir):
    return {row["host"]: row for row in json.loads((report_dir / "billing-sync-report.json").read_text())}


def metric(path, name, host):
    values = [sample.value for family in text_string_to_metric_families(Path(path).read_text())
              for sample in family.samples if sample.name == name and sample.labels["host"] == host]
    assert len(values) == 1, (name, host, values)
    return values[0]


def table_lines(run, host):
    """The host's line of the printed table and the drift line below it."""
    lines = run.stdout.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(host + " "))
    return "\n".join(lines[index:index + 2])


def rollout_check_drift(inventory, host, **extra):
    """The drift list of the rollout's own comparison (its first bitwarden_drift call, before it changes anything)."""
    run = run_playbook(PLAYBOOKS / "rollout.yml", inventory, check=True, limit=host, extra_vars=extra)
    compared = [event for event in run.results(host=host) if event["action"].endswith("bitwarden_drift")]
    assert compared, run.output
    return compared[0]["result"]["drift"], run


def turn_cloud_communication_off_in_the_env_file(fleet, name):
    """An operator's edit the running server has not read yet (no restart)."""
    env_file = fleet.install_dir(name) / "bwdata" / "env" / "global.override.env"
    text = env_file.read_text()
    assert "globalSettings__enableCloudCommunication=true" in text
    env_file.write_text(text.replace("globalSettings__enableCloudCommunication=true",
                                     "globalSettings__enableCloudCommunication=false"))


def test_token_and_env_file_drift_are_what_rollout_check_sees(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "fresh-eu", "region": "EU"}, {"name": "vault-eu", "region": "EU"}],
                      restart_delay=0.2, warmup=0.1)
    run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory).assert_ok()
    report = tmp_path / "report"
    report.mkdir()

    # A token changed in the vault and never applied (issue 24 "missed drift").
    run = status(fleet.inventory, report, limit="fresh-eu", billing_sync_token=OTHER_TOKEN).assert_ok()
    drift = rows_of(report)["fresh-eu"]["drift"]
    assert drift == ["billing sync token differs"]
    assert "billing sync token differs" in table_lines(run, "fresh-eu")
    assert "| billing sync token differs |" in (report / "billing-sync-report.md").read_text()
    assert metric(report / "billing-sync-fleet.prom", "selfhost_bitwarden_drift", "fresh-eu") == 1
    assert metric(report / "fresh-eu.prom", "selfhost_bitwarden_drift", "fresh-eu") == 1
    check_drift, check = rollout_check_drift(fleet.inventory, "fresh-eu", billing_sync_token=OTHER_TOKEN)
    assert check_drift == drift

    # An env file that turns cloud communication off before the next restart (issue 22 item 9).
    turn_cloud_communication_off_in_the_env_file(fleet, "vault-eu")
    run_env = status(fleet.inventory, report, limit="vault-eu").assert_ok()
    drift = rows_of(report)["vault-eu"]["drift"]
    assert drift and drift[0] == "env file: globalSettings__enableCloudCommunication", drift
    assert "env file: globalSettings__enableCloudCommunication" in table_lines(run_env, "vault-eu")
    assert metric(report / "billing-sync-fleet.prom", "selfhost_bitwarden_drift", "vault-eu") == len(drift)
    assert rollout_check_drift(fleet.inventory, "vault-eu")[0] == drift
    # the token drift of the earlier limited run is still in the fleet file
    assert metric(report / "billing-sync-fleet.prom", "selfhost_bitwarden_drift", "fresh-eu") == 1
    files = "".join(path.read_text() for path in report.iterdir())
    secrets = [OTHER_TOKEN] + [fleet.host_vars(name)[key] for name in fleet.names
                               for key in ("billing_sync_token", "billing_sync_client_secret")]
    assert_no_secrets(run.output + check.output + run_env.output + files, secrets)


def test_every_host_unreachable_or_invalid_rewrites_the_report(sim_fleet, tmp_path):
    """Issue 22 item 7: the files of an earlier good run must not survive a run that read nothing."""
    fleet = sim_fleet([{"name": "bw-1"}, {"name": "bw-2"}])
    status(fleet.inventory, tmp_path).assert_ok()
    assert all(row["error"] is None for row in rows_of(tmp_path).values())

    closed = free_port()  # nothing listens there: ssh gets connection refused
    gone = override_host_vars(tmp_path, {name: {"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
                                                "ansible_port": closed, "ansible_user": "nobody"} for name in fleet.names})
    run = status([fleet.inventory, gone], tmp_path)
    assert run.rc != 0
    rows = rows_of(tmp_path)
    assert sorted(rows) == ["bw-1", "bw-2"]
    for name in fleet.names:
        assert rows[name]["error"].startswith("could not be read: unreachable"), rows[name]
        assert metric(tmp_path / "billing-sync-fleet.prom", "selfhost_bitwarden_read_error", name) == 1
        assert "| %s | standard | - |" % name in (tmp_path / "billing-sync-report.md").read_text()
    assert "bw-1 could not be read: unreachable" in run.output

    invalid = status(fleet.inventory, tmp_path, billing_sync_region="APAC")
    assert invalid.rc != 0 and "Validation of arguments failed" in invalid.output
    for name in fleet.names:
        assert "APAC" in rows_of(tmp_path)[name]["error"]
        assert metric(tmp_path / "billing-sync-fleet.prom", "selfhost_bitwarden_read_error", name) == 1
