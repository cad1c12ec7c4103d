# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection and authentication options of the modules that call the self-hosted Bitwarden API."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  server_url:
    description:
      - Base URL of the self-hosted Bitwarden server, for example V(https://bitwarden.example.com).
      - Without a query, a fragment (V(#/...)), a user name, or a path ending in C(/api), C(/identity), C(/admin) or
        C(/vault), because the modules add C(/api) and C(/identity) themselves. A server that answers with a web page instead
        of the API is reported as a wrong O(server_url).
      - The module runs on the managed host and connects from there.
      - When omitted, the environment variable E(BITWARDEN_SERVER_URL) on the managed host is used, then the
        C(url) in C(<bwdata_path>/config.yml) on the managed host.
    type: str
  bwdata_path:
    description:
      - The C(bwdata) directory of the installation on the managed host.
      - Used to find the server URL when O(server_url) is not set, and by some modules to read files of the
        installation (for example the api log).
    type: path
    default: /opt/bitwarden/bwdata
  client_id:
    description:
      - C(client_id) of the personal API key of an organization owner, C(user.<guid>), from the web vault of
        this server (Account settings, Security, Keys, View API key).
      - Organization API keys (C(organization.<guid>)) cannot manage billing sync.
      - Falls back to the environment variable E(BITWARDEN_CLIENT_ID) on the managed host.
      - Requires O(client_secret). Not used when O(access_token) is set.
    type: str
  client_secret:
    description:
      - C(client_secret) of that personal API key.
      - Falls back to the environment variable E(BITWARDEN_CLIENT_SECRET) on the managed host.
      - Must be a non-empty string (quote a secret that YAML would read as a number). Leading and trailing whitespace
        is removed with a warning; a control character inside is rejected.
    type: raw
  access_token:
    description:
      - An access token of an organization owner, instead of O(client_id) and O(client_secret).
      - Tokens expire after an hour.
      - Falls back to the environment variable E(BITWARDEN_ACCESS_TOKEN) on the managed host.
      - Checked like O(client_secret) before anything is sent, so that a line break in it can never reach an HTTP
        header or a message.
    type: raw
  validate_certs:
    description:
      - Whether to verify the server's TLS certificate.
      - Set V(false) only for test servers; prefer O(ca_path).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) that signed the server's certificate, for a private CA.
      - The file must exist on the managed host; a missing or unreadable file is reported before any request.
    type: path
  timeout:
    description:
      - Seconds each HTTP request may take as a whole (connect, headers and body), from 1 to 86400. A server that
        sends its answer a byte at a time is cut off there too.
      - Answers are read up to 8 MiB; the API's are a few kB, so a larger one fails as not coming from the API.
    type: int
    default: 30
  retry_deadline:
    description:
      - Total seconds a request may spend retrying after refused connections and HTTP 408, 429, 502, 503 and
        504 answers, with exponential backoff (and the server's C(Retry-After)).
      - Requests that are not safe to repeat are not resent after a reset connection, a timeout or a 504.
      - From 0 (one attempt) to 86400. Answers that retrying cannot change (wrong credentials, TLS, DNS, HTTP 4xx) fail
        at once.
      - The read-only modules (M(selfhost.bitwarden.bitwarden_drift), M(selfhost.bitwarden.bitwarden_sync_info)) retry
        a refused connection only once, after a second, so that a report names a stopped server at once.
        M(selfhost.bitwarden.bitwarden_wait_for_server) waits for a restarting one.
      - The role sets it from C(billing_sync_retry_deadline).
    type: int
    default: 60
notes:
  - Every request carries the header C(Bitwarden-Client-Version), which servers from 2026.3.0 require.
  - The token request registers one device per server and API key (a stable C(deviceIdentifier)), so repeated
    runs do not trigger new-device e-mails.
  - Secrets (client secret, access tokens, billing sync tokens) are never returned or logged.
"""

    # Every module that acts on one organization.
    ORGANIZATION = r"""
options:
  organization_id:
    description:
      - Id of the self-hosted organization (not the id of the cloud organization).
      - When omitted and the API key's user owns exactly one organization, that one.
    type: str
"""
