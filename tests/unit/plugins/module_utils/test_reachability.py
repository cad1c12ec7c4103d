"""The layer-by-layer probe of the cloud preflight: which layer a failure belongs to, proxies, CONNECT tunnels."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _reachability as reach
from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_preflight
# helpers.sim puts the simulator package (bwsim) on sys.path.
from helpers.connect_proxy import proxy_server
from helpers.sim import SIM_ROOT  # noqa: F401  pylint: disable=unused-import
from bwsim import tlsutil  # noqa: E402  pylint: disable=wrong-import-order


class _Alive(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
        body = b'"2026-11-29T10:00:00Z"'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    return {"trusted": tlsutil.make_certificates(str(directory)), "untrusted": tlsutil.make_untrusted_certificate(str(directory))}


def serve_tls(paths):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Alive)
    server.socket = tlsutil.server_context(paths).wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "https://127.0.0.1:%d" % server.server_address[1]


@pytest.fixture(scope="module")
def trusted(certs):
    server, url = serve_tls(certs["trusted"])
    yield url
    server.shutdown()


def test_dns_layer():
    with pytest.raises(reach.ProbeError) as failure:
        reach.request("https://identity.preflight.invalid", "GET", "/alive", 2)
    assert failure.value.layer == reach.DNS and "identity.preflight.invalid does not resolve" in failure.value.detail


def test_tcp_layer_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, not listening
    try:
        with pytest.raises(reach.ProbeError) as failure:
            reach.request("https://127.0.0.1:%d" % sock.getsockname()[1], "GET", "/alive", 2)
    finally:
        sock.close()
    assert failure.value.layer == reach.TCP and "refused" in failure.value.detail


def test_tls_layer_untrusted_certificate(certs, trusted):
    server, url = serve_tls(certs["untrusted"])
    try:
        with pytest.raises(reach.ProbeError) as failure:
            reach.request(url, "GET", "/alive", 2, cafile=certs["trusted"]["ca.pem"])
    finally:
        server.shutdown()
    assert failure.value.layer == reach.TLS and "does not verify" in failure.value.detail
    # Without a CA bundle the system trust store decides: it does not know the fleet CA either.
    with pytest.raises(reach.ProbeError) as failure:
        reach.request(trusted, "GET", "/alive", 2)
    assert failure.value.layer == reach.TLS


def test_http_layer(certs, trusted):
    assert reach.request(trusted, "GET", "/alive", 2, cafile=certs["trusted"]["ca.pem"])[0] == 200
    # A TLS server that hangs up after the handshake: DNS, TCP and TLS passed, HTTP did not.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    context = tlsutil.server_context(certs["trusted"])

    def hang_up():
        conn, dummy = listener.accept()
        tls = context.wrap_socket(conn, server_side=True)
        tls.close()

    threading.Thread(target=hang_up, daemon=True).start()
    with pytest.raises(reach.ProbeError) as failure:
        reach.request("https://127.0.0.1:%d" % listener.getsockname()[1], "GET", "/alive", 2, cafile=certs["trusted"]["ca.pem"])
    listener.close()
    assert failure.value.layer == reach.HTTP


def test_connect_tunnel_through_a_proxy(certs, trusted):
    address, seen = proxy_server()
    proxy = reach.parse_proxy("http://user:p%40ss@" + address, "", "test")
    assert proxy.url == "http://********@" + address
    status, body = reach.request(trusted, "GET", "/alive", 2, cafile=certs["trusted"]["ca.pem"], proxy=proxy)
    assert status == 200 and json.loads(body).endswith("Z")
    assert seen[0].startswith("CONNECT 127.0.0.1:%s HTTP/1.1" % trusted.rsplit(":", 1)[1])
    assert "Proxy-Authorization: Basic dXNlcjpwQHNz" in seen[0]  # user:p@ss


def test_proxy_layer_refused_connect(certs, trusted):
    address, dummy = proxy_server(b"403 Forbidden")
    with pytest.raises(reach.ProbeError) as failure:
        reach.request(trusted, "GET", "/alive", 2, cafile=certs["trusted"]["ca.pem"], proxy=reach.parse_proxy(address, "", "test"))
    assert failure.value.layer == reach.PROXY and failure.value.status == 403 and "answered CONNECT" in failure.value.detail
    with pytest.raises(reach.ProbeError) as failure:
        reach.request(trusted, "GET", "/alive", 2, proxy=reach.parse_proxy("http://proxy.preflight.invalid:3128", "", "test"))
    assert failure.value.layer == reach.DNS and "the proxy http://proxy.preflight.invalid:3128" in failure.value.detail


def test_which_proxy(tmp_path):
    config = tmp_path / "config.json"
    environ = {"https_proxy": "http://host-proxy:3128", "NO_PROXY": "internal.example"}
    proxy = reach.container_proxy(str(config), environ)
    assert (proxy.host, proxy.port, proxy.source) == ("host-proxy", 3128, "https_proxy in the environment")
    config.write_text(json.dumps({"proxies": {"default": {"httpsProxy": "docker-proxy:8080", "noProxy": ".bitwarden.eu"}}}))
    proxy = reach.container_proxy(str(config), environ)
    assert (proxy.host, proxy.port) == ("docker-proxy", 8080) and proxy.source.startswith("proxies.default.httpsProxy in ")
    assert reach.proxy_for("https://api.bitwarden.eu", proxy) is None
    assert reach.proxy_for("https://api.bitwarden.com", proxy) is proxy
    assert reach.container_proxy(str(tmp_path / "absent.json"), {}) is None
    with pytest.raises(ValueError, match="not an http:// proxy"):
        reach.parse_proxy("https://secure-proxy:443", "", "test")


def test_daemon_dropin(tmp_path):
    (tmp_path / "http-proxy.conf").write_text('[Service]\nEnvironment="HTTPS_PROXY=http://proxy:3128"\n')
    (tmp_path / "other.conf").write_text("[Service]\nLimitNOFILE=1024\n")
    assert reach.daemon_dropin_proxy(str(tmp_path / "*.conf")) == str(tmp_path / "http-proxy.conf")
    assert reach.daemon_dropin_proxy(str(tmp_path / "none" / "*.conf")) is None


def test_license_file_classification(tmp_path):
    path = tmp_path / "org.json"
    missing = bitwarden_preflight.check_license_file(str(path), "org")
    assert missing["layer"] == "file" and "Update license" in missing["message"]
    path.write_text('{"Id": "x"}\n}')
    stray = bitwarden_preflight.check_license_file(str(path), "org")
    assert stray["layer"] == "JSON" and "bitwarden/server#2082" in stray["message"] and str(path) in stray["message"]
    path.write_text('\ufeff{"Id": "x"}\n')
    assert bitwarden_preflight.check_license_file(str(path), "org")["ok"]
