"""The client's standard-library transport against real local HTTP(S) servers and a CONNECT proxy."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
import time

from urllib.error import URLError

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _bitwarden_api as api
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _reachability, _transport
from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_wait_for_server

from helpers.module_args import patch_module_args
from unit.plugins.module_utils.bitwarden_fakes import run_module

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
        status, body, headers = _transport.Request(http_agent="selfhost.bitwarden", tls_context=no_tls).exchange(
            "POST", url + "/api/x", data='{"a": "é"}', headers={"Content-Type": "application/json"}, timeout=5)
        assert status == 200 and body == b'{"ok": true}'
        assert headers["Content-Type"] == "application/json"
    finally:
        server.shutdown()
    method, path, headers, body = seen[0]
    assert (method, path, body) == ("POST", "/api/x", '{"a": "é"}'.encode("utf-8"))
    assert headers["User-Agent"] == "selfhost.bitwarden"


def test_an_error_status_comes_back_with_its_body(no_proxy_env):
    server, url, dummy = serve()
    try:
        status, body, dummy = _transport.Request(http_agent="t", tls_context=no_tls).exchange("GET", url + "/fail", timeout=5)
        assert status == 400 and body == b'{"ok": true}'
    finally:
        server.shutdown()


def test_get_follows_a_redirect_without_the_bearer_token_to_another_host(no_proxy_env):
    other, other_url, other_seen = serve()
    server, url, seen = serve(target=other_url.replace("127.0.0.1", "localhost"))
    try:
        request = _transport.Request(http_agent="t", tls_context=no_tls)
        status, dummy, dummy = request.exchange("GET", url + "/moved", headers={"Authorization": "Bearer s3cret"}, timeout=5)
        assert status == 200
    finally:
        server.shutdown()
        other.shutdown()
    assert seen[0][2]["Authorization"] == "Bearer s3cret"
    assert other_seen[0][1] == "/landed" and "Authorization" not in other_seen[0][2]


def test_a_write_is_never_redirected(no_proxy_env):
    other, other_url, other_seen = serve()
    server, url, dummy = serve(target=other_url)
    try:
        status, dummy, headers = _transport.Request(http_agent="t", tls_context=no_tls).exchange("POST", url + "/moved", data="{}", timeout=5)
        assert status == 302 and headers["Location"] == other_url + "/landed"
    finally:
        server.shutdown()
        other.shutdown()
    assert not other_seen


def test_tls_is_verified_against_ca_path_only(certs, no_proxy_env):
    server, url, dummy = serve(tls_paths=certs["trusted"])
    try:
        context = _transport.make_context(cafile=certs["trusted"]["ca.pem"])
        assert _transport.Request(http_agent="t", tls_context=lambda: context).exchange("GET", url + "/alive", timeout=5)[0] == 200
        with pytest.raises(URLError) as info:
            _transport.Request(http_agent="t", tls_context=_transport.make_context).exchange("GET", url + "/alive", timeout=5)
        assert isinstance(info.value.reason, ssl.SSLError)
    finally:
        server.shutdown()


def test_validate_certs_false_accepts_any_certificate(certs, no_proxy_env):
    server, url, dummy = serve(tls_paths=certs["untrusted"])
    try:
        context = _transport.make_context(cafile=certs["trusted"]["ca.pem"], validate_certs=False)
        assert _transport.Request(http_agent="t", tls_context=lambda: context).exchange("GET", url + "/alive", timeout=5)[0] == 200
    finally:
        server.shutdown()


def test_https_goes_through_the_environment_proxy(certs, monkeypatch, no_proxy_env):
    server, url, seen = serve(tls_paths=certs["trusted"])
    proxy, proxy_seen = proxy_server()
    monkeypatch.setenv("https_proxy", "http://" + proxy)
    try:
        context = _transport.make_context(cafile=certs["trusted"]["ca.pem"])
        assert _transport.Request(http_agent="t", tls_context=lambda: context).exchange("GET", url + "/alive", timeout=5)[0] == 200
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
            assert request.exchange("GET", url + "/alive", timeout=5)[0] == 200
    finally:
        server.shutdown()
    assert len(made) == 1


# -- issue 22 items 4, 6, 13 and issue 25 item 5: redirects, deadlines, size limit, proxies, messages ------------------

ACCESS = "eyJ.transport-test-access-token.sig"


def raw_server(script, tls_paths=None):
    """A TCP (or TLS) server on 127.0.0.1 that reads a request head, then lets ``script(conn, stop)`` answer; stop()
    ends it."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)

    def handle(conn):
        try:
            if tls_paths:
                conn = tlsutil.server_context(tls_paths).wrap_socket(conn, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            script(conn, stop)
        except OSError:
            pass  # the client gave up: what the tests want
        finally:
            conn.close()

    def accept():
        while not stop.is_set():
            try:
                conn, dummy = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()

    def close():
        stop.set()
        listener.close()
    return "%s://127.0.0.1:%d" % ("https" if tls_paths else "http", listener.getsockname()[1]), close


def trickle(head, body=b"", every=0.05):
    """Send ``head`` at once and then ``body`` a byte at a time (or, with an empty body, the head itself that way)."""
    def script(conn, stop):
        fast, slow = (head, body) if body else (b"", head)
        conn.sendall(fast)
        for index in range(len(slow)):
            if stop.is_set():
                return
            conn.sendall(slow[index:index + 1])
            time.sleep(every)
    return script


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answer_server(routes):
    """An HTTP server answering ``routes``: path -> (status, headers, body)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        seen = []

        def _answer(self):
            self.seen.append((self.command, self.path, dict(self.headers)))
            status, headers, body = routes[self.path]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815  pylint: disable=invalid-name

        def log_message(self, *args):  # pylint: disable=arguments-differ
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "http://127.0.0.1:%d" % server.server_address[1], Handler.seen


@pytest.fixture(name="client")
def fixture_client():
    """client(server_url, read_only=False, **options): a BitwardenClient on the real transport."""
    with contextlib.ExitStack() as stack:
        def make(url, read_only=False, **options):
            args = dict({"server_url": url, "access_token": ACCESS, "timeout": 5, "retry_deadline": 0}, **options)
            stack.enter_context(patch_module_args(args))
            module = AnsibleModule(argument_spec=api.api_argument_spec(), supports_check_mode=True, **api.api_module_kwargs())
            return api.BitwardenClient(module, read_only=read_only)
        yield make


@pytest.mark.parametrize("old, new, keeps", [
    ("https://bw.example.test/api/x", "https://bw.example.test/api/y", True),
    ("https://bw.example.test/api/x", "https://bw.example.test:443/api/y", True),
    ("http://bw.example.test/api/x", "https://bw.example.test/api/y", True),   # a server that forces https
    ("https://bw.example.test/api/x", "http://bw.example.test/api/y", False),  # the downgrade of issue 22 item 4
    ("https://bw.example.test/api/x", "http://bw.example.test:443/api/y", False),
    ("https://bw.example.test/api/x", "https://bw.example.test:8443/api/y", False),
    ("https://bw.example.test/api/x", "https://other.example.test/api/y", False),
    ("http://bw.example.test:8080/api/x", "https://bw.example.test/api/y", False),
])
def test_only_the_same_origin_or_an_upgrade_keeps_the_token(old, new, keeps):
    assert _transport.keeps_credentials(old, new) is keeps


def test_a_get_redirected_from_https_to_http_is_refused_and_the_token_never_sent(certs, client, no_proxy_env):
    plain, plain_url, plain_seen = serve()
    server, url, seen = serve(tls_paths=certs["trusted"], target=plain_url)
    try:
        with pytest.raises(api.BitwardenApiError) as info:
            client(url, ca_path=certs["trusted"]["ca.pem"]).send("GET", "/moved")
    finally:
        server.shutdown()
        plain.shutdown()
    assert "redirected from https to plain http (%s/landed): not followed" % plain_url in info.value.msg
    assert seen[0][2]["Authorization"] == "Bearer " + ACCESS and not plain_seen


def test_a_post_redirect_names_its_target(client, no_proxy_env):
    other, other_url, other_seen = serve()
    server, url, dummy = serve(target=other_url)
    try:
        with pytest.raises(api.BitwardenApiError) as info:
            client(url).send("POST", "/moved", body={})
    finally:
        server.shutdown()
        other.shutdown()
    assert "POST /moved was redirected (HTTP 302) to %s/landed: a write is never sent on" % other_url in info.value.msg
    assert not other_seen


def test_trickling_headers_end_at_the_deadline(no_proxy_env):
    url, close = raw_server(trickle(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 2000 + b"\r\n\r\n"))
    try:
        with pytest.raises(_transport.DeadlineExceeded):
            _transport.Request(http_agent="t", tls_context=no_tls).exchange("GET", url + "/api/alive", timeout=1)
    finally:
        close()


def test_a_trickling_body_ends_at_the_deadline(no_proxy_env):
    url, close = raw_server(trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2002\r\n\r\n",
                                    b'"' + b"a" * 2000 + b'"'))
    try:
        with pytest.raises(_transport.DeadlineExceeded):
            _transport.Request(http_agent="t", tls_context=no_tls).exchange("GET", url + "/api/alive", timeout=1)
    finally:
        close()


def test_a_trickling_server_gets_one_timeout_per_attempt_in_the_client_message(client, no_proxy_env):
    url, close = raw_server(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 2002\r\n\r\n", b'"' + b"a" * 2000 + b'"'))
    try:
        with pytest.raises(api.BitwardenApiError) as info:
            client(url, timeout=1).send("GET", "/api/alive", auth=False)
    finally:
        close()
    assert "GET /api/alive: no answer within 1 s after 1 attempt(s)" in info.value.msg


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (_transport.MAX_BODY + 1),  # says so at once
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",                                 # no length: counted while read
])
def test_a_body_beyond_the_limit_is_not_read(head, client, no_proxy_env):
    def script(conn, stop):
        conn.sendall(head)
        block = b"x" * 65536
        for dummy in range(_transport.MAX_BODY // len(block) + 2):
            if stop.is_set():
                return
            conn.sendall(block)
    url, close = raw_server(script)
    try:
        with pytest.raises(api.BitwardenApiError) as info:
            client(url).send("GET", "/api/organizations", auth=False)
    finally:
        close()
    assert "sent the answer is larger than 8 MiB, where the Bitwarden API answers a few kB" in info.value.msg


@pytest.mark.parametrize("status, content_type, body, shown", [
    (200, "text/plain", b"Please sign in to the guest network", "text/plain that is not JSON (35 bytes: 'Please sign in"),
    (200, None, b"OK\x00\x1b[31m", "no Content-Type that is not JSON (8 bytes: 'OK [31m')"),
])
def test_a_non_json_answer_names_what_answered_and_is_never_a_state(client, no_proxy_env, status, content_type, body, shown):
    headers = {"Content-Type": content_type} if content_type else {}
    server, url, dummy = answer_server({"/api/organizations/connections/enabled": (status, headers, body)})
    try:
        with pytest.raises(api.BitwardenApiError) as info:
            client(url).cloud_communication_enabled()
    finally:
        server.shutdown()
    assert "GET /api/organizations/connections/enabled: %s answered HTTP %d with %s" % (url, status, shown) in info.value.msg
    assert "a captive portal" in info.value.msg


@pytest.mark.parametrize("body, expected", [(b"false", False), (b"true", True)])
def test_cloud_communication_is_read_from_json_only(client, no_proxy_env, body, expected):
    server, url, dummy = answer_server({"/api/organizations/connections/enabled": (200, {"Content-Type": "application/json"}, body)})
    try:
        assert client(url).cloud_communication_enabled() is expected
    finally:
        server.shutdown()


def test_a_json_answer_other_than_a_boolean_is_an_error(client, no_proxy_env):
    server, url, dummy = answer_server({"/api/organizations/connections/enabled": (200, {}, b'{"status": "ok"}')})
    try:
        with pytest.raises(api.BitwardenApiError) as info:
            client(url).cloud_communication_enabled()
    finally:
        server.shutdown()
    assert "answered {\"status\": \"ok\"} where the Bitwarden API answers true or false" in info.value.msg


def test_https_against_a_plain_http_port_says_so(client, no_proxy_env):
    server, url, dummy = serve()
    tls_url = url.replace("http://", "https://")
    try:
        with pytest.raises(api.BitwardenApiError) as info:
            client(tls_url).send("GET", "/alive", auth=False)
    finally:
        server.shutdown()
    assert "the server speaks plain HTTP on this port" in info.value.msg and "use http:// or the TLS port" in info.value.msg
    assert "ca_path" not in info.value.msg


def test_a_dead_proxy_is_named_not_the_server(client, monkeypatch, no_proxy_env):
    server, url, seen = serve()
    dead = free_port()
    monkeypatch.setenv("http_proxy", "http://squid:pr0xy-pass@127.0.0.1:%d" % dead)
    try:
        with pytest.raises(api.BitwardenApiError) as info:
            client(url).send("GET", "/alive", auth=False)
    finally:
        server.shutdown()
    assert ("GET /alive: the proxy http://********@127.0.0.1:%d (from the https_proxy/http_proxy environment) refused the "
            "connection" % dead) in info.value.msg
    assert "pr0xy-pass" not in info.value.msg and not seen


@pytest.mark.parametrize("no_proxy", ["127.0.0.0/8", "10.0.0.0/8, 127.0.0.1/32", "::1/128,127.0.0.0/24"])
def test_no_proxy_in_cidr_form_is_honoured(monkeypatch, no_proxy_env, no_proxy):
    server, url, seen = serve()
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:%d" % free_port())
    monkeypatch.setenv("no_proxy", no_proxy)
    try:
        assert _transport.Request(http_agent="t", tls_context=no_tls).exchange("GET", url + "/alive", timeout=5)[0] == 200
    finally:
        server.shutdown()
    assert seen[0][1] == "/alive"


def test_a_cidr_no_proxy_does_not_cover_host_names_or_other_networks():
    assert not _transport.no_proxy_cidr_match("bw.example.test", "127.0.0.0/8")
    assert not _transport.no_proxy_cidr_match("192.168.1.5", "10.0.0.0/8,bad/cidr")
    assert _transport.no_proxy_cidr_match("[::1]", "::1/128")


def test_a_read_only_client_reports_a_refused_connection_after_one_short_retry(client, no_proxy_env):
    url = "http://127.0.0.1:%d" % free_port()
    with pytest.raises(api.BitwardenApiError) as info:
        client(url, read_only=True, retry_deadline=600).send("GET", "/api/config", auth=False)
    assert "GET /api/config: connection refused after 2 attempt(s)" in info.value.msg


SLOW_ALIVE = trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2002\r\n\r\n",
                     b'"' + b"a" * 2000 + b'"')


def test_wait_for_server_keeps_its_total_timeout_against_a_trickling_server(capsys, no_proxy_env):
    url, close = raw_server(SLOW_ALIVE)
    try:
        failed, result, dummy = run_module(bitwarden_wait_for_server.main, {"server_url": url, "timeout": 3, "delay": 0.5},
                                           capsys)
    finally:
        close()
    assert failed and "was not ready within 3 s: GET /api/alive never succeeded" in result["msg"], result
    assert "no answer within" in result["msg"]


def test_the_preflight_request_has_one_deadline_for_the_http_answer(certs, no_proxy_env):
    url, close = raw_server(SLOW_ALIVE, tls_paths=certs["trusted"])
    try:
        with pytest.raises(_reachability.ProbeError) as info:
            _reachability.request(url, "GET", "/alive", 2, cafile=certs["trusted"]["ca.pem"])
    finally:
        close()
    assert info.value.layer == _reachability.HTTP
    assert info.value.detail == "no complete HTTP answer from 127.0.0.1 within 2 s"


def test_the_preflight_reads_at_most_the_size_limit(certs, no_proxy_env):
    def script(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        block = b"x" * 65536
        for dummy in range(_transport.MAX_BODY // len(block) + 2):
            if stop.is_set():
                return
            conn.sendall(block)
    url, close = raw_server(script, tls_paths=certs["trusted"])
    try:
        with pytest.raises(_reachability.ProbeError) as info:
            _reachability.request(url, "GET", "/alive", 10, cafile=certs["trusted"]["ca.pem"])
    finally:
        close()
    assert info.value.detail == "127.0.0.1 sent more than the cloud does (the answer is larger than 8 MiB)"
