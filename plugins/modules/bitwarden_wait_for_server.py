#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_wait_for_server
short_description: Wait until a self-hosted Bitwarden server answers API and token requests
version_added: 0.1.0
description:
  - Waits after C(bitwarden.sh restart) until the server can serve the other modules of this collection.
  - Polls C(GET /api/alive) until it answers 200, then C(GET /identity/alive), then sends a token request until
    the answer is neither a connection error nor a 5xx (the alive endpoints do not touch the database, the
    token request does).
  - The token request uses O(client_id) and O(client_secret) when given, and fails at once when the server
    rejects them. Without them it uses a client id that cannot exist, which the server can only reject after
    a database lookup.
  - Fails naming the step that never answered when O(timeout) runs out.
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.api
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.attributes.action_group
attributes:
  check_mode:
    support: full
    details:
      - Waits in check mode too, because it only reads; after a restart that check mode skipped it returns at once.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state. A token request with O(client_id) registers the module's device once
        per server and key (see the notes).
options:
  timeout:
    description:
      - Total seconds to wait for the server, unlike the other modules of the collection where O(timeout) limits one
        HTTP request. Each request here (connect, headers and body) takes at most 10 seconds and never runs past
        O(timeout), also against a server that answers a byte at a time.
      - A O(timeout) set for the whole group in C(module_defaults) applies here too; set it on this task to override.
    type: int
    default: 300
  delay:
    description:
      - Seconds between two polls.
    type: float
    default: 2
  restart_marker:
    description:
      - A file to remove once the server answers, to record that the restart finished.
      - The role passes RV(selfhost.bitwarden.bitwarden_drift#module:restart_marker), which
        M(selfhost.bitwarden.bitwarden_cloud_comm) writes before a change that needs a restart.
      - Not removed in check mode.
    type: path
    version_added: 0.3.0
  retry_deadline:
    description:
      - Not used, this module polls until O(timeout) instead. Accepted so that C(module_defaults) for the group work.
    type: int
    default: 60
seealso:
  - module: ansible.builtin.wait_for
"""

EXAMPLES = r"""
- name: Wait for Bitwarden after the restart
  selfhost.bitwarden.bitwarden_wait_for_server:
    server_url: https://bitwarden.example.com
    client_id: "{{ bitwarden_owner_client_id }}"
    client_secret: "{{ bitwarden_owner_client_secret }}"
    timeout: 600
"""

RETURN = r"""
elapsed:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 12.4
attempts:
  description: Number of HTTP requests sent.
  returned: always
  type: int
  sample: 7
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import (
    RETRY_ALWAYS,
    BitwardenApiError,
    BitwardenClient,
    api_argument_spec,
    api_module_kwargs,
)

PER_REQUEST_TIMEOUT = 10
# A client id no server has: the identity server looks it up in the database, then answers invalid_client.
PROBE_CLIENT_ID = "user.00000000-0000-0000-0000-000000000000"
PROBE_CLIENT_SECRET = "selfhost-bitwarden-readiness-probe"


def describe(exc):
    return "HTTP %d" % exc.status if exc.status else exc.msg


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(
        timeout=dict(type="int", default=300),
        delay=dict(type="float", default=2),
        restart_marker=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **api_module_kwargs())
    client = BitwardenClient(module)
    started = time.monotonic()
    deadline = started + module.params["timeout"]
    delay = max(0.0, module.params["delay"])
    has_key = bool(client.client_id and client.client_secret)

    def ready_alive(path):
        client.send("GET", path, auth=False, deadline=0)

    def ready_token():
        if has_key:
            client.request_token(client.client_id, client.client_secret, deadline=0)
            return
        try:
            client.request_token(PROBE_CLIENT_ID, PROBE_CLIENT_SECRET, deadline=0)
        except BitwardenApiError as exc:
            if exc.status != 400:
                raise

    steps = (("GET /api/alive", ready_alive, "/api/alive"),
             ("GET /identity/alive", ready_alive, "/identity/alive"),
             ("the token request (POST /identity/connect/token)", lambda unused: ready_token(), None))
    for name, check, arg in steps:
        last = None
        while True:
            # Each request gets what is left of the total (at most PER_REQUEST_TIMEOUT), so the total holds.
            client.timeout = max(0.1, min(PER_REQUEST_TIMEOUT, deadline - time.monotonic()))
            try:
                check(arg)
                break
            except BitwardenApiError as exc:
                if exc.status and 400 <= exc.status < 500 and exc.status not in RETRY_ALWAYS:
                    # An answer no restart changes: the identity server refused the key (400, from its database, so
                    # it is ready), or a web page / 404 says server_url does not point at the API.
                    client.fail("%s answers, but %s" % (client.server_url, exc.msg),
                                elapsed=round(time.monotonic() - started, 1), attempts=client.requests)
                last = describe(exc)
            if time.monotonic() + delay > deadline:
                client.fail("%s was not ready within %d s: %s never succeeded (last answer: %s)"
                            % (client.server_url, module.params["timeout"], name, last),
                            elapsed=round(time.monotonic() - started, 1), attempts=client.requests)
            time.sleep(delay)

    marker = module.params["restart_marker"]
    if marker and not module.check_mode:
        try:
            os.remove(marker)
        except FileNotFoundError:
            pass
        except OSError as exc:
            client.fail("%s answers again, but the restart marker %s could not be removed (%s): the next run would "
                        "restart again. Run the task as the owner of the install (become: true)." % (client.server_url, marker, exc.strerror))
    module.exit_json(changed=False, elapsed=round(time.monotonic() - started, 1), attempts=client.requests)


if __name__ == "__main__":
    main()
