"""Control API, counters, the Python client, and what bwsim.log must not contain."""

import datetime

import pytest
import requests


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([{"name": "c1"}, {"name": "c2", "region": "EU", "version": "2025.12.0"}])


def test_instances_summary(fleet):
    summaries = fleet.client.instances()
    assert [s["name"] for s in summaries] == ["c1", "c2"]
    assert set(summaries[0]) >= {"name", "url", "port", "state", "version", "region", "cloud_communication", "restarts"}
    assert (summaries[1]["region"], summaries[1]["version"]) == ("EU", "2025.12.0")


def test_full_state(fleet):
    state = fleet.instance("c1")
    assert set(state) >= {"name", "url", "port", "state", "version", "region", "settings", "organization_id", "cloud_organization_id",
                          "installation_id", "credentials", "billing_sync_token", "connection", "devices", "counters", "restarts"}
    assert set(state["credentials"]) == {"owner", "admin", "organization"}
    assert state["credentials"]["organization"]["client_id"] == f"organization.{state['organization_id']}"
    assert set(state["counters"]) == {"requests", "by_route", "cloud_calls", "cloud_rate_limited", "token_requests", "writes",
                                      "devices_registered"}
    assert state["organization_id"] != state["cloud_organization_id"]
    assert state["settings"]["installationId"] == state["installation_id"]


def test_inventory_host_vars(fleet):
    hv = fleet.host_vars("c2")
    state = fleet.instance("c2")
    assert hv["billing_sync_region"] == "EU"
    assert hv["billing_sync_server_url"] == state["url"]
    assert hv["billing_sync_client_id"] == state["credentials"]["owner"]["client_id"]
    assert hv["billing_sync_client_secret"] == state["credentials"]["owner"]["client_secret"]
    assert hv["billing_sync_organization_id"] == state["organization_id"]
    assert hv["billing_sync_token"] == state["billing_sync_token"]
    assert hv["ansible_connection"] == "local"
    assert "c2" in (fleet.inventory.read_text().split("bitwarden_eu:")[1])


def test_counters_and_reset(fleet, api_for):
    api = api_for(fleet, "c1")
    fleet.client.reset_counters("c1")
    tok = api.token()
    api.call("GET", "/api/organizations/connections/enabled", tok)
    api.call("POST", "/api/organizations/connections", tok, json=api.connection_body())
    api.call("DELETE", f"/api/organizations/connections/{api.refresh()['connection']['id']}", tok)
    counters = api.refresh()["counters"]
    assert counters["requests"] == 4
    assert counters["token_requests"] == 1
    assert counters["writes"] == 2
    assert counters["by_route"] == {"POST /identity/connect/token": 1, "GET /api/organizations/connections/enabled": 1,
                                    "POST /api/organizations/connections": 1,
                                    "DELETE /api/organizations/connections/{organizationConnectionId}": 1}
    assert fleet.client.reset_counters("c1")["requests"] == 0
    assert api.refresh()["counters"]["by_route"] == {}


def test_unknown_instance_and_route(fleet):
    base = fleet.client.base
    assert requests.get(base + "/_sim/instances/nope", timeout=5).status_code == 404
    assert requests.get(base + "/_sim/whatever", timeout=5).status_code == 404


def test_log_has_no_secrets(fleet, api_for):
    api = api_for(fleet, "c1")
    api.token()
    fleet.client.bitwarden_sh("c1", "restart")
    log = (fleet.dir / "bwsim.log").read_text()
    state = fleet.instance("c1")
    secrets = [c["client_secret"] for c in state["credentials"].values()] + [state["billing_sync_token"]]
    env = (fleet.install_dir("c1") / "bwdata" / "env" / "global.override.env").read_text()
    secrets.append(env.split("globalSettings__installation__key=")[1].split("\n")[0])
    assert "bitwarden.sh restart" in log
    for secret in secrets:
        assert secret not in log


def test_preconfigured_instance_is_what_an_owner_left_after_the_four_manual_steps(module_fleet):
    """`preconfigured: true` (the scale benchmark's starting state): env file on, token saved, license synced once."""
    fleet = module_fleet([{"name": "p1", "region": "EU", "preconfigured": True}])
    state = fleet.instance("p1")
    assert state["settings"]["enableCloudCommunication"] is True
    config = state["connection"]["config"]
    assert config["BillingSyncKey"] == state["billing_sync_token"] and config["LastLicenseSync"]
    env_text = (fleet.install_dir("p1") / "bwdata/env/global.override.env").read_text()
    assert "globalSettings__installation__apiUri=https://api.bitwarden.eu\n" in env_text


def test_preconfigured_license_sync_can_be_hours_old(module_fleet):
    """`synced_hours_ago`: the owner's one license sync happened that long before `bwsim up`."""
    fleet = module_fleet([{"name": "p2", "preconfigured": True, "synced_hours_ago": 30}, {"name": "p3", "preconfigured": True}])
    synced = {name: datetime.datetime.fromisoformat(fleet.instance(name)["connection"]["config"]["LastLicenseSync"][:19])
              for name in ("p2", "p3")}
    assert datetime.timedelta(hours=29) < synced["p3"] - synced["p2"] < datetime.timedelta(hours=31)
