"""A scripted stand-in for the client's ``Request`` and a runner for the API modules, shared by the unit tests.

Every expected request is listed in order with its method and URL; the fake asserts each one (and optionally
its headers, form or JSON body) and answers with the scripted status and body or raises the scripted error.
"""

from __future__ import annotations

import io
import json
import urllib.parse
from email.message import Message
from urllib.error import HTTPError

import pytest
from helpers.module_args import patch_module_args
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _bitwarden_api

SERVER = "https://bw.example.test"
CLIENT_ID = "user.6f9a2c1e-0000-4000-8000-00000000abcd"
CLIENT_SECRET = "s3cr3t-client-secret-value"
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiJ9.access-token-value.signature"
SYNC_TOKEN = "billing-sync-token-0123456789"
ORG = "2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11"
CLOUD_ORG = "9b1f3f2a-0e4e-4c55-b1a2-7d3c5e6f7a80"
CONN_ID = "5f0c2a8e-1c53-4d7b-8e0a-3e9c0b8a3d21"
SECRETS = (CLIENT_SECRET, ACCESS_TOKEN, SYNC_TOKEN)

BASE_ARGS = {"server_url": SERVER, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


class Call:
    """One expected request and its scripted answer."""

    def __init__(self, method, path, status=200, body=None, headers=None, raises=None, form=None, json_body=None,
                 auth=True, effect=None):
        self.effect = effect  # called when the request arrives, e.g. to write the api log like the server
        self.method = method
        self.url = SERVER + path
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.raises = raises
        self.form = form
        self.json_body = json_body
        self.auth = auth


def token_call(status=200, body=None, **kwargs):
    if body is None:
        body = {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer", "scope": "api"}
    return Call("POST", "/identity/connect/token", status=status, body=body, auth=False, **kwargs)


def connection_body(key=SYNC_TOKEN, enabled=True, last_sync=None, conn_id=CONN_ID):
    if conn_id is None:
        return {"id": None, "type": 0, "organizationId": "00000000-0000-0000-0000-000000000000", "enabled": False,
                "config": None}
    return {"id": conn_id, "type": 1, "organizationId": ORG, "enabled": enabled,
            "config": {"BillingSyncKey": key, "CloudOrganizationId": CLOUD_ORG, "LastLicenseSync": last_sync}}


def get_connection(**kwargs):
    return Call("GET", "/api/organizations/connections/%s/1" % ORG, body=connection_body(**kwargs))


def get_enabled(value=True):
    return Call("GET", "/api/organizations/connections/enabled", body=value)


class FakeResponse:
    def __init__(self, status, raw, headers):
        self.status = status
        self._raw = raw
        self.headers = headers

    def getcode(self):
        return self.status

    def read(self):
        return self._raw

    def close(self):
        pass


def _headers(values):
    message = Message()
    for key, value in values.items():
        message[key] = value
    return message


class FakeClock:
    """Stands in for the ``time`` module: sleeping advances the clock at once and is recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeRequest:
    """Stands in for ``_transport.Request``: hands every ``open`` to the scripted server."""

    def __init__(self, server, http_agent, tls_context):
        self.server = server
        self.http_agent = http_agent
        self.tls_context = tls_context
        self.context = None

    def exchange(self, method, url, data=None, headers=None, timeout=None):
        # Like the real transport: the TLS context is made once, at the first https request.
        if url.startswith("https://") and self.context is None:
            self.context = self.tls_context()
        try:
            response = self.server(url, data=data, headers=headers, method=method, timeout=timeout, context=self.context)
        except HTTPError as exc:
            return exc.code, exc.read(), exc.headers
        return response.getcode(), response.read(), response.headers


class FakeServer:
    def __init__(self, calls):
        self.calls = list(calls)
        self.seen = []
        self.clock = FakeClock()
        self.sleeps = self.clock.sleeps

    def __call__(self, url, data=None, headers=None, method=None, **kwargs):
        assert self.calls, "unexpected request %s %s" % (method, url)
        call = self.calls.pop(0)
        self.seen.append((method, url, dict(headers or {}), data, kwargs))
        assert (method, url) == (call.method, call.url)
        assert headers["Bitwarden-Client-Version"] == _bitwarden_api.CLIENT_VERSION
        if call.auth:
            assert headers["Authorization"] == "Bearer %s" % ACCESS_TOKEN
        else:
            assert "Authorization" not in headers
        if call.form is not None:
            assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
            assert dict(urllib.parse.parse_qsl(data)) == call.form
        if call.json_body is not None:
            assert headers["Content-Type"].startswith("application/json")
            assert json.loads(data) == call.json_body
        if call.effect is not None:
            call.effect()
        if call.raises is not None:
            raise call.raises
        raw = b"" if call.body is None else (call.body if isinstance(call.body, bytes) else json.dumps(call.body).encode())
        if call.status >= 400:
            raise HTTPError(url, call.status, "error", _headers(call.headers), io.BytesIO(raw))
        return FakeResponse(call.status, raw, _headers(call.headers))

    def done(self):
        assert not self.calls, "expected requests not sent: %s" % [(c.method, c.url) for c in self.calls]


@pytest.fixture
def fake_server(monkeypatch):
    """fake_server(calls, *modules) installs the fake (and its clock in the client and ``modules``) and returns it."""
    def install(calls, *modules):
        server = FakeServer(calls)
        monkeypatch.setattr(_bitwarden_api, "Request", lambda **settings: FakeRequest(server, **settings))
        monkeypatch.setattr(_bitwarden_api, "make_context", lambda **settings: ("tls context", settings))
        for module in (_bitwarden_api,) + modules:
            monkeypatch.setattr(module, "time", server.clock)
        return server
    return install


def run_module(main, args, capsys, check_mode=False, diff=False):
    """Run a module's main() with ``args``; return (failed, result dict, everything printed)."""
    module_args = dict(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    if diff:
        module_args["_ansible_diff"] = True
    with patch_module_args(module_args):
        with pytest.raises(SystemExit):
            main()
    out, err = capsys.readouterr()
    result = json.loads(out)
    return bool(result.get("failed")), result, out + err


def assert_no_secret(text, secrets=SECRETS):
    for secret in secrets:
        for form in (secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
            assert form not in text
