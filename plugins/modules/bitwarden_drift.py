#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_drift
short_description: Tell whether a self-hosted Bitwarden host differs from its billing sync setup
version_added: 0.3.0
description:
  - Compares one installation with the state the other modules of this collection would give it, in one call and
    without changing anything. It reads the env file on the host, and from the running server the state of cloud
    communication and of the organization's billing sync connection.
  - Reports what differs in RV(drift) and which steps are due (RV(env_changed), RV(restart_required),
    RV(restart_pending), RV(token_action), RV(first_sync_due)), so that a role or playbook runs the writers only on
    hosts that need them. RV(converged) is V(true) when nothing is due.
  - A restart that an earlier run started and that did not end with the server answering
    (M(selfhost.bitwarden.bitwarden_cloud_comm) leaves a marker file beside the env file until
    M(selfhost.bitwarden.bitwarden_wait_for_server) has seen the server again) is reported as RV(restart_pending)
    when the server does not answer at the first attempt (it may be down; no retries) or still runs with cloud
    communication off. A server that answers with the env file's settings already running (the run was killed after
    its restart, or someone restarted it by hand) needs no restart, so the marker is reported as RV(restart_marker_stale),
    for the caller to remove.
  - Checks the installation like M(selfhost.bitwarden.bitwarden_cloud_comm) does and fails with the same messages.
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
extends_documentation_fragment:
  - selfhost.bitwarden.api
  - selfhost.bitwarden.installation
  - selfhost.bitwarden.api.organization
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.attributes.action_group
  - selfhost.bitwarden.attributes.info_module
options:
  env_file:
    description:
      - The env file the server reads its settings from. Defaults to C(<bwdata_path>/env/global.override.env)
        (standard) or C(<compose_dir>/settings.env) (Bitwarden Lite).
    type: path
  region:
    description:
      - The cloud region the installation id and key belong to, as for M(selfhost.bitwarden.bitwarden_cloud_comm).
      - Not set - the region the env file names (C(globalSettings__baseServiceUri__cloudRegion), which Setup writes),
        else V(US); RV(region) and RV(region_source) say which.
    type: str
    choices: [US, EU]
  install_user:
    description:
      - When set, first check that C(bitwarden.sh) beside O(bwdata_path) belongs to this user, as
        M(selfhost.bitwarden.bitwarden_cloud_comm) does.
    type: str
  billing_sync_token:
    description:
      - The billing sync token the organization should have. When omitted, the connection is not compared.
      - Compared on the host; it is never returned. Surrounding whitespace is removed with a warning; an empty value
        or one that is not a string is an error.
    type: raw
  first_sync:
    description:
      - Whether an organization that never synced its license counts as drift (RV(first_sync_due)).
    type: bool
    default: true
  license_sync_max_age:
    description:
      - With O(first_sync), a license sync older than this counts as drift too (RV(license_sync_due)), by the rule of
        M(selfhost.bitwarden.bitwarden_license_sync) O(selfhost.bitwarden.bitwarden_license_sync#module:max_age), so one setting governs the rollout and the
        scheduled license sync. The server never syncs its license by itself.
      - Seconds, or a duration such as V(168h) or V(7d). Unset means only a license that never synced is drift.
    type: str
seealso:
  - module: selfhost.bitwarden.bitwarden_cloud_comm
  - module: selfhost.bitwarden.bitwarden_billing_sync_token
  - module: selfhost.bitwarden.bitwarden_license_sync
  - module: selfhost.bitwarden.bitwarden_sync_info
"""

EXAMPLES = r"""
- name: Find out what differs (on the Bitwarden host)
  selfhost.bitwarden.bitwarden_drift:
    bwdata_path: /home/bitwarden/bwdata
    install_user: bitwarden
    server_url: https://bitwarden.example.com
    client_id: "{{ bitwarden_owner_client_id }}"
    client_secret: "{{ bitwarden_owner_client_secret }}"
    organization_id: 2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11
    billing_sync_token: "{{ bitwarden_billing_sync_token }}"
  register: drift

# The billing_sync role includes its writers only here (when: not drift.converged).
- name: Say what a run would change
  ansible.builtin.debug:
    msg: "{{ drift.drift | join('; ') if not drift.converged else 'in sync' }}"
"""

RETURN = r"""
region:
  description: The region compared against, O(region) or, when not set, the env file's.
  returned: always
  type: str
  sample: EU
region_source:
  description: Where RV(region) comes from - V(set) (O(region)), V(env_file) (the env file's cloudRegion) or V(default) (neither, so V(US)).
  returned: always
  type: str
  sample: env_file
converged:
  description: Whether nothing differs and no step is due.
  returned: always
  type: bool
  sample: false
drift:
  description: What differs, one short sentence each; empty when RV(converged).
  returned: always
  type: list
  elements: str
  sample: ["env file: globalSettings__enableCloudCommunication", "no billing sync token"]
deployment:
  description: The kind of installation, V(standard) or V(lite).
  returned: always
  type: str
  sample: standard
env_file:
  description: The env file that was read.
  returned: always
  type: str
  sample: /opt/bitwarden/bwdata/env/global.override.env
env_changed:
  description:
    - Whether M(selfhost.bitwarden.bitwarden_cloud_comm) would change the env file, or remove temp files an interrupted
      run left beside it.
  returned: always
  type: bool
restart_required:
  description: Whether that change touches a value the server reads at start, so that a restart must follow it.
  returned: always
  type: bool
restart_pending:
  description:
    - Whether the server must be restarted although the env file needs no change, because an earlier restart did not
      finish or because the running server still has cloud communication off.
  returned: always
  type: bool
cloud_communication_enabled:
  description: The running server's C(GET /api/organizations/connections/enabled); V(null) when it was not asked.
  returned: always
  type: bool
organization_id:
  description: The self-hosted organization; V(null) when the server was not asked.
  returned: always
  type: str
connection:
  description: The organization's billing sync connection (never the token); V(null) when there is none or the server was not asked.
  returned: always
  type: dict
  contains:
    id:
      description: Connection id.
      type: str
    enabled:
      description: Whether automatic sync is enabled.
      type: bool
    cloud_organization_id:
      description: The cloud organization the license belongs to.
      type: str
    last_license_sync:
      description: Time of the last license sync, as the server wrote it; V(null) when it never synced.
      type: str
restart_marker:
  description: The marker file whose presence means that an earlier restart did not finish (see the description).
  returned: always
  type: str
  sample: /opt/bitwarden/bwdata/env/.selfhost-bitwarden-restart-pending
restart_marker_stale:
  description:
    - Whether the restart marker is there although the running server already has the settings of the env file, so
      that removing it is all that is left of the earlier restart.
  returned: always
  type: bool
compose_files:
  description:
    - The compose files C(docker compose) uses in the compose dir, in its order of preference (C(compose.yaml),
      C(compose.yml), C(docker-compose.yml), C(docker-compose.yaml)), then the first override file it finds
      (C(compose.override.yml), C(compose.override.yaml), C(docker-compose.override.yml), C(docker-compose.override.yaml)).
      For C(COMPOSE_FILE) of a C(docker compose up -d) restart.
  returned: always
  type: list
  elements: str
  sample: [/opt/bitwarden/compose.yaml]
token_action:
  description:
    - What M(selfhost.bitwarden.bitwarden_billing_sync_token) would do with O(billing_sync_token)
      (V(create), V(update) or V(none)); V(unknown) when the server was not asked or no token was given.
  returned: always
  type: str
  sample: create
first_sync_due:
  description: Whether the organization never synced its license and O(first_sync) asks for it (also after a new token).
  returned: always
  type: bool
license_sync_due:
  description: Whether a license sync is due (RV(first_sync_due), or the last sync is older than O(license_sync_max_age)).
  returned: always
  type: bool
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _cloud_comm, _deployment, _env_file, _regions
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import (
    GUID,
    BitwardenApiError,
    BitwardenClient,
    api_argument_spec,
    api_module_kwargs,
    parse_timestamp,
    public_connection,
)
from ansible_collections.selfhost.bitwarden.plugins.module_utils._license_rule import parse_duration, sync_due


def env_drift(plan):
    """The managed keys whose line would change."""
    if plan.new_text == plan.text:
        return []
    keys = [key for key in _regions.MANAGED_KEYS if key.lower() in plan.new_text.lower()]
    changed = [key for key in keys if _env_file.values(plan.text, key)[-1:] != _env_file.values(plan.new_text, key)[-1:]]
    return ["env file: %s" % (", ".join(changed) or "duplicate lines of managed keys")]


def server_drift(client, organization_id, token, first_sync, restart_required, max_age=None):
    """Ask the running server (token, GET enabled, GET connection) and say what differs."""
    organization_id = client.resolve_organization(organization_id)
    comm_enabled = client.cloud_communication_enabled()
    current = client.get_connection(organization_id)
    drift = []
    if not comm_enabled and not restart_required:
        drift.append("the running server has cloud communication off")
    action = "unknown"
    if token is not None:
        if current is None:
            action = "create"
            drift.append("no billing sync token")
        elif current["billing_sync_key"] != token or not current["enabled"]:
            action = "update"
            drift.append("billing sync token differs" if current["billing_sync_key"] != token else "billing sync disabled")
        else:
            action = "none"
    first_sync_due = bool(first_sync and (current is None or current["last_license_sync"] is None))
    license_sync_due = first_sync_due
    if first_sync_due:
        drift.append("license never synced")
    elif first_sync and max_age is not None:
        license_sync_due, reason = sync_due(datetime.datetime.now(datetime.timezone.utc),
                                            parse_timestamp(current["last_license_sync"]), max_age)
        if license_sync_due:
            drift.append("license sync due (%s)" % reason)
    return dict(organization_id=organization_id, cloud_communication_enabled=comm_enabled,
                connection=public_connection(current), token_action=action, first_sync_due=first_sync_due,
                license_sync_due=license_sync_due,
                restart_pending=not comm_enabled and not restart_required), drift


def compose_dir(params, plan):
    """Where the compose restart runs: the compose dir given, else Lite's install dir or bwdata/docker."""
    if params["compose_dir"]:
        return params["compose_dir"]
    bwdata = os.path.normpath(params["bwdata_path"])
    return os.path.dirname(bwdata) if plan.deployment == _deployment.LITE else os.path.join(bwdata, "docker")


def check_client_id(module, client_id):
    """Only an owner's personal API key can read the connection: say so before any request."""
    if client_id and not (client_id.strip().startswith("user.") and GUID.match(client_id.strip()[5:])):
        module.fail_json(msg="client_id must be the personal API key of an organization owner, user.<guid> (Account "
                             "settings > Security > Keys)")


def main():
    argument_spec = api_argument_spec()
    argument_spec.update(
        deployment=dict(type="str", choices=list(_deployment.KINDS)),
        compose_dir=dict(type="path"),
        env_file=dict(type="path"),
        region=dict(type="str", choices=list(_regions.REGIONS)),
        install_user=dict(type="str"),
        organization_id=dict(type="str"),
        billing_sync_token=dict(type="raw", no_log=True),
        first_sync=dict(type="bool", default=True),
        license_sync_max_age=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **api_module_kwargs())
    params = module.params
    check_client_id(module, params["client_id"])
    max_age = None
    if params["license_sync_max_age"] is not None:
        max_age = parse_duration(params["license_sync_max_age"])
        if max_age is None:
            module.fail_json(msg="license_sync_max_age %r is neither seconds nor a duration such as 168h or 7d"
                                 % params["license_sync_max_age"])
    # The client checks server_url, ca_path and the secrets where they enter, before anything is read or sent.
    client = BitwardenClient(module, read_only=True)
    token = client.take_secret("billing_sync_token", params["billing_sync_token"])
    plan = _cloud_comm.plan(module, params["bwdata_path"], params["env_file"], params["region"], True, params["install_user"],
                            params["deployment"], params["compose_dir"])
    drift = env_drift(plan)
    leftovers = _cloud_comm.stale_temp_files(plan.env_file)
    if leftovers:
        drift.append("%d temp file(s) of an interrupted run beside the env file" % len(leftovers))
    marker = _cloud_comm.restart_marker(plan.env_file)
    result = dict(changed=False, deployment=plan.deployment, env_file=plan.env_file, restart_marker=marker,
                  region=plan.region, region_source=plan.region_source,
                  env_changed=plan.new_text != plan.text or bool(leftovers), restart_required=plan.restart_required,
                  restart_pending=False, restart_marker_stale=False, compose_files=_deployment.compose_files(module, compose_dir(params, plan)),
                  cloud_communication_enabled=None, organization_id=None, connection=None, token_action="unknown", first_sync_due=False,
                  license_sync_due=False)

    marked = os.path.exists(marker)
    if marked and plan.restart_required:
        # The file changes again and the restart follows; the server may be down, so it is not asked.
        drift.append("a restart started by an earlier run did not finish")
    elif marked:
        # An earlier run changed the file and its restart never ended with the server answering. One look without
        # retries: a down server (a run killed inside the restart) is started again at once, while one already
        # running with the file's settings (a run killed after the restart) must not be restarted a second time.
        try:
            client.send("GET", "/api/alive", auth=False, deadline=0)
            server, found = server_drift(client, params["organization_id"], token, params["first_sync"], False, max_age)
        except BitwardenApiError:
            server, found = None, []
        if server is None or server["restart_pending"]:
            result["restart_pending"] = True
            drift.append("a restart started by an earlier run did not finish")
        else:
            result.update(server, restart_marker_stale=True)
            drift.append("an earlier run left its restart marker, but the server already runs with the env file's settings")
            drift.extend(found)
    else:
        try:
            server, found = server_drift(client, params["organization_id"], token,
                                         params["first_sync"], plan.restart_required, max_age)
        except BitwardenApiError as exc:
            client.fail(exc)
        result.update(server)
        drift.extend(found)
    module.exit_json(converged=not drift, drift=drift, **result)


if __name__ == "__main__":
    main()
