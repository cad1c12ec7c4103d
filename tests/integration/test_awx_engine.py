"""The engine AWX / Automation Controller runs jobs with: ansible-runner on a private data dir (project, inventory,
env/extravars, env/envvars), the job template's credential injected as extra vars, and job slicing.

AWX's job slicing (docs/job_slicing.md in ansible/awx): the job template becomes a workflow of `job_slice_count`
jobs, each given a pared-down inventory with only its slice of the hosts, run at the same time and sharing nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers.ansible_run import assert_no_secrets

REPO = Path(__file__).resolve().parents[2]
AWX = REPO / "docs" / "examples" / "awx"
BIN = Path(sys.executable).parent
SECRET_VARS = ("billing_sync_client_secret", "billing_sync_token")

pytestmark = pytest.mark.slow


def inventory_hosts(fleet):
    """{group: {host: vars}} of the simulator's inventory (groups bitwarden_us / bitwarden_eu)."""
    document = yaml.safe_load(fleet.inventory.read_text(encoding="utf-8"))
    return {group: dict(body.get("hosts") or {})
            for group, body in document["all"]["children"]["bitwarden"]["children"].items()}


def write_inventory(path, groups, keep=None, drop_vars=()):
    """The fleet's inventory with only the hosts in `keep` (all when None) and without `drop_vars`."""
    children = {}
    for group, hosts in groups.items():
        kept = {name: {key: value for key, value in host.items() if key not in drop_vars}
                for name, host in hosts.items() if keep is None or name in keep}
        children[group] = {"hosts": kept}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"all": {"children": {"bitwarden": {"children": children}}}}), encoding="utf-8")


def private_data_dir(root, playbook, groups, *, keep=None, extravars=None, drop_vars=()):
    """What AWX lays out for a job: project/<playbook>, inventory/hosts.yml, env/extravars, env/envvars."""
    (root / "project").mkdir(parents=True)
    (root / "project" / playbook).write_text(yaml.safe_dump(
        [{"name": playbook, "ansible.builtin.import_playbook": "selfhost.bitwarden.%s" % Path(playbook).stem}]),
        encoding="utf-8")
    write_inventory(root / "inventory" / "hosts.yml", groups, keep, drop_vars)
    (root / "env").mkdir()
    (root / "env" / "extravars").write_text(json.dumps(extravars or {}), encoding="utf-8")
    # The collection as the EE would hold it; ansible's state in the job's own directory.
    (root / "env" / "envvars").write_text(json.dumps({
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".cache" / "collections"),
        "ANSIBLE_HOME": str(root / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(root / "ansible-home" / "tmp"),
        "ANSIBLE_NOCOWS": "1", "ANSIBLE_FORCE_COLOR": "0",
        "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", "")}), encoding="utf-8")
    return root


@dataclass
class Job:
    """A finished ansible-runner job: its status, rc, stdout and events (from the artifacts dir)."""

    status: str
    rc: int
    stdout: str
    events: list


def start_job(root, playbook):
    """`ansible-runner run` on a private data dir, as an AWX execution node starts a job (one process per job)."""
    return subprocess.Popen([str(BIN / "ansible-runner"), "run", str(root), "-p", playbook, "--ident", "job"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish_job(root, process):
    _out, err = process.communicate(timeout=900)
    artifacts = root / "artifacts" / "job"
    assert (artifacts / "rc").is_file(), err
    events = [json.loads(path.read_text(encoding="utf-8")) for path in (artifacts / "job_events").glob("*.json")]
    events.sort(key=lambda event: event["counter"])
    return Job((artifacts / "status").read_text(encoding="utf-8").strip(),
               int((artifacts / "rc").read_text(encoding="utf-8")),
               (artifacts / "stdout").read_text(encoding="utf-8"), events)


def run_job(root, playbook):
    return finish_job(root, start_job(root, playbook))


def host_task_counts(runner):
    """{(host, task): number of results}: every task result the job reported, per host."""
    counts = {}
    for event in runner.events:
        if event["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            data = event["event_data"]
            key = (data["host"], data["task"])
            counts[key] = counts.get(key, 0) + 1
    return counts


def credential_extravars(host):
    """The credential type's injector configuration, rendered with one credential's inputs (as AWX does)."""
    injectors = yaml.safe_load((AWX / "credential_type_injectors.yml").read_text(encoding="utf-8"))
    inputs = {"client_id": host["billing_sync_client_id"], "client_secret": host["billing_sync_client_secret"],
              "billing_sync_token": host["billing_sync_token"]}
    inputs_spec = yaml.safe_load((AWX / "credential_type_inputs.yml").read_text(encoding="utf-8"))
    assert {field["id"] for field in inputs_spec["fields"]} == set(inputs)
    rendered = {}
    for name, template in injectors["extra_vars"].items():
        field = template.strip("{} ")
        assert template == "{{ %s }}" % field, template
        rendered[name] = inputs[field]
    return rendered


def end_state(fleet, name):
    """What a job leaves on a server, without the ids that differ between two fleets."""
    state = fleet.instance(name)
    connection = state["connection"] or {}
    settings = {key: value for key, value in state["settings"].items() if key not in ("installationId", "vault")}
    return {"state": state["state"], "settings": settings, "restarts": state["restarts"],
            "writes": state["counters"]["writes"], "cloud_calls": state["counters"]["cloud_calls"],
            "connection_enabled": connection.get("enabled"),
            "synced": (connection.get("config") or {}).get("LastLicenseSync") is not None,
            "bitwarden_sh": [(call["command"], call["exit_code"]) for call in fleet.client.bitwarden_sh_calls(name)]}


def test_job_with_the_credential_type_injecting_the_secrets(sim_fleet, tmp_path):
    """One server per job template, its secrets from the credential (extra vars), none in the inventory."""
    fleet = sim_fleet([{"name": "bw-awx-eu", "region": "EU"}], restart_delay=0.2, warmup=0.1)
    groups = inventory_hosts(fleet)
    host = fleet.host_vars("bw-awx-eu")
    extravars = credential_extravars(host)
    secrets = [host[name] for name in SECRET_VARS]
    drop = ("billing_sync_client_id",) + SECRET_VARS

    rollout = run_job(private_data_dir(tmp_path / "rollout", "rollout.yml", groups, extravars=extravars,
                                       drop_vars=drop), "rollout.yml")
    output = rollout.stdout
    assert (rollout.status, rollout.rc) == ("successful", 0), output
    state = fleet.instance("bw-awx-eu")
    assert state["settings"]["enableCloudCommunication"] is True and state["settings"]["cloudRegion"] == "EU"
    assert state["connection"]["enabled"] is True and state["connection"]["config"]["LastLicenseSync"]
    assert_no_secrets(output + json.dumps(rollout.events), secrets)

    status_dir = private_data_dir(tmp_path / "status", "status.yml", groups,
                                  extravars={**extravars, "billing_sync_fail_on_drift": True,
                                             "billing_sync_report_dir": str(tmp_path)}, drop_vars=drop)
    status = run_job(status_dir, "status.yml")
    assert (status.status, status.rc) == ("successful", 0), status.stdout
    rows = json.loads((tmp_path / "billing-sync-report.json").read_text(encoding="utf-8"))
    assert [(row["host"], row["drift"]) for row in rows] == [("bw-awx-eu", [])]
    assert_no_secrets(status.stdout + json.dumps(status.events), secrets)


FLEET = [{"name": "bw-slice-us-1"}, {"name": "bw-slice-us-2"},
         {"name": "bw-slice-eu-1", "region": "EU"}, {"name": "bw-slice-eu-2", "region": "EU"}]


def test_two_concurrent_job_slices_reach_the_same_end_state_as_one_job(sim_fleet, tmp_path):
    options = {"restart_delay": 0.2, "warmup": 0.1}
    whole = sim_fleet(FLEET, name="whole", **options)
    sliced = sim_fleet(FLEET, name="sliced", **options)

    one = run_job(private_data_dir(tmp_path / "one-job", "rollout.yml", inventory_hosts(whole)), "rollout.yml")
    assert (one.status, one.rc) == ("successful", 0), one.stdout

    # Two slices of the same inventory: AWX deals the hosts out in turn (slice n gets hosts n, n+2, ...).
    groups = inventory_hosts(sliced)
    names = sorted(name for hosts in groups.values() for name in hosts)
    slices = [set(names[0::2]), set(names[1::2])]
    roots = [private_data_dir(tmp_path / ("slice-%d" % (index + 1)), "rollout.yml", groups, keep=hosts)
             for index, hosts in enumerate(slices)]
    processes = [start_job(root, "rollout.yml") for root in roots]
    runners = [finish_job(root, process) for root, process in zip(roots, processes)]
    for runner in runners:
        assert (runner.status, runner.rc) == ("successful", 0), runner.stdout

    # The slices ran at the same time: their play windows overlap.
    windows = []
    for runner in runners:
        bounds = ("playbook_on_start", "playbook_on_stats")
        stamps = [event["created"] for event in runner.events if event["event"] in bounds]
        windows.append((min(stamps), max(stamps)))
    assert windows[0][0] < windows[1][1] and windows[1][0] < windows[0][1], windows

    # Each host in exactly one slice, each of its tasks reported once.
    seen = [{host for host, _task in host_task_counts(runner)} for runner in runners]
    assert seen == slices and not seen[0] & seen[1]
    for runner in runners:
        repeated = {key: count for key, count in host_task_counts(runner).items() if count > 1}
        assert repeated == {}, repeated

    # The status playbook sliced the same way: each slice reports its own hosts, none drifted, nothing written.
    writes = {name: sliced.instance(name)["counters"]["writes"] for name in names}
    status_roots = [private_data_dir(tmp_path / ("status-%d" % (index + 1)), "status.yml", groups, keep=hosts,
                                     extravars={"billing_sync_fail_on_drift": True,
                                                "billing_sync_report_dir": str(tmp_path / ("status-%d" % (index + 1)))})
                    for index, hosts in enumerate(slices)]
    processes = [start_job(root, "status.yml") for root in status_roots]
    for root, process, hosts in zip(status_roots, processes, slices):
        job = finish_job(root, process)
        assert (job.status, job.rc) == ("successful", 0), job.stdout
        rows = json.loads((root / "billing-sync-report.json").read_text(encoding="utf-8"))
        assert sorted(row["host"] for row in rows) == sorted(hosts)
        assert all(row["drift"] == [] for row in rows), rows
    assert {name: sliced.instance(name)["counters"]["writes"] for name in names} == writes

    # Same end state as one job, host by host: one restart, the same writes, nothing twice.
    for name in names:
        assert end_state(sliced, name) == end_state(whole, name), name
        assert end_state(sliced, name)["bitwarden_sh"] == [("restart", 0)], name
        assert end_state(sliced, name)["settings"]["enableCloudCommunication"] is True
        assert end_state(sliced, name)["connection_enabled"] is True and end_state(sliced, name)["synced"]
