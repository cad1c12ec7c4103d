"""bitwarden_cloud_comm against simulated servers: the running server changes only after bitwarden.sh restart."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import requests

from ansible_collections.selfhost.bitwarden.plugins.module_utils._env_file import mask, parse
from helpers.ansible_run import assert_no_secrets, run_module

MODULE = "selfhost.bitwarden.bitwarden_cloud_comm"
ARGS = {"bwdata_path": "{{ billing_sync_install_dir }}/bwdata", "region": "{{ billing_sync_region }}"}
FAST = {"restart_delay": 0.2, "warmup": 0.2}


class Server:
    """The HTTP view of one simulated instance, as a client of the real server would see it."""

    def __init__(self, fleet, name):
        self.fleet = fleet
        self.name = name
        self.state = fleet.instance(name)
        self.session = requests.Session()
        self.session.trust_env = False  # 127.0.0.1 only, never through a proxy

    def get(self, path, **kwargs):
        return self.session.get(self.state["url"] + path, timeout=10, **kwargs)

    def config(self):
        response = self.get("/api/config")
        assert response.status_code == 200, response.text
        return response.json()

    def cloud_communication_enabled(self):
        creds = self.state["credentials"]["owner"]
        token = self.session.post(self.state["url"] + "/identity/connect/token", timeout=10, headers={"Bitwarden-Client-Version": "2026.8.0"}, data={
            "grant_type": "client_credentials", "scope": "api", "client_id": creds["client_id"], "client_secret": creds["client_secret"],
            "deviceType": "22", "deviceIdentifier": "cloud-comm-test", "deviceName": "selfhost.bitwarden"})
        assert token.status_code == 200, token.text
        response = self.get("/api/organizations/connections/enabled", headers={"Authorization": "Bearer " + token.json()["access_token"]})
        assert response.status_code == 200, response.text
        return response.json()

    def restart(self):
        """./bitwarden.sh restart as the install user would run it (as root: the prompt answered with "y", as the role
        does), then wait until the API answers again."""
        script = self.fleet.install_dir(self.name) / "bitwarden.sh"
        proc = subprocess.run([str(script), "restart"], input="y\n" if os.geteuid() == 0 else "", capture_output=True, text=True,
                              timeout=60, check=False, cwd=str(script.parent))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.get("/api/alive").status_code == 200 and self.fleet.instance(self.name)["state"] == "up":
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "instance did not come back after restart"
            time.sleep(0.1)

    def env_secrets(self):
        """Every value the module's diff masking hides in this instance's env file, plus the API credentials."""
        text = (self.fleet.install_dir(self.name) / "bwdata" / "env" / "global.override.env").read_text(encoding="utf-8")
        hidden = [(statement.value, block.raw[statement.value_start:statement.value_end])
                  for block in parse(text) if mask(block.raw) != block.raw for statement in block.statements]
        values = {value for pair in hidden for value in pair}
        values |= {cred["client_secret"] for cred in self.state["credentials"].values()}
        return [value for value in values if value and value.upper() != "REPLACE"]


def cloud_comm(fleet, name, check=False, diff=False, verbosity=0):
    server = Server(fleet, name)
    run = run_module(MODULE, ARGS, fleet.inventory, hosts=name, check=check, diff=diff, verbosity=verbosity)
    assert_no_secrets(run.output, server.env_secrets())
    events = run.results("module", name)
    assert len(events) == 1 and events[0]["status"] != "failed", run.output
    event = events[0]
    return event["result"]


@pytest.mark.parametrize("spec, region", [
    ({"name": "bw-us-1"}, "US"),
    # an EU installation id whose Setup run wrote cloudRegion=US: the module must fix the region too
    ({"name": "bw-eu-1", "region": "EU", "env_region": "US"}, "EU"),
])
def test_server_sees_the_settings_only_after_restart(sim_fleet, spec, region):
    fleet = sim_fleet([spec], **FAST)
    name = spec["name"]
    server = Server(fleet, name)
    assert server.cloud_communication_enabled() is False
    assert server.config()["environment"]["cloudRegion"] == "US"

    result = cloud_comm(fleet, name, check=True, diff=True, verbosity=4)
    assert result["changed"] and result["restart_required"]
    result = cloud_comm(fleet, name, diff=True)
    assert result["changed"] and result["restart_required"] and result["push_relay_enabled"]

    # the file changed, the running server did not: it reads the env file only at start
    assert server.cloud_communication_enabled() is False
    assert server.config()["environment"]["cloudRegion"] == "US"
    assert fleet.instance(name)["restarts"] == 0

    server.restart()
    assert server.cloud_communication_enabled() is True
    assert server.config()["environment"]["cloudRegion"] == region
    settings = fleet.instance(name)["settings"]
    suffix = "eu" if region == "EU" else "com"
    assert settings["identityUri"] == "https://identity.bitwarden." + suffix
    assert settings["apiUri"] == "https://api.bitwarden." + suffix
    assert settings["pushRelayBaseUri"] == "https://push.bitwarden." + suffix

    again = cloud_comm(fleet, name)
    assert not again["changed"] and not again["restart_required"]


def test_push_relay_switched_off_by_setup_stays_off(sim_fleet):
    fleet = sim_fleet([{"name": "bw-eu-nopush", "region": "EU", "push_notifications": False}], **FAST)
    name = "bw-eu-nopush"
    server = Server(fleet, name)
    result = cloud_comm(fleet, name)
    assert result["changed"] and result["restart_required"]
    assert result["push_relay_enabled"] is False and result["settings"]["globalSettings__pushRelayBaseUri"] == "REPLACE"
    server.restart()
    assert server.cloud_communication_enabled() is True
    assert server.config()["environment"]["cloudRegion"] == "EU"
    assert fleet.instance(name)["settings"]["pushRelayEnabled"] is False
    assert server.config()["push"]["pushTechnology"] == 0
