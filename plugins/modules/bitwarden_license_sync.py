#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_license_sync
short_description: Sync the license of a self-hosted Bitwarden organization with the cloud
version_added: 0.1.0
description:
  - Triggers the license sync of a self-hosted organization ("Sync license" in the self-hosted admin console).
    The server fetches the organization's current license from the Bitwarden cloud with its installation id and
    key and the billing sync token.
  - By default it syncs only when the organization has never synced, so "trigger the first sync" is idempotent.
    O(force) syncs on every run; O(max_age) also syncs when the last sync is older.
  - After the sync it reads the connection again and checks that the time of the last sync advanced.
  - The server answers every cloud-side failure with one generic error and writes the reason to its api log.
    When the module runs on the Bitwarden host, it reads the lines written during its request from
    C(<bwdata_path>/logs/api/Api/) (Bitwarden Lite - C(/etc/bitwarden/logs/) in its C(bitwarden) volume) and reports
    the real cause (wrong billing sync token, installation rejected by the identity server of the region, cloud
    unreachable, rate limited, and so on) with the fix.
  - The sync request waits at least 130 s (the larger of O(timeout) and 130) - longer than the server's own wait for
    the cloud (100 s) and than nginx in front of it (90 s) - and is sent once. It is retried only when it cannot have
    reached the server (connection refused, 429, 502, 503), never after a timeout, a broken connection or a 504, since
    the first may still run on the server.
  - Needs Bitwarden server 2023.2.0 or newer, cloud communication enabled and a billing sync token applied
    (M(selfhost.bitwarden.bitwarden_billing_sync_token)).
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.api
  - selfhost.bitwarden.api.organization
  - selfhost.bitwarden.api_log
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.attributes.action_group
attributes:
  check_mode:
    support: full
    details:
      - Reads the connection and predicts whether a sync would run.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Idempotent in the default mode (sync only when never synced).
      - With O(force=true) every run syncs and reports a change; with O(max_age) a run syncs when the last sync
        is older than O(max_age).
options:
  force:
    description:
      - Sync even when the organization has synced before.
    type: bool
    default: false
  max_age:
    description:
      - Also sync when the last sync is older than this.
      - Seconds, or a duration such as V(12h), V(7d), V(1d12h), V(30m) (units C(w), C(d), C(h), C(m), C(s)).
    type: str
seealso:
  - module: selfhost.bitwarden.bitwarden_billing_sync_token
  - module: selfhost.bitwarden.bitwarden_sync_info
"""

EXAMPLES = r"""
- name: Trigger the first license sync (no-op once the organization has synced)
  selfhost.bitwarden.bitwarden_license_sync:
    client_id: "{{ bitwarden_owner_client_id }}"
    client_secret: "{{ bitwarden_owner_client_secret }}"
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11

- name: Sync when the last sync is older than a week
  selfhost.bitwarden.bitwarden_license_sync:
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11
    max_age: 7d
"""

RETURN = r"""
synced:
  description: Whether a license sync ran (V(false) in check mode).
  returned: always
  type: bool
previous_license_sync:
  description: Time of the last sync before this run, V(null) when never synced.
  returned: always
  type: str
  sample: null
last_license_sync:
  description: Time of the last sync after this run.
  returned: always
  type: str
  sample: "2026-08-20T14:03:11.1234567+00:00"
organization_id:
  description: The self-hosted organization id used.
  returned: always
  type: str
"""

import datetime
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils._api_log import (
    argument_spec as api_log_argument_spec,
    explain_license_sync_failure,
    locate,
    read_env_settings,
)
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import (
    LICENSE_SYNC_MIN_VERSION,
    BitwardenApiError,
    BitwardenClient,
    api_argument_spec,
    api_module_kwargs,
    parse_timestamp,
)

GENERIC_SYNC_ERROR = "An error has occurred. Check your internet connection"
# The server's own cloud calls wait up to HttpClient's default 100 s (dropped packets), and nginx in front of the api
# gives up after proxy_read_timeout 90 s with a 504 while the api goes on (contract 11; util/Nginx/proxy.conf). The sync
# POST waits longer than both, so the answer is the server's, and is never sent twice: after a timeout, a reset or a
# 504 the first one may still run on the server, and a second would only pile up behind it.
SYNC_TIMEOUT = 130
# After nginx's 504 the api logs its timeout ~10 s later (100 s - 90 s): how long to watch the log for it.
LOG_WAIT = 30
NOT_REPEATED = ("the license sync was sent once and not repeated: the server may still be running it, and a second "
                "request would pile up behind the first")
APPLY_TOKEN_FIRST = ("organization %s has no billing sync connection: apply the billing sync token first "
                     "(selfhost.bitwarden.bitwarden_billing_sync_token)")
UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value):
    """Seconds in '3600', '12h', '1d12h', '30m'; None when unparsable."""
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"(\d+)\s*([wdhms])", text)
    if not parts or re.sub(r"\d+\s*[wdhms]\s*", "", text):
        return None
    return sum(int(number) * UNITS[unit] for number, unit in parts)


def cause_in_log(log, since, wait):
    """The api log's cause of the failed sync, watched for up to ``wait`` seconds (it may come after the answer)."""
    deadline = time.monotonic() + wait
    while True:
        cause = explain_license_sync_failure(log.directory, since, read_env_settings(log.env_file))
        if cause or time.monotonic() >= deadline:
            return cause
        time.sleep(1)


def sync_failure_message(client, exc, organization_id, since):
    if exc.status == 504 or (exc.status is None and exc.ambiguous):
        what = ("nginx answered 504 Gateway Time-out" if exc.status == 504 else
                "no answer within %d s" % SYNC_TIMEOUT if "within" in exc.msg else "the connection broke")
        log = locate(client.module)
        cause = cause_in_log(log, since, LOG_WAIT) if log.problem is None else None
        if cause:
            return "license sync failed: %s [api log: %s; %s (%s)]" % (cause, log.where, NOT_REPEATED, what)
        return ("license sync: %s; %s. The server's call to the cloud outlasted nginx's 90 s: its egress to the cloud "
                "is probably dropped (the server waits 100 s). The api log (%s) %s" % (
                    what, NOT_REPEATED, log.where, log.problem or "shows no outcome yet: look at it in a minute"))
    if exc.status == 400 and exc.server_message and exc.server_message.startswith(GENERIC_SYNC_ERROR):
        log = locate(client.module)
        if log.problem is None:
            cause = explain_license_sync_failure(log.directory, since, read_env_settings(log.env_file))
            if cause:
                return "license sync failed: %s [api log: %s]" % (cause, log.where)
        return ("license sync failed with the server's generic error (%s). The real reason is in the server's api "
                "log (%s), which %s" % (exc.server_message, log.where,
                                        log.problem or "holds no line about this request: look at it yourself"))
    if exc.status == 404:
        old = client.too_old(LICENSE_SYNC_MIN_VERSION, "license sync through the billing sync connection")
        if old:
            return old
        return APPLY_TOKEN_FIRST % organization_id
    if exc.status == 400 and exc.server_message and exc.server_message.startswith(("Invalid license", "License is already")):
        return "license sync failed: the server refused the cloud's license (%s)" % exc.server_message
    return exc.msg


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(api_log_argument_spec())
    argument_spec.update(
        organization_id=dict(type="str"),
        force=dict(type="bool", default=False),
        max_age=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **api_module_kwargs())
    max_age = None
    if module.params["max_age"] is not None:
        max_age = parse_duration(module.params["max_age"])
        if max_age is None:
            module.fail_json(msg="max_age %r is neither seconds nor a duration such as 12h or 7d" % module.params["max_age"])
    client = BitwardenClient(module)

    try:
        organization_id = client.resolve_organization(module.params["organization_id"])
        connection = client.get_connection(organization_id)
    except BitwardenApiError as exc:
        client.fail(exc)
    if connection is None:
        client.fail(APPLY_TOKEN_FIRST % organization_id)
    if not connection["enabled"]:
        client.fail("the billing sync connection of organization %s is disabled: set enabled: true with "
                    "selfhost.bitwarden.bitwarden_billing_sync_token" % organization_id)

    previous = connection["last_license_sync"]
    now = datetime.datetime.now(datetime.timezone.utc)
    previous_time = parse_timestamp(previous)
    needed = (module.params["force"] or previous is None
              or (max_age is not None and (previous_time is None or (now - previous_time).total_seconds() > max_age)))
    result = dict(changed=needed, synced=False, previous_license_sync=previous, last_license_sync=previous,
                  organization_id=organization_id)
    if not needed or module.check_mode:
        module.exit_json(**result)

    since = datetime.datetime.now(datetime.timezone.utc)
    try:
        # Retried only when it cannot have reached the api (refused, 429, 502, 503), never after a timeout, a reset
        # or a 504 (SYNC_TIMEOUT says why).
        client.send("POST", "/api/organizations/licenses/self-hosted/%s/sync" % organization_id, idempotent=False,
                    timeout=max(client.timeout, SYNC_TIMEOUT))
    except BitwardenApiError as exc:
        client.fail(sync_failure_message(client, exc, organization_id, since), previous_license_sync=previous)
    try:
        after = client.get_connection(organization_id)
    except BitwardenApiError as exc:
        client.fail("the license sync was accepted, but reading the connection afterwards failed: %s" % exc.msg)
    latest = after["last_license_sync"] if after else None
    latest_time = parse_timestamp(latest)
    if latest_time is None or (previous_time is not None and latest_time <= previous_time):
        client.fail("the server accepted the license sync but the time of the last sync did not advance (before: %s, "
                    "after: %s)" % (previous, latest), previous_license_sync=previous, last_license_sync=latest)
    result.update(synced=True, last_license_sync=latest)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
