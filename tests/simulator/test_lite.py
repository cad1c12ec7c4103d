"""Bitwarden Lite instances (fleet `deployment: lite`), pinned to contract §6.3 and §5 and to upstream
bitwarden/self-host `bitwarden-lite/` (docker-compose.yml, settings.env, Dockerfile, entrypoint.sh, hbs/nginx-config.hbs)."""

import os
import re
import stat
import subprocess
import time

import pytest
import yaml

from bwsim import envfile, lite

NAME = "bw-lite"
ENABLE = "globalSettings__enableCloudCommunication"


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([{"name": NAME, "deployment": "lite"}, {"name": "bw-lite-eu", "deployment": "lite", "region": "EU"},
                         {"name": "bw-standard"}])


def docker(fleet, name, *argv):
    """The docker stand-in, run in the instance's compose dir like an admin would."""
    return subprocess.run([str(fleet.dir / "bin" / "docker"), *argv], cwd=fleet.install_dir(name), capture_output=True,
                          text=True, timeout=60, check=False)


def wait_up(fleet, name, timeout=10):
    deadline = time.monotonic() + timeout
    while fleet.instance(name)["state"] != "up":
        assert time.monotonic() < deadline, "the instance did not come up"
        time.sleep(0.05)


def append_setting(fleet, name, line):
    path = fleet.install_dir(name) / "settings.env"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def test_layout_is_a_compose_dir_with_settings_env(fleet):
    """§6.3: docker-compose.yml (service bitwarden, env_file settings.env, lite image) beside settings.env (BW_*,
    comments, quoted values; mode 0600 as install-lite.sh leaves it); no bitwarden.sh, no bwdata."""
    root = fleet.install_dir(NAME)
    assert sorted(os.listdir(root)) == ["docker-compose.yml", "settings.env"]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8"))
    service = compose["services"]["bitwarden"]
    assert service["env_file"] == ["settings.env"]
    assert service["image"] == "${REGISTRY:-ghcr.io/bitwarden}/lite:${TAG:-2026.8.0}"
    assert service["ports"] == ["80:8080", "443:8443"]
    settings_env = root / "settings.env"
    assert stat.S_IMODE(settings_env.stat().st_mode) == 0o600
    text = settings_env.read_text(encoding="utf-8")
    state = fleet.instance(NAME)
    assert "# Get your ID and key from https://bitwarden.com/host/\n" in text
    assert f"BW_INSTALLATION_ID={state['installation_id']}\n" in text
    assert re.search(r"^BW_INSTALLATION_KEY='[A-Za-z0-9]{20}'$", text, re.M)
    assert re.search(r'^BW_DB_PASSWORD="[A-Za-z0-9]+"$', text, re.M)
    assert "globalSettings__installation__id" not in text  # Lite names them BW_INSTALLATION_ID/KEY
    assert ENABLE not in text  # nothing turns cloud communication on by itself
    assert state["deployment"] == "lite" and state["install_dir"] == str(root)
    assert fleet.host_vars(NAME)["billing_sync_install_dir"] == str(root)
    assert fleet.host_vars(NAME)["billing_sync_deployment"] == "lite"
    assert "billing_sync_deployment" not in fleet.host_vars("bw-standard")
    assert fleet.instance("bw-standard")["deployment"] == "standard"


def test_settings_come_from_settings_env_through_the_entrypoint(fleet):
    """entrypoint.sh: globalSettings__installation__id = $BW_INSTALLATION_ID; image ENV: selfHosted, push relay."""
    state = fleet.instance(NAME)
    settings = state["settings"]
    assert settings["installationId"] == state["installation_id"]
    assert settings["selfHosted"] is True and settings["enableCloudCommunication"] is False
    assert settings["cloudRegion"] is None  # Lite has no Setup that writes a region
    assert settings["pushRelayBaseUri"] == "https://push.bitwarden.com" and settings["pushRelayEnabled"] is True
    assert settings["vault"] == state["url"]


def test_entrypoint_overrides_a_standard_installation_id():
    env = lite.entrypoint_env({"BW_INSTALLATION_ID": "11111111-2222-3333-4444-555555555555",
                               "globalSettings__installation__id": "99999999-2222-3333-4444-555555555555"})
    assert env["globalSettings__installation__id"] == "11111111-2222-3333-4444-555555555555"
    assert lite.entrypoint_env({"BW_DOMAIN": "vault.example.com"})["globalSettings__baseServiceUri__vault"] == "https://vault.example.com"


def test_settings_env_round_trips_through_compose():
    text = lite.settings_env("http://127.0.0.1:8080", "11111111-2222-3333-4444-555555555555", "KEY", "pw")
    env = envfile.parse_compose_env(text)
    assert env["BW_INSTALLATION_KEY"] == "KEY" and env["BW_DB_PASSWORD"] == "pw" and env["BW_DB_USERNAME"] == "bitwarden"
    assert env["globalSettings__mail__replyToEmail"] == "noreply@127.0.0.1"


def test_alive_is_nginx_date_gmt(fleet, api_for):
    """§5: Lite's nginx answers /alive with `return 200 $date_gmt` (text/plain), not `alive`."""
    response = api_for(fleet, NAME).call("GET", "/alive")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert re.fullmatch(r"(Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d UTC", response.text)
    assert api_for(fleet, "bw-standard").call("GET", "/alive").text == "alive"
    assert lite.date_gmt(0) == "Thursday, 01-Jan-1970 00:00:00 UTC"


def test_same_api_routes(fleet, api_for):
    """§6.3: the URLs are the standard ones."""
    api = api_for(fleet, NAME)
    token = api.token()
    assert api.call("GET", "/api/organizations/connections/enabled", token).json() is False
    assert api.call("GET", "/identity/alive").status_code == 200


def test_no_healthcheck_in_compose_ps(fleet):
    """§5: Lite has no HEALTHCHECK, so `docker compose ps` shows no health status."""
    result = docker(fleet, NAME, "compose", "ps")
    assert result.returncode == 0 and "Up" in result.stdout and "healthy" not in result.stdout


def test_settings_are_read_only_when_compose_up_recreates_the_container(fleet, api_for):
    """§6.3: settings.env is read at container start; `docker compose up -d` in the compose dir recreates the
    container when its resolved environment changed, and leaves it running otherwise."""
    name = "bw-lite-eu"
    api = api_for(fleet, name)
    before = fleet.instance(name)["restarts"]
    unchanged = docker(fleet, name, "compose", "up", "-d")
    assert unchanged.returncode == 0 and "Running" in unchanged.stdout
    assert fleet.instance(name)["restarts"] == before

    append_setting(fleet, name, ENABLE + "=true")
    append_setting(fleet, name, "globalSettings__baseServiceUri__cloudRegion=EU")
    assert fleet.instance(name)["settings"]["enableCloudCommunication"] is False  # file changed, container did not
    result = docker(fleet, name, "compose", "up", "-d")
    assert result.returncode == 0, result.stderr
    state = fleet.instance(name)
    assert state["restarts"] == before + 1
    assert state["settings"]["enableCloudCommunication"] is True and state["settings"]["cloudRegion"] == "EU"
    assert state["docker_calls"][-1]["argv"] == ["compose", "up", "-d"]
    wait_up(fleet, name)
    api.token()


def test_zero_installation_id_fails_start_up(fleet):
    """entrypoint.sh exports an all-zero BW_INSTALLATION_ID; the apps throw at start (contract §6.1), nginx stays."""
    name = NAME
    path = fleet.install_dir(name) / "settings.env"
    original = path.read_text(encoding="utf-8")
    state = fleet.instance(name)
    path.write_text(original.replace(state["installation_id"], "00000000-0000-0000-0000-000000000000"), encoding="utf-8")
    try:
        assert docker(fleet, name, "compose", "up", "-d").returncode == 0
        state = fleet.instance(name)
        assert state["state"] == "down" and state["start_error"] == "Installation Id must be set for self-hosted installations."
    finally:
        path.write_text(original, encoding="utf-8")
        assert docker(fleet, name, "compose", "up", "-d").returncode == 0
        wait_up(fleet, name)


def test_a_lite_host_has_no_bitwarden_sh(fleet):
    result = fleet.client.bitwarden_sh(NAME, "restart")
    assert result["exit_code"] == 127 and "bitwarden.sh: No such file or directory" in result["stderr"]
    assert not (fleet.install_dir(NAME) / "bitwarden.sh").exists()


def test_compose_outside_any_project_dir(fleet, tmp_path):
    result = subprocess.run([str(fleet.dir / "bin" / "docker"), "compose", "up", "-d"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1 and "no configuration file provided" in result.stderr
