"""The billing_sync role end to end through ansible-core against the simulator.

Shape of every scenario: check mode changes nothing -> real run -> idempotent re-run -> assertions on the
simulator's own state (restarts from the bitwarden.sh log, connections, counters), never on our own output alone.
"""

from pathlib import Path

import pytest

from helpers.ansible_run import assert_no_secrets, run_module, run_playbook

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = REPO / "playbooks" / "rollout.yml"


def restarts(fleet, name):
    return [call for call in fleet.client.bitwarden_sh_calls(name) if call["command"] == "restart"]


def secrets_of(fleet, name):
    state = fleet.client.instance(name)
    return [
        state["credentials"]["owner"]["client_secret"],
        state["billing_sync_token"],
        fleet.host_vars(name)["billing_sync_client_secret"],
    ]


@pytest.fixture
def us_eu_fleet(sim_fleet):
    return sim_fleet([{"name": "bw-us"}, {"name": "bw-eu", "region": "EU"}], restart_delay=0.3, warmup=0.2)


def test_check_mode_reports_drift_and_touches_nothing(us_eu_fleet):
    fleet = us_eu_fleet
    env_before = {name: (Path(fleet.host_vars(name)["billing_sync_install_dir"]) / "bwdata/env/global.override.env").read_bytes()
                  for name in ("bw-us", "bw-eu")}
    run = run_playbook(ROLLOUT, fleet.inventory, check=True, diff=True).assert_ok()
    for name in ("bw-us", "bw-eu"):
        assert run.stats[name]["changed"] >= 2, run.output
        assert restarts(fleet, name) == []
        state = fleet.client.instance(name)
        assert state["connection"] is None
        assert state["counters"]["writes"] == 0
        assert state["counters"]["cloud_calls"] == 0
        env_file = Path(fleet.host_vars(name)["billing_sync_install_dir"]) / "bwdata/env/global.override.env"
        assert env_file.read_bytes() == env_before[name]
    assert "+globalSettings__enableCloudCommunication=true" in run.stdout
    assert_no_secrets(run.output, secrets_of(fleet, "bw-us") + secrets_of(fleet, "bw-eu"))


def test_converge_then_idempotent_rerun(us_eu_fleet):
    fleet = us_eu_fleet
    first = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    for name in ("bw-us", "bw-eu"):
        assert len(restarts(fleet, name)) == 1, first.output
        state = fleet.client.instance(name)
        assert state["settings"]["enableCloudCommunication"] is True
        assert state["connection"]["enabled"] is True
        assert state["connection"]["config"]["LastLicenseSync"] is not None
        assert len(state["devices"]) == 1
    assert fleet.client.instance("bw-eu")["settings"]["cloudRegion"] == "EU"

    for name in ("bw-us", "bw-eu"):
        fleet.client.reset_counters(name)
    second = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert second.changed_total() == 0, second.output
    for name in ("bw-us", "bw-eu"):
        assert len(restarts(fleet, name)) == 1
        counters = fleet.client.instance(name)["counters"]
        assert counters["cloud_calls"] == 0
        assert counters["writes"] == 0
        assert counters["requests"] <= 4, counters
        assert len(fleet.client.instance(name)["devices"]) == 1

    drift = run_playbook(ROLLOUT, fleet.inventory, check=True, diff=True).assert_ok()
    assert drift.changed_total() == 0, drift.output


def test_no_secret_in_output_at_vvvv(sim_fleet):
    fleet = sim_fleet([{"name": "bw-verbose"}], restart_delay=0.2, warmup=0.1)
    run = run_playbook(ROLLOUT, fleet.inventory, verbosity=4, diff=True).assert_ok()
    state = fleet.client.instance("bw-verbose")
    env_text = (Path(fleet.host_vars("bw-verbose")["billing_sync_install_dir"]) / "bwdata/env/global.override.env").read_text()
    installation_key = next(line.split("=", 1)[1] for line in env_text.splitlines()
                            if line.startswith("globalSettings__installation__key="))
    assert_no_secrets(run.output, secrets_of(fleet, "bw-verbose") + [installation_key])
    assert state["connection"]["config"]["LastLicenseSync"] is not None


def test_failed_restart_explains_rollback(sim_fleet):
    fleet = sim_fleet([{"name": "bw-flaky", "faults": {"restart": "fail"}}], restart_delay=0.2, warmup=0.1)
    failed = run_playbook(ROLLOUT, fleet.inventory)
    assert failed.rc != 0
    assert "./bitwarden.sh restart as root in" in failed.output or "./bitwarden.sh restart as" in failed.output
    assert "failed: Error response from daemon: driver failed programming external connectivity" in failed.output
    assert "Exit code 1. Env file:" in failed.output
    assert "roll back" in failed.output
    env_file = Path(fleet.host_vars("bw-flaky")["billing_sync_install_dir"]) / "bwdata/env/global.override.env"
    assert "globalSettings__enableCloudCommunication=true" in env_file.read_text()
    assert fleet.client.instance("bw-flaky")["connection"] is None


def test_interrupted_run_is_healed_by_the_next_one(sim_fleet):
    """The env file was changed but the server never restarted (a run killed before its handler): restart now."""
    fleet = sim_fleet([{"name": "bw-stale"}], restart_delay=0.2, warmup=0.1)
    install_dir = fleet.host_vars("bw-stale")["billing_sync_install_dir"]
    run_module("selfhost.bitwarden.bitwarden_cloud_comm", {"bwdata_path": install_dir + "/bwdata"}, fleet.inventory).assert_ok()
    assert fleet.client.instance("bw-stale")["settings"]["enableCloudCommunication"] is False

    healed = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    state = fleet.client.instance("bw-stale")
    assert state["settings"]["enableCloudCommunication"] is True
    assert state["connection"]["config"]["LastLicenseSync"] is not None
    assert len(restarts(fleet, "bw-stale")) == 1, healed.output
    again = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert again.changed_total() == 0
    assert len(restarts(fleet, "bw-stale")) == 1


def test_restart_that_never_comes_back_times_out_with_rollback_advice(sim_fleet):
    fleet = sim_fleet([{"name": "bw-gone", "faults": {"restart": "never_returns"}}], restart_delay=0.2)
    run = run_playbook(ROLLOUT, fleet.inventory, extra_vars={"billing_sync_restart_timeout": 10})
    assert run.rc != 0
    assert "did not answer within 10 s" in run.output
    assert "roll back" in run.output


@pytest.mark.parametrize(
    "extra_vars, expected",
    [
        ({"billing_sync_token": ""}, "billing_sync_token is empty: put the billing sync token"),
        ({"billing_sync_client_id": "organization.3fa85f64-5717-4562-b3fc-2c963f66afa6"}, "billing_sync_client_id must be an owner"),
        ({"billing_sync_organization_id": "not-a-guid"}, "billing_sync_organization_id must be"),
        ({"billing_sync_install_dir": "/nonexistent/bitwarden"}, "No bitwarden.sh at /nonexistent/bitwarden, the directory that holds"),
        ({"billing_sync_user": "nobody"}, "install_user is 'nobody' but"),
        ({"billing_sync_region": "APAC"}, "billing_sync_region"),
        ({"billing_sync_token": 1234567890}, "set billing_sync_token as a quoted string"),
        ({"billing_sync_deployment": "lite", "billing_sync_restart_method": "bitwarden_sh"}, "Bitwarden Lite has no bitwarden.sh"),
    ],
)
def test_preflight_names_the_variable_to_fix(sim_fleet, extra_vars, expected):
    fleet = sim_fleet([{"name": "bw-pre"}])
    fleet.client.reset_counters("bw-pre")
    run = run_playbook(ROLLOUT, fleet.inventory, extra_vars=extra_vars)
    assert run.rc != 0
    assert expected in run.output
    assert restarts(fleet, "bw-pre") == []
    assert fleet.client.instance("bw-pre")["counters"]["requests"] == 0


# Actions that run on the controller only; every other action is a module round trip to the host.
CONTROLLER_ACTIONS = {"ansible.builtin.debug", "ansible.builtin.set_fact", "ansible.builtin.fail", "ansible.builtin.assert",
                      "ansible.builtin.validate_argument_spec", "ansible.builtin.include_tasks", "ansible.builtin.meta"}


def module_calls(run, host):
    return [event["action"] for event in run.results(host=host)
            if event["status"] != "skipped" and event["action"] not in CONTROLLER_ACTIONS]


@pytest.mark.parametrize("check", [False, True], ids=["rerun", "check-diff-drift-run"])
def test_converged_host_costs_one_module_call(sim_fleet, check):
    """Issue 13: on a converged host the role makes exactly one module call, and the server sees <= 3 requests."""
    fleet = sim_fleet([{"name": "bw-a"}, {"name": "bw-b", "region": "EU"}], restart_delay=0.2, warmup=0.1)
    run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    for name in fleet.names:
        fleet.client.reset_counters(name)
    again = run_playbook(ROLLOUT, fleet.inventory, check=check, diff=check).assert_ok()
    assert again.changed_total() == 0, again.output
    for name in fleet.names:
        assert module_calls(again, name) == ["selfhost.bitwarden.bitwarden_drift"], again.output
        counters = fleet.client.instance(name)["counters"]
        assert counters["requests"] <= 3 and counters["writes"] == 0 and counters["cloud_calls"] == 0, counters
        assert len(restarts(fleet, name)) == 1
        assert "in sync, nothing to do" in again.stdout


def test_failed_restart_is_healed_by_the_next_run(sim_fleet):
    """Issue 12 #1: the file is already on and the server is down after a failed restart; the next run restarts."""
    fleet = sim_fleet([{"name": "bw-down", "faults": {"restart": "fail"}}], restart_delay=0.2, warmup=0.1)
    failed = run_playbook(ROLLOUT, fleet.inventory)
    assert failed.rc != 0
    assert fleet.client.instance("bw-down")["state"] == "down"
    fleet.client.set_faults("bw-down", {})
    healed = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    state = fleet.client.instance("bw-down")
    assert state["state"] == "up" and state["settings"]["enableCloudCommunication"] is True
    assert state["connection"]["config"]["LastLicenseSync"] is not None
    assert len(restarts(fleet, "bw-down")) == 2, healed.output
    again = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert again.changed_total() == 0 and len(restarts(fleet, "bw-down")) == 2


def test_role_writes_metrics_when_asked_on_drifted_and_converged_hosts(sim_fleet, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families  # pylint: disable=import-outside-toplevel
    fleet = sim_fleet([{"name": "bw-metrics"}], restart_delay=0.2, warmup=0.1)
    path = tmp_path / "selfhost_bitwarden.prom"
    extra = {"billing_sync_metrics": True, "billing_sync_metrics_path": str(path)}
    for dummy in ("drifted", "converged"):
        run = run_playbook(ROLLOUT, fleet.inventory, extra_vars=extra).assert_ok()
        samples = {sample.name: sample.value for family in text_string_to_metric_families(path.read_text())
                   for sample in family.samples}
        assert samples["selfhost_bitwarden_cloud_communication_enabled"] == 1
        assert samples["selfhost_bitwarden_license_last_sync_timestamp_seconds"] > 0
        assert_no_secrets(path.read_text() + run.output, secrets_of(fleet, "bw-metrics"))
        path.unlink()
    assert len(restarts(fleet, "bw-metrics")) == 1


def test_two_rollouts_at_once_restart_a_host_once(sim_fleet):
    """Issue 12 #7: the per-host lock serializes overlapping runs; the one that waited finds the host converged."""
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel
    fleet = sim_fleet([{"name": "bw-twice"}], restart_delay=1.5, warmup=0.3)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda dummy: run_playbook(ROLLOUT, fleet.inventory), range(2)))
    for run in runs:
        run.assert_ok()
    assert len(restarts(fleet, "bw-twice")) == 1, runs[0].output + runs[1].output
    waited = [run for run in runs if any(event["result"].get("waited", 0) > 0
                                         for event in run.results("selfhost.bitwarden.billing_sync : Take the host's lock", "bw-twice"))]
    assert len(waited) == 1
    assert "in sync" in waited[0].stdout or "drift" in waited[0].stdout
    state = fleet.client.instance("bw-twice")
    assert state["counters"]["writes"] <= 2  # one connection created, one license sync: never twice
    assert not (Path(fleet.install_dir("bw-twice")) / "bwdata" / ".selfhost-bitwarden.lock").exists()


def test_check_mode_says_what_it_would_do(sim_fleet):
    """Issue 14: check mode says 'would restart' and 'would be created', not 'no restart'."""
    fleet = sim_fleet([{"name": "bw-would"}], restart_delay=0.2, warmup=0.1)
    run = run_playbook(ROLLOUT, fleet.inventory, check=True).assert_ok()
    summary = run.result("selfhost.bitwarden.billing_sync : Summary", "bw-would")["msg"]
    assert "would restart" in summary and "billing sync token would be created" in summary, summary
    assert "env file would change" in summary
    assert restarts(fleet, "bw-would") == []
