"""The shared client checks every input where it enters and never shows a secret in any spelling (issue 12 #2, #6, #10)."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from urllib.error import URLError

import pytest
from ansible.module_utils.basic import AnsibleModule
from helpers.module_args import patch_module_args
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _bitwarden_api as api

from unit.plugins.module_utils.bitwarden_fakes import (  # pylint: disable=unused-import
    ACCESS_TOKEN,
    BASE_ARGS,
    CLIENT_SECRET,
    ORG,
    Call,
    fake_server,
    token_call,
)

_CONTEXTS = contextlib.ExitStack()


@pytest.fixture(autouse=True)
def _module_args_context():
    with _CONTEXTS:
        yield


def make_client(args=None, base=BASE_ARGS):
    _CONTEXTS.enter_context(patch_module_args(dict(base, **(args or {}))))
    module = AnsibleModule(argument_spec=api.api_argument_spec(), supports_check_mode=True, **api.api_module_kwargs())
    return api.BitwardenClient(module)


def failure(capsys, func, *args, **kwargs):
    with pytest.raises(SystemExit):
        func(*args, **kwargs)
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["failed"]
    return result, out + err


# -- 12 #2: a secret is never shown, in any spelling ---------------------------------------------------------------

@pytest.mark.parametrize("secret", ["tok3n-with-CR\r", "p@ss w/ spaces+&=", "caf\u00e9-s\u00e9cret", "quote'\"back\\slash"])
def test_every_spelling_of_a_secret_is_scrubbed(fake_server, secret):
    fake_server([])
    client = make_client()
    client.register_secret(secret)
    spellings = [secret, repr(secret), repr(secret.encode("utf-8")), json.dumps(secret),
                 api.quote(secret, safe=""), api.quote(secret), api.quote_plus(secret), secret.strip()]
    text = client.scrub(" | ".join("Invalid header value b'Bearer %s'" % form for form in spellings))
    for form in spellings:
        inner = form[2:-1] if form.startswith("b'") else form.strip("'\"")
        assert inner not in text, form
    # Ansible's own masking of results gets the same spellings.
    assert api.secret_forms(secret) <= client.module.no_log_values


def test_the_repr_of_a_header_with_a_line_break_is_scrubbed(fake_server):
    fake_server([])
    client = make_client()
    token = ACCESS_TOKEN + "\r"
    client.register_secret(token)
    assert ACCESS_TOKEN not in client.scrub("Invalid header value %r" % ("Bearer " + token).encode("latin-1"))


def test_a_control_character_in_a_header_is_never_sent(fake_server):
    server = fake_server([])
    client = make_client({"access_token": ACCESS_TOKEN})
    client._access_token = ACCESS_TOKEN + "\r\nX-Injected: 1"  # as if it came from somewhere unchecked
    with pytest.raises(api.BitwardenApiError) as info:
        client.send("GET", "/api/organizations/connections/enabled")
    assert "Authorization header" in info.value.msg and ACCESS_TOKEN not in info.value.msg
    assert server.seen == []


def test_a_token_endpoint_answering_an_unsafe_token_is_not_a_bitwarden_server(fake_server, capsys):
    fake_server([token_call(body={"access_token": "abc\r\ndef-token-value"})])
    client = make_client()
    result, output = failure(capsys, client.token)
    assert "no HTTP header can carry" in result["msg"] and "def-token-value" not in output


# -- 12 #6: tokens checked where they enter --------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("", "must not be empty"), (" \n", "must not be empty"), (["a"], "must be a string, not a list"),
    ({"a": 1}, "must be a string, not a dict"), (12345, "must be a string, not a int"),
    ("ab\r\ncd", "control character"), ("ab cd", "control character"), ("ab\x00cd", "control character"),
    ("caf\u00e9", "non-ASCII"),
])
def test_check_token_rejects_naming_the_option(value, expected):
    with pytest.raises(ValueError) as info:
        api.check_token("billing_sync_token", value)
    assert str(info.value).startswith("billing_sync_token ") and expected in str(info.value)
    if isinstance(value, str) and value.strip():
        assert value.strip() not in str(info.value)


@pytest.mark.parametrize("value", ["token-value\n", "  token-value", "token-value\r\n", "\ttoken-value "])
def test_check_token_trims_with_a_warning_that_does_not_show_it(value):
    token, warning = api.check_token("client_secret", value)
    assert token == "token-value"
    assert warning.startswith("client_secret ") and "token-value" not in warning


def test_a_clean_token_has_no_warning():
    assert api.check_token("access_token", ACCESS_TOKEN) == (ACCESS_TOKEN, None)


@pytest.mark.parametrize("option, value, expected", [
    ("client_secret", 12345, "client_secret must be a string"),
    ("client_secret", ["x"], "client_secret must be a string"),
    ("client_secret", "", "client_secret must not be empty"),
    ("access_token", "abc\r\nX-Injected: 1", "access_token contains a control character"),
])
def test_the_client_rejects_bad_secrets_before_any_request(fake_server, capsys, option, value, expected):
    server = fake_server([])
    result, output = failure(capsys, make_client, {option: value})
    assert expected in result["msg"]
    assert server.seen == [] and "X-Injected" not in output


def test_a_trailing_newline_in_the_secret_is_trimmed_before_it_is_sent(fake_server, monkeypatch):
    warnings = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, text: warnings.append(text))
    server = fake_server([token_call()], api)
    client = make_client({"client_secret": CLIENT_SECRET + "\n"})
    assert client.token() == ACCESS_TOKEN
    server.done()
    assert dict(urllib.parse.parse_qsl(server.seen[0][3]))["client_secret"] == CLIENT_SECRET
    assert len(warnings) == 1 and warnings[0].startswith("client_secret had leading or trailing whitespace")
    assert CLIENT_SECRET not in warnings[0]


# -- 12 #10: connection options ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    ({"timeout": 0}, "timeout must be from 1 to 86400 seconds, not 0"),
    ({"timeout": -5}, "timeout must be from 1 to 86400 seconds, not -5"),
    ({"timeout": 10 ** 12}, "timeout must be from 1 to 86400 seconds"),
    ({"retry_deadline": -1}, "retry_deadline must be from 0 to 86400 seconds"),
    ({"server_url": "https://bw.example.test:99999"}, "server_url 'https://bw.example.test:99999' has an invalid port"),
    ({"server_url": "https://bw.example.test:0"}, "has an invalid port (Port out of range 1-65535)"),
    ({"server_url": "bw.example.test"}, "server_url 'bw.example.test' is not an http(s) URL"),
    ({"server_url": "bw.example.test:8443"}, "is not an http(s) URL"),
    ({"server_url": "ftp://bw.example.test"}, "is not an http(s) URL"),
    ({"server_url": "https://bw.example.test/api"}, "points below the base URL (/api)"),
    ({"server_url": "https://bw.example.test/identity/"}, "points below the base URL (/identity)"),
    ({"server_url": "https://bw.example.test/#/login"}, "points below the base URL (#/login)"),
    ({"server_url": "https://bw.example.test/?x=1"}, "points below the base URL"),
    ({"server_url": "https://user:pw@bw.example.test"}, "must not carry a user name or password"),
    ({"ca_path": "/nonexistent/ca.pem"}, "ca_path /nonexistent/ca.pem does not exist"),
])
def test_bad_connection_options_name_the_option_and_the_fix(fake_server, capsys, args, expected):
    server = fake_server([])
    result, output = failure(capsys, make_client, args)
    assert expected in result["msg"], result["msg"]
    assert server.seen == [] and ":pw@" not in output


def test_a_subpath_behind_a_proxy_is_allowed():
    assert api.check_server_url(" https://example.test/bitwarden/ ") == "https://example.test/bitwarden"


def test_an_unreadable_ca_file_is_blamed_on_ca_path(fake_server, monkeypatch, tmp_path):
    fake_server([])
    ca_path = tmp_path / "ca.pem"
    ca_path.write_text("not a certificate", encoding="utf-8")

    def broken(**settings):
        raise api.ssl.SSLError(136, "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found")
    monkeypatch.setattr(api, "make_context", broken)
    client = make_client({"ca_path": str(ca_path), "access_token": ACCESS_TOKEN})
    with pytest.raises(api.BitwardenApiError) as info:
        client.send("GET", "/api/alive", auth=False)
    assert info.value.msg.startswith("ca_path %s could not be loaded as PEM CA certificates" % ca_path)


@pytest.mark.parametrize("status", [200, 404])
def test_a_web_page_instead_of_the_api_names_server_url(fake_server, status):
    page = b"<html>\r\n<head><title>404 Not Found</title></head><body><center>nginx</center></body></html>"
    server = fake_server([Call("GET", "/api/organizations/connections/enabled", status=status, body=page,
                               headers={"Content-Type": "text/html"})])
    client = make_client({"access_token": ACCESS_TOKEN})
    with pytest.raises(api.BitwardenApiError) as info:
        client.cloud_communication_enabled()
    assert "with a web page (HTTP %d), not the Bitwarden API: set server_url" % status in info.value.msg
    assert "<html" not in info.value.msg and server.sleeps == []


def test_a_proxy_error_page_is_retried_and_reported_by_its_title(fake_server):
    page = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 500 + b"</body></html>"
    fake_server([Call("GET", "/api/alive", auth=False, status=502, body=page, headers={"Content-Type": "text/html"})] * 3)
    client = make_client({"access_token": ACCESS_TOKEN, "retry_deadline": 3})
    with pytest.raises(api.BitwardenApiError) as info:
        client.send("GET", "/api/alive", auth=False)
    assert "answered 502: 502 Bad Gateway, still after 3 attempt(s)" in info.value.msg and "<" not in info.value.msg


def test_an_organization_id_that_is_no_guid_is_rejected_before_any_request(fake_server, capsys):
    server = fake_server([])
    client = make_client()
    result, dummy = failure(capsys, client.resolve_organization, "my-org")
    assert "organization_id 'my-org' is not an organization id" in result["msg"] and server.seen == []


NOT_PERMITTED = {"object": "error", "message": "You do not have permission to retrieve a connection of type CloudBillingSync."}


@pytest.mark.parametrize("listed, expected", [
    ([], "organization_id %s is not an organization of https://bw.example.test that the API key's user belongs to" % ORG),
    ([{"id": ORG.upper(), "name": "Acme", "type": 1}], "the API key's user is Admin of organization %s, not an owner" % ORG),
    ([{"id": ORG, "name": "Acme", "type": 2}], "the API key's user is User of organization %s, not an owner" % ORG),
])
def test_unknown_organization_and_not_owner_are_told_apart(fake_server, listed, expected):
    other = {"id": "11111111-2222-4333-8444-555555555555", "name": "Other", "type": 0}
    server = fake_server([token_call(), Call("GET", "/api/organizations/connections/%s/1" % ORG, status=400, body=NOT_PERMITTED),
                          Call("GET", "/api/organizations", body={"data": listed + [other]})])
    with pytest.raises(api.BitwardenApiError) as info:
        make_client().get_connection(ORG)
    server.done()
    assert expected in info.value.msg, info.value.msg
    if not listed:
        assert "the key's user owns: 11111111-2222-4333-8444-555555555555 (Other)" in info.value.msg


# -- 12 #8: the timeout goes with every request ------------------------------------------------------------------------

def test_each_request_gets_the_current_timeout(fake_server):
    refused = URLError(ConnectionRefusedError(111, "Connection refused"))
    server = fake_server([Call("GET", "/api/alive", auth=False, raises=refused), Call("GET", "/api/alive", auth=False)])
    client = make_client({"access_token": ACCESS_TOKEN, "timeout": 15})
    client.timeout = 10
    with pytest.raises(api.BitwardenApiError):
        client.send("GET", "/api/alive", auth=False, deadline=0)
    client.timeout = 2.5
    client.send("GET", "/api/alive", auth=False, deadline=0)
    assert [seen[4]["timeout"] for seen in server.seen] == [10, 2.5]
