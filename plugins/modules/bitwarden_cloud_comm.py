#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bitwarden_cloud_comm
short_description: Turn on cloud communication of a self-hosted Bitwarden server
version_added: 0.1.0
description:
  - Sets C(globalSettings__enableCloudCommunication) and the cloud region settings (C(globalSettings__baseServiceUri__cloudRegion),
    C(globalSettings__installation__identityUri), C(globalSettings__installation__apiUri), C(globalSettings__pushRelayBaseUri))
    in C(bwdata/env/global.override.env). This is step 1 of turning on automatic billing sync.
  - Runs on the Bitwarden host. Only the lines of these keys change; every other line (the secrets Setup generated,
    comments, order, line endings) stays byte for byte. Missing keys are appended.
  - Keys match case-insensitively, as .NET configuration does. Several lines for one managed key are collapsed into
    the last one (its value is the one that wins) and reported in RV(duplicates_collapsed).
  - The file is replaced atomically and keeps its mode, owner and group.
  - The server reads the file only when its containers start. The module does not restart anything; it returns
    RV(restart_required) so that a handler can run C(./bitwarden.sh restart).
  - "A push relay that was switched off (C(push_notifications: false) in C(config.yml), or C(globalSettings__pushRelayBaseUri)
    set to an empty value, C(SECRET) or C(REPLACE)) stays off; RV(push_relay_enabled) says so."
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
options:
  bwdata_path:
    description:
      - The C(bwdata) directory of the installation, the one that holds C(config.yml) and C(env/).
    type: path
    default: /opt/bitwarden/bwdata
  env_file:
    description:
      - The env file to edit.
      - Defaults to C(<bwdata_path>/env/global.override.env).
    type: path
  enabled:
    description:
      - Value of C(globalSettings__enableCloudCommunication).
      - When V(true), the file must hold an installation id (C(globalSettings__installation__id), not all zeros) and key.
    type: bool
    default: true
  region:
    description:
      - The cloud region the installation id and key belong to (chosen when they were retrieved on U(https://bitwarden.com/host)).
      - Sets C(globalSettings__baseServiceUri__cloudRegion) and that region's identity, API and push relay URIs.
    type: str
    choices: [US, EU]
    default: US
  backup:
    description:
      - Make a timestamped copy of the env file next to it before changing it.
    type: bool
    default: false
  install_user:
    description:
      - The user that owns the installation (C(bitwarden) in Bitwarden's install guide).
      - When set, the module first checks that C(bitwarden.sh) sits in the directory that holds O(bwdata_path), that
        the user the task runs as may execute it and that it belongs to this user, and fails without changing anything
        otherwise. A handler that runs C(./bitwarden.sh restart) as this user can then rely on both.
    type: str
    version_added: 0.2.0
extends_documentation_fragment:
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.attributes.files
attributes:
  check_mode:
    support: full
    details:
      - Reads the files and predicts every return value; writes nothing and makes no backup.
  diff_mode:
    support: full
    details:
      - The diff shows the whole env file with the value of every secret-looking key (passwords, keys, connection strings,
        installation id and key) replaced by C(********).
  idempotent:
    support: full
  safe_file_operations:
    support: full
    details:
      - The new env file is written to a temporary file in the same directory and moved over the old one atomically
        (C(atomic_move)), with the old file's mode and owner.
notes:
  - C(./bitwarden.sh rebuild), C(updateconf) and C(update) keep the values this module writes (contract of Setup's
    C(LoadExistingValues)), so the module stays idempotent across them. They drop comments and blank lines.
  - Bitwarden Lite (C(settings.env), C(BW_INSTALLATION_ID)) is not supported.
  - The file is readable by its owner only (mode 0600); run the task with C(become=true).
seealso:
  - name: Self-hosted Families sponsorships
    description: Bitwarden's instructions for enabling automatic billing sync.
    link: https://bitwarden.com/help/families-for-enterprise-self-hosted/
"""

EXAMPLES = r"""
- name: Turn on cloud communication (US installation in /opt/bitwarden)
  selfhost.bitwarden.bitwarden_cloud_comm:
  become: true
  register: cloud_comm
  notify: Restart Bitwarden

- name: Turn on cloud communication for an installation whose id and key come from the EU cloud
  selfhost.bitwarden.bitwarden_cloud_comm:
    bwdata_path: /home/bitwarden/bwdata
    region: EU
    backup: true
    # First check that /home/bitwarden/bitwarden.sh exists and belongs to the user the restart below runs as.
    install_user: bitwarden
  become: true
  register: cloud_comm

- name: Restart Bitwarden only when a setting the server reads changed
  ansible.builtin.command: ./bitwarden.sh restart
  args:
    chdir: /home/bitwarden
  become: true
  become_user: bitwarden
  when: cloud_comm.restart_required
  changed_when: true

# Run with --check --diff: shows what would change (secrets masked), writes nothing.
- name: Preview the change
  selfhost.bitwarden.bitwarden_cloud_comm:
    region: EU
  become: true
  check_mode: true
  diff: true
  register: preview

- name: Report hosts whose push relay Setup switched off
  ansible.builtin.debug:
    msg: "Push relay is off on {{ inventory_hostname }}; mobile push notifications stay disabled."
  when: not preview.push_relay_enabled
"""

RETURN = r"""
restart_required:
  description:
    - Whether a value the server uses changed, so that C(./bitwarden.sh restart) is needed to apply it.
    - V(false) when only the file's form changed (duplicate lines collapsed, a default written out explicitly).
  returned: always
  type: bool
  sample: true
env_file:
  description: The env file.
  returned: always
  type: str
  sample: /opt/bitwarden/bwdata/env/global.override.env
backup_file:
  description: The copy made before the change.
  returned: when O(backup=true) and the file changed (not in check mode)
  type: str
  sample: /opt/bitwarden/bwdata/env/global.override.env.2271.2026-11-22@10:15:02~
settings:
  description: The managed keys and their values in the file after the run (predicted in check mode).
  returned: always
  type: dict
  sample:
    globalSettings__enableCloudCommunication: "true"
    globalSettings__baseServiceUri__cloudRegion: EU
    globalSettings__installation__identityUri: https://identity.bitwarden.eu
    globalSettings__installation__apiUri: https://api.bitwarden.eu
    globalSettings__pushRelayBaseUri: https://push.bitwarden.eu
duplicates_collapsed:
  description: Managed keys that had several lines (in any letter case), now collapsed into one.
  returned: always
  type: list
  elements: str
  sample: [globalSettings__enableCloudCommunication]
push_relay_enabled:
  description: Whether the push relay is on after the run; V(false) when it was switched off and kept off.
  returned: always
  type: bool
  sample: true
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _cloud_comm, _env_file, _regions


def write_atomically(module, path, text):
    """Replace ``path`` by a complete new file (temp file in the same folder, then rename): never half written."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=os.path.dirname(path))
    except OSError as exc:
        module.fail_json(msg="Cannot write next to %s: %s. Check free space. %s" % (path, exc.strerror, _cloud_comm.BECOME))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        module.atomic_move(tmp, path)  # takes over mode, owner, group and SELinux context of the old file
    finally:
        module.cleanup(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bwdata_path=dict(type="path", default="/opt/bitwarden/bwdata"),
            env_file=dict(type="path"),
            enabled=dict(type="bool", default=True),
            region=dict(type="str", default="US", choices=list(_regions.REGIONS)),
            backup=dict(type="bool", default=False),
            install_user=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    plan = _cloud_comm.plan(module, module.params["bwdata_path"], module.params["env_file"], module.params["region"],
                            module.params["enabled"], module.params["install_user"])
    env_file, text, new_text = plan.env_file, plan.text, plan.new_text
    result = dict(
        changed=new_text != text,
        restart_required=plan.restart_required,
        env_file=env_file,
        settings=plan.settings,
        duplicates_collapsed=plan.collapsed,
        push_relay_enabled=plan.push_relay_enabled,
    )
    if module._diff:
        result["diff"] = dict(before=_env_file.mask(text), after=_env_file.mask(new_text), before_header=env_file, after_header=env_file)
    if result["changed"] and not module.check_mode:
        path = os.path.realpath(env_file)  # a symlinked env file stays a symlink
        if module.params["backup"]:
            try:
                result["backup_file"] = module.backup_local(path)
            except Exception as exc:  # backup_local raises a bare Exception
                module.fail_json(msg="%s Nothing was changed; check free space and permissions in %s." % (exc, os.path.dirname(path)))
        write_atomically(module, path, new_text)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
