"""The connection to the server under faults and command-line input (issue 22 items 5 and 8, issue 25 item 5).

Each case failed on 0.3.0: a captive portal's text page was read as "cloud communication off" (a restart of a healthy
server on every run), a stopped server held a run for 55 s of retries, and ``-e name=false`` stayed a true string.
"""

import pytest

from helpers.ansible_run import run_playbook
from reliability.matrix import ROLLOUT, Case

PORTAL = {"method": "GET", "path_prefix": "/api/organizations/connections/enabled", "status": 200, "times": 100,
          "body": "Please sign in to the guest network", "content_type": "text/plain"}
NOT_JSON = r"answered HTTP 200 with text/plain that is not JSON \(35 bytes: 'Please sign in to the guest network'\)"


def rollout_with(cli_vars, runs=1):
    """runner: the rollout with ``-e name=value`` for each of ``cli_vars``, as people type them (strings)."""
    def runner(host, case):
        return [run_playbook(ROLLOUT, host.fleet.inventory, limit=host.name, diff=case.diff, verbosity=4, env=host.run_env(),
                             cli_vars=cli_vars) for dummy in range(runs)]
    return runner


def stop_server(host):
    assert host.fleet.client.bitwarden_sh(host.name, "stop")["exit_code"] == 0


def no_preflight_no_sync(host, runs):
    state = host.fleet.instance(host.name)
    assert state["connection"] is not None and state["counters"]["cloud_calls"] == 0, state["counters"]
    assert all(event["status"] == "skipped" for run in runs for event in run.events
               if event.get("action") in ("selfhost.bitwarden.bitwarden_preflight", "selfhost.bitwarden.bitwarden_license_sync"))


CASES = [
    Case("captive portal page on a converged host: an error naming it, no restart", run="role", runs=2,
         fleet={"preconfigured": True, "faults": {"http": [PORTAL]}}, failed=True, message=NOT_JSON, restarts=0,
         server_on=True),
    Case("captive portal page on a drifted host: nothing changes", run="role", fleet={"faults": {"http": [PORTAL]}},
         env="unchanged", failed=True, message=NOT_JSON, restarts=0, server_on=False),
    Case("stopped server: reported after one short retry, nothing changes", run="role", prepare=stop_server,
         env="unchanged", failed=True, message=r"connection refused after 2 attempt\(s\)", restarts=0),
    Case("billing_sync_retry_deadline=0 typed on the command line: one attempt per request", run="role",
         fleet={"preconfigured": True, "faults": {"http": [
             {"method": "GET", "path_prefix": "/api/organizations/connections/", "status": 503, "times": 100}]}},
         runner=rollout_with({"billing_sync_retry_deadline": "0"}), failed=True,
         message=r"answered 503\b.*still after 1 attempt\(s\) in \d+ s \(retry_deadline=0\)", restarts=0),
    Case("preflight and first sync typed false on the command line: neither runs", run="role",
         fleet={"cloud_endpoint_fault": "refused"}, restarts=1, server_on=True, check=no_preflight_no_sync,
         runner=rollout_with({"billing_sync_preflight": "false", "billing_sync_first_sync": "false",
                              "billing_sync_backup": "false", "billing_sync_validate_certs": "false"})),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_transport(case, run_case):
    run_case(case)
