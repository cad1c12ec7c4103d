# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""The HTTP transport under ``_bitwarden_api``, on the standard library only.

``ansible.module_utils.urls`` costs a module about 50 ms of start-up (it imports cryptography when present) for
features the client does not use (client certificates, GSSAPI, channel binding). This keeps what the client needs
from it: proxies from the environment (``https_proxy``, ``no_proxy``, with CIDR entries too), redirects followed only
for GET and HEAD and never from https to http, a TLS context made once per module run (and only when https is used).

Every exchange has one deadline for connect, headers and body: socket timeouts alone bound each read, not a server
that trickles a byte at a time. Bodies are read up to a size limit.
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
import socket
import ssl
import time
import http.client
import urllib.request

from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

SAFE_REDIRECT_METHODS = frozenset(("GET", "HEAD"))
# The API's answers are a few kB; a larger one is a download page or a misbehaving proxy, not something to hold in
# memory on the managed host.
MAX_BODY = 8 * 1024 * 1024
CHUNK = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}


class DeadlineExceeded(socket.timeout):
    """The whole exchange (connect, headers, body) took longer than its timeout."""


class BodyTooLarge(Exception):
    def __init__(self, limit):
        super().__init__("the answer is larger than %d MiB" % (limit // (1024 * 1024)))
        self.limit = limit


class InsecureRedirect(URLError):
    """An https URL redirected to plain http: not followed (the request's headers would travel unencrypted)."""

    def __init__(self, location):
        super().__init__("redirected from https to plain http (%s)" % location)
        self.location = location


class ProxyFailed(URLError):
    """The connection to the proxy from the environment failed; ``reason`` is the socket error, ``proxy`` the proxy
    URL without credentials."""

    def __init__(self, reason, proxy):
        super().__init__(reason)
        self.proxy = proxy


def shown_url(url):
    """The URL without user:password@."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1********@", url, flags=re.I)


def no_proxy_cidr_match(host, no_proxy):
    """Whether an IP address ``host`` is in a CIDR entry (``10.0.0.0/8``) of a no_proxy list; urllib ignores those.
    Host names are not resolved for this (as curl does): a CIDR entry covers servers addressed by IP."""
    try:
        address = ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return False
    for entry in (no_proxy or "").split(","):
        entry = entry.strip()
        if "/" not in entry:
            continue
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def origin(url):
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def keeps_credentials(old_url, new_url):
    """Whether a redirect may carry the bearer token on: to the same scheme, host and port, or from http to https on
    the same host's default ports (a server that forces https). Never to another host, never from https to http."""
    old, new = origin(old_url), origin(new_url)
    return old == new or (old[1] == new[1] and (old[0], old[2], new[0], new[2]) == ("http", 80, "https", 443))


def make_context(cafile=None, validate_certs=True):
    """A client TLS context: only ``cafile`` when given, else the system's CA store; no checks without validate_certs."""
    if not validate_certs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cafile)


class _DeadlineIO(io.RawIOBase):
    """The raw reader under http.client's response: each read waits at most until the deadline."""

    def __init__(self, sock, deadline):
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # counts as a reference: the socket stays open while we read
        self._deadline = deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("the answer was not complete before the deadline")
        self._sock.settimeout(remaining)
        try:
            return self._raw.readinto(buffer)
        except socket.timeout:  # the socket waited for what was left: the deadline passed
            raise DeadlineExceeded("the answer was not complete before the deadline") from None

    def close(self):
        self._raw.close()
        super().close()


class DeadlineSocket:
    """A connected socket whose response reads end at ``deadline`` (time.monotonic()); everything else as the socket."""

    def __init__(self, sock, deadline):
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode="r", *args, **kwargs):  # pylint: disable=unused-argument
        if "w" in mode:
            return self._sock.makefile(mode, *args, **kwargs)
        return io.BufferedReader(_DeadlineIO(self._sock, self._deadline))

    def sendall(self, data, *args):
        self._sock.settimeout(max(0.001, self._deadline - time.monotonic()))
        return self._sock.sendall(data, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def read_body(response, limit=MAX_BODY):
    """The whole body of ``response`` (an http.client or urllib response), in chunks, at most ``limit`` bytes."""
    length = response.headers.get("Content-Length") if response.headers else None
    if length and length.strip().isdigit() and int(length) > limit:
        raise BodyTooLarge(limit)
    chunks = []
    total = 0
    while True:
        chunk = response.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)


def _connection_class(base, req):
    """``base`` (HTTP(S)Connection) that connects within the request's deadline and reads through a DeadlineSocket."""

    class Connection(base):
        def connect(self):
            deadline = req.selfhost_deadline
            self.timeout = max(0.001, deadline - time.monotonic())
            try:
                super().connect()
            except OSError as exc:
                proxy = getattr(req, "selfhost_proxy", None)
                # Only the proxy's own failures: a TLS error is the server's (the tunnel reached it).
                if proxy and not isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
                    raise ProxyFailed(exc, proxy)
                raise
            self.sock = DeadlineSocket(self.sock, deadline)

    return Connection


class _Proxies(urllib.request.ProxyHandler):
    """The environment's proxies; no_proxy CIDR entries are honoured and the proxy taken is noted on the request."""

    def proxy_open(self, req, proxy, type):  # pylint: disable=redefined-builtin
        if no_proxy_cidr_match(urlsplit(req.full_url).hostname, _no_proxy()):
            return None  # the next handler connects directly
        req.selfhost_proxy = shown_url(proxy if "://" in proxy else "http://" + proxy)
        return super().proxy_open(req, proxy, type)


def _no_proxy():
    return os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects for GET and HEAD only; a write is never re-sent elsewhere (or turned into a GET). Never from
    https to http. The bearer token goes only to the same scheme, host and port."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.get_method() not in SAFE_REDIRECT_METHODS:
            return None  # urllib then raises HTTPError with the redirect's status
        if urlsplit(req.full_url).scheme.lower() == "https" and urlsplit(newurl).scheme.lower() != "https":
            raise InsecureRedirect(shown_url(newurl))
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.selfhost_deadline = req.selfhost_deadline
            if not keeps_credentials(req.full_url, newurl):
                new.remove_header("Authorization")
        return new


class _HTTP(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_connection_class(http.client.HTTPConnection, req), req)


class _HTTPS(urllib.request.HTTPSHandler):
    """HTTPS with the client's TLS context, made at the first https request: loading a CA store costs ~20 ms, which an
    http:// server (that never redirects to https) does not need to pay."""

    # Not HTTPSHandler.__init__: it would load the default CA store at once.
    def __init__(self, tls_context):  # pylint: disable=super-init-not-called
        urllib.request.AbstractHTTPHandler.__init__(self)  # pylint: disable=non-parent-init-called
        self._tls_context = tls_context
        self._context = None

    def https_open(self, req):
        if self._context is None:
            self._context = self._tls_context()
        return self.do_open(_connection_class(http.client.HTTPSConnection, req), req, context=self._context)


class Request:
    """One opener for a module run.

    ``exchange`` returns (status, body bytes, headers) for any HTTP answer, or raises URLError/OSError/
    http.client.HTTPException (DeadlineExceeded past ``timeout``, BodyTooLarge, InsecureRedirect, ProxyFailed).
    ``tls_context``: a callable that returns the ssl.SSLContext for https (called once, when first needed).
    """

    def __init__(self, http_agent, tls_context):
        self._opener = urllib.request.build_opener(_Proxies(), _HTTP(), _SafeRedirects(), _HTTPS(tls_context))
        self._agent = http_agent

    def exchange(self, method, url, data=None, headers=None, timeout=30, max_body=MAX_BODY):
        """One request with one deadline (``timeout`` seconds) for connect, headers and body, redirects included."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        request.add_header("User-agent", self._agent)
        request.selfhost_deadline = time.monotonic() + timeout
        try:
            response = self._opener.open(request, timeout=timeout)
        except HTTPError as exc:
            if exc.fp is None:
                return exc.code, b"", exc.headers
            response = exc
        try:
            return response.getcode(), read_body(response, max_body), response.headers
        finally:
            response.close()
