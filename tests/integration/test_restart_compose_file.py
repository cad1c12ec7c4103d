"""The restart uses the compose file docker compose itself picks (issue 22 #11), and a check run shows no lock
noise (issue 25 #7, the lock diff).

0.3.0 detected a Lite install by compose.yaml but restarted it with COMPOSE_FILE=<dir>/docker-compose.yml: compose
then fails ("open …/docker-compose.yml: no such file or directory") on every run and the server keeps its old settings.
"""

from pathlib import Path

from helpers.ansible_run import run_playbook

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = REPO / "playbooks" / "rollout.yml"
FAST = {"restart_delay": 0.2, "warmup": 0.1}


def test_lite_with_compose_yaml_is_restarted_with_that_file(sim_fleet):
    fleet = sim_fleet([{"name": "lite", "deployment": "lite", "compose_file": "compose.yaml"}], **FAST)
    assert not (Path(fleet.host_vars("lite")["billing_sync_install_dir"]) / "docker-compose.yml").exists()
    run = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    state = fleet.instance("lite")
    assert state["restarts"] == 1 and state["settings"]["enableCloudCommunication"] is True
    ups = [call for call in state["docker_calls"] if call["argv"][:2] == ["compose", "up"]]
    assert [call["exit_code"] for call in ups] == [0], ups
    again = run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert again.changed_total() == 0 and fleet.instance("lite")["restarts"] == 1
    assert "no such file or directory" not in run.output


def test_check_mode_shows_no_lock_change_or_diff(sim_fleet):
    fleet = sim_fleet([{"name": "bw"}], **FAST)
    run = run_playbook(ROLLOUT, fleet.inventory, check=True, diff=True).assert_ok()
    taken = run.result("selfhost.bitwarden.billing_sync : Take the host's lock", "bw")
    assert taken["changed"] is False and "diff" not in taken, taken
    released = run.result("selfhost.bitwarden.billing_sync : Give the host's lock back", "bw")
    assert released["changed"] is False and "diff" not in released, released
    assert '"acquired"' not in run.stdout and "run_id" not in run.stdout
    assert not (Path(fleet.host_vars("bw")["billing_sync_install_dir"]) / "bwdata" / ".selfhost-bitwarden.lock").exists()
