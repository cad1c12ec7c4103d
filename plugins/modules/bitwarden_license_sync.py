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
  - The server never syncs its license by itself (it syncs Families sponsorships daily, never the license), so a
    renewal reaches it only through a sync like this one.
  - By default it syncs only when the organization has never synced, so "trigger the first sync" is idempotent.
    O(force) syncs on every run; O(max_age) also syncs when the last sync is older; O(expiry_days) also syncs when
    the license ends within that many days, paid period or grace period (a renewal then shows as new dates).
  - It reports the license before and after the sync (RV(license_before), RV(license_after)), that is expiry with
    and without the grace period, seats and plan as the server's subscription route returns them, and RV(changes).
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
  - "Rate limits: the cloud limits requests per client IP address (identity: 10 token requests a minute). When the
    api log shows that the cloud answered the server's request with C(TooManyRequests) (HTTP 429), the module says
    so (never a wrong key or region), waits a minute as the cloud asks and syncs again, until O(rate_limit_deadline)."
  - Needs Bitwarden server 2023.2.0 or newer, cloud communication enabled and a billing sync token applied
    (M(selfhost.bitwarden.bitwarden_billing_sync_token)).
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.api
  - selfhost.bitwarden.api.organization
  - selfhost.bitwarden.api_log
  - selfhost.bitwarden.pace
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
        is older than O(max_age); with O(expiry_days) it syncs on every run while the license ends within that many
        days (until a renewal moves the date).
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
  expiry_days:
    description:
      - Also sync when the license's paid period (expiry without grace) or the license itself (grace included) ends
        within this many days. Costs one more request (the subscription route).
    type: int
  unconfigured:
    description:
      - What to do with an organization that has no enabled billing sync connection, or a server with cloud
        communication off.
      - V(fail) fails with the fix; V(skip) changes nothing and says why in RV(reason) (for fleet runs).
    type: str
    choices: [fail, skip]
    default: fail
  rate_limit_deadline:
    description:
      - Seconds to keep retrying a sync that the cloud rate-limited (HTTP 429 to the server's token or license
        request, read from the api log); it waits 60 s between tries, as the cloud's answer asks. V(0) fails at once.
    type: int
    default: 150
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

- name: Weekly, or daily in the last 30 days of the license; hosts without billing sync are left alone
  selfhost.bitwarden.bitwarden_license_sync:
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11
    max_age: 7d
    expiry_days: 30
    unconfigured: skip
  register: license_sync

- name: The same, each due sync in its turn of a budget of 8 syncs a minute for the hosts behind one NAT
  selfhost.bitwarden.bitwarden_license_sync:
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11
    max_age: 7d
    expiry_days: 30
    pace:
      key: office-nat-US
      calls_per_minute: 8
      state_dir: ~/.ansible/selfhost.bitwarden/pace

- name: Show what the sync changed
  ansible.builtin.debug:
    msg: "{{ license_sync.reason }}: {{ license_sync.changes | join('; ') | default('no change', true) }}"
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
due:
  description: Whether the rule says a sync is due (also in check mode, and when the task's changed status is overridden).
  returned: always
  type: bool
reason:
  description: Why a sync ran (or would run), or why not.
  returned: always
  type: str
  sample: last sync 200 h ago, older than the max age (168 h)
license_before:
  description:
    - The license before the sync as the server's subscription route returns it (read when a sync is due or
      O(expiry_days) is set, else V(null)).
    - C(expiration) (grace included), C(expiration_without_grace_period), C(seats), C(plan); C(error) when the
      server could not read its license.
  returned: always
  type: dict
  sample: {"expiration": "2027-02-18T10:00:00Z", "expiration_without_grace_period": "2026-12-20T10:00:00Z",
           "seats": 50, "plan": "Enterprise (Annually)", "error": null}
license_after:
  description: The license after the sync, as RV(license_before); V(null) when no sync ran.
  returned: always
  type: dict
changes:
  description: What the sync changed in the license, one line per field, C(<field>) colon C(<before> -> <after>).
  returned: always
  type: list
  elements: str
  sample: ["expiration_without_grace_period: 2026-12-20T10:00:00Z -> 2027-12-20T10:00:00Z"]
paced_wait:
  description: Seconds the sync waited on the controller for its slot of O(pace) (only when it took one).
  returned: when a slot was taken
  type: float
rate_limited:
  description: How many times the cloud rate-limited the sync before it went through (or the module gave up).
  returned: always
  type: int
"""

import datetime
import time

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _pace
from ansible_collections.selfhost.bitwarden.plugins.module_utils._api_log import (
    RATE_LIMITING,
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
    ci_get,
    parse_timestamp,
)
from ansible_collections.selfhost.bitwarden.plugins.module_utils._license_rule import parse_duration, sync_due

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
RATE_LIMIT_WAIT = 60  # the cloud's answer: "Slow down! Too many requests. Try again in 1m."
RATE_LIMITED = ("%s; rate-limited %d time(s) within %d s. Hosts behind the same NAT share one budget of the cloud, so "
                "this is not a wrong key or region: sync fewer hosts a minute (billing_sync_cloud_calls_per_minute of the "
                "license_sync playbook) or raise rate_limit_deadline")
LICENSE_FIELDS = ("expiration", "expiration_without_grace_period", "seats", "plan")


def license_view(client, organization_id):
    """The license as GET /api/organizations/{id}/subscription shows it (self-hosted: the license file)."""
    try:
        data = client.send("GET", "/api/organizations/%s/subscription" % quote(organization_id, safe="")).data or {}
    except BitwardenApiError as exc:
        return dict(expiration=None, expiration_without_grace_period=None, seats=None, plan=None,
                    error=client.scrub(str(exc)))
    return dict(expiration=ci_get(data, "expiration"), expiration_without_grace_period=ci_get(data, "expirationWithoutGracePeriod"),
                seats=ci_get(data, "seats"), plan=ci_get(ci_get(data, "plan") or {}, "name"), error=None)


def license_changes(before, after):
    changes = []
    for field in LICENSE_FIELDS:
        old, new = (before or {}).get(field), (after or {}).get(field)
        if field.startswith("expiration"):
            same = parse_timestamp(old) == parse_timestamp(new)
        else:
            same = old == new
        if not same:
            changes.append("%s: %s -> %s" % (field, old, new))
    return changes


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


def unconfigured(module, client, result, msg):
    if module.params["unconfigured"] == "skip":
        result.update(reason="left alone: " + msg)
        module.exit_json(**result)
    client.fail(msg)


def post_sync(module, client, organization_id, previous):
    """POST the sync; wait out the cloud's rate limit until the deadline. Returns how often the cloud limited it."""
    started = time.monotonic()
    limited = 0
    while True:
        since = datetime.datetime.now(datetime.timezone.utc)
        try:
            # Retried only when it cannot have reached the api (refused, 429, 502, 503), never after a timeout, a reset
            # or a 504 (SYNC_TIMEOUT says why); a sync the cloud rate-limited is sent again after the wait below.
            client.send("POST", "/api/organizations/licenses/self-hosted/%s/sync" % organization_id, idempotent=False,
                        timeout=max(client.timeout, SYNC_TIMEOUT))
            return limited
        except BitwardenApiError as exc:
            message = sync_failure_message(client, exc, organization_id, since)
            if RATE_LIMITING not in message:
                client.fail(message, previous_license_sync=previous, rate_limited=limited)
            limited += 1
            elapsed = time.monotonic() - started
            if elapsed + RATE_LIMIT_WAIT > module.params["rate_limit_deadline"]:
                client.fail(RATE_LIMITED % (message, limited, int(elapsed)), previous_license_sync=previous,
                            rate_limited=limited)
            client.warn("the Bitwarden cloud rate-limited this license sync (HTTP 429); waiting %d s before syncing "
                        "again" % RATE_LIMIT_WAIT)
            time.sleep(RATE_LIMIT_WAIT)


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(api_log_argument_spec())
    argument_spec.update(
        organization_id=dict(type="str"),
        force=dict(type="bool", default=False),
        max_age=dict(type="str"),
        expiry_days=dict(type="int"),
        unconfigured=dict(type="str", default="fail", choices=["fail", "skip"]),
        rate_limit_deadline=dict(type="int", default=150),
        pace=dict(type="dict", options=_pace.PACE_OPTIONS),  # taken by the action plugin on the controller
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **api_module_kwargs())
    params = module.params
    max_age = None
    if params["max_age"] is not None:
        max_age = parse_duration(params["max_age"])
        if max_age is None:
            module.fail_json(msg="max_age %r is neither seconds nor a duration such as 12h or 7d" % params["max_age"])
    for name in ("expiry_days", "rate_limit_deadline"):
        if params[name] is not None and params[name] < 0:
            module.fail_json(msg="%s must be 0 or more, got %d" % (name, params[name]))
    client = BitwardenClient(module)

    try:
        organization_id = client.resolve_organization(params["organization_id"])
        connection = client.get_connection(organization_id)
    except BitwardenApiError as exc:
        client.fail(exc)
    result = dict(changed=False, synced=False, previous_license_sync=None, last_license_sync=None,
                  organization_id=organization_id, due=False, reason="", license_before=None, license_after=None, changes=[],
                  rate_limited=0)
    if connection is None:
        unconfigured(module, client, result, APPLY_TOKEN_FIRST % organization_id)
    if not connection["enabled"]:
        unconfigured(module, client, result, "the billing sync connection of organization %s is disabled: set enabled: "
                     "true with selfhost.bitwarden.bitwarden_billing_sync_token" % organization_id)
    previous = connection["last_license_sync"]
    result.update(previous_license_sync=previous, last_license_sync=previous)
    if params["unconfigured"] == "skip":
        try:
            enabled = client.cloud_communication_enabled()
        except BitwardenApiError as exc:
            client.fail(exc)
        if not enabled:
            unconfigured(module, client, result, "cloud communication is off on the running server "
                         "(globalSettings__enableCloudCommunication): run the rollout playbook first")

    now = datetime.datetime.now(datetime.timezone.utc)
    previous_time = parse_timestamp(previous)
    before = license_view(client, organization_id) if params["expiry_days"] is not None else None
    needed, reason = sync_due(now, previous_time, max_age, params["expiry_days"],
                              parse_timestamp((before or {}).get("expiration")),
                              parse_timestamp((before or {}).get("expiration_without_grace_period")), params["force"])
    result.update(changed=needed, due=needed, reason=reason)
    if not needed or module.check_mode:
        result["license_before"] = before
        module.exit_json(**result)

    if before is None:
        before = license_view(client, organization_id)
    result.update(license_before=before, rate_limited=post_sync(module, client, organization_id, previous))
    try:
        after = client.get_connection(organization_id)
    except BitwardenApiError as exc:
        client.fail("the license sync was accepted, but reading the connection afterwards failed: %s" % exc.msg)
    latest = after["last_license_sync"] if after else None
    latest_time = parse_timestamp(latest)
    if latest_time is None or (previous_time is not None and latest_time <= previous_time):
        client.fail("the server accepted the license sync but the time of the last sync did not advance (before: %s, "
                    "after: %s)" % (previous, latest), previous_license_sync=previous, last_license_sync=latest)
    license_after = license_view(client, organization_id)
    result.update(synced=True, last_license_sync=latest, license_after=license_after,
                  changes=license_changes(before, license_after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
