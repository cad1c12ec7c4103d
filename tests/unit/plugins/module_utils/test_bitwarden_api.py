"""The shared client: options, URL and device identifier, token request, retries, error messages, masking."""

from __future__ import annotations

import contextlib
import datetime
import json
import ssl
import uuid
from urllib.error import URLError

import pytest
from ansible.module_utils.basic import AnsibleModule
from helpers.module_args import patch_module_args
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _bitwarden_api as api

from unit.plugins.module_utils.bitwarden_fakes import (  # pylint: disable=unused-import
    ACCESS_TOKEN,
    BASE_ARGS,
    CLIENT_ID,
    CLIENT_SECRET,
    ORG,
    SERVER,
    SYNC_TOKEN,
    Call,
    assert_no_secret,
    fake_server,
    token_call,
)


_CONTEXTS = contextlib.ExitStack()


@pytest.fixture(autouse=True)
def _module_args_context():
    """fail_json/exit_json need the patched module args until the end of the test."""
    with _CONTEXTS:
        yield


def make_client(args=None):
    _CONTEXTS.enter_context(patch_module_args(dict(BASE_ARGS, **(args or {}))))
    module = AnsibleModule(argument_spec=api.api_argument_spec(), supports_check_mode=True, **api.api_module_kwargs())
    return api.BitwardenClient(module)


def failure(capsys, func, *args, **kwargs):
    """Run ``func`` expecting fail_json; return its result dict and all printed text."""
    with pytest.raises(SystemExit):
        func(*args, **kwargs)
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["failed"]
    return result, out + err


def test_argument_spec_names_defaults_and_secrets():
    spec = api.api_argument_spec()
    assert set(spec) == {"server_url", "bwdata_path", "client_id", "client_secret", "access_token", "validate_certs",
                         "ca_path", "timeout", "retry_deadline"}
    assert spec["bwdata_path"]["default"] == "/opt/bitwarden/bwdata"
    assert spec["timeout"]["default"] == 30 and spec["retry_deadline"]["default"] == 60
    assert spec["validate_certs"]["default"] is True
    assert spec["client_secret"]["no_log"] and spec["access_token"]["no_log"]
    assert spec["server_url"]["fallback"][1] == ["BITWARDEN_SERVER_URL"]
    assert spec["client_secret"]["fallback"][1] == ["BITWARDEN_CLIENT_SECRET"]


@pytest.mark.parametrize("url, expected", [
    ("https://BW.Example.test/", "https://bw.example.test"),
    ("https://bw.example.test:443", "https://bw.example.test"),
    ("http://bw.example.test:80/", "http://bw.example.test"),
    ("https://bw.example.test:8443/vault/", "https://bw.example.test:8443/vault"),
    ("http://127.0.0.1:41234", "http://127.0.0.1:41234"),
])
def test_normalize_server_url(url, expected):
    assert api.normalize_server_url(url) == expected


def test_device_identifier_follows_the_documented_rule():
    expected = str(uuid.uuid5(uuid.NAMESPACE_URL, "selfhost.bitwarden:https://bw.example.test:%s" % CLIENT_ID))
    assert api.device_identifier("https://BW.example.test/", CLIENT_ID) == expected
    assert api.device_identifier("https://bw.example.test:443", CLIENT_ID) == expected
    assert api.device_identifier("https://other.example.test", CLIENT_ID) != expected
    assert api.device_identifier("https://bw.example.test", "user.other") != expected


@pytest.mark.parametrize("text, expected", [
    ("# Setup\nurl: https://bw.example.test\npush_notifications: true\n", "https://bw.example.test"),
    ("url: 'https://bw.example.test:8443'\n", "https://bw.example.test:8443"),
    ('url: "https://bw.example.test" # quoted\n', "https://bw.example.test"),
    ("url: https://bw.example.test   # the vault\r\n", "https://bw.example.test"),
    ("  url: https://nested.example.test\nother: 1\n", None),
    ("url:\n", None),
])
def test_read_config_url(tmp_path, text, expected):
    (tmp_path / "config.yml").write_text(text)
    assert api.read_config_url(str(tmp_path)) == expected


def test_server_url_comes_from_config_yml(tmp_path):
    (tmp_path / "config.yml").write_text("url: https://From-Config.example.test/\n")
    client = make_client({"server_url": None, "bwdata_path": str(tmp_path)})
    assert client.server_url == "https://from-config.example.test"


def test_missing_server_url_and_config_says_what_to_set(tmp_path, capsys):
    result, dummy = failure(capsys, make_client, {"server_url": None, "bwdata_path": str(tmp_path / "nope")})
    assert "server_url is not set" in result["msg"] and "config.yml" in result["msg"]


def test_parse_timestamp():
    value = api.parse_timestamp("2026-08-20T14:03:11.1234567+02:00")
    assert value == datetime.datetime(2026, 8, 20, 12, 3, 11, 123456, datetime.timezone.utc)
    assert api.parse_timestamp("2026-08-20T14:03:11Z").hour == 14
    assert api.parse_timestamp("2026-08-20T14:03:11.5").microsecond == 500000
    assert api.parse_timestamp(None) is None and api.parse_timestamp("never") is None


def test_fingerprint_is_short_and_not_the_secret():
    print_ = api.fingerprint(SYNC_TOKEN)
    assert print_.startswith("sha256:") and len(print_) == 15 and SYNC_TOKEN not in print_
    assert api.fingerprint(None) is None


def test_token_request_fields_headers_and_bearer(fake_server):
    server = fake_server([
        token_call(form={
            "grant_type": "client_credentials", "scope": "api", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "deviceType": "22", "deviceName": "selfhost.bitwarden",
            "deviceIdentifier": api.device_identifier(SERVER, CLIENT_ID)}),
        Call("GET", "/api/organizations/connections/enabled", body=True),
    ])
    client = make_client()
    assert client.cloud_communication_enabled() is True
    server.done()
    method, url, headers, dummy, kwargs = server.seen[0]
    assert headers["Accept"] == "application/json"
    assert headers["Bitwarden-Client-Version"] == "2026.8.0"
    assert kwargs["timeout"] == 30
    assert ACCESS_TOKEN in client.module.no_log_values
    # Both requests share one TLS context, made once with the client's certificate settings.
    assert server.seen[1][4]["context"] is kwargs["context"]
    assert kwargs["context"] == ("tls context", {"cafile": None, "validate_certs": True})


def test_ca_path_and_validate_certs_reach_the_tls_context(fake_server, tmp_path):
    ca_path = tmp_path / "ca.pem"
    ca_path.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    server = fake_server([Call("GET", "/api/organizations/connections/enabled", body=False)])
    client = make_client({"ca_path": str(ca_path), "validate_certs": False, "access_token": ACCESS_TOKEN})
    assert client.cloud_communication_enabled() is False
    server.done()
    assert server.seen[0][4]["context"] == ("tls context", {"cafile": str(ca_path), "validate_certs": False})


def test_organization_key_asks_for_the_organization_scope(fake_server):
    org_key = "organization.2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11"
    fake_server([token_call(form={
        "grant_type": "client_credentials", "scope": "api.organization", "client_id": org_key,
        "client_secret": CLIENT_SECRET, "deviceType": "22", "deviceName": "selfhost.bitwarden",
        "deviceIdentifier": api.device_identifier(SERVER, org_key)})])
    make_client({"client_id": org_key}).token()


def test_access_token_skips_the_token_request(fake_server):
    server = fake_server([Call("GET", "/api/organizations/connections/enabled", body=False)])
    client = make_client({"client_id": None, "client_secret": None, "access_token": ACCESS_TOKEN})
    assert client.cloud_communication_enabled() is False
    server.done()


def test_no_credentials_says_which_options(fake_server, capsys):
    fake_server([])
    client = make_client({"client_id": None, "client_secret": None})
    result, dummy = failure(capsys, client.token)
    assert "client_id and client_secret" in result["msg"] and "access_token" in result["msg"]


@pytest.mark.parametrize("body, expected", [
    ({"error": "invalid_client"}, "invalid_client"),
    ({"error": "invalid_client"}, "belongs to another server"),
    ({"error": "invalid_scope"}, "personal API key"),
    ({"error": "version_header_missing", "error_description": "No client version header found",
      "ErrorModel": {"Message": "No client version header found", "Object": "error"}}, "Bitwarden-Client-Version"),
    ({"error": "device_error", "error_description": "No device information provided"}, "device information"),
    ({"error": "invalid_grant", "ErrorModel": {"Message": "No device information provided."}}, "device information"),
    ({"error": "invalid_client_version"}, "update the selfhost.bitwarden collection"),
])
def test_token_errors_say_what_to_fix(fake_server, capsys, body, expected):
    fake_server([token_call(status=400, body=body)])
    result, output = failure(capsys, make_client().token)
    assert expected in result["msg"]
    assert_no_secret(output)


def test_retry_after_is_honoured_for_429_and_503(fake_server):
    server = fake_server([
        token_call(status=429, headers={"Retry-After": "3"}),
        token_call(status=503, headers={"Retry-After": "2"}),
        token_call(status=502),
        token_call(),
    ])
    make_client().token()
    server.done()
    assert server.sleeps == [3.0, 2.0, 4.0]


def test_connection_refused_is_retried_with_backoff(fake_server):
    refused = URLError(ConnectionRefusedError(111, "Connection refused"))
    server = fake_server([token_call(raises=refused), token_call(raises=refused), token_call(raises=refused),
                          token_call()])
    make_client().token()
    assert server.sleeps == [1.0, 2.0, 4.0]


def test_deadline_ends_the_retries_with_a_clear_message(fake_server, capsys):
    server = fake_server([token_call(), Call("GET", "/api/organizations/connections/enabled", status=503)] +
                         [Call("GET", "/api/organizations/connections/enabled", status=503)] * 4)
    client = make_client({"retry_deadline": 10})
    with pytest.raises(api.BitwardenApiError) as info:
        client.cloud_communication_enabled()
    result, dummy = failure(capsys, client.fail, info.value)
    assert server.sleeps == [1.0, 2.0, 4.0]  # a fourth wait (8 s) would pass the 10 s deadline
    assert "answered 503" in result["msg"] and "4 attempt(s)" in result["msg"] and "retry_deadline" in result["msg"]


def test_retry_after_beyond_the_deadline_gives_up_at_once(fake_server):
    server = fake_server([token_call(status=429, headers={"Retry-After": "120"})])
    with pytest.raises(api.BitwardenApiError) as info:
        make_client().request_token(CLIENT_ID, CLIENT_SECRET)
    assert info.value.status == 429 and server.sleeps == []


def test_post_that_is_not_idempotent_is_not_resent_after_500_504_or_reset(fake_server):
    for answer in ({"status": 500}, {"status": 504}, {"raises": ConnectionResetError(104, "reset")}):
        server = fake_server([token_call(), Call("POST", "/api/organizations/connections", **answer)])
        client = make_client()
        with pytest.raises(api.BitwardenApiError) as info:
            client.send("POST", "/api/organizations/connections", body={"x": 1})
        assert info.value.ambiguous
        server.done()
        assert server.sleeps == []


def test_post_that_is_not_idempotent_is_resent_after_503_and_refused(fake_server):
    server = fake_server([
        token_call(),
        Call("POST", "/api/organizations/connections", status=503),
        Call("POST", "/api/organizations/connections", raises=URLError(ConnectionRefusedError(111, "refused"))),
        Call("POST", "/api/organizations/connections", body={"id": "x"}),
    ])
    assert make_client().send("POST", "/api/organizations/connections", body={"x": 1}).data == {"id": "x"}
    server.done()


def test_get_is_resent_after_504_and_timeout(fake_server):
    server = fake_server([
        token_call(),
        Call("GET", "/api/organizations/connections/enabled", status=504),
        Call("GET", "/api/organizations/connections/enabled", raises=URLError(TimeoutError("timed out"))),
        Call("GET", "/api/organizations/connections/enabled", body=True),
    ])
    assert make_client().cloud_communication_enabled() is True
    server.done()


def test_500_is_not_retried_even_for_get(fake_server):
    server = fake_server([token_call(), Call("GET", "/api/organizations/connections/enabled", status=500,
                                             body={"object": "error", "message": "An unhandled server error has occurred."})])
    with pytest.raises(api.BitwardenApiError) as info:
        make_client().cloud_communication_enabled()
    server.done()
    assert "internal error" in info.value.msg and "An unhandled server error" in info.value.msg


@pytest.mark.parametrize("exc", [
    URLError(ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")),
    ssl.SSLError(1, "[SSL: UNSUPPORTED_PROTOCOL] unsupported protocol"),
])
def test_tls_errors_point_at_ca_path(fake_server, exc):
    server = fake_server([token_call(raises=exc)])
    with pytest.raises(api.BitwardenApiError) as info:
        make_client().request_token(CLIENT_ID, CLIENT_SECRET)
    assert "ca_path" in info.value.msg and "validate_certs" in info.value.msg
    assert server.sleeps == []


@pytest.mark.parametrize("status, body, expected", [
    (403, None, "organization API key"),
    (400, {"object": "error", "message": "Cannot verify license file."}, "upload the organization license first"),
    (400, {"object": "error", "message": "Cloud communication is disabled in global settings"}, "bitwarden_cloud_comm"),
    (401, None, "access token"),
    (418, {"object": "error", "message": "teapot"}, "HTTP 418: teapot"),
])
def test_http_errors_say_what_to_fix(fake_server, status, body, expected):
    fake_server([token_call(), Call("GET", "/api/organizations/connections/%s/1" % ORG, status=status, body=body)])
    with pytest.raises(api.BitwardenApiError) as info:
        make_client().get_connection(ORG)
    assert expected in info.value.msg


def test_secrets_echoed_by_the_server_are_scrubbed_from_messages(fake_server, capsys):
    echo = "bad key %s and token %s and %s" % (CLIENT_SECRET, ACCESS_TOKEN, SYNC_TOKEN)
    fake_server([token_call(), Call("GET", "/api/organizations/connections/enabled", status=400,
                                    body={"object": "error", "message": echo})])
    client = make_client()
    client.register_secret(SYNC_TOKEN)
    with pytest.raises(api.BitwardenApiError) as info:
        client.cloud_communication_enabled()
    result, output = failure(capsys, client.fail, info.value)
    assert "bad key ********" in result["msg"]
    assert_no_secret(output)


def test_connection_reads_keys_in_any_case_and_registers_the_key(fake_server):
    fake_server([token_call(), Call("GET", "/api/organizations/connections/%s/1" % ORG, body={
        "Id": "c1", "Enabled": True, "Config": {"billingSyncKey": SYNC_TOKEN, "lastLicenseSync": None}})])
    client = make_client()
    connection = client.get_connection(ORG)
    assert connection == {"id": "c1", "enabled": True, "billing_sync_key": SYNC_TOKEN, "cloud_organization_id": None,
                          "last_license_sync": None}
    assert SYNC_TOKEN in client.module.no_log_values
    assert "billing_sync_key" not in api.public_connection(connection)


def test_missing_connection_is_none(fake_server):
    fake_server([token_call(), Call("GET", "/api/organizations/connections/%s/1" % ORG, body={
        "id": None, "type": 0, "organizationId": "00000000-0000-0000-0000-000000000000", "enabled": False,
        "config": None})])
    assert make_client().get_connection(ORG) is None


def test_connections_404_on_an_old_server_names_the_version(fake_server):
    fake_server([token_call(), Call("GET", "/api/organizations/connections/%s/1" % ORG, status=404),
                 Call("GET", "/api/config", auth=False, body={"version": "2022.4.0"})])
    with pytest.raises(api.BitwardenApiError) as info:
        make_client().get_connection(ORG)
    assert "2022.4.0" in info.value.msg and "2022.5.0" in info.value.msg


def test_version_gate_sees_servers_without_the_config_route(fake_server):
    """2022.5-2022.9: connections, no /api/config (contract 8); /api/version answers on every version."""
    fake_server([Call("GET", "/api/config", auth=False, status=404), Call("GET", "/api/version", auth=False, body="2022.9.0")])
    client = make_client()
    message = client.too_old(api.LICENSE_SYNC_MIN_VERSION, "license sync")
    assert "2022.9.0" in message and "2023.2.0" in message
    assert client.server_config() is None and client.server_version() == "2022.9.0"  # cached: no further request


def test_one_owned_organization_is_found(fake_server):
    fake_server([token_call(), Call("GET", "/api/organizations", body={"object": "list", "data": [
        {"id": "admin-org", "name": "A", "type": 1}, {"id": ORG, "name": "Ours", "type": 0}]})])
    assert make_client().resolve_organization(None) == ORG


def test_several_owned_organizations_are_listed(fake_server, capsys):
    fake_server([token_call(), Call("GET", "/api/organizations", body={"data": [
        {"id": "org-1", "name": "One", "type": 0}, {"id": "org-2", "name": "Two", "type": 0}]})])
    result, dummy = failure(capsys, make_client().resolve_organization, None)
    assert "org-1 (One)" in result["msg"] and "org-2 (Two)" in result["msg"] and "organization_id" in result["msg"]


def test_no_owned_organization(fake_server, capsys):
    fake_server([token_call(), Call("GET", "/api/organizations", body={"data": [{"id": "o", "name": "x", "type": 2}]})])
    result, dummy = failure(capsys, make_client().resolve_organization, None)
    assert "owns no organization" in result["msg"]
