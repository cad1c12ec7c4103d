"""POST /identity/connect/token (contract 1.3-1.6)."""

import pytest

VERSION_MESSAGE = ('No client version header found, required to prevent encryption errors. '
                   'Please confirm your client is supplying the header: "Bitwarden-Client-Version"')


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([{"name": "current"}, {"name": "v2025", "version": "2025.6.1"}, {"name": "v2024", "version": "2024.11.0"}])


@pytest.fixture
def api(fleet, api_for):
    return api_for(fleet, "current")


def test_owner_token_success_shape(api):
    response = api.token_request(api.token_form())
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 3600
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "api"
    assert body["access_token"].count(".") == 2
    assert {"PrivateKey", "Key", "Kdf", "KdfIterations", "UserDecryptionOptions"} <= set(body)
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("change", [
    {"client_secret": "wrong"},
    {"client_id": "user.00000000-0000-0000-0000-000000000001"},
    {"client_id": "user."},
    {"client_id": "nonsense"},
    {"client_id": "installation.00000000-0000-0000-0000-000000000001"},
    {"client_id": None},
])
def test_invalid_client(api, change):
    response = api.token_request(api.token_form(**change))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client"}


def test_wrong_scope_for_user_key(api):
    response = api.token_request(api.token_form(scope="api.organization"))
    assert (response.status_code, response.json()) == (400, {"error": "invalid_scope"})


def test_unsupported_grant_type(api):
    response = api.token_request(api.token_form(grant_type="magic"))
    assert (response.status_code, response.json()) == (400, {"error": "unsupported_grant_type"})


def test_form_content_type_required(api):
    response = api.session.post(api.url + "/identity/connect/token", json=api.token_form(),
                                headers={"Bitwarden-Client-Version": "2026.8.0"})
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})


@pytest.mark.parametrize("version", [None, "", "2026.8.0-beta", "2026", "latest"])
def test_version_header_missing(api, version):
    response = api.token_request(api.token_form(), version=version)
    assert response.status_code == 400
    assert response.json() == {"error": "version_header_missing", "error_description": VERSION_MESSAGE,
                               "ErrorModel": {"Message": VERSION_MESSAGE, "Object": "error"}}


@pytest.mark.parametrize("version", ["2026.8.0", "2025.1.0", "1.0", "2026.8.0.1"])
def test_version_header_accepted(api, version):
    assert api.token_request(api.token_form(), version=version).status_code == 200


@pytest.mark.parametrize("change", [
    {"deviceType": None}, {"deviceIdentifier": None}, {"deviceName": None}, {"deviceIdentifier": "  "},
    {"deviceType": "NotADevice"}, {"deviceType": ""},
])
def test_device_error_current(api, change):
    response = api.token_request(api.token_form(**change))
    assert response.status_code == 400
    assert response.json() == {"error": "device_error", "error_description": "No device information provided",
                               "ErrorModel": {"Message": "no device information provided", "Object": "error"}}


@pytest.mark.parametrize("device_type", ["22", "Server", "SDK", "999"])
def test_device_type_values_accepted(api, device_type):
    assert api.token_request(api.token_form(deviceType=device_type)).status_code == 200


def test_device_fields_are_case_insensitive(api):
    form = api.token_form(deviceType=None, deviceIdentifier=None, deviceName=None)
    form.update({"DeviceType": "22", "DEVICEIDENTIFIER": "upper-case-device", "devicename": "x"})
    assert api.token_request(form).status_code == 200
    assert "upper-case-device" in api.refresh()["devices"]


def test_device_error_before_2025_1_is_invalid_grant(fleet, api_for):
    old = api_for(fleet, "v2024")
    response = old.token_request(old.token_form(deviceName=None))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "ErrorModel": {"Message": "No device information provided.", "Object": "error"}}


def test_version_header_not_needed_before_2026_3(fleet, api_for):
    old = api_for(fleet, "v2025")
    assert old.token_request(old.token_form(), version=None).status_code == 200
    assert old.token_request(old.token_form(), version="2026.8.0-beta").status_code == 200


def test_version_checked_before_device(api):
    response = api.token_request(api.token_form(deviceName=None), version=None)
    assert response.json()["error"] == "version_header_missing"


def test_devices_registered_once_per_identifier(fleet, api_for):
    api = api_for(fleet, "v2025")
    before = api.refresh()
    for dummy in range(3):
        assert api.token_request(api.token_form(deviceIdentifier="stable-id")).status_code == 200
    assert api.token_request(api.token_form(deviceIdentifier="second-id")).status_code == 200
    after = api.refresh()
    assert after["devices"][len(before["devices"]):] == ["stable-id", "second-id"]
    assert after["counters"]["devices_registered"] - before["counters"]["devices_registered"] == 2
    assert after["counters"]["token_requests"] - before["counters"]["token_requests"] == 4


def test_failed_token_requests_register_no_device(api):
    before = api.refresh()["devices"]
    api.token_request(api.token_form(deviceIdentifier="never-registered"), version=None)
    api.token_request(api.token_form(deviceIdentifier="never-registered", client_secret="bad"))
    assert api.refresh()["devices"] == before


def test_organization_key_token(api):
    response = api.token_request(api.token_form("organization"), version=None)
    assert response.status_code == 200
    body = response.json()
    assert (body["scope"], body["token_type"], body["expires_in"]) == ("api.organization", "Bearer", 3600)
    assert "PrivateKey" not in body


def test_organization_key_rejects_api_scope_and_wrong_secret(api):
    assert api.token_request(api.token_form("organization", scope="api")).json() == {"error": "invalid_scope"}
    assert api.token_request(api.token_form("organization", client_secret="x")).json() == {"error": "invalid_client"}


def test_client_secret_basic_auth(api):
    form = api.token_form()
    client_id, secret = form.pop("client_id"), form.pop("client_secret")
    response = api.session.post(api.url + "/identity/connect/token", data=form, auth=(client_id, secret),
                                headers={"Bitwarden-Client-Version": "2026.8.0"})
    assert response.status_code == 200


def test_token_endpoint_get_is_405(api):
    assert api.call("GET", "/identity/connect/token").status_code == 405
