"""The pause fault (a test acts at a chosen moment; only time changes) and Lite's compose file name.

docker compose opens every file COMPOSE_FILE names before anything else: naming docker-compose.yml in a directory
that has compose.yaml fails with "open <path>: no such file or directory" (exit 1), as upstream compose does.
"""

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([{"name": "paused"}, {"name": "lite", "deployment": "lite", "compose_file": "compose.yaml"}])


def test_a_paused_pull_holds_the_restart_in_its_pull_window_until_the_gate_appears(fleet, tmp_path):
    gate = tmp_path / "gate"
    fleet.client.set_faults("paused", {"pause": [{"at": "compose pull", "gate": str(gate)}]})
    before = fleet.instance("paused")["restarts"]
    results = []
    worker = threading.Thread(target=lambda: results.append(fleet.client.bitwarden_sh("paused", "restart")))
    worker.start()
    deadline = time.monotonic() + 60
    while not Path(str(gate) + ".reached").exists():
        assert time.monotonic() < deadline, "the pull was never reached"
        time.sleep(0.05)
    assert fleet.instance("paused")["state"] == "down"  # down done, pull not finished
    assert worker.is_alive()
    gate.touch()
    worker.join(60)
    assert results and results[0]["exit_code"] == 0, results
    state = fleet.instance("paused")
    assert state["restarts"] == before + 1 and state["faults"]["pause"][0]["times"] == 0
    assert fleet.client.bitwarden_sh("paused", "restart")["exit_code"] == 0  # consumed: not paused again


def docker(fleet, *args, compose_file):
    directory = Path(fleet.host_vars("lite")["billing_sync_install_dir"])
    env = dict(os.environ, COMPOSE_FILE=str(directory / compose_file))
    return subprocess.run([str(fleet.dir / "bin" / "docker"), *args], capture_output=True, text=True, timeout=60,
                          check=False, env=env, cwd=str(directory))


def test_lite_with_compose_yaml_answers_for_that_file_only(fleet):
    directory = Path(fleet.host_vars("lite")["billing_sync_install_dir"])
    assert (directory / "compose.yaml").is_file() and not (directory / "docker-compose.yml").exists()
    wrong = docker(fleet, "compose", "up", "-d", compose_file="docker-compose.yml")
    assert (wrong.returncode, wrong.stderr) == (1, "open %s: no such file or directory\n" % (directory / "docker-compose.yml"))
    right = docker(fleet, "compose", "config", "--images", compose_file="compose.yaml")
    assert right.returncode == 0 and "lite:" in right.stdout
