"""The restart path against the simulator's bitwarden.sh/run.sh and docker stand-in (contract §7), through
ansible-playbook: root prompt answered, failures carry their stderr cause, every restart is bounded by
billing_sync_restart_timeout, a restart that would leave the server down is refused before any change, and the
`compose` restart method (one `docker compose up -d`, no down, no pull)."""

import hashlib
import time
from pathlib import Path

import pytest

from helpers.ansible_run import assert_no_secrets, run_playbook

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = REPO / "playbooks" / "rollout.yml"
FAST = {"restart_delay": 0.2, "warmup": 0.1}


def env_file(fleet, name):
    return Path(fleet.host_vars(name)["billing_sync_install_dir"]) / "bwdata" / "env" / "global.override.env"


def docker_argvs(fleet, name):
    return [" ".join(call["argv"]) for call in fleet.client.docker_calls(name)]


def failure(run, task):
    """The message of the failed task (role task names carry the role prefix)."""
    messages = [event["result"]["msg"] for event in run.events
                if event["event"] == "task" and event["task"].endswith(task) and event["status"] == "failed"]
    assert messages, run.output
    return messages[0]


def secrets_of(fleet, name):
    state = fleet.client.instance(name)
    return [state["credentials"]["owner"]["client_secret"], state["billing_sync_token"]]


def test_root_owned_install_converges_with_the_prompt_answered(sim_fleet):
    fleet = sim_fleet([{"name": "bw-root"}], **FAST)
    if fleet.host_vars("bw-root")["billing_sync_user"] != "root":
        pytest.skip("the install is owned by the user running the tests; the molecule ssh scenario covers both")
    run = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert "answering bitwarden.sh's prompt" in run.stdout
    assert [(c["command"], c["user"], c["exit_code"]) for c in fleet.client.bitwarden_sh_calls("bw-root")] == [("restart", "root", 0)]
    assert fleet.instance("bw-root")["settings"]["enableCloudCommunication"] is True
    again = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert again.changed_total() == 0
    assert len(fleet.client.bitwarden_sh_calls("bw-root")) == 1


def test_pull_failure_fails_with_the_stderr_cause_within_the_timeout(sim_fleet):
    """The registry answered the check but not run.sh's pull (skip the check to get there): the message leads with stderr."""
    fleet = sim_fleet([{"name": "bw-pull", "faults": {"pull_fails": True}}], **FAST)
    run = run_playbook(ROLLOUT, fleet.inventory, skip_tags=["billing_sync_restart_check"],
                       extra_vars={"billing_sync_restart_timeout": 60})
    assert run.rc != 0
    # Within the timeout: the failure is the pull's own exit code below, not a wait that ran out (no wall-clock check,
    # which a loaded machine would break).
    message = failure(run, "Fail when the restart failed")
    assert message.startswith("./bitwarden.sh restart as ")
    stderr_at = message.index("failed: Error response from daemon: Get \"https://ghcr.io/v2/\": dial tcp: lookup ghcr.io")
    assert stderr_at < message.index("Exit code 18.") < message.index("Env file: ") < message.index("Server: down, no container runs.")
    assert "Next step: the host cannot reach the container registry" in message
    assert "billing_sync_restart_method to compose" in message
    assert "Bitwarden is up and running" not in message
    assert fleet.instance("bw-pull")["state"] == "down"
    assert [c["exit_code"] for c in fleet.client.bitwarden_sh_calls("bw-pull")] == [18]
    assert_no_secrets(run.output, secrets_of(fleet, "bw-pull"))


def test_restart_that_never_returns_is_stopped_at_the_timeout(sim_fleet):
    fleet = sim_fleet([{"name": "bw-hang", "faults": {"restart": "hangs"}}], **FAST)
    started = time.monotonic()
    run = run_playbook(ROLLOUT, fleet.inventory, extra_vars={"billing_sync_restart_timeout": 15}, timeout=300)
    elapsed = time.monotonic() - started
    assert run.rc != 0
    message = failure(run, "Fail when the restart failed")
    assert "./bitwarden.sh restart as" in message
    assert "Exit code 124 = stopped after 15 s (billing_sync_restart_timeout)" in message
    assert "Server: down, no container runs." in message
    assert "raise billing_sync_restart_timeout" in message
    assert elapsed < 15 + 90, elapsed  # the timeout, plus the rest of the play on a loaded machine
    state = fleet.instance("bw-hang")
    assert (state["state"], state["restarts"]) == ("down", 1)  # taken down, `up -d` never answered


def test_unreachable_registry_stops_before_the_env_file_changes(sim_fleet):
    fleet = sim_fleet([{"name": "bw-offline", "faults": {"pull_fails": True}}], **FAST)
    before = hashlib.sha256(env_file(fleet, "bw-offline").read_bytes()).hexdigest()
    run = run_playbook(ROLLOUT, fleet.inventory)
    assert run.rc != 0
    message = failure(run, "Stop before any change when the restart cannot succeed")
    assert message.startswith("Nothing was changed: the restart this host needs (billing_sync_restart_method bitwarden_sh)")
    assert "lookup ghcr.io" in message and "Allow egress to the registry" in message
    assert hashlib.sha256(env_file(fleet, "bw-offline").read_bytes()).hexdigest() == before
    assert fleet.client.bitwarden_sh_calls("bw-offline") == []
    state = fleet.instance("bw-offline")
    assert (state["state"], state["restarts"], state["counters"]["writes"]) == ("up", 0, 0)


def test_compose_method_converges_with_one_up_per_host_and_no_pull(sim_fleet):
    """Offline hosts too: compose needs only the local images. bw-c-3 cannot reach the registry."""
    fleet = sim_fleet([{"name": "bw-c-1"}, {"name": "bw-c-2", "region": "EU"}, {"name": "bw-c-3", "faults": {"pull_fails": True}}], **FAST)
    extra = {"billing_sync_restart_method": "compose"}
    run = run_playbook(ROLLOUT, fleet.inventory, extra_vars=extra).assert_ok()
    for name in fleet.names:
        argvs = docker_argvs(fleet, name)
        assert argvs.count("compose up -d") == 1, (name, argvs)
        assert not [a for a in argvs if a.startswith(("compose pull", "compose down", "pull "))], argvs
        assert fleet.client.bitwarden_sh_calls(name) == []
        state = fleet.instance(name)
        assert (state["restarts"], state["settings"]["enableCloudCommunication"]) == (1, True)
        assert state["connection"]["config"]["LastLicenseSync"] is not None
    assert fleet.instance("bw-c-2")["settings"]["cloudRegion"] == "EU"
    again = run_playbook(ROLLOUT, fleet.inventory, extra_vars=extra).assert_ok()
    assert again.changed_total() == 0, again.output
    assert all(docker_argvs(fleet, name).count("compose up -d") == 1 for name in fleet.names)
    assert_no_secrets(run.output + again.output, [s for name in fleet.names for s in secrets_of(fleet, name)])


def test_compose_method_without_images_or_registry_stops_before_any_change(sim_fleet):
    fleet = sim_fleet([{"name": "bw-bare", "faults": {"pull_fails": True, "images_missing": True}}], **FAST)
    before = env_file(fleet, "bw-bare").read_bytes()
    run = run_playbook(ROLLOUT, fleet.inventory, extra_vars={"billing_sync_restart_method": "compose"})
    assert run.rc != 0
    assert "Images named in" in run.output and "are missing locally" in run.output
    assert env_file(fleet, "bw-bare").read_bytes() == before
    assert "compose up -d" not in docker_argvs(fleet, "bw-bare")


def test_missing_run_sh_names_the_fix(sim_fleet):
    fleet = sim_fleet([{"name": "bw-norun"}], **FAST)
    (Path(fleet.host_vars("bw-norun")["billing_sync_install_dir"]) / "bwdata" / "scripts" / "run.sh").unlink()
    run = run_playbook(ROLLOUT, fleet.inventory)
    message = failure(run, "Fail when the restart failed")
    assert "run.sh: No such file or directory" in message.split("Exit code")[0]
    assert "Exit code 127." in message
    assert "Server: 12 containers run" in message  # bash failed before run.sh could take anything down
    assert "bwdata/scripts/run.sh is missing" in message and "./bitwarden.sh updateself" in message
    assert fleet.instance("bw-norun")["state"] == "up"
