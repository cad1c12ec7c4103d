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
  - The server version and cloud region (C(GET /api/config); servers older than 2022.10.0 have no such route, then
    the version comes from C(GET /api/version) and the region is V(null)), whether the running server has cloud
    communication enabled, and for the organization whether a billing sync token is applied and enabled,
    the cloud organization id, the time of the last license sync, the license expiry and the state of the
    Families sponsorship sync.
  - The license expiry comes from the server's own subscription route (C(GET /api/organizations/{id}/subscription)),
    which a self-hosted server answers from the organization's license file, as its web vault shows it.
  - The sponsorship sync state needs the api log (C(bwdata/logs/api/Api/); Bitwarden Lite - C(/etc/bitwarden/logs/)
    in its C(bitwarden) volume) on the host the module runs on. The
    server runs that job 0 to 23 hours after each start of its api container and then daily, so a sponsorship sync
    that has not happened yet is V(pending), not a failure.
  - The billing sync token itself is never returned.
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.api
  - selfhost.bitwarden.api.organization
  - selfhost.bitwarden.api_log
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
  description: The server's C(cloudRegion) setting (V(US) or V(EU)); V(null) when not set or before server 2023.8.0 (which has no such setting).
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
    last_license_sync_age_hours:
      description: Whole hours since RV(organization.last_license_sync), V(null) when never synced.
      type: int
      version_added: 0.3.0
    sponsorship_last_sync_date:
      description: Time of the last Families sponsorship sync, V(null) when none happened (or no sponsorships exist).
      type: str
    sponsorship_sync_state:
      description:
        - V(synced) (a sponsorship sync happened - a C(lastSyncDate), or a run that ended without a failure and with
          sponsorships to send), V(pending) (the job has not run since the api started; its first run
          comes 0 to 23 hours after each start, then daily), V(no_sponsorships) (the job ran, there was nothing to
          sync), V(failed) (its last run logged a failure for the organization), V(off) (cloud communication off, so
          the job is not scheduled), V(not_configured) (no enabled billing sync connection), V(unknown) (the api log
          cannot be read).
      type: str
      version_added: 0.3.0
    sponsorship_last_job_run:
      description: When the sponsorship sync job last finished according to the api log (last 24 hours), or V(null).
      type: str
      version_added: 0.3.0
    sponsorship_sync_message:
      description:
        - The server's exception line when the job's last finished run failed for the organization (for example the
          Entity Framework error of Bitwarden Lite on MariaDB, MySQL, PostgreSQL or SQLite), else V(null).
      type: str
      version_added: 0.4.0
    sponsorship_sync_log:
      description: Where the api log was read, or why it could not be (then RV(organization.sponsorship_sync_state) is V(unknown)).
      type: str
      version_added: 0.4.0
    sponsorship_last_seen:
      description:
        - The newest sign that the sponsorship sync ran for the organization, V(null) when there is none - the later of
          RV(organization.sponsorship_last_sync_date) and RV(organization.sponsorship_last_job_run).
        - The job runs daily, and at most 47 hours apart across an api restart (the last run before it, then 0 to 23
          hours after it), so a value older than 48 hours while billing sync is on means the job stopped.
      type: str
      version_added: 0.4.0
    license:
      description: Expiry of the organization's license, as the server's subscription route returns it.
      type: dict
      version_added: 0.3.0
      contains:
        expiration:
          description: When the license stops working (the end of the paid period plus the grace period).
          type: str
          sample: "2027-10-28T13:45:00Z"
        expiration_without_grace_period:
          description:
            - End of the paid period. The server computes it for licenses that lack it (expiration minus 60 days,
              trials the expiration); V(null) before server 2023.5.0 or without a license.
          type: str
          sample: "2027-08-29T13:45:00Z"
        days_left:
          description: Whole days until RV(organization.license.expiration_without_grace_period) (negative once past), or V(null).
          type: int
        days_left_with_grace:
          description: Whole days until RV(organization.license.expiration), or V(null).
          type: int
        error:
          description: Why the expiry could not be read (for example no license file on the server), else V(null).
          type: str
"""

import datetime

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils._api_log import (
    argument_spec as api_log_argument_spec,
    locate,
    sponsorship_job_outcome,
)
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import (
    BitwardenApiError,
    BitwardenClient,
    api_argument_spec,
    api_module_kwargs,
    ci_get,
    parse_timestamp,
)

# The job runs every 24 hours; a little slack for the run itself.
JOB_INTERVAL = datetime.timedelta(hours=24, minutes=5)


def days_until(moment, now):
    return None if moment is None else int((moment - now).total_seconds() // 86400)


def hours_since(moment, now):
    return None if moment is None else int((now - moment).total_seconds() // 3600)


def license_expiry(client, organization_id, now):
    """Expiry from GET /api/organizations/{id}/subscription (self-hosted: the license file)."""
    empty = dict(expiration=None, expiration_without_grace_period=None, days_left=None, days_left_with_grace=None)
    try:
        data = client.send("GET", "/api/organizations/%s/subscription" % quote(organization_id, safe="")).data
    except BitwardenApiError as exc:
        return dict(empty, error="the server could not read the organization's license (%s): upload the license "
                                 "again or run a license sync" % client.scrub(str(exc)))
    expiration = ci_get(data, "expiration")
    without_grace = ci_get(data, "expirationWithoutGracePeriod")
    return dict(expiration=expiration, expiration_without_grace_period=without_grace,
                days_left=days_until(parse_timestamp(without_grace), now),
                days_left_with_grace=days_until(parse_timestamp(expiration), now), error=None)


def sponsorship_state(last_sync, comm_enabled, connection, last_run):
    """What the sponsorship sync is doing, from the sync-status route's lastSyncDate and the job's last run in the api
    log (``sponsorship_job_outcome`` of the last day; None when the log cannot be read)."""
    outcome = last_run["outcome"] if last_run else None
    if comm_enabled and connection and connection["enabled"] and outcome == "failed":
        return "failed"
    if last_sync:
        return "synced"
    if not comm_enabled:
        return "off"
    if not (connection and connection["enabled"]):
        return "not_configured"
    if last_run is None:
        return "unknown"
    # ok without a lastSyncDate: the cloud leaves it empty for sponsorships whose plan does not match the tier
    return {"no_sponsorships": "no_sponsorships", "ok": "synced"}.get(outcome, "pending")


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(api_log_argument_spec())
    argument_spec.update(organization_id=dict(type="str"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **api_module_kwargs())
    client = BitwardenClient(module, read_only=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        environment = ci_get(client.server_config() or {}, "environment") or {}
        version = client.server_version()
        organization_id = client.resolve_organization(module.params["organization_id"])
        comm_enabled = client.cloud_communication_enabled()
        connection = client.get_connection(organization_id)
        status = client.send("GET", "/api/organization/sponsorship/%s/sync-status" % quote(organization_id, safe="")).data
        expiry = license_expiry(client, organization_id, now)
    except BitwardenApiError as exc:
        client.fail(exc)

    log = locate(module)
    last_run = None if log.problem else sponsorship_job_outcome(log.directory, now - JOB_INTERVAL)
    finished = last_run["finished"] if last_run else None
    last_sync = ci_get(status, "lastSyncDate")
    seen = [moment for moment in (parse_timestamp(last_sync), finished) if moment is not None]
    module.exit_json(
        changed=False,
        server_version=version,
        cloud_region=ci_get(environment, "cloudRegion"),
        cloud_communication_enabled=comm_enabled,
        organization=dict(
            id=organization_id,
            billing_sync_configured=connection is not None,
            billing_sync_enabled=bool(connection and connection["enabled"]),
            cloud_organization_id=connection["cloud_organization_id"] if connection else None,
            last_license_sync=connection["last_license_sync"] if connection else None,
            last_license_sync_age_hours=hours_since(parse_timestamp(connection["last_license_sync"] if connection else None), now),
            sponsorship_last_sync_date=last_sync,
            sponsorship_sync_state=sponsorship_state(last_sync, comm_enabled, connection, last_run),
            sponsorship_last_job_run=finished.isoformat() if finished else None,
            sponsorship_sync_message=last_run["message"] if last_run and last_run["outcome"] == "failed" else None,
            sponsorship_sync_log=log.problem or log.where,
            sponsorship_last_seen=max(seen).isoformat() if seen else None,
            license=expiry,
        ),
    )


if __name__ == "__main__":
    main()
