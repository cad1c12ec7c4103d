"""Faults from the fleet file and at run time (architecture.md, "Faults")."""

import time

import pytest
import requests

from synchelpers import GENERIC, api_log, enable_cloud, prepare, sync


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([
        {"name": "fail", "faults": {"restart": "fail"}},
        {"name": "never", "faults": {"restart": "never_returns"}},
        {"name": "http", "faults": {"http": [{"method": "GET", "path_prefix": "/api/organizations/connections/", "status": 503, "times": 2}]}},
        {"name": "ratelimit"},
        {"name": "cloud", "faults": {"cloud_unreachable": True}},
        {"name": "token", "faults": {"wrong_billing_sync_token": True}},
        {"name": "nolicense", "license": False},
        {"name": "runtime"},
        {"name": "push", "push_notifications": False},
    ])


@pytest.fixture
def api(fleet, api_for, request):
    return api_for(fleet, request.node.get_closest_marker("instance").args[0])


def refused(url):
    try:
        requests.get(url + "/alive", timeout=2)
    except requests.ConnectionError:
        return True
    return False


@pytest.mark.instance("fail")
def test_restart_fail(api):
    result = api.fleet.client.bitwarden_sh("fail", "restart")
    assert result["exit_code"] == 1
    assert "Error response from daemon" in result["stderr"] and "Error" not in result["output"]
    time.sleep(0.3)
    assert api.refresh()["state"] == "down"
    assert refused(api.url)


@pytest.mark.instance("never")
def test_restart_never_returns(api):
    assert api.fleet.client.bitwarden_sh("never", "restart")["exit_code"] == 0
    time.sleep(0.4)
    assert api.refresh()["state"] == "down"
    assert refused(api.url)
    api.fleet.client.set_faults("never", {})
    assert api.fleet.client.bitwarden_sh("never", "restart")["exit_code"] == 0
    time.sleep(0.2)
    assert requests.get(api.url + "/api/alive", timeout=2).status_code == 200


@pytest.mark.instance("http")
def test_http_fault_consumed_times(api):
    tok = api.token()
    path = f"/api/organizations/connections/{api.org}/1"
    statuses = [api.call("GET", path, tok).status_code for dummy in range(3)]
    assert statuses == [503, 503, 200]
    assert api.call("GET", "/api/organizations/connections/enabled", tok).status_code == 200
    assert api.refresh()["counters"]["by_route"]["GET /api/organizations/connections/{organizationId}/{type}"] == 3


@pytest.mark.instance("ratelimit")
def test_runtime_429_with_retry_after(api):
    api.fleet.client.set_faults("ratelimit", {"http": [{"method": "POST", "path_prefix": "/identity/connect/token", "status": 429,
                                                        "times": 1, "retry_after": 1}]})
    first = api.token_request(api.token_form())
    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert api.token_request(api.token_form()).status_code == 200
    api.fleet.client.set_faults("ratelimit", {"http": [{"path_prefix": "/api/", "status": 500, "times": 1}]})
    response = api.call("GET", "/api/alive")
    assert (response.status_code, response.json()["message"]) == (500, "An unhandled server error has occurred.")
    assert api.call("GET", "/api/alive").status_code == 200


@pytest.mark.instance("ratelimit")
def test_a_body_fault_answers_what_a_captive_portal_or_slow_link_would(api):
    api.fleet.client.set_faults("ratelimit", {"http": [
        {"method": "GET", "path_prefix": "/api/alive", "status": 200, "times": 1, "body": "Sign in", "content_type": "text/plain"},
        {"method": "GET", "path_prefix": "/api/version", "status": 200, "times": 1, "body": '"2026.8.0"', "trickle": 0.01}]})
    portal = api.call("GET", "/api/alive")
    assert (portal.status_code, portal.headers["Content-Type"], portal.text) == (200, "text/plain", "Sign in")
    assert api.call("GET", "/api/version").json() == "2026.8.0"  # slowly, but whole
    assert api.call("GET", "/api/alive").headers["Content-Type"].startswith("application/json")


@pytest.mark.instance("cloud")
def test_cloud_unreachable(api):
    enable_cloud(api)
    prepare(api)
    assert sync(api).json()["message"] == GENERIC
    assert "HttpRequestException: Name or service not known (identity.bitwarden.com:443)" in api_log(api)


@pytest.mark.instance("token")
def test_wrong_billing_sync_token(api):
    state = api.refresh()
    assert state["billing_sync_token"] != state["inventory_billing_sync_token"]
    assert api.fleet.host_vars("token")["billing_sync_token"] == state["inventory_billing_sync_token"]
    enable_cloud(api)
    prepare(api, key=state["inventory_billing_sync_token"])
    assert sync(api).json()["message"] == GENERIC
    assert "Invalid Billing Sync Key" in api_log(api)
    api.fleet.client.set_faults("token", {})
    assert sync(api).status_code == 200


@pytest.mark.instance("nolicense")
def test_missing_license_fleet_option(api):
    api.tok = api.token()
    response = api.call("POST", "/api/organizations/connections", api.tok, json=api.connection_body())
    assert (response.status_code, response.json()["message"]) == (400, "Cannot verify license file.")


@pytest.mark.instance("runtime")
def test_invalid_fault_sets_are_refused(api):
    for faults in ({"restart": "explode"}, {"http": [{"path_prefix": "/x"}]}, {"bogus": 1}, {"http": [{"status": 200}]},
                   {"cloud_account": "broke"}):
        response = api.fleet.client.session.post(f"{api.fleet.client.base}/_sim/instances/runtime/faults", json=faults, timeout=5)
        assert response.status_code == 400
    assert api.refresh()["faults"] == {"restart": "ok", "http": [], "pause": [], "cloud_unreachable": False, "cloud_drop": False,
                                       "wrong_billing_sync_token": False, "cloud_account": "ok",
                                       "pull_fails": False, "no_compose": False, "images_missing": False,
                                       "cli_registry_unreachable": False, "daemon_registry_unreachable": False,
                                       "docker_hub_unreachable": False, "compose_v1": False}


@pytest.mark.instance("push")
def test_push_notifications_false(api):
    env = (api.fleet.install_dir("push") / "bwdata" / "env" / "global.override.env").read_text()
    assert env.endswith("adminSettings__admins=\nglobalSettings__pushRelayBaseUri=REPLACE\n")
    state = api.refresh()
    assert (state["settings"]["pushRelayBaseUri"], state["settings"]["pushRelayEnabled"]) == ("REPLACE", False)
    assert "push_notifications: false\n" in (api.fleet.install_dir("push") / "bwdata" / "config.yml").read_text()
