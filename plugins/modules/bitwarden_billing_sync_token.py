#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_billing_sync_token
short_description: Apply the billing sync token of a self-hosted Bitwarden organization
version_added: 0.1.0
description:
  - Manages the C(CloudBillingSync) organization connection of a self-hosted organization, that is the billing
    sync token generated in the cloud web vault (Admin Console, Billing, Subscription, Set up billing sync) and
    whether automatic sync is enabled. This is what "Manage billing sync" in the self-hosted admin console saves.
  - Reads the connection first and writes only when the token or O(enabled) differ. An update keeps the time
    of the last license sync, which the web vault's dialog would reset.
  - Also reports whether the running server has cloud communication enabled (without it nothing syncs), and
    warns when it is off.
  - The server does not check the token when it is saved; only a license sync
    (M(selfhost.bitwarden.bitwarden_license_sync)) proves it.
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
  diff_mode:
    support: full
    details:
      - The token is shown as a short SHA-256 fingerprint, never in clear.
  idempotent:
    support: full
options:
  billing_sync_token:
    description:
      - The billing sync token from the cloud organization.
      - Required when O(state=present).
      - Must be a non-empty string. Leading and trailing whitespace (the newline a YAML block scalar adds) is removed
        with a warning; an empty value, a number, a list or a token with a control character inside is rejected.
    type: raw
  enabled:
    description:
      - Whether automatic billing sync is enabled for the organization.
    type: bool
    default: true
  verify:
    description:
      - After changing the token of an existing connection, trigger a license sync (a call to the Bitwarden cloud)
        to prove the new token, the only check there is.
      - When the cloud rejects the new token, the module puts the previous token back (billing sync keeps working as
        before) and fails, saying so. Any other failure of the sync keeps the new token and fails with its cause.
      - A connection created with O(verify) has no previous token to put back; a refusal fails with the cause.
      - Nothing is verified when the token did not change, or in check mode.
    type: bool
    default: false
    version_added: 0.4.0
  warn_cloud_communication_off:
    description:
      - Warn when the running server has cloud communication off (nothing syncs until it is on).
      - V(false) when the caller is turning it on in the same run, as the C(selfhost.bitwarden.billing_sync) role does
        in check mode before the restart it would do.
    type: bool
    default: true
    version_added: 0.4.0
  state:
    description:
      - V(present) creates or updates the connection, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: selfhost.bitwarden.bitwarden_cloud_comm
  - module: selfhost.bitwarden.bitwarden_license_sync
  - module: selfhost.bitwarden.bitwarden_sync_info
"""

EXAMPLES = r"""
- name: Apply the billing sync token
  selfhost.bitwarden.bitwarden_billing_sync_token:
    server_url: https://bitwarden.example.com
    client_id: "{{ bitwarden_owner_client_id }}"
    client_secret: "{{ bitwarden_owner_client_secret }}"
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11
    billing_sync_token: "{{ bitwarden_billing_sync_token }}"

- name: Rotate the token, and keep the old one if the cloud refuses the new one
  selfhost.bitwarden.bitwarden_billing_sync_token:
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11
    billing_sync_token: "{{ bitwarden_billing_sync_token }}"
    verify: true

- name: Remove the billing sync connection
  selfhost.bitwarden.bitwarden_billing_sync_token:
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11
    state: absent
"""

RETURN = r"""
paced_wait:
  description: Seconds the run waited on the controller for its slot of O(pace) (only with O(verify) and a token change).
  returned: when a slot was taken
  type: float
action:
  description: What was done (or, in check mode, would be done).
  returned: always
  type: str
  choices: [created, updated, deleted, none]
  sample: created
connection:
  description:
    - The connection after the change; V(null) when there is none.
    - In check mode, a connection that would be created has C(id=null).
  returned: always
  type: dict
  contains:
    id:
      description: Id of the connection.
      type: str
    enabled:
      description: Whether automatic billing sync is enabled.
      type: bool
    cloud_organization_id:
      description: Id of the cloud organization, taken by the server from the organization license.
      type: str
    last_license_sync:
      description: Time of the last successful license sync, V(null) when never synced.
      type: str
  sample:
    id: 5f0c2a8e-1c53-4d7b-8e0a-3e9c0b8a3d21
    enabled: true
    cloud_organization_id: 9b1f3f2a-0e4e-4c55-b1a2-7d3c5e6f7a80
    last_license_sync: "2026-08-20T14:03:11.1234567+00:00"
organization_id:
  description: The self-hosted organization id used.
  returned: always
  type: str
cloud_communication_enabled:
  description: Whether the running server has cloud communication enabled (C(GET /api/organizations/connections/enabled)).
  returned: always
  type: bool
verified:
  description: Whether a license sync proved the new token (O(verify)).
  returned: always
  type: bool
"""

import datetime

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _pace
from ansible_collections.selfhost.bitwarden.plugins.module_utils._api_log import (
    argument_spec as api_log_argument_spec,
    explain_license_sync_failure,
    locate,
    read_env_settings,
)
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import (
    BitwardenApiError,
    BitwardenClient,
    api_argument_spec,
    api_module_kwargs,
    fingerprint,
    public_connection,
)

CONNECTIONS = "/api/organizations/connections"
COMM_OFF_WARNING = ("the connection %s but the running server has cloud communication off: run "
                    "selfhost.bitwarden.bitwarden_cloud_comm and restart the server")


def diff_view(connection, token=None):
    if connection is None:
        return {"state": "absent"}
    return {"state": "present", "enabled": connection["enabled"],
            "billing_sync_token": fingerprint(token if token is not None else connection["billing_sync_key"])}


def request_body(organization_id, token, enabled, current=None):
    # Always send config (a missing one is a 500 on the server); echo LastLicenseSync so an update keeps it.
    config = {"billingSyncKey": token}
    if current is not None:
        config["lastLicenseSync"] = current["last_license_sync"]
        config["cloudOrganizationId"] = current["cloud_organization_id"]
    return {"type": 1, "organizationId": organization_id, "enabled": enabled, "config": config}


# The api log's causes that mean "the cloud refused this token" (a server before 2026.6.0 logs no reason at all).
TOKEN_REFUSED = ("the cloud rejected the billing sync token", "the cloud refused the request to")
ROTATE_AGAIN = ("generate a new token in the cloud web vault (Admin Console > Billing > Subscription > Set up billing "
                "sync) and run rotate_token again with it (billing_sync_token)")


def verify_or_restore(client, organization_id, current):
    """License sync with the new token; on the cloud's refusal, the previous token back and a failure that says so."""
    since = datetime.datetime.now(datetime.timezone.utc)
    try:
        client.send("POST", "/api/organizations/licenses/self-hosted/%s/sync" % organization_id, idempotent=True)
        return
    except BitwardenApiError as exc:
        failure = exc
    log = locate(client.module)
    cause = None
    if log.problem is None:
        cause = explain_license_sync_failure(log.directory, since, read_env_settings(log.env_file))
    cause = cause or failure.msg
    if current is None or not cause.startswith(TOKEN_REFUSED):
        client.fail("the new billing sync token is saved, but the license sync that proves it failed: %s" % cause)
    try:
        client.send("PUT", "%s/%s" % (CONNECTIONS, current["id"]),
                    body=request_body(organization_id, current["billing_sync_key"], current["enabled"], current))
    except BitwardenApiError as exc:
        client.fail("the cloud refused the new billing sync token (%s), and putting the previous token back failed "
                    "(%s): the server holds the refused token, billing sync does not work until you %s"
                    % (cause, exc.msg, ROTATE_AGAIN))
    client.fail("the cloud refused the new billing sync token, so the previous token is back in place and billing "
                "sync works as before this run. The cause: %s. Next: %s" % (cause, ROTATE_AGAIN),
                action="none", connection=public_connection(current))


def explain_write_error(client, exc, organization_id):
    """Refine a failed create/update: servers before 2026.6.2 answer a missing license file with a 500."""
    if exc.status == 500:
        license_file = "%s/core/licenses/organization/%s.json" % (client.bwdata_path, organization_id)
        return ("%s. Servers before 2026.6.2 answer this way when the organization license file (%s) is missing or "
                "unreadable: upload the organization license first, then run this again" % (exc.msg, license_file))
    return exc.msg


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(api_log_argument_spec())
    argument_spec.update(
        organization_id=dict(type="str"),
        # raw, not str: str would store a list or a number as its Python spelling (the client checks it).
        billing_sync_token=dict(type="raw", no_log=True),
        enabled=dict(type="bool", default=True),
        verify=dict(type="bool", default=False),
        warn_cloud_communication_off=dict(type="bool", default=True),
        pace=dict(type="dict", options=_pace.PACE_OPTIONS),  # taken by the action plugin on the controller (verify)
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["billing_sync_token"])], **api_module_kwargs())
    client = BitwardenClient(module)
    token = None
    if module.params["state"] == "present":
        token = client.take_secret("billing_sync_token", module.params["billing_sync_token"])
    enabled = module.params["enabled"]
    state = module.params["state"]

    try:
        organization_id = client.resolve_organization(module.params["organization_id"])
        comm_enabled = client.cloud_communication_enabled()
        current = client.get_connection(organization_id)
    except BitwardenApiError as exc:
        client.fail(exc)

    result = dict(changed=False, action="none", organization_id=organization_id, verified=False,
                  cloud_communication_enabled=comm_enabled, connection=public_connection(current))

    if state == "absent":
        if current is not None:
            result.update(changed=True, action="deleted", connection=None)
            if not module.check_mode:
                try:
                    client.send("DELETE", "%s/%s" % (CONNECTIONS, current["id"]))
                except BitwardenApiError as exc:
                    client.fail(exc)
        after = None
    elif current is None:
        result.update(changed=True, action="created")
        after = {"id": None, "enabled": enabled, "billing_sync_key": token, "cloud_organization_id": None,
                 "last_license_sync": None}
        if not module.check_mode:
            try:
                after = client.connection_from_response(
                    client.send("POST", CONNECTIONS, body=request_body(organization_id, token, enabled)).data)
            except BitwardenApiError as exc:
                after = None
                if exc.ambiguous:
                    # The create may have landed although no answer came back: look before reporting a failure.
                    try:
                        after = client.get_connection(organization_id)
                    except BitwardenApiError:
                        after = None
                if after is None or after["billing_sync_key"] != token:
                    client.fail(explain_write_error(client, exc, organization_id))
            if module.params["verify"]:
                verify_or_restore(client, organization_id, None)
                result["verified"] = True
        result["connection"] = public_connection(after)
    elif current["billing_sync_key"] != token or current["enabled"] != enabled:
        result.update(changed=True, action="updated")
        after = dict(current, enabled=enabled, billing_sync_key=token)
        if not module.check_mode:
            try:
                after = client.connection_from_response(client.send(
                    "PUT", "%s/%s" % (CONNECTIONS, current["id"]),
                    body=request_body(organization_id, token, enabled, current)).data) or after
            except BitwardenApiError as exc:
                client.fail(explain_write_error(client, exc, organization_id))
            if module.params["verify"] and current["billing_sync_key"] != token:
                verify_or_restore(client, organization_id, current)
                result["verified"] = True
        result["connection"] = public_connection(after)
    else:
        after = current

    if state == "present" and not comm_enabled and module.params["warn_cloud_communication_off"]:
        client.warn(COMM_OFF_WARNING % ("would be saved" if module.check_mode and result["changed"] else "is saved"))
    if module._diff:
        result["diff"] = {"before": diff_view(current), "after": diff_view(after, token if after else None)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
