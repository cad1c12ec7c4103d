# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""The collection's one HTTP client for the self-hosted Bitwarden API.

Covers the shared argument spec, reading the server URL from ``bwdata/config.yml``, the access token
(contract section 1), retries with backoff under an overall deadline, and one actionable message per
failure class. Secrets are registered with the module (``no_log_values``) and scrubbed from every message.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import time
import uuid

from urllib.error import HTTPError, URLError
from urllib.parse import quote, quote_plus, urlencode, urlsplit, urlunsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible_collections.selfhost.bitwarden.plugins.module_utils._transport import (
    BodyTooLarge,
    InsecureRedirect,
    ProxyFailed,
    Request,
    make_context,
)

# Accepted by every server version; servers from 2026.3.0 require a System.Version-parsable value (contract 1.3).
CLIENT_VERSION = "2026.8.0"
DEVICE_TYPE = "22"  # DeviceType.Server
DEVICE_NAME = "selfhost.bitwarden"
DEFAULT_BWDATA = "/opt/bitwarden/bwdata"

# Route families that older servers do not have (contract section 8): a 404 there may mean "too old".
LICENSE_SYNC_MIN_VERSION = "2023.2.0"
CONNECTIONS_MIN_VERSION = "2022.5.0"

# Status codes that mean the request was not processed (gateway, throttling, warm-up): safe to resend.
RETRY_ALWAYS = frozenset((408, 429, 502, 503))
# A 504 may come after the backend did the work: resend only requests that are safe to repeat.
RETRY_IF_IDEMPOTENT = frozenset((504,))
IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "PUT", "DELETE"))

MASK = "********"
# OpenSSL's words for a ClientHello answered in plain HTTP (1.1/3.0: wrong version number; 3.2+: record layer failure,
# packet length too long; an HTTP server's "400 The plain HTTP request was sent to HTTPS port" is the reverse case).
PLAIN_HTTP = re.compile(r"WRONG_VERSION_NUMBER|wrong version number|RECORD_LAYER_FAILURE|record layer failure|"
                        r"PACKET_LENGTH_TOO_LONG|packet length too long|HTTP_REQUEST|http request", re.I)
# A read-only module (a report) waits this long for a server that refuses connections, then reports it down.
READ_ONLY_REFUSED_RETRIES = 1
MAX_SECONDS = 86400  # a day: more is a typo (and far more makes the socket layer raise a raw OverflowError)
# Path ends that mean server_url points below the base URL (the modules add /api and /identity themselves).
SERVICE_PATHS = ("/api", "/identity", "/admin", "/alive", "/connect/token", "/vault")
# A token is printable ASCII: anything else cannot go into an HTTP header (CR/LF would split the request).
TOKEN_UNSAFE = re.compile(r"[^\x21-\x7e]")
HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
USER_TYPES = {0: "Owner", 1: "Admin", 2: "User", 4: "Custom"}  # OrganizationUserType (contract 1.7)
NOT_JSON = object()  # a body that does not parse as JSON (see BitwardenClient.not_json)


def api_argument_spec():
    """Options of the ``selfhost.bitwarden.api`` doc fragment."""
    return dict(
        server_url=dict(type="str", fallback=(env_fallback, ["BITWARDEN_SERVER_URL"])),
        bwdata_path=dict(type="path", default=DEFAULT_BWDATA),
        client_id=dict(type="str", fallback=(env_fallback, ["BITWARDEN_CLIENT_ID"])),
        # raw, not str: str would turn a list or a number into its Python spelling and send that as the secret.
        client_secret=dict(type="raw", no_log=True, fallback=(env_fallback, ["BITWARDEN_CLIENT_SECRET"])),
        access_token=dict(type="raw", no_log=True, fallback=(env_fallback, ["BITWARDEN_ACCESS_TOKEN"])),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="int", default=30),
        retry_deadline=dict(type="int", default=60),
    )


def api_module_kwargs():
    """AnsibleModule keyword arguments every API module shares."""
    return dict(required_together=[("client_id", "client_secret")])


class BitwardenApiError(Exception):
    """A failed API call, with a message that says what to fix.

    ``status`` is the HTTP status (None for transport failures), ``server_message`` the (scrubbed) text the
    server gave, ``error`` the OAuth error code of a token response and ``ambiguous`` tells whether the
    request may have been processed although no answer arrived (timeout, reset, 504, 500).
    """

    def __init__(self, msg, status=None, server_message=None, error=None, ambiguous=False):
        super(BitwardenApiError, self).__init__(msg)
        self.msg = msg
        self.status = status
        self.server_message = server_message
        self.error = error
        self.ambiguous = ambiguous


class Response:
    def __init__(self, status, data, headers):
        self.status = status
        self.data = data
        self.headers = headers


def normalize_server_url(url):
    """Lower-case scheme and host, no default port, no trailing slash: one spelling per server."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = "[%s]" % host
    port = parts.port
    if port and not ((scheme == "https" and port == 443) or (scheme == "http" and port == 80)):
        host = "%s:%d" % (host, port)
    return urlunsplit((scheme, host, parts.path.rstrip("/"), "", ""))


def device_identifier(server_url, client_id):
    """Stable per server and API key, so the server registers one device and sends no new-device e-mail per run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "selfhost.bitwarden:%s:%s" % (normalize_server_url(server_url), client_id)))


def read_config_url(bwdata_path):
    """The top-level ``url:`` of ``bwdata/config.yml`` (a flat file written by Setup); no YAML library needed."""
    path = os.path.join(bwdata_path, "config.yml")
    with open(path, "r") as handle:
        for line in handle:
            match = re.match(r"^url:[ \t]*(.*?)[ \t]*$", line.rstrip("\r\n"))
            if not match:
                continue
            value = match.group(1)
            if value[:1] in ("'", '"'):
                quote_char = value[0]
                end = value.find(quote_char, 1)
                return value[1:end] if end > 0 else None
            return re.sub(r"[ \t]+#.*$", "", value) or None
    return None


def secret_forms(secret):
    """Every spelling of a secret that a message can carry: as given and trimmed, each URL-encoded, as Python writes
    it in a repr of str or bytes (``Invalid header value b'Bearer ...\\r'``) and JSON-escaped."""
    forms = set()
    for text in (secret, secret.strip()):
        forms.update((text, quote(text, safe=""), quote(text), quote_plus(text), repr(text)[1:-1],
                      repr(text.encode("utf-8"))[2:-1], json.dumps(text)[1:-1]))
        try:
            forms.add(repr(text.encode("latin-1"))[2:-1])  # http.client encodes header values as Latin-1
        except UnicodeEncodeError:
            pass
    return set(form for form in forms if form)


# What to put in a secret option found empty (the role checks its variables before, naming billing_sync_*).
EMPTY_SECRET_FIX = {
    "client_secret": "set it to the secret of the owner's personal API key whose id is client_id "
                     "(role: billing_sync_client_secret)",
    "access_token": "set it to a bearer token of the owner, or leave it out and set client_id and client_secret",
    "billing_sync_token": "set it to the token itself (an empty value would remove the stored one)",
}


def check_token(name, value):
    """(token, warning) for a secret option: a non-empty string of printable ASCII, surrounding whitespace trimmed.

    Raises ValueError naming the option. Bitwarden's tokens (API key secrets, billing sync keys, JWTs) never contain
    whitespace, so trimming what a YAML block scalar or a copy adds loses nothing; anything else is rejected rather
    than guessed at, since a converted list or number would be stored or sent as a different secret.
    """
    if not isinstance(value, str):
        raise ValueError("%s must be a string, not a %s: quote it in the inventory or vault (a number or a list is "
                         "not a token)" % (name, type(value).__name__))
    token = value.strip()
    if not token:
        raise ValueError("%s must not be empty: %s" % (name, EMPTY_SECRET_FIX.get(name, "set it to the token itself")))
    bad = TOKEN_UNSAFE.search(token)
    if bad:
        raise ValueError("%s contains a control character, space or non-ASCII letter at position %d, which no "
                         "Bitwarden token has and no HTTP header may carry: copy the token again"
                         % (name, bad.start() + 1))
    warning = None
    if token != value:
        warning = ("%s had leading or trailing whitespace (a YAML block scalar adds a newline), which was removed: "
                   "store the token without it" % name)
    return token, warning


def check_seconds(name, value, minimum):
    """Raise ValueError unless ``value`` is a whole number of seconds the socket layer accepts."""
    if value is not None and not minimum <= value <= MAX_SECONDS:
        raise ValueError("%s must be from %d to %d seconds, not %d: set a number of seconds in that range"
                         % (name, minimum, MAX_SECONDS, value))


def check_server_url(url):
    """The normalized base URL, or ValueError naming server_url and the fix."""
    url = url.strip()
    example = "the server's base URL, like https://bitwarden.example.com"
    try:
        parts = urlsplit(url)
        if parts.port == 0:
            raise ValueError("Port out of range 1-65535")
    except ValueError as exc:
        raise ValueError("server_url %r has an invalid port (%s): set %s (ports 1 to 65535)" % (url, exc, example))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "://" not in url:
        raise ValueError("server_url %r is not an http(s) URL such as https://bitwarden.example.com: set %s"
                         % (url, example))
    if parts.username is not None or parts.password is not None:
        raise ValueError("server_url must not carry a user name or password (they would be printed): set %s" % example)
    path = parts.path.rstrip("/")
    if parts.query or parts.fragment or path.lower().endswith(SERVICE_PATHS):
        below = path + ("?" + parts.query if parts.query else "") + ("#" + parts.fragment if parts.fragment else "")
        raise ValueError("server_url %r points below the base URL (%s): set %s; the modules add /api and /identity"
                         % (url, below, example))
    return normalize_server_url(url)


def fingerprint(secret):
    """Short non-reversible stand-in for a secret in diffs and comparisons shown to the user."""
    if not secret:
        return None
    return "sha256:" + hashlib.sha256(to_text(secret).encode("utf-8")).hexdigest()[:8]


def ci_get(data, key, default=None):
    """Case-insensitive key lookup: the server returns camelCase outside and PascalCase inside ``config``."""
    if not isinstance(data, dict):
        return default
    if key in data:
        return data[key]
    lowered = key.lower()
    for name, value in data.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return default


def parse_version(text):
    """'2026.8.0' -> (2026, 8, 0); anything unparsable -> None."""
    match = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", to_text(text or ""))
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def parse_timestamp(text):
    """Parse the server's ISO 8601 timestamps (7 fraction digits, offset or 'Z') into an aware UTC datetime.

    Written by hand because ``datetime.fromisoformat`` on Python < 3.11 rejects 7 fraction digits.
    """
    if not text:
        return None
    match = re.match(
        r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$", to_text(text).strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tzinfo = datetime.timezone.utc
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tzinfo = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    value = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo)
    return value.astimezone(datetime.timezone.utc)


def _retry_after_seconds(headers):
    value = headers.get("Retry-After") if headers else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _classify_exception(exc):
    """(kind, text, proxy) for a transport failure: kind is 'refused' | 'reset' | 'timeout' | 'tls' | 'plain_http' |
    'dns' | 'other'; proxy the proxy URL when the connection to the environment's proxy failed, else None."""
    proxy = None
    reason = exc
    while isinstance(reason, URLError) and not isinstance(reason, HTTPError) and isinstance(reason.reason, BaseException):
        if isinstance(reason, ProxyFailed):
            proxy = reason.proxy
        reason = reason.reason
    text = to_native(reason)
    kind = _kind(reason, text)
    return kind, text, proxy


def _kind(reason, text):
    if isinstance(reason, ssl.SSLError) and PLAIN_HTTP.search(text):
        return "plain_http"
    if isinstance(reason, (ssl.SSLError, ssl.CertificateError)) or "CERTIFICATE_VERIFY_FAILED" in text:
        return "tls"
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.RemoteDisconnected,
                           http.client.IncompleteRead)):
        return "reset"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(reason, socket.gaierror):
        return "dns"
    return "other"


def _first_bytes(raw):
    """The start of an unexpected body as printable text, for a message: control characters and markup runs shortened."""
    text = to_text(raw[:200], errors="replace")
    text = re.sub(r"\s+", " ", re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text)).strip()
    return text[:80] + ("..." if len(text) > 80 or len(raw) > 200 else "")


def _is_html(headers, raw):
    """Whether an answer is a web page (a proxy's or a web vault's), which the API never sends."""
    content_type = (headers.get("Content-Type") or "") if headers else ""
    start = to_text(raw[:100] or b"", errors="replace").lstrip().lower()
    return "html" in content_type.lower() or start.startswith(("<!doctype", "<html"))


def _server_message(data, raw):
    """The human text of an error body: ErrorResponseModel ``message``, OAuth ``error_description``/``ErrorModel``."""
    if isinstance(data, dict):
        for key in ("message", "error_description"):
            value = ci_get(data, key)
            if isinstance(value, str) and value:
                return value
        model = ci_get(data, "ErrorModel")
        if isinstance(model, dict) and isinstance(ci_get(model, "Message"), str):
            return ci_get(model, "Message")
        return None
    text = to_text(raw or b"", errors="replace").strip()
    if text[:100].lower().startswith(("<!doctype", "<html")):
        # A proxy's error page: its title says all ("502 Bad Gateway"), the markup would only bury the message.
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        return title.group(1).strip() if title else None
    if isinstance(data, str):
        return data or None
    return text[:300] or None


class BitwardenClient:
    """HTTP client bound to one AnsibleModule: connection options, token, retries, error messages.

    ``read_only``: the module only reads (a report or a drift check); a refused connection is retried once, briefly,
    instead of until ``retry_deadline``: nothing listens, and a report should name the host at once, not wait for it.
    """

    def __init__(self, module, read_only=False):
        self.module = module
        self.read_only = read_only
        params = module.params
        self._secrets = set()
        # Register what was given before anything can fail, so that no message below can show it.
        for name in ("client_secret", "access_token"):
            if isinstance(params[name], str):
                self.register_secret(params[name])
        self.bwdata_path = params["bwdata_path"]
        self.validate_certs = params["validate_certs"]
        self.ca_path = params["ca_path"]
        self.timeout = params["timeout"]
        self.retry_deadline = params["retry_deadline"]
        try:
            check_seconds("timeout", self.timeout, 1)
            check_seconds("retry_deadline", self.retry_deadline, 0)
        except ValueError as exc:
            self.fail(to_native(exc))
        self.client_id = params["client_id"].strip() if params["client_id"] else params["client_id"]
        self.client_secret = self.take_secret("client_secret", params["client_secret"])
        self._access_token = self.take_secret("access_token", params["access_token"])
        self.requests = 0
        self._server_version = None
        self._server_config = None
        self._http = None

        url = params["server_url"]
        if not url:
            try:
                url = read_config_url(self.bwdata_path)
            except (IOError, OSError) as exc:
                self.fail("server_url is not set and %s/config.yml could not be read (%s): set server_url "
                          "(or BITWARDEN_SERVER_URL), or bwdata_path when the module runs on the Bitwarden host"
                          % (self.bwdata_path, to_native(exc)))
            if not url:
                self.fail("server_url is not set and %s/config.yml has no url: set server_url" % self.bwdata_path)
        try:
            # A password in the URL is a secret too: masked in the module's invocation on every core version.
            self.register_secret(urlsplit(url.strip()).password)
        except ValueError:
            pass  # an unparsable URL: check_server_url names the problem
        try:
            self.server_url = check_server_url(url)
        except ValueError as exc:
            self.fail(to_native(exc))
        if self.ca_path and not os.path.isfile(self.ca_path):
            self.fail("ca_path %s does not exist or is not a file: set ca_path to the PEM file of the CA certificate "
                      "that signed the server's certificate, on the host the module runs on" % self.ca_path)

    def take_secret(self, name, value):
        """A secret option checked where it enters (see ``check_token``); None when not given."""
        if value is None:
            return None
        try:
            token, warning = check_token(name, value)
        except ValueError as exc:
            self.fail(to_native(exc))
        self.register_secret(token)
        if warning:
            self.warn(warning)
        return token

    # -- secrets -------------------------------------------------------------------------------------

    def register_secret(self, value):
        """Never show ``value`` in any spelling: Ansible masks them in results, ``scrub`` in our messages."""
        if value and isinstance(value, str):
            forms = secret_forms(value)
            self._secrets.update(forms)
            self.module.no_log_values.update(forms)

    def scrub(self, text):
        text = to_text(text)
        for form in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(form, MASK)
        return text

    def fail(self, msg, **result):
        if isinstance(msg, BitwardenApiError):
            msg = msg.msg
        self.module.fail_json(msg=self.scrub(msg), **result)

    def warn(self, msg):
        self.module.warn(self.scrub(msg))

    # -- transport -----------------------------------------------------------------------------------

    def _tls_context(self):
        """The TLS context of the module run (the transport asks for it once, at the first https request)."""
        try:
            return make_context(cafile=self.ca_path, validate_certs=self.validate_certs)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise BitwardenApiError("ca_path %s could not be loaded as PEM CA certificates (%s): set ca_path to the "
                                    "PEM file of the CA that signed the server's certificate" % (self.ca_path, to_native(exc)))

    def _open_once(self, method, url, data, headers, timeout):
        """One HTTP exchange within ``timeout`` seconds (connect, headers and body): (status, raw body, headers) or a
        transport exception."""
        if self._http is None:
            self._http = Request(http_agent="selfhost.bitwarden", tls_context=self._tls_context)
        self.requests += 1
        return self._http.exchange(method, url, data=data, headers=headers, timeout=timeout)

    def send(self, method, path, body=None, form=None, auth=True, idempotent=None, expect=(200,), deadline=None,
             timeout=None):
        """Send one API request with retries; return a Response or raise BitwardenApiError.

        ``idempotent`` defaults to the HTTP method's nature; pass True for a POST that is safe to repeat.
        ``deadline`` overrides ``retry_deadline`` (0: a single attempt). Each attempt gets ``timeout`` seconds for
        connect, headers and body; a retry gets at most what is left of the larger of ``deadline`` and ``timeout``.
        ``timeout`` overrides the module's for this call (a request the server itself may take long to answer).
        """
        if deadline is None:
            deadline = self.retry_deadline
        timeout = self.timeout if timeout is None else timeout
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        url = self.server_url + path
        headers = {"Accept": "application/json", "Bitwarden-Client-Version": CLIENT_VERSION}
        data = None
        if form is not None:
            data = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        elif body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json; charset=utf-8"
        if auth:
            headers["Authorization"] = "Bearer %s" % self.token()
        for name, value in headers.items():
            if HEADER_UNSAFE.search(value):
                # http.client would refuse it with the value in its message; never send or show it.
                raise BitwardenApiError("the %s header of %s %s would carry a control character (a line break in "
                                        "access_token?): it was not sent; remove the character" % (name, method, path))

        started = time.monotonic()
        budget_end = started + max(deadline, timeout)
        attempt = 0
        while True:
            attempt += 1
            status, raw, resp_headers, kind, text, proxy = None, b"", None, None, None, None
            try:
                status, raw, resp_headers = self._open_once(method, url, data, headers,
                                                            max(0.1, min(timeout, budget_end - time.monotonic())))
            except BodyTooLarge as exc:
                raise BitwardenApiError(
                    "%s %s: %s sent %s, where the Bitwarden API answers a few kB: server_url or a proxy in front of the "
                    "server does not lead to the API; check server_url" % (method, path, self.server_url, exc))
            except InsecureRedirect as exc:
                raise BitwardenApiError(
                    "%s %s was redirected from https to plain http (%s): not followed, the request would travel "
                    "unencrypted. Set server_url to the https address the server answers on, or fix the redirect in its "
                    "reverse proxy" % (method, path, self.scrub(exc.location)))
            except (URLError, OSError, http.client.HTTPException, ValueError) as exc:
                kind, text, proxy = _classify_exception(exc)
            if kind == "plain_http":
                raise BitwardenApiError(
                    "%s does not speak TLS on this port: the server speaks plain HTTP on this port (%s): use http:// or "
                    "the TLS port in server_url" % (self.server_url, text))
            if proxy and kind in ("dns", "tls"):
                kind = "other"  # the proxy's host or the proxy itself failed, not the server
            if kind == "tls":
                raise BitwardenApiError(
                    "TLS verification of %s failed (%s): set ca_path to the CA certificate that signed the "
                    "server's certificate, or validate_certs=false only for a test server" % (self.server_url, text))
            if kind == "dns":
                raise BitwardenApiError("cannot resolve the host of %s (%s): check server_url" % (self.server_url, text))
            refused_retry = kind == "refused" and not (self.read_only and attempt > READ_ONLY_REFUSED_RETRIES)
            retryable = (refused_retry or status in RETRY_ALWAYS
                         or (idempotent and (kind in ("reset", "timeout") or status in RETRY_IF_IDEMPOTENT)))
            if retryable:
                wait = _retry_after_seconds(resp_headers) if status in (429, 503) else None
                if wait is None:
                    wait = min(2.0 ** (attempt - 1), 10.0)
                if time.monotonic() - started + wait <= deadline:
                    time.sleep(wait)
                    continue
            if kind is not None and proxy:
                raise BitwardenApiError(
                    "%s %s: the proxy %s (from the https_proxy/http_proxy environment) %s after %d attempt(s) in %.0f s "
                    "(%s): the server was not reached. Check the proxy, or add the server's host to no_proxy"
                    % (method, path, proxy, {"refused": "refused the connection", "reset": "dropped the connection",
                                             "timeout": "did not answer within %g s" % round(timeout, 1)}.get(kind, "failed"),
                       attempt, time.monotonic() - started, self.scrub(text)), ambiguous=kind in ("reset", "timeout"))
            if kind is not None:
                raise BitwardenApiError(
                    "%s %s: %s after %d attempt(s) in %.0f s (%s): check that the server is running and server_url "
                    "(%s) reaches it" % (method, path, {"refused": "connection refused", "reset": "connection reset",
                                                        "timeout": "no answer within %g s" % round(timeout, 1)}.get(kind, "request failed"),
                                         attempt, time.monotonic() - started, self.scrub(text), self.server_url),
                    ambiguous=kind in ("reset", "timeout"))
            if _is_html(resp_headers, raw) and status not in RETRY_ALWAYS and status not in RETRY_IF_IDEMPOTENT:
                raise BitwardenApiError(
                    "%s answered %s %s with a web page (HTTP %d), not the Bitwarden API: set server_url to the server's "
                    "base URL, like https://bitwarden.example.com (no path such as /api or /#/), and check any proxy or "
                    "captive portal in front of it (it sent %s titled %r)"
                    % (self.server_url, method, path, status, self.scrub(resp_headers.get("Content-Type") or "no Content-Type"),
                       self.scrub(_server_message(None, raw) or "")), status=status)
            response = Response(status, self._decode(raw), resp_headers)
            if status in expect:
                if response.data is NOT_JSON:
                    raise self.not_json(method, path, status, raw, resp_headers)
                return response
            raise self._http_error(method, path, response, raw, attempt, started)

    def _decode(self, raw):
        if not raw:
            return None
        try:
            return json.loads(to_text(raw, errors="strict"))
        except (ValueError, UnicodeError):
            return NOT_JSON

    def not_json(self, method, path, status, raw, headers):
        """An answer the API never gives (every route answers JSON): whoever sent it is named, it is never a state."""
        content_type = (headers.get("Content-Type") if headers else None) or "no Content-Type"
        return BitwardenApiError(
            "%s %s: %s answered HTTP %d with %s that is not JSON (%s bytes: %r): that is not the Bitwarden API but "
            "something in front of it (a captive portal, a proxy's or a web server's page). Check server_url and the "
            "proxy settings (https_proxy/no_proxy) of the host the module runs on"
            % (method, path, self.server_url, status, self.scrub(content_type), len(raw), self.scrub(_first_bytes(raw))),
            status=status)

    def _http_error(self, method, path, response, raw, attempt, started):
        status = response.status
        message = _server_message(None if response.data is NOT_JSON else response.data, raw)
        message = self.scrub(message) if message else None
        said = (": %s" % message) if message else ""
        ambiguous = status in (500, 504)
        error = ci_get(response.data, "error")
        error = error if isinstance(error, str) else None
        if status in RETRY_ALWAYS or status in RETRY_IF_IDEMPOTENT:
            msg = ("%s %s answered %d%s, still after %d attempt(s) in %.0f s (retry_deadline=%d): the server is "
                   "overloaded, starting or behind a failing proxy; try again later or raise retry_deadline"
                   % (method, path, status, said, attempt, time.monotonic() - started, self.retry_deadline))
        elif status == 401:
            msg = ("%s %s: the server rejected the access token (401): it expired or was issued by another server; "
                   "use client_id/client_secret of this server" % (method, path))
        elif status == 403:
            msg = ("%s %s: forbidden (403). This is what an organization API key (client_id organization.<id>) gets: "
                   "billing sync and license sync need the personal API key of an organization owner (client_id "
                   "user.<id>, from Account settings > Security > Keys > View API key)" % (method, path))
        elif status == 400 and message and message.startswith("You do not have permission"):
            msg = ("%s %s: the API key's user is not an owner of the organization (%s). Use the personal API key "
                   "of an organization owner; admins are not enough" % (method, path, message))
        elif status == 400 and message == "Cannot verify license file.":
            msg = ("the server cannot verify the organization's license file (Cannot verify license file.): upload "
                   "the organization license first (Admin Console > Billing > Subscription > Update license; on the "
                   "host: bwdata/core/licenses/organization/<organization id>.json), then run this again")
        elif status == 400 and message and message.startswith("Cloud communication is disabled"):
            msg = ("cloud communication is disabled on the running server (%s): run selfhost.bitwarden.bitwarden_cloud_comm "
                   "and restart the server (bitwarden.sh restart)" % message)
        elif 300 <= status < 400:
            location = response.headers.get("Location") if response.headers else None
            msg = ("%s %s was redirected (HTTP %d) to %s: a write is never sent on to another address. Set server_url to "
                   "the address the server answers on" % (method, path, status, self.scrub(location or "no Location")))
        elif status == 500:
            msg = ("%s %s: the server failed with an internal error (500%s); its api log (bwdata/logs/api/Api/) "
                   "has the details" % (method, path, said))
        else:
            msg = "%s %s failed with HTTP %d%s" % (method, path, status, said)
        return BitwardenApiError(msg, status=status, server_message=message, error=error, ambiguous=ambiguous)

    # -- token ---------------------------------------------------------------------------------------

    def token(self):
        """The access token: given, or requested once per module run from the personal API key."""
        if self._access_token:
            return self._access_token
        if not self.client_id or not self.client_secret:
            self.fail("no credentials: set client_id and client_secret (an organization owner's personal API key, "
                      "or BITWARDEN_CLIENT_ID/BITWARDEN_CLIENT_SECRET), or access_token")
        try:
            response = self.request_token(self.client_id, self.client_secret)
        except BitwardenApiError as exc:
            self.fail(exc)
        token = response.data.get("access_token") if isinstance(response.data, dict) else None
        if not token:
            self.fail("the token endpoint of %s answered 200 without an access_token: is server_url a Bitwarden "
                      "server?" % self.server_url)
        self.register_secret(token)
        if not isinstance(token, str) or TOKEN_UNSAFE.search(token):
            self.fail("the token endpoint of %s answered an access token that no HTTP header can carry: is server_url "
                      "a Bitwarden server?" % self.server_url)
        self._access_token = token
        return token

    def token_form(self, client_id, client_secret):
        # The official clients ask for scope api.organization with organization keys; send the same so that such
        # a key gets a token and then the clear 403 from the API instead of an opaque invalid_scope.
        scope = "api.organization" if client_id.lower().startswith("organization.") else "api"
        return {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_id": client_id,
            "client_secret": client_secret,
            "deviceType": DEVICE_TYPE,
            "deviceIdentifier": device_identifier(self.server_url, client_id),
            "deviceName": DEVICE_NAME,
        }

    def request_token(self, client_id, client_secret, deadline=None):
        """POST /identity/connect/token; a 400 becomes a message per OAuth error (contract 1.5)."""
        form = self.token_form(client_id, client_secret)
        try:
            return self.send("POST", "/identity/connect/token", form=form, auth=False, idempotent=True, deadline=deadline)
        except BitwardenApiError as exc:
            if exc.status != 400:
                raise
            raise self.token_error(exc)

    def token_error(self, exc):
        return BitwardenApiError(self.explain_token_error(exc.error, exc.server_message), status=400, error=exc.error,
                                 server_message=exc.server_message)

    def explain_token_error(self, error, message):
        said = (" (%s)" % self.scrub(message)) if message else ""
        if error == "invalid_client":
            return ("%s rejected client_id/client_secret (invalid_client): the personal API key is wrong or was "
                    "rotated, or it belongs to another server (a key from bitwarden.com or from another self-hosted "
                    "server does not work here). Copy client_id and client_secret from this server's web vault: "
                    "Account settings > Security > Keys > View API key" % self.server_url)
        if error == "invalid_scope":
            return ("%s rejected the scope for client_id %s (invalid_scope): use an organization owner's personal API "
                    "key (client_id user.<id>); organization API keys cannot manage billing sync"
                    % (self.server_url, self.client_id))
        if error == "version_header_missing":
            return ("%s requires a parsable Bitwarden-Client-Version header (servers from 2026.3.0; this client sends "
                    "%s): a proxy in front of the server probably strips it%s" % (self.server_url, CLIENT_VERSION, said))
        if error == "invalid_client_version":
            return ("%s asks for a newer client than %s (invalid_client_version%s): update the selfhost.bitwarden "
                    "collection" % (self.server_url, CLIENT_VERSION, said))
        if error == "device_error" or (error == "invalid_grant" and message and "device" in message.lower()):
            return ("%s refused the device information of the token request (%s%s): a proxy may drop form fields "
                    "deviceType/deviceIdentifier/deviceName" % (self.server_url, error, said))
        return "%s refused the token request (%s%s)" % (self.server_url, error or "HTTP 400", said)

    # -- helpers shared by the modules -----------------------------------------------------------------

    def server_config(self):
        """The anonymous GET /api/config (cached), or None on a server older than 2022.10.0, which has no such route."""
        if self._server_config is None:
            try:
                data = self.send("GET", "/api/config", auth=False).data
            except BitwardenApiError as exc:
                if exc.status != 404:
                    raise
                data = None
            self._server_config = data if isinstance(data, dict) else {}
        return self._server_config or None

    def server_version(self):
        """The server's version (None if unknown); cached. /api/config from 2022.10.0, /api/version before."""
        if self._server_version is None:
            try:
                config = self.server_config()
                version = ci_get(config, "version") if config else self.send("GET", "/api/version", auth=False).data
            except BitwardenApiError:
                return None
            self._server_version = version if isinstance(version, str) else None
        return self._server_version

    def too_old(self, min_version, feature):
        """A message when the server is older than ``min_version``, else None (costs one GET /api/config)."""
        version = self.server_version()
        parsed = parse_version(version)
        if parsed and parsed < parse_version(min_version):
            return ("the server runs Bitwarden %s, which has no %s: it needs %s or newer. Back up bwdata, update the "
                    "server (bitwarden.sh updateself && bitwarden.sh update) and upload the organization license again"
                    % (version, feature, min_version))
        return None

    def resolve_organization(self, organization_id):
        """The given organization id, or the only one the key's user owns (GET /api/organizations)."""
        if organization_id:
            if not GUID.match(organization_id.strip()):
                self.fail("organization_id %r is not an organization id: set the self-hosted organization's GUID "
                          "(Admin Console > Settings > Organization info), or leave it unset when the key's user "
                          "owns one organization" % organization_id)
            return organization_id.strip()
        items = self.organizations()
        owned = [item for item in items if ci_get(item, "type") in (0, "Owner", "owner")]
        if len(owned) == 1:
            return ci_get(owned[0], "id")
        if not owned:
            self.fail("the API key's user owns no organization on %s: use the personal API key of the organization "
                      "owner, or set organization_id" % self.server_url)
        self.fail("the API key's user owns %d organizations; set organization_id to one of: %s" % (
            len(owned), ", ".join("%s (%s)" % (ci_get(item, "id"), ci_get(item, "name")) for item in owned)))
        return None

    def organizations(self):
        """The organizations the key's user belongs to, each with the user's ``type`` in it (contract 1.7)."""
        data = self.send("GET", "/api/organizations").data
        return ci_get(data, "data", []) if isinstance(data, dict) else (data or [])

    def not_permitted(self, organization_id, exc):
        """Tell an organization the key's user is not in from one it is in without being owner (both answer 400)."""
        try:
            items = self.organizations()
        except BitwardenApiError:
            return exc
        member = [item for item in items if to_text(ci_get(item, "id", "")).lower() == organization_id.lower()]
        if not member:
            owned = ["%s (%s)" % (ci_get(item, "id"), ci_get(item, "name")) for item in items
                     if ci_get(item, "type") in (0, "Owner", "owner")]
            return BitwardenApiError(
                "organization_id %s is not an organization of %s that the API key's user belongs to: set organization_id "
                "to the self-hosted organization's id (not the cloud organization's); the key's user owns: %s"
                % (organization_id, self.server_url, ", ".join(owned) or "none"), status=exc.status,
                server_message=exc.server_message)
        role = ci_get(member[0], "type")
        return BitwardenApiError(
            "the API key's user is %s of organization %s, not an owner (%s). Use the personal API key of an "
            "organization owner; admins are not enough" % (USER_TYPES.get(role, role), organization_id, exc.server_message),
            status=exc.status, server_message=exc.server_message)

    def get_connection(self, organization_id):
        """GET the CloudBillingSync connection; a missing one comes back as ``None`` (the server answers id null)."""
        path = "/api/organizations/connections/%s/1" % quote(organization_id, safe="")
        try:
            data = self.send("GET", path).data
        except BitwardenApiError as exc:
            if exc.status == 404:
                old = self.too_old(CONNECTIONS_MIN_VERSION, "organization connections (billing sync)")
                if old:
                    raise BitwardenApiError(old, status=404)
            if exc.status == 400 and (exc.server_message or "").startswith("You do not have permission"):
                raise self.not_permitted(organization_id, exc)
            raise
        return self.connection_from_response(data)

    def connection_from_response(self, data):
        """The connection model as a dict (None when the server says there is none); registers the key as secret."""
        if not isinstance(data, dict) or not ci_get(data, "id"):
            return None
        config = ci_get(data, "config") or {}
        if isinstance(config, str):
            # 2022-era rows stored the config as a JSON string.
            try:
                config = json.loads(config)
            except ValueError:
                config = {}
        key = ci_get(config, "BillingSyncKey")
        self.register_secret(key)
        return {
            "id": ci_get(data, "id"),
            "enabled": bool(ci_get(data, "enabled")),
            "billing_sync_key": key,
            "cloud_organization_id": ci_get(config, "CloudOrganizationId"),
            "last_license_sync": ci_get(config, "LastLicenseSync"),
        }

    def cloud_communication_enabled(self):
        """The running server's setting; anything but a JSON true or false is an error, never a state."""
        path = "/api/organizations/connections/enabled"
        data = self.send("GET", path).data
        if not isinstance(data, bool):
            raise BitwardenApiError("GET %s: %s answered %s where the Bitwarden API answers true or false: check "
                                    "server_url and any proxy in front of the server"
                                    % (path, self.server_url, self.scrub(_first_bytes(json.dumps(data).encode()))))
        return data


def public_connection(connection):
    """What the modules return about a connection: never the key."""
    if connection is None:
        return None
    return dict((key, connection.get(key)) for key in ("id", "enabled", "cloud_organization_id", "last_license_sync"))
