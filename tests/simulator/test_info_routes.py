"""Anonymous routes, nginx, config/version, sponsorship sync status (contract 4.2, 5)."""

import re

import pytest


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([{"name": "info"}, {"name": "v2023-7", "version": "2023.7.0"}, {"name": "eu-env", "region": "US", "env_region": "EU"}])


@pytest.fixture
def api(fleet, api_for):
    return api_for(fleet, "info")


def test_nginx_alive(api):
    response = api.call("GET", "/alive")
    assert (response.status_code, response.text, response.headers["Content-Type"]) == (200, "alive", "text/plain")
    assert response.headers["Server"] == "nginx"


@pytest.mark.parametrize("path", ["/api/alive", "/api/now", "/identity/alive", "/identity/now"])
def test_alive_json_utc_now(api, path):
    response = api.call("GET", path)
    assert response.status_code == 200
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z", response.json())


def test_openid_configuration(api):
    body = api.call("GET", "/identity/.well-known/openid-configuration").json()
    assert body["issuer"] == api.url + "/identity"
    assert body["token_endpoint"] == api.url + "/identity/connect/token"


def test_version_and_config(api):
    assert api.call("GET", "/api/version").json() == "2026.8.0"
    config = api.call("GET", "/api/config").json()
    assert config["object"] == "config"
    assert config["version"] == "2026.8.0"
    assert config["environment"] == {"cloudRegion": "US", "vault": api.url, "api": api.url + "/api", "identity": api.url + "/identity",
                                     "notifications": api.url + "/notifications", "sso": api.url + "/sso"}
    assert config["settings"] == {"disableUserRegistration": False}


def test_env_region_written_by_setup(fleet, api_for):
    api = api_for(fleet, "eu-env")
    assert api.call("GET", "/api/config").json()["environment"]["cloudRegion"] == "EU"
    assert api.state["region"] == "US"


def test_no_cloud_region_before_2023_8(fleet, api_for):
    api = api_for(fleet, "v2023-7")
    environment = api.call("GET", "/api/config").json()["environment"]
    assert "cloudRegion" not in environment
    assert api.call("GET", "/api/version").json() == "2023.7.0"


def test_organizations_list(api):
    owner = api.call("GET", "/api/organizations", api.token()).json()
    assert (owner["object"], owner["continuationToken"]) == ("list", None)
    assert [(o["object"], o["id"], o["type"]) for o in owner["data"]] == [("profileOrganization", api.org, 0)]
    admin = api.call("GET", "/api/organizations", api.token("admin")).json()
    assert [o["type"] for o in admin["data"]] == [1]


def test_sponsorship_sync_status(api):
    path = f"/api/organization/sponsorship/{api.org}/sync-status"
    response = api.call("GET", path, api.token())
    assert (response.status_code, response.json()) == (200, {"object": "syncStatus", "lastSyncDate": None})
    for token in (None, api.token("admin"), api.token("organization")):
        response = api.call("GET", path, token)
        assert (response.status_code, response.json()["message"]) == (404, "Resource not found.")


def test_unknown_paths(api):
    assert api.call("GET", "/").status_code == 200
    response = api.call("GET", "/nothing-here")
    assert response.status_code == 404
    assert "<center>nginx</center>" in response.text
    assert api.call("GET", "/identity/nothing").status_code == 404
    assert api.call("GET", "/api/healthz").status_code == 404


def test_keep_alive_and_content_length(api):
    first = api.call("GET", "/api/alive")
    second = api.call("GET", "/api/version")
    assert first.headers["Content-Length"] == str(len(first.content))
    assert second.headers["Content-Length"] == str(len(second.content))
    assert api.refresh()["counters"]["by_route"]["GET /api/version"] >= 1
