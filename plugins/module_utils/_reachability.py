# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""One HTTPS request, layer by layer: DNS, TCP, proxy CONNECT, TLS, HTTP; and the proxy the containers would use.

The collection's HTTP client (_bitwarden_api) goes through urllib, which hides which layer failed and which proxy it
took; the cloud preflight has to name both. Standard library only.
"""

from __future__ import annotations

import base64
import collections
import glob
import http.client
import json
import re
import socket
import ssl
import time

from urllib.parse import unquote, urlencode, urlsplit
from urllib.request import proxy_bypass_environment

from ansible_collections.selfhost.bitwarden.plugins.module_utils._transport import BodyTooLarge, DeadlineExceeded, DeadlineSocket, read_body

DNS, TCP, PROXY, TLS, HTTP = "DNS", "TCP", "proxy", "TLS", "HTTP"

# docker.service drop-ins: the daemon's own proxy (image pulls). Containers do not inherit it.
DOCKER_DROPIN_GLOB = "/etc/systemd/system/docker.service.d/*.conf"
_DROPIN_PROXY = re.compile(r"^\s*Environment\s*=.*\bHTTPS?_PROXY\s*=", re.I | re.M)

Proxy = collections.namedtuple("Proxy", "url host port auth no_proxy source")


class ProbeError(Exception):
    """The request failed at ``layer`` (one of DNS, TCP, proxy, TLS, HTTP); ``detail`` says how."""

    def __init__(self, layer, detail, status=None):
        super(ProbeError, self).__init__("%s: %s" % (layer, detail))
        self.layer = layer
        self.detail = detail
        self.status = status


def shown_proxy(url):
    """The proxy URL without its credentials (user:password@ becomes ********@)."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1********@", url, flags=re.I)


def parse_proxy(url, no_proxy, source):
    """A Proxy for an http:// proxy URL (the scheme may be left out, as Docker and curl allow)."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ValueError("the proxy %s from %s is not an http:// proxy URL such as http://proxy.example.com:3128: this "
                         "check tunnels with CONNECT through http:// proxies only" % (shown_proxy(url), source))
    auth = None
    if parts.username is not None:
        pair = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
        auth = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    return Proxy(shown_proxy(url), parts.hostname, parts.port or 80, auth, no_proxy or "", source)


def docker_client_proxy(config_path):
    """(httpsProxy, noProxy) of a Docker client config.json's ``proxies.default``; Docker puts them into every container
    it creates as HTTPS_PROXY/NO_PROXY. (None, None) when the file or the setting is absent."""
    try:
        with open(config_path, "r") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return None, None
    default = ((config.get("proxies") or {}).get("default") or {}) if isinstance(config, dict) else {}
    return default.get("httpsProxy") or None, default.get("noProxy") or None


def daemon_dropin_proxy(pattern=DOCKER_DROPIN_GLOB):
    """The docker.service drop-in that sets a proxy for the daemon, or None."""
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path, "r") as handle:
                if _DROPIN_PROXY.search(handle.read()):
                    return path
        except OSError:
            continue
    return None


def container_proxy(config_path, environ):
    """The proxy for the server's cloud calls, or None: the Docker client config's (what the containers get), else the
    HTTPS_PROXY/https_proxy of this process's environment (the host's own proxy)."""
    url, no_proxy = docker_client_proxy(config_path)
    if url:
        return parse_proxy(url, no_proxy, "proxies.default.httpsProxy in %s" % config_path)
    for name in ("https_proxy", "HTTPS_PROXY"):
        if environ.get(name):
            return parse_proxy(environ[name], environ.get("no_proxy") or environ.get("NO_PROXY"), "%s in the environment" % name)
    return None


def proxy_for(url, proxy):
    """``proxy`` unless its no_proxy list exempts the host of ``url``."""
    if proxy is None:
        return None
    if proxy.no_proxy and proxy_bypass_environment(urlsplit(url).hostname, {"no": proxy.no_proxy}):
        return None
    return proxy


def _connect(host, port, timeout, what):
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeError(DNS, "%s does not resolve (%s)" % (what, exc.strerror or exc))
    error = None
    for family, socktype, proto, dummy, address in addresses:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    if isinstance(error, ConnectionRefusedError):
        detail = "connection to %s port %d refused" % (what, port)
    elif isinstance(error, (socket.timeout, TimeoutError)):
        detail = "no answer from %s port %d within %d s (packets dropped)" % (what, port, timeout)
    else:
        detail = "cannot connect to %s port %d (%s)" % (what, port, getattr(error, "strerror", None) or error)
    raise ProbeError(TCP, detail)


def _tunnel(sock, host, port, proxy):
    """CONNECT host:port through an http proxy; the proxy resolves and connects to the target itself."""
    lines = ["CONNECT %s:%d HTTP/1.1" % (host, port), "Host: %s:%d" % (host, port)]
    if proxy.auth:
        lines.append("Proxy-Authorization: %s" % proxy.auth)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = sock.recv(4096)  # the proxy says nothing after its answer until we send the TLS hello
            if not chunk:
                break
            head += chunk
    except OSError as exc:
        raise ProbeError(PROXY, "the proxy %s dropped the CONNECT to %s:%d (%s)" % (proxy.url, host, port, exc))
    match = re.match(br"HTTP/1\.[01] (\d{3})([^\r\n]*)", head)
    if not match:
        raise ProbeError(PROXY, "the proxy %s gave no HTTP answer to CONNECT %s:%d" % (proxy.url, host, port))
    status = int(match.group(1))
    if status // 100 != 2:
        raise ProbeError(PROXY, "the proxy %s answered CONNECT %s:%d with %d%s" % (
            proxy.url, host, port, status, match.group(2).decode("latin-1").rstrip()), status=status)


def open_tls(url, timeout, cafile=None, proxy=None):
    """A verified TLS socket to the host of ``url`` (through ``proxy`` when given), or ProbeError naming the layer."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 443
    if proxy is not None:
        sock = _connect(proxy.host, proxy.port, timeout, "the proxy %s" % proxy.url)
    else:
        sock = _connect(host, port, timeout, host)
    try:
        if proxy is not None:
            _tunnel(sock, host, port, proxy)
        context = ssl.create_default_context(cafile=cafile)
        try:
            return context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raise ProbeError(TLS, "the certificate of %s does not verify (%s)" % (host, exc.verify_message))
        except (ssl.SSLError, OSError) as exc:
            raise ProbeError(TLS, "no TLS session with %s (%s)" % (host, exc))
    except ProbeError:
        sock.close()
        raise


def request(url, method, path, timeout, cafile=None, proxy=None, form=None):
    """(status, body bytes) of one HTTPS request to ``url`` + ``path``; ProbeError naming the layer that failed.
    The HTTP answer must be complete ``timeout`` seconds after the request started."""
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    tls = open_tls(url, timeout, cafile, proxy)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout)
    # Connected, tunnelled and verified above: http.client only speaks HTTP on it, up to the deadline.
    conn.sock = DeadlineSocket(tls, deadline)
    headers = {"Accept": "application/json", "User-Agent": "selfhost.bitwarden"}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    try:
        conn.request(method, parts.path.rstrip("/") + path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, read_body(response)
    except DeadlineExceeded:
        raise ProbeError(HTTP, "no complete HTTP answer from %s within %d s" % (parts.hostname, timeout))
    except BodyTooLarge as exc:
        raise ProbeError(HTTP, "%s sent more than the cloud does (%s)" % (parts.hostname, exc))
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeError(HTTP, "no HTTP answer from %s (%s)" % (parts.hostname, exc.__class__.__name__))
    finally:
        conn.close()
