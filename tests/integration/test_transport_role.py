"""The role's connection behaviour through real ansible-core against the simulator: booleans typed on the command line
(issue 22 item 8), an answer that is not the API's (issue 22 item 5), a stopped server in a read-only report and the
retry deadline variable (issue 25 item 5)."""

import re
from pathlib import Path

from helpers.ansible_run import assert_no_secrets, run_playbook

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
FAST = {"restart_delay": 0.2, "warmup": 0.1}
LICENSE_SYNC = re.compile(r"^POST /api/organizations/licenses/self-hosted/.*/sync$")
PORTAL = {"method": "GET", "path_prefix": "/api/organizations/connections/enabled", "status": 200, "times": 100,
          "body": "Please sign in to the guest network", "content_type": "text/plain"}
NOT_JSON = ("GET /api/organizations/connections/enabled: %s answered HTTP 200 with text/plain that is not JSON "
            "(35 bytes: 'Please sign in to the guest network')")


def restarts(fleet, name):
    return [call for call in fleet.client.bitwarden_sh_calls(name) if call["command"] == "restart"]


def license_syncs(fleet, name):
    by_route = fleet.client.instance(name)["counters"]["by_route"]
    return sum(count for route, count in by_route.items() if LICENSE_SYNC.match(route))


def ran(run, action):
    """Results of ``action`` on any host that were not skipped."""
    return [event for event in run.events if event["event"] == "task" and event["action"] == action
            and event["status"] != "skipped"]


def test_role_booleans_typed_false_on_the_command_line_are_false(sim_fleet, tmp_path):
    # The preflight would fail here (the cloud endpoints refuse), so a run that gets past it did not run it.
    fleet = sim_fleet([{"name": "bw", "cloud_endpoint_fault": "refused"}], **FAST)
    run = run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory,
                       cli_vars={"billing_sync_preflight": "false", "billing_sync_first_sync": "false",
                                 "billing_sync_backup": "false", "billing_sync_metrics": "false",
                                 "billing_sync_validate_certs": "false"})
    run.assert_ok()
    assert not ran(run, "selfhost.bitwarden.bitwarden_preflight"), run.output
    assert not ran(run, "selfhost.bitwarden.bitwarden_license_sync"), run.output
    state = fleet.client.instance("bw")
    assert state["settings"]["enableCloudCommunication"] is True and state["connection"] is not None
    assert license_syncs(fleet, "bw") == 0
    env_dir = Path(fleet.host_vars("bw")["billing_sync_install_dir"]) / "bwdata" / "env"
    assert not [path.name for path in env_dir.iterdir() if "global.override.env." in path.name and "tmp" not in path.name]

    # and typed true they are true: the preflight runs and stops the host on the refused endpoints
    fresh = sim_fleet([{"name": "bw2", "cloud_endpoint_fault": "refused"}], name="fresh", **FAST)
    on = run_playbook(PLAYBOOKS / "rollout.yml", fresh.inventory, cli_vars={"billing_sync_preflight": "true"})
    assert on.rc != 0 and ran(on, "selfhost.bitwarden.bitwarden_preflight"), on.output


def test_rotate_token_with_verify_token_false_on_the_command_line(sim_fleet):
    fleet = sim_fleet([{"name": "bw", "preconfigured": True}], **FAST)
    new_token = fleet.client.rotate_billing_sync_token("bw")
    before = license_syncs(fleet, "bw")
    run = run_playbook(PLAYBOOKS / "rotate_token.yml", fleet.inventory,
                       cli_vars={"billing_sync_verify_token": "false", "billing_sync_token": new_token})
    run.assert_ok()
    assert fleet.client.instance("bw")["connection"]["config"]["BillingSyncKey"] == new_token
    assert license_syncs(fleet, "bw") == before
    assert_no_secrets(run.stdout, [fleet.host_vars("bw")["billing_sync_client_secret"]])


def test_status_names_a_stopped_server_after_one_short_retry(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-up"}, {"name": "bw-down"}], **FAST)
    assert fleet.client.bitwarden_sh("bw-down", "stop")["exit_code"] == 0
    run = run_playbook(PLAYBOOKS / "status.yml", fleet.inventory,
                       extra_vars={"billing_sync_report_dir": str(tmp_path),
                                   "billing_sync_metrics_path": str(tmp_path) + "/{{ inventory_hostname }}.prom"})
    assert run.rc != 0
    assert re.search(r"bw-down could not be read: \S.*connection refused after 2 attempt\(s\)", run.output), run.output
    assert "bw-up could not be read" not in run.output


def test_the_retry_deadline_variable_reaches_the_modules(sim_fleet):
    fleet = sim_fleet([{"name": "bw", "preconfigured": True}], **FAST)
    fleet.client.set_faults("bw", {"http": [{"method": "GET", "path_prefix": "/api/organizations/connections/",
                                             "status": 503, "times": 100}]})
    run = run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory, cli_vars={"billing_sync_retry_deadline": "0"})
    assert run.rc != 0
    assert re.search(r"answered 503\b.*still after 1 attempt\(s\) in \d+ s \(retry_deadline=0\)", run.output), run.output
    assert restarts(fleet, "bw") == []


def test_a_captive_portal_page_is_an_error_never_cloud_communication_off(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw", "preconfigured": True}], **FAST)
    url = fleet.host_vars("bw")["billing_sync_server_url"]
    fleet.client.set_faults("bw", {"http": [PORTAL]})
    rollout = run_playbook(PLAYBOOKS / "rollout.yml", fleet.inventory)
    assert rollout.rc != 0
    assert NOT_JSON % url in " ".join(rollout.output.split()), rollout.output
    assert restarts(fleet, "bw") == [] and fleet.client.instance("bw")["counters"]["writes"] == 0

    status = run_playbook(PLAYBOOKS / "status.yml", fleet.inventory, extra_vars={"billing_sync_report_dir": str(tmp_path)})
    assert status.rc != 0 and "bw could not be read" in status.output
    assert NOT_JSON % url in " ".join(status.output.split())


def test_a_trickling_answer_ends_at_the_request_deadline_and_the_report_names_the_host(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-ok"}, {"name": "bw-slow"}], **FAST)
    # A JSON true after 1200 spaces, one byte every 50 ms: a minute in all, past the 30 s request timeout.
    fleet.client.set_faults("bw-slow", {"http": [{"method": "GET", "path_prefix": "/api/organizations/connections/enabled",
                                                  "status": 200, "times": 100, "body": " " * 1200 + "true",
                                                  "content_type": "application/json; charset=utf-8", "trickle": 0.05}]})
    run = run_playbook(PLAYBOOKS / "status.yml", fleet.inventory, extra_vars={"billing_sync_report_dir": str(tmp_path)},
                       cli_vars={"billing_sync_retry_deadline": "0"})
    assert run.rc != 0
    assert re.search(r"bw-slow could not be read: \S.*no answer within 30 s after 1 attempt\(s\)", run.output), run.output
    assert "bw-ok could not be read" not in run.output
