"""The docker egress faults and the restart steps the role's restart check has to foresee (contract 7 and 11, self-host
run.sh `restart` and `updateLetsEncrypt`, bitwarden.sh's compose fallback):

* the docker CLI (`docker manifest inspect`) and the daemon (`docker compose pull`, `docker pull`) reach the registry
  on their own paths: one can fail while the other works;
* with `bwdata/letsencrypt/live`, run.sh restart pulls certbot/certbot from Docker Hub and runs `certbot renew`
  after `down`;
* without the compose plugin, bitwarden.sh falls back to docker-compose v1 when the host has it.
"""

import json
import os
import subprocess

import pytest

ANSWER = "y\n" if os.geteuid() == 0 else ""
NAMES = ("cli", "daemon", "hub", "le", "v1", "v1-pull", "none", "exec")


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([{"name": name} for name in NAMES])


def docker(fleet, name, *args, program="docker"):
    command = os.path.join(os.path.dirname(fleet.host_vars(name)["billing_sync_docker_command"]), program)
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=60, check=False,
                          cwd=str(fleet.install_dir(name) / "bwdata" / "docker"))


def restart(fleet, name):
    return subprocess.run([str(fleet.install_dir(name) / "bitwarden.sh"), "restart"], input=ANSWER, capture_output=True,
                          text=True, timeout=60, check=False, cwd=str(fleet.install_dir(name)))


def argvs(fleet, name):
    return [" ".join(call["argv"]) for call in fleet.client.docker_calls(name)]


def api_digest(fleet, name):
    image = "ghcr.io/bitwarden/api:2026.8.0"
    inspected = docker(fleet, name, "image", "inspect", image)
    assert inspected.returncode == 0, inspected.stderr
    return json.loads(inspected.stdout)[0]["RepoDigests"][0]


def test_cli_egress_fault_fails_the_manifest_probe_only(fleet):
    fleet.client.set_faults("cli", {"cli_registry_unreachable": True})
    assert docker(fleet, "cli", "manifest", "inspect", "ghcr.io/bitwarden/api:2026.8.0").returncode == 1
    digest = api_digest(fleet, "cli")
    assert digest.startswith("ghcr.io/bitwarden/api@sha256:")
    pulled = docker(fleet, "cli", "pull", digest)
    assert pulled.returncode == 0 and f"Status: Image is up to date for {digest}" in pulled.stdout
    result = restart(fleet, "cli")
    assert result.returncode == 0, result.stderr
    assert fleet.instance("cli")["restarts"] == 1


def test_daemon_egress_fault_fails_every_pull_but_not_the_manifest_probe(fleet):
    fleet.client.set_faults("daemon", {"daemon_registry_unreachable": True})
    assert docker(fleet, "daemon", "manifest", "inspect", "ghcr.io/bitwarden/api:2026.8.0").returncode == 0
    pulled = docker(fleet, "daemon", "pull", api_digest(fleet, "daemon"))
    assert pulled.returncode == 1 and pulled.stderr.startswith('Error response from daemon: Get "https://ghcr.io/v2/": proxyconnect')
    result = restart(fleet, "daemon")
    assert result.returncode == 18 and "proxyconnect" in result.stderr
    assert fleet.instance("daemon")["state"] == "down"  # run.sh took it down before the pull


def test_letsencrypt_restart_pulls_and_runs_certbot_between_pull_and_up(fleet):
    (fleet.install_dir("le") / "bwdata" / "letsencrypt" / "live").mkdir(parents=True)
    result = restart(fleet, "le")
    assert result.returncode == 0, result.stderr
    steps = [a for a in argvs(fleet, "le") if a.startswith(("compose pull", "compose up", "pull certbot", "run -i --rm --name certbot"))]
    assert steps == ["compose pull", "pull certbot/certbot",
                     f"run -i --rm --name certbot -p 443:443 -p 80:80 -v {fleet.install_dir('le')}/bwdata/letsencrypt:/etc/letsencrypt/ "
                     "certbot/certbot renew --logs-dir /etc/letsencrypt/logs", "compose up -d"]
    assert json.loads(docker(fleet, "le", "image", "inspect", "certbot/certbot").stdout)[0]["RepoTags"] == ["certbot/certbot:latest"]


def test_docker_hub_fault_fails_the_certbot_pull_after_down(fleet):
    (fleet.install_dir("hub") / "bwdata" / "letsencrypt" / "live").mkdir(parents=True)
    fleet.client.set_faults("hub", {"docker_hub_unreachable": True})
    result = restart(fleet, "hub")
    assert result.returncode == 1 and "registry-1.docker.io" in result.stderr
    assert fleet.instance("hub")["state"] == "down"


def test_compose_v1_host_gets_docker_compose_and_bitwarden_sh_falls_back_to_it(fleet):
    assert not os.path.lexists(os.path.join(os.path.dirname(fleet.host_vars("v1")["billing_sync_docker_command"]), "docker-compose"))
    fleet.client.set_faults("v1", {"compose_v1": True})
    assert docker(fleet, "v1", "compose", "version").returncode == 1
    assert docker(fleet, "v1", "--version", program="docker-compose").stdout.startswith("docker-compose version 1.")
    images = docker(fleet, "v1", "config", "--images", program="docker-compose")
    assert images.returncode == 1 and images.stderr.startswith("Validate and view the Compose file.")
    assert "    image: ghcr.io/bitwarden/api:2026.8.0" in docker(fleet, "v1", "config", program="docker-compose").stdout
    result = restart(fleet, "v1")
    assert result.returncode == 0, result.stderr
    assert "docker compose not found, falling back to docker-compose." in result.stdout
    assert [a for a in argvs(fleet, "v1") if a.startswith("docker-compose ")][-3:] == [
        "docker-compose down", "docker-compose pull", "docker-compose up -d"]


def test_compose_v1_with_the_registry_unreachable_leaves_the_server_down(fleet):
    fleet.client.set_faults("v1-pull", {"compose_v1": True, "pull_fails": True})
    result = restart(fleet, "v1-pull")
    assert result.returncode == 1 and result.stderr.startswith("ERROR: for ")
    assert fleet.instance("v1-pull")["state"] == "down"


def test_no_compose_at_all_stops_before_down(fleet):
    fleet.client.set_faults("none", {"no_compose": True})
    result = restart(fleet, "none")
    assert result.returncode == 1 and "Neither 'docker compose' nor 'docker-compose'" in result.stderr
    assert fleet.instance("none")["state"] == "up"


def test_exec_wget_in_the_api_container_takes_the_containers_egress(fleet):
    """The preflight's probe from inside the api container: BusyBox wget (no curl in the Alpine images)."""
    url = "https://identity.bitwarden.com/alive"
    assert docker(fleet, "exec", "compose", "exec", "-T", "api", "wget", "-q", "-T", "1", "-O", "/dev/null", url).returncode == 0
    curl = docker(fleet, "exec", "compose", "exec", "-T", "api", "curl", url)
    assert curl.returncode == 126 and 'exec: "curl": executable file not found' in curl.stderr
    fleet.client.set_faults("exec", {"cloud_unreachable": True})
    dns = docker(fleet, "exec", "compose", "exec", "-T", "api", "wget", "-q", "-T", "1", "-O", "/dev/null", url)
    assert (dns.returncode, dns.stderr) == (1, "wget: bad address 'identity.bitwarden.com'\n")
    fleet.client.set_faults("exec", {"cloud_drop": True})
    dropped = docker(fleet, "exec", "compose", "exec", "-T", "api", "wget", "-q", "-T", "1", "-O", "/dev/null", url)
    assert (dropped.returncode, dropped.stderr) == (1, "wget: download timed out\n")
    fleet.client.set_faults("exec", {})
    assert fleet.client.bitwarden_sh("exec", "stop")["exit_code"] == 0
    down = docker(fleet, "exec", "compose", "exec", "-T", "api", "wget", url)
    assert (down.returncode, down.stderr) == (1, 'service "api" is not running\n')
