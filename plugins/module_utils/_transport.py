# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""The HTTP transport under ``_bitwarden_api``, on the standard library only.

``ansible.module_utils.urls`` costs a module about 50 ms of start-up (it imports cryptography when present) for
features the client does not use (client certificates, GSSAPI, channel binding). This keeps what the client needs
from it: proxies from the environment (``https_proxy``, ``no_proxy``), redirects followed only for GET and HEAD, a
TLS context made once per module run (and only when https is used), and HTTP errors raised as ``urllib.error.HTTPError``.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.request

from urllib.parse import urlsplit

SAFE_REDIRECT_METHODS = frozenset(("GET", "HEAD"))


def make_context(cafile=None, validate_certs=True):
    """A client TLS context: only ``cafile`` when given, else the system's CA store; no checks without validate_certs."""
    if not validate_certs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cafile)


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects for GET and HEAD only; a write is never re-sent elsewhere (or turned into a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.get_method() not in SAFE_REDIRECT_METHODS:
            return None  # urllib then raises HTTPError with the redirect's status
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            # The bearer token is for this server only.
            new.remove_header("Authorization")
        return new


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
        return self.do_open(http.client.HTTPSConnection, req, context=self._context)


class Request:
    """One opener for a module run; ``open`` returns the response or raises HTTPError/URLError/OSError.

    ``tls_context``: a callable that returns the ssl.SSLContext for https (called once, when first needed).
    """

    def __init__(self, http_agent, tls_context):
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler(), _SafeRedirects(), _HTTPS(tls_context))
        self._agent = http_agent

    def open(self, method, url, data=None, headers=None, timeout=None):
        if isinstance(data, str):
            data = data.encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        request.add_header("User-agent", self._agent)
        return self._opener.open(request, timeout=timeout)
