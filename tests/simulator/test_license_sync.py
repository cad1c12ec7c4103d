"""License sync (contract 3): the cloud call with the effective settings, the api log, region mismatch."""

import json
import os
import re
import uuid

import pytest

from bwsim import apilog
from synchelpers import EU_LINES, GENERIC, LINE_RE, api_log, enable_cloud, prepare, sync


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([
        {"name": "happy"}, {"name": "disabled"}, {"name": "envedit"}, {"name": "noconn"}, {"name": "wrongkey"}, {"name": "unreachable"},
        {"name": "eu-mismatch", "region": "EU"}, {"name": "eu-ok", "region": "EU"}, {"name": "order"},
        {"name": "v2023", "version": "2023.1.0"}, {"name": "custom-url"}, {"name": "disabled-conn"}, {"name": "eu-api-only", "region": "EU"},
        {"name": "rotated"},
    ])


@pytest.fixture
def api(fleet, api_for, request):
    return api_for(fleet, request.node.get_closest_marker("instance").args[0])


@pytest.mark.instance("happy")
def test_sync_success(api):
    enable_cloud(api)
    prepare(api)
    api.fleet.client.reset_counters(api.name)
    response = sync(api)
    assert (response.status_code, response.content) == (200, b"")
    conn = api.call("GET", f"/api/organizations/connections/{api.org}/1", api.tok).json()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?\+00:00", conn["config"]["LastLicenseSync"])
    state = api.refresh()
    assert state["counters"]["cloud_calls"] == 2  # token + license
    assert state["counters"]["writes"] == 1
    assert state["counters"]["by_route"] == {"POST /api/organizations/licenses/self-hosted/{id}/sync": 1,
                                             "GET /api/organizations/connections/{organizationId}/{type}": 1}
    with open(os.path.join(state["install_dir"], "bwdata", "core", "licenses", "organization", f"{api.org}.json"), encoding="utf-8") as fh:
        lic = json.load(fh)
    assert (lic["Id"], lic["InstallationId"]) == (state["cloud_organization_id"], state["installation_id"])
    # nothing about the sync (the daily job may have logged its run: its first one can come at start + 0 h)
    assert "[ERR]" not in api_log(api) and "Request to" not in api_log(api)
    # trailing slash, as the web client sends it
    assert api.call("POST", f"/api/organizations/licenses/self-hosted/{api.org}/sync/", api.tok).status_code == 200


@pytest.mark.instance("disabled")
def test_cloud_communication_disabled(api):
    prepare(api)
    response = sync(api)
    assert (response.status_code, response.json()["message"]) == (400, "Cloud communication is disabled in global settings")
    assert api.refresh()["counters"]["cloud_calls"] == 0


@pytest.mark.instance("envedit")
def test_env_edit_without_restart_changes_nothing(api):
    prepare(api)
    with open(os.path.join(api.state["install_dir"], "bwdata", "env", "global.override.env"), "a", encoding="utf-8") as handle:
        handle.write("globalSettings__enableCloudCommunication=true\n")
    assert api.call("GET", "/api/organizations/connections/enabled", api.tok).json() is False
    assert sync(api).json()["message"] == "Cloud communication is disabled in global settings"
    assert api.refresh()["settings"]["enableCloudCommunication"] is False


@pytest.mark.instance("noconn")
def test_not_found_cases(api):
    enable_cloud(api)
    api.tok = api.token()
    for org in (api.org, str(uuid.uuid4())):
        response = api.call("POST", f"/api/organizations/licenses/self-hosted/{org}/sync", api.tok)
        assert (response.status_code, response.json()["message"]) == (404, "Resource not found.")
    response = api.call("POST", "/api/organizations/licenses/self-hosted/not-a-guid/sync", api.tok)
    assert (response.status_code, response.json()["message"]) == (500, "An unhandled server error has occurred.")


@pytest.mark.instance("disabled-conn")
def test_connection_checks(api):
    enable_cloud(api)
    conn = prepare(api)
    body = api.connection_body(enabled=False)
    assert api.call("PUT", f"/api/organizations/connections/{conn['id']}", api.tok, json=body).status_code == 200
    assert sync(api).json()["message"] == f"Connection disabled for organization {api.org}"
    body = api.connection_body(key="  ")
    assert api.call("PUT", f"/api/organizations/connections/{conn['id']}", api.tok, json=body).status_code == 200
    assert sync(api).json()["message"] == "Failed to get Billing Sync Key"


@pytest.mark.instance("wrongkey")
def test_wrong_billing_sync_key(api):
    enable_cloud(api)
    prepare(api, key="not-the-key")
    response = sync(api)
    assert (response.status_code, response.json()["message"]) == (400, GENERIC)
    log = api_log(api)
    url = f"https://api.bitwarden.com/licenses/organization/{api.state['cloud_organization_id']}"
    # {Message} quotes the strings; the ErrorResponse ends with a line break, so its closing quote and the event id
    # (a hash of the template) open the next line.
    hash_ = "%08x" % apilog.event_id(apilog.REQUEST_UNSUCCESSFUL)
    assert (f'[ERR] Request to "{url}" is unsuccessful with status of BadRequest-"Bad Request": '
            f'"Invalid Billing Sync Key\n" ({hash_})\n') in log
    assert LINE_RE.match(log)
    conn = api.call("GET", f"/api/organizations/connections/{api.org}/1", api.tok).json()
    assert conn["config"]["LastLicenseSync"] is None


@pytest.mark.instance("unreachable")
def test_custom_cloud_url_is_unreachable(api):
    enable_cloud(api, "globalSettings__installation__identityUri=https://identity.example.com\n")
    prepare(api)
    assert sync(api).json()["message"] == GENERIC
    log = api_log(api)
    inst = api.state["installation_id"]
    assert f"[ERR] Unable to authenticate with identity server. ({apilog.event_id(apilog.AUTH_FAILED):08x})\n" \
           "System.Net.Http.HttpRequestException: Name or service not known (identity.example.com:443)\n" in log
    assert (f'[ERR] Empty token response from https://identity.example.com/ for client "installation.{inst}" '
            f"({apilog.event_id(apilog.TOKEN_EMPTY):08x})\n") in log
    assert ('[ERR] Unable to send "GET" request to "https://api.bitwarden.com/licenses/organization/'
            f'{api.state["cloud_organization_id"]}" because an access token was unable to be obtained '
            f"({apilog.event_id(apilog.NO_TOKEN):08x})\n") in log


@pytest.mark.instance("eu-mismatch")
def test_region_mismatch(api):
    enable_cloud(api)
    assert api.refresh()["settings"]["cloudRegion"] == "EU"
    prepare(api)
    assert sync(api).json()["message"] == GENERIC
    inst = api.state["installation_id"]
    assert (f'[ERR] Unsuccessful token response from https://identity.bitwarden.com/ for client "installation.{inst}" '
            f'with status BadRequest-"Bad Request" ({apilog.event_id(apilog.TOKEN_UNSUCCESSFUL):08x})\n') in api_log(api)


@pytest.mark.instance("eu-ok")
def test_eu_settings_sync(api):
    enable_cloud(api, EU_LINES)
    prepare(api)
    assert sync(api).status_code == 200
    settings = api.refresh()["settings"]
    assert (settings["identityUri"], settings["apiUri"], settings["pushRelayBaseUri"]) == (
        "https://identity.bitwarden.eu", "https://api.bitwarden.eu", "https://push.bitwarden.eu")


@pytest.mark.instance("eu-api-only")
def test_token_from_one_cloud_not_accepted_by_the_other(api):
    enable_cloud(api, "globalSettings__installation__identityUri=https://identity.bitwarden.eu\n")
    prepare(api)
    assert sync(api).json()["message"] == GENERIC
    url = f"https://api.bitwarden.com/licenses/organization/{api.state['cloud_organization_id']}"
    assert f'[ERR] Failed to send to "{url}". ({apilog.event_id(apilog.SEND_FAILED):08x})\nSystem.Text.Json.JsonException' in api_log(api)


@pytest.mark.instance("order")
def test_connection_checked_before_cloud_communication(api):
    api.tok = api.token()
    assert sync(api).status_code == 404


@pytest.mark.instance("v2023")
def test_no_sync_route_before_2023_2(api):
    prepare(api)
    response = sync(api)
    assert (response.status_code, response.content) == (404, b"")


@pytest.mark.instance("custom-url")
def test_invalid_api_uri_is_a_server_error(api):
    enable_cloud(api, "globalSettings__installation__apiUri=not a url\n")
    prepare(api)
    response = sync(api)
    assert (response.status_code, response.json()["message"]) == (500, "An unhandled server error has occurred.")


@pytest.mark.instance("rotated")
def test_rotated_token_replaces_the_old_one_in_the_cloud(api):
    enable_cloud(api)
    prepare(api)
    assert sync(api).status_code == 200
    new_token = api.fleet.client.rotate_billing_sync_token(api.name)
    assert new_token != api.state["billing_sync_token"]
    assert api.refresh()["billing_sync_token"] == new_token
    failed = sync(api)
    assert (failed.status_code, failed.json()["message"]) == (400, GENERIC)
    assert "Invalid Billing Sync Key" in api_log(api)
    conn = api.call("GET", f"/api/organizations/connections/{api.org}/1", api.tok).json()
    body = {"organizationId": api.org, "type": 1, "enabled": True,
            "config": {"billingSyncKey": new_token, "LastLicenseSync": conn["config"]["LastLicenseSync"]}}
    assert api.call("PUT", f"/api/organizations/connections/{conn['id']}", api.tok, json=body).status_code == 200
    assert sync(api).status_code == 200
