#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_sync_info
short_description: Read the billing sync state of a self-hosted Bitwarden server and organization
version_added: 0.1.0
description:
  - Reads, without changing anything, what automatic billing sync depends on and how far it got.
  - The server version and cloud region (C(GET /api/config)), whether the running server has cloud
    communication enabled, and for the organization whether a billing sync token is applied and enabled,
    the cloud organization id, the time of the last license sync and the last Families sponsorship sync.
  - The billing sync token itself is never returned.
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.api
  - selfhost.bitwarden.api.organization
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.attributes.action_group
  - selfhost.bitwarden.attributes.info_module
seealso:
  - module: selfhost.bitwarden.bitwarden_billing_sync_token
  - module: selfhost.bitwarden.bitwarden_license_sync
"""

EXAMPLES = r"""
- name: Read the billing sync state
  selfhost.bitwarden.bitwarden_sync_info:
    client_id: "{{ bitwarden_owner_client_id }}"
    client_secret: "{{ bitwarden_owner_client_secret }}"
  register: sync_info

- name: Show when the license was last synced
  ansible.builtin.debug:
    msg: "{{ sync_info.organization.last_license_sync | default('never', true) }}"
"""

RETURN = r"""
server_version:
  description: Version of the Bitwarden server.
  returned: always
  type: str
  sample: 2026.8.0
cloud_region:
  description: The server's C(cloudRegion) setting (V(US) or V(EU)); V(null) when not set or before server 2023.8.0.
  returned: always
  type: str
  sample: EU
cloud_communication_enabled:
  description: Whether the running server has cloud communication enabled.
  returned: always
  type: bool
organization:
  description: Billing sync state of the organization.
  returned: always
  type: dict
  contains:
    id:
      description: The self-hosted organization id.
      type: str
    billing_sync_configured:
      description: Whether a billing sync token is applied (a C(CloudBillingSync) connection exists).
      type: bool
    billing_sync_enabled:
      description: Whether that connection is enabled.
      type: bool
    cloud_organization_id:
      description: Id of the cloud organization, V(null) without a connection.
      type: str
    last_license_sync:
      description: Time of the last license sync, V(null) when never synced.
      type: str
    sponsorship_last_sync_date:
      description: Time of the last Families sponsorship sync, V(null) when none happened (or no sponsorships exist).
      type: str
"""

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import (
    BitwardenApiError,
    BitwardenClient,
    api_argument_spec,
    api_module_kwargs,
    ci_get,
)


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(organization_id=dict(type="str"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **api_module_kwargs())
    client = BitwardenClient(module)
    try:
        config = client.send("GET", "/api/config", auth=False).data
        environment = ci_get(config, "environment") or {}
        organization_id = client.resolve_organization(module.params["organization_id"])
        comm_enabled = client.cloud_communication_enabled()
        connection = client.get_connection(organization_id)
        status = client.send("GET", "/api/organization/sponsorship/%s/sync-status" % quote(organization_id, safe="")).data
    except BitwardenApiError as exc:
        client.fail(exc)

    module.exit_json(
        changed=False,
        server_version=ci_get(config, "version"),
        cloud_region=ci_get(environment, "cloudRegion"),
        cloud_communication_enabled=comm_enabled,
        organization=dict(
            id=organization_id,
            billing_sync_configured=connection is not None,
            billing_sync_enabled=bool(connection and connection["enabled"]),
            cloud_organization_id=connection["cloud_organization_id"] if connection else None,
            last_license_sync=connection["last_license_sync"] if connection else None,
            sponsorship_last_sync_date=ci_get(status, "lastSyncDate"),
        ),
    )


if __name__ == "__main__":
    main()
