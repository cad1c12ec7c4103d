"""/api/organizations/connections (contract 2): routes, checks in order, exact messages, casing."""

import json
import os
import uuid

import pytest

ZERO = "00000000-0000-0000-0000-000000000000"
ALREADY = ("The requested organization already has a connection of type CloudBillingSync. "
           "Only one of each connection type may exist per organization.")


def error_body(message, validation_errors=None):
    return {"object": "error", "message": message, "validationErrors": validation_errors, "exceptionMessage": None,
            "exceptionStackTrace": None, "innerExceptionMessage": None}


@pytest.fixture(scope="module")
def fleet(module_fleet):
    names = ["get", "create", "dup", "update", "delete", "perm", "casing", "model", "nolicense", "badlicense", "scim", "types"]
    old = [{"name": "v2026-6-1", "version": "2026.6.1"}, {"name": "alias", "version": "2026.6.1"}]
    return module_fleet([{"name": n} for n in names] + old)


@pytest.fixture
def owner(fleet, api_for, request):
    """An Api for the instance named like the test's `instance` marker argument, with an owner token."""
    api = api_for(fleet, request.node.get_closest_marker("instance").args[0])
    api.tok = api.token()
    return api


def create(api, token=None, **kwargs):
    return api.call("POST", "/api/organizations/connections", token or api.tok, json=api.connection_body(**kwargs))


@pytest.mark.instance("get")
def test_get_without_connection_is_200_with_null_id(owner):
    response = owner.call("GET", f"/api/organizations/connections/{owner.org}/1", owner.tok)
    assert response.status_code == 200
    assert response.json() == {"id": None, "type": 0, "organizationId": ZERO, "enabled": False, "config": None}


@pytest.mark.instance("get")
def test_get_route_accepts_enum_name_and_trailing_slash(owner):
    assert owner.call("GET", f"/api/organizations/connections/{owner.org}/CloudBillingSync", owner.tok).status_code == 200
    assert owner.call("GET", f"/api/organizations/connections/{owner.org}/cloudbillingsync/", owner.tok).status_code == 200
    assert owner.call("GET", f"/API/Organizations/Connections/{owner.org.upper()}/1", owner.tok).status_code == 200


@pytest.mark.instance("get")
@pytest.mark.parametrize("org, conn_type, field", [("not-a-guid", "1", "organizationId"), (None, "7", "type"), (None, "Bogus", "type")])
def test_get_route_binding_errors(owner, org, conn_type, field):
    response = owner.call("GET", f"/api/organizations/connections/{org or owner.org}/{conn_type}", owner.tok)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "The model state is invalid."
    assert list(body["validationErrors"]) == [field]


@pytest.mark.instance("create")
def test_create_then_get_pascal_case_config_and_clear_key(owner):
    response = create(owner, key="the-billing-key", cloudOrganizationId=str(uuid.uuid4()))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "type", "organizationId", "enabled", "config"}
    assert (body["type"], body["organizationId"], body["enabled"]) == (1, owner.org, True)
    # the client's cloudOrganizationId is replaced by the license's id
    assert body["config"] == {"BillingSyncKey": "the-billing-key", "CloudOrganizationId": owner.state["cloud_organization_id"],
                              "LastLicenseSync": None}
    uuid.UUID(body["id"])
    got = owner.call("GET", f"/api/organizations/connections/{owner.org}/1", owner.tok)
    assert got.json() == body
    assert owner.refresh()["connection"] == body


@pytest.mark.instance("dup")
def test_second_create_is_refused(owner):
    assert create(owner).status_code == 200
    response = create(owner)
    assert (response.status_code, response.json()) == (400, error_body(ALREADY))


@pytest.mark.instance("update")
def test_update_replaces_whole_config_and_resets_last_license_sync(owner):
    created = create(owner, key="k1").json()
    url = f"/api/organizations/connections/{created['id']}"
    body = owner.connection_body(key="k2", lastLicenseSync="2026-08-20T14:03:11.1234567+00:00")
    response = owner.call("PUT", url, owner.tok, json=body)
    assert response.status_code == 200
    assert response.json()["config"]["LastLicenseSync"] == "2026-08-20T14:03:11.1234567+00:00"
    assert response.json()["id"] == created["id"]
    response = owner.call("PUT", url, owner.tok, json=owner.connection_body(key="k3", enabled=False))
    assert response.json()["config"] == {"BillingSyncKey": "k3", "CloudOrganizationId": owner.state["cloud_organization_id"],
                                         "LastLicenseSync": None}
    assert response.json()["enabled"] is False


@pytest.mark.instance("update")
@pytest.mark.parametrize("given, stored", [
    ("2026-08-20T14:03:11.1200000+00:00", "2026-08-20T14:03:11.12+00:00"),
    ("2026-08-20T16:03:11+02:00", "2026-08-20T14:03:11+00:00"),
    ("2026-08-20T14:03:11Z", "2026-08-20T14:03:11Z"),
    ("2026-08-20T14:03:11", "2026-08-20T14:03:11"),
])
def test_last_license_sync_round_trip(owner, given, stored):
    conn = owner.refresh()["connection"] or create(owner).json()
    response = owner.call("PUT", f"/api/organizations/connections/{conn['id']}", owner.tok,
                          json=owner.connection_body(lastLicenseSync=given))
    assert response.json()["config"]["LastLicenseSync"] == stored


@pytest.mark.instance("update")
def test_update_errors_in_order(owner):
    conn = owner.refresh()["connection"] or create(owner).json()
    url = f"/api/organizations/connections/{conn['id']}"
    missing = owner.call("PUT", f"/api/organizations/connections/{uuid.uuid4()}", owner.tok, json=owner.connection_body())
    assert (missing.status_code, missing.json()) == (404, error_body("Resource not found."))
    other_org = dict(owner.connection_body(), organizationId=str(uuid.uuid4()))
    assert owner.call("PUT", url, owner.tok, json=other_org).status_code == 404
    retyped = dict(owner.connection_body(), type=2)
    response = owner.call("PUT", url, owner.tok, json=retyped)
    assert (response.status_code, response.json()["message"]) == (400, "The connection type cannot be changed.")
    empty = owner.call("PUT", url, owner.tok, data=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 400
    assert empty.json()["message"] == "The model state is invalid."


@pytest.mark.instance("delete")
def test_delete(owner):
    created = create(owner).json()
    missing = owner.call("DELETE", f"/api/organizations/connections/{uuid.uuid4()}", owner.tok)
    assert (missing.status_code, missing.json()) == (404, error_body("Resource not found."))
    response = owner.call("DELETE", f"/api/organizations/connections/{created['id']}", owner.tok)
    assert (response.status_code, response.content) == (200, b"")
    assert owner.refresh()["connection"] is None
    # the POST .../delete alias is gone since 2026.6.2; the path now only matches GET {organizationId}/{type}
    assert owner.call("POST", f"/api/organizations/connections/{created['id']}/delete", owner.tok).status_code == 405


@pytest.mark.instance("perm")
def test_admin_is_not_enough(owner):
    admin = owner.token("admin")
    response = owner.call("GET", f"/api/organizations/connections/{owner.org}/1", admin)
    assert (response.status_code, response.json()) == (
        400, error_body("You do not have permission to retrieve a connection of type CloudBillingSync."))
    response = create(owner, token=admin)
    assert response.json() == error_body("You do not have permission to create a connection of type CloudBillingSync.")
    conn = create(owner).json()
    response = owner.call("PUT", f"/api/organizations/connections/{conn['id']}", admin, json=owner.connection_body())
    assert (response.status_code, response.json()["message"]) == (400, "You do not have permission to update this connection.")
    response = owner.call("DELETE", f"/api/organizations/connections/{conn['id']}", admin)
    assert (response.status_code, response.json()["message"]) == (
        400, "You do not have permission to remove this connection of type CloudBillingSync.")
    response = owner.call("POST", f"/api/organizations/licenses/self-hosted/{owner.org}/sync", admin)
    assert (response.status_code, response.json()) == (404, error_body("Resource not found."))


@pytest.mark.instance("perm")
def test_other_organization_is_not_permitted(owner):
    other = str(uuid.uuid4())
    response = owner.call("GET", f"/api/organizations/connections/{other}/1", owner.tok)
    assert response.json()["message"] == "You do not have permission to retrieve a connection of type CloudBillingSync."


@pytest.mark.instance("perm")
def test_auth_failures(owner):
    path = f"/api/organizations/connections/{owner.org}/1"
    for token in (None, "garbage"):
        response = owner.call("GET", path, token)
        assert (response.status_code, response.content) == (401, b"")
    assert owner.call("GET", path, None).headers["WWW-Authenticate"] == "Bearer"
    org_token = owner.token("organization")
    for method, url in (("GET", path), ("GET", "/api/organizations/connections/enabled"), ("POST", "/api/organizations/connections"),
                        ("GET", "/api/organizations"), ("POST", f"/api/organizations/licenses/self-hosted/{owner.org}/sync")):
        response = owner.call(method, url, org_token, json={})
        assert (response.status_code, response.content) == (403, b"")


@pytest.mark.instance("casing")
def test_request_names_are_case_insensitive(owner):
    body = {"OrganizationId": owner.org, "TYPE": 1, "Enabled": True, "Config": {"BILLINGSYNCKEY": "upper"}}
    response = owner.call("POST", "/api/organizations/connections", owner.tok, json=body)
    assert response.status_code == 200
    assert response.json()["config"]["BillingSyncKey"] == "upper"


@pytest.mark.instance("model")
@pytest.mark.parametrize("body, status, message", [
    (None, 400, "The model state is invalid."),
    ("[1]", 400, "The model state is invalid."),
    ('{"type": "CloudBillingSync"}', 400, "The model state is invalid."),
    ('{"organizationId": "x", "type": 1}', 400, "The model state is invalid."),
])
def test_model_state_errors(owner, body, status, message):
    response = owner.call("POST", "/api/organizations/connections", owner.tok, data=(body or "").encode(),
                          headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert response.json()["validationErrors"][""][-1] == "Body is empty."


@pytest.mark.instance("model")
def test_config_errors(owner):
    base = owner.connection_body()
    response = owner.call("POST", "/api/organizations/connections", owner.tok, json=dict(base, config="text"))
    assert response.json() == error_body("Organization Connection configuration malformed")
    response = owner.call("POST", "/api/organizations/connections", owner.tok, json=dict(base, config={"billingSyncKey": 5}))
    assert response.json()["message"] == "Organization Connection configuration malformed"
    response = owner.call("POST", "/api/organizations/connections", owner.tok, json=dict(base, config={"lastLicenseSync": "yesterday"}))
    assert response.json()["message"] == "Organization Connection configuration malformed"
    response = owner.call("POST", "/api/organizations/connections", owner.tok, json={k: v for k, v in base.items() if k != "config"})
    assert (response.status_code, response.json()) == (500, error_body("An unhandled server error has occurred."))
    response = owner.call("POST", "/api/organizations/connections", owner.tok, json=dict(base, type=9))
    assert response.json() == error_body("Unknown Organization connection Type: 9")
    response = owner.call("POST", "/api/organizations/connections", owner.tok, data=b"type=1",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (response.status_code, response.content) == (415, b"")


@pytest.mark.instance("model")
def test_blank_key_is_accepted_at_create(owner):
    response = create(owner, key="")
    assert response.status_code == 200
    assert response.json()["config"]["BillingSyncKey"] == ""


@pytest.mark.instance("nolicense")
def test_missing_license_file(owner):
    os.unlink(os.path.join(owner.state["install_dir"], "bwdata", "core", "licenses", "organization", f"{owner.org}.json"))
    response = create(owner)
    assert (response.status_code, response.json()) == (400, error_body("Cannot verify license file."))


@pytest.mark.instance("badlicense")
def test_unverifiable_license_file(owner):
    path = os.path.join(owner.state["install_dir"], "bwdata", "core", "licenses", "organization", f"{owner.org}.json")
    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    doc["signature"] = ""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)
    assert create(owner).json()["message"] == "Cannot verify license file."


@pytest.mark.instance("v2026-6-1")
def test_before_2026_6_2(owner):
    os.unlink(os.path.join(owner.state["install_dir"], "bwdata", "core", "licenses", "organization", f"{owner.org}.json"))
    response = create(owner)
    assert (response.status_code, response.json()["message"]) == (500, "An unhandled server error has occurred.")


@pytest.mark.instance("alias")
def test_delete_alias_before_2026_6_2(owner):
    created = create(owner, key="alias").json()
    response = owner.call("POST", f"/api/organizations/connections/{created['id']}/delete", owner.tok)
    assert (response.status_code, response.content) == (200, b"")
    assert owner.refresh()["connection"] is None


@pytest.mark.instance("scim")
def test_scim_connection_admin_may_manage(owner):
    admin = owner.token("admin")
    body = {"organizationId": owner.org, "type": 2, "enabled": True, "config": {"enabled": True, "scimProvider": 1}}
    response = owner.call("POST", "/api/organizations/connections", admin, json=body)
    assert response.status_code == 200
    assert response.json()["config"] == {"Enabled": True, "ScimProvider": 1}
    got = owner.call("GET", f"/api/organizations/connections/{owner.org}/Scim", admin)
    assert got.json()["type"] == 2
    assert owner.refresh()["connection"] is None


@pytest.mark.instance("types")
def test_enabled_route(owner):
    response = owner.call("GET", "/api/organizations/connections/enabled", owner.tok)
    assert (response.status_code, response.json()) == (200, False)
    admin = owner.token("admin")
    assert owner.call("GET", "/api/organizations/connections/enabled", admin).json() is False


@pytest.mark.instance("types")
def test_wrong_method_and_unknown_route(owner):
    assert owner.call("GET", f"/api/organizations/connections/{uuid.uuid4()}", owner.tok).status_code == 405
    response = owner.call("GET", "/api/no/such/route", owner.tok)
    assert (response.status_code, response.content) == (404, b"")
