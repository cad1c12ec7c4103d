"""The client's standard-library transport against real local HTTP(S) servers and a CONNECT proxy."""

from __future__ import annotations

import http.server
import ssl
import threading

from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _transport

from helpers.connect_proxy import proxy_server
from helpers.sim import SIM_ROOT  # noqa: F401  pylint: disable=unused-import
from bwsim import tlsutil  # noqa: E402  pylint: disable=wrong-import-order


class _Recorder(http.server.BaseHTTPRequestHandler):
    """/moved redirects to ``target`` (another server), /fail answers 400, anything else echoes what it got."""

    target = None
    seen = None

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, dict(self.headers), body))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", self.target + "/landed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = 400 if self.path == "/fail" else 200
        payload = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer  # noqa: N815  pylint: disable=invalid-name

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


def no_tls():
    raise AssertionError("an http:// exchange made a TLS context")


def serve(tls_paths=None, target=None):
    handler = type("Handler", (_Recorder,), {"seen": [], "target": target})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if tls_paths:
        server.socket = tlsutil.server_context(tls_paths).wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "%s://127.0.0.1:%d" % (scheme, server.server_address[1]), handler.seen


@pytest.fixture(name="certs", scope="module")
def fixture_certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    return {"trusted": tlsutil.make_certificates(str(directory)), "untrusted": tlsutil.make_untrusted_certificate(str(directory))}


@pytest.fixture(name="no_proxy_env")
def fixture_no_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_post_sends_body_headers_and_agent(no_proxy_env):
    server, url, seen = serve()
    try:
        response = _transport.Request(http_agent="selfhost.bitwarden", tls_context=no_tls).open(
            "POST", url + "/api/x", data='{"a": "é"}', headers={"Content-Type": "application/json"}, timeout=5)
        assert response.getcode() == 200 and response.read() == b'{"ok": true}'
        assert response.headers["Content-Type"] == "application/json"
    finally:
        server.shutdown()
    method, path, headers, body = seen[0]
    assert (method, path, body) == ("POST", "/api/x", '{"a": "é"}'.encode("utf-8"))
    assert headers["User-Agent"] == "selfhost.bitwarden"


def test_an_error_status_is_raised_with_its_body(no_proxy_env):
    server, url, dummy = serve()
    try:
        with pytest.raises(HTTPError) as info:
            _transport.Request(http_agent="t", tls_context=no_tls).open("GET", url + "/fail", timeout=5)
        assert info.value.code == 400 and info.value.read() == b'{"ok": true}'
    finally:
        server.shutdown()


def test_get_follows_a_redirect_without_the_bearer_token_to_another_host(no_proxy_env):
    other, other_url, other_seen = serve()
    server, url, seen = serve(target=other_url.replace("127.0.0.1", "localhost"))
    try:
        request = _transport.Request(http_agent="t", tls_context=no_tls)
        response = request.open("GET", url + "/moved", headers={"Authorization": "Bearer s3cret"}, timeout=5)
        assert response.getcode() == 200
    finally:
        server.shutdown()
        other.shutdown()
    assert seen[0][2]["Authorization"] == "Bearer s3cret"
    assert other_seen[0][1] == "/landed" and "Authorization" not in other_seen[0][2]


def test_a_write_is_never_redirected(no_proxy_env):
    other, other_url, other_seen = serve()
    server, url, dummy = serve(target=other_url)
    try:
        with pytest.raises(HTTPError) as info:
            _transport.Request(http_agent="t", tls_context=no_tls).open("POST", url + "/moved", data="{}", timeout=5)
        assert info.value.code == 302
    finally:
        server.shutdown()
        other.shutdown()
    assert not other_seen


def test_tls_is_verified_against_ca_path_only(certs, no_proxy_env):
    server, url, dummy = serve(tls_paths=certs["trusted"])
    try:
        context = _transport.make_context(cafile=certs["trusted"]["ca.pem"])
        assert _transport.Request(http_agent="t", tls_context=lambda: context).open("GET", url + "/alive", timeout=5).getcode() == 200
        with pytest.raises(URLError) as info:
            _transport.Request(http_agent="t", tls_context=_transport.make_context).open("GET", url + "/alive", timeout=5)
        assert isinstance(info.value.reason, ssl.SSLError)
    finally:
        server.shutdown()


def test_validate_certs_false_accepts_any_certificate(certs, no_proxy_env):
    server, url, dummy = serve(tls_paths=certs["untrusted"])
    try:
        context = _transport.make_context(cafile=certs["trusted"]["ca.pem"], validate_certs=False)
        assert _transport.Request(http_agent="t", tls_context=lambda: context).open("GET", url + "/alive", timeout=5).getcode() == 200
    finally:
        server.shutdown()


def test_https_goes_through_the_environment_proxy(certs, monkeypatch, no_proxy_env):
    server, url, seen = serve(tls_paths=certs["trusted"])
    proxy, proxy_seen = proxy_server()
    monkeypatch.setenv("https_proxy", "http://" + proxy)
    try:
        context = _transport.make_context(cafile=certs["trusted"]["ca.pem"])
        assert _transport.Request(http_agent="t", tls_context=lambda: context).open("GET", url + "/alive", timeout=5).getcode() == 200
    finally:
        server.shutdown()
    assert proxy_seen[0].startswith("CONNECT 127.0.0.1:%d " % server.server_address[1])
    assert seen[0][1] == "/alive"


def test_the_tls_context_is_made_once_at_the_first_https_request(certs, no_proxy_env):
    made = []

    def tls_context():
        made.append(1)
        return _transport.make_context(cafile=certs["trusted"]["ca.pem"])

    server, url, dummy = serve(tls_paths=certs["trusted"])
    try:
        request = _transport.Request(http_agent="t", tls_context=tls_context)
        assert not made
        for unused in range(2):
            assert request.open("GET", url + "/alive", timeout=5).getcode() == 200
    finally:
        server.shutdown()
    assert len(made) == 1
