"""The docker stand-in (DIR/bin/docker) the simulated scripts and the role call like a system docker.

Contract §7: `docker compose up -d` in bwdata/docker with the install's COMPOSE_FILE recreates the containers whose
resolved environment changed (env files read again), leaves unchanged ones running, never pulls or takes the
deployment down; a host that cannot reach the registry fails pulls with "Error response from daemon: …".
"""

import json
import os
import subprocess
import time

import pytest
import requests
from bwsim.docker import HEALTH_INTERVAL, HEALTH_RETRIES, ComposeProject


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([{"name": n} for n in ("ver", "same", "changed", "badenv", "where", "images", "registry", "ps")])


def docker(fleet, name, *args, cwd=None, compose_file=True):
    env = {key: value for key, value in os.environ.items() if key not in ("COMPOSE_FILE",)}
    docker_dir = fleet.install_dir(name) / "bwdata" / "docker"
    if compose_file:
        env["COMPOSE_FILE"] = str(docker_dir / "docker-compose.yml")
    return subprocess.run([str(fleet.dir / "bin" / "docker"), *args], capture_output=True, text=True, timeout=60,
                          check=False, env=env, cwd=str(cwd or docker_dir))


def env_file(fleet, name):
    return fleet.install_dir(name) / "bwdata" / "env" / "global.override.env"


def test_the_inventory_names_the_stand_in(fleet):
    command = fleet.host_vars("ver")["billing_sync_docker_command"]
    assert command == str(fleet.dir / "hosts" / "ver" / "bin" / "docker")
    assert os.path.realpath(command) == str(fleet.dir / "bin" / "docker")


def test_versions_and_compose_usage(fleet):
    assert docker(fleet, "ver", "--version").stdout.startswith("Docker version ")
    assert docker(fleet, "ver", "compose", "version").stdout.startswith("Docker Compose version v2")
    usage = docker(fleet, "ver", "compose")
    assert (usage.returncode, usage.stderr) == (0, "")
    fleet.client.set_faults("ver", {"no_compose": True})
    missing = docker(fleet, "ver", "compose", "version")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.startswith("docker: 'compose' is not a docker command.")
    assert docker(fleet, "ver", "--version").returncode == 0


def test_up_without_a_change_leaves_the_containers_running(fleet):
    before = fleet.instance("same")
    result = docker(fleet, "same", "compose", "up", "-d")
    assert result.returncode == 0, result.stderr
    assert "Running" in result.stdout and "Recreated" not in result.stdout
    after = fleet.instance("same")
    assert (after["restarts"], after["state"]) == (before["restarts"], "up")


def test_up_after_an_env_change_recreates_and_reads_the_settings(fleet):
    url = fleet.instance("changed")["url"]
    with open(env_file(fleet, "changed"), "a", encoding="utf-8") as handle:
        handle.write("globalSettings__enableCloudCommunication=true\n")
    assert fleet.instance("changed")["settings"]["enableCloudCommunication"] is False
    result = docker(fleet, "changed", "compose", "up", "-d")
    assert result.returncode == 0, result.stderr
    assert "Recreated" in result.stdout
    deadline = time.monotonic() + 5
    while fleet.instance("changed")["state"] != "up":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    state = fleet.instance("changed")
    assert state["settings"]["enableCloudCommunication"] is True
    assert state["restarts"] == 1
    assert [" ".join(c["argv"]) for c in state["docker_calls"]] == ["compose up -d"]  # no down, no pull
    assert requests.get(url + "/api/alive", timeout=2).status_code == 200
    again = docker(fleet, "changed", "compose", "up", "-d")
    assert "Running" in again.stdout and fleet.instance("changed")["restarts"] == 1


def test_up_with_an_env_file_compose_rejects_touches_nothing(fleet):
    with open(env_file(fleet, "badenv"), "a", encoding="utf-8") as handle:
        handle.write('globalSettings__hibpApiKey="unterminated\n')
    result = docker(fleet, "badenv", "compose", "up", "-d")
    assert result.returncode == 1
    assert "unterminated quoted value" in result.stderr and result.stdout == ""
    assert fleet.instance("badenv")["state"] == "up"


def test_the_project_comes_from_compose_file_or_the_working_dir(fleet):
    by_cwd = docker(fleet, "where", "compose", "ps", "-q", compose_file=False)
    assert len(by_cwd.stdout.split()) == 12
    elsewhere = docker(fleet, "where", "compose", "ps", compose_file=False, cwd="/")
    assert (elsewhere.returncode, elsewhere.stderr) == (1, "no configuration file provided: not found\n")
    by_file = docker(fleet, "where", "compose", "ps", cwd="/")
    assert by_file.returncode == 0 and len(by_file.stdout.splitlines()) == 13


def test_images_named_by_the_compose_files_are_present_locally(fleet):
    images = docker(fleet, "images", "compose", "config", "--images").stdout.split()
    assert len(images) == 12 and "ghcr.io/bitwarden/api:2026.8.0" in images
    present = docker(fleet, "images", "image", "inspect", *images)
    assert present.returncode == 0
    assert len(json.loads(present.stdout)) == 12
    unknown = docker(fleet, "images", "image", "inspect", "ghcr.io/bitwarden/api:1999.1.0")
    assert (unknown.returncode, unknown.stderr) == (1, "Error response from daemon: No such image: ghcr.io/bitwarden/api:1999.1.0\n")
    fleet.client.set_faults("images", {"images_missing": True})
    assert docker(fleet, "images", "image", "inspect", images[0]).returncode == 1


def test_registry_probe_and_pull_fail_when_the_registry_is_unreachable(fleet):
    assert docker(fleet, "registry", "manifest", "inspect", "ghcr.io/bitwarden/api:2026.8.0").returncode == 0
    fleet.client.set_faults("registry", {"pull_fails": True})
    probe = docker(fleet, "registry", "manifest", "inspect", "ghcr.io/bitwarden/api:2026.8.0")
    assert probe.returncode == 1 and "lookup ghcr.io" in probe.stderr and probe.stdout == ""
    pull = docker(fleet, "registry", "compose", "pull")
    assert pull.returncode == 18
    assert pull.stderr.startswith("Error response from daemon: ")
    assert fleet.instance("registry")["state"] == "up"  # a pull alone takes nothing down


def test_ps_and_down(fleet):
    assert len(docker(fleet, "ps", "compose", "ps").stdout.splitlines()) == 13
    down = docker(fleet, "ps", "compose", "down")
    assert down.returncode == 0 and "Removed" in down.stdout
    assert fleet.instance("ps")["state"] == "down"
    assert docker(fleet, "ps", "compose", "ps").stdout.splitlines() == [docker(fleet, "ps", "compose", "ps").stdout.splitlines()[0]]
    assert docker(fleet, "ps", "compose", "ps", "-q").stdout == ""
    assert docker(fleet, "ps", "compose", "up", "-d").returncode == 0
    assert fleet.instance("ps")["restarts"] == 1
    # Docker's default HEALTHCHECK interval: the first check runs 30 s after the start (contract 11).
    lines = docker(fleet, "ps", "compose", "ps").stdout.splitlines()[1:]
    assert len(lines) == 12 and all(line.endswith("Up 1 min (health: starting)") for line in lines), lines


class _Project(ComposeProject):
    def __init__(self, age, answering):
        self.containers_created_at = time.monotonic() - age
        self.answering = answering

    def apps_answer(self):
        return self.answering


@pytest.mark.parametrize("age, answering, shown", [
    (0, True, " (health: starting)"), (HEALTH_INTERVAL - 1, True, " (health: starting)"),
    (HEALTH_INTERVAL + 1, True, " (healthy)"), (HEALTH_INTERVAL + 1, False, " (health: starting)"),
    (HEALTH_INTERVAL * HEALTH_RETRIES + 1, False, " (unhealthy)"),
])
def test_health_follows_the_default_interval(age, answering, shown):
    assert _Project(age, answering).health() == shown


def test_no_healthcheck_no_health_status():
    project = _Project(HEALTH_INTERVAL + 1, True)
    project.healthcheck = False
    assert project.health() == ""
