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
    in C(bwdata/env/global.override.env) of a standard installation, or in C(settings.env) of a Bitwarden Lite one.
    This is step 1 of turning on automatic billing sync.
  - "Which kind of installation it is comes from what is on disk: C(<bwdata_path>/config.yml) means standard, a compose
    file (C(docker-compose.yml)) in O(compose_dir) means Bitwarden Lite; O(deployment) overrides the detection."
  - Runs on the Bitwarden host. Only the lines of these keys change; every other line (the secrets Setup generated,
    comments, order, line endings) stays byte for byte. Missing keys are appended.
  - Keys match case-insensitively, as .NET configuration does. Several lines for one managed key are collapsed into
    the last one (its value is the one that wins) and reported in RV(duplicates_collapsed).
  - The file is replaced atomically and keeps its mode, owner and group. The new content is first written to a
    temporary file C(.global.override.env.XXXXXXXX.tmp) beside it, then renamed over it, so a run killed at any
    point (kill -9, power loss) leaves either the old file or the new one, never a mix.
  - A temporary file of that pattern (exactly this name, eight random characters) that is older than a minute can only
    be the leftover of such a killed run; the next run that is not in check mode removes it, lists it in
    RV(removed_temp_files) and reports a change. No other file is touched.
  - "The file is read as docker compose reads it: C(export) prefixes, C(KEY=value) and C(KEY: value), single and
    double quotes, quoted values spanning several lines (their inner lines are never taken for keys), inline comments,
    a UTF-8 BOM. A changed value keeps the C(export) prefix, separator and quotes of its line. A file docker compose
    would refuse is not changed; the module fails and names the line."
  - The server reads the file only when its containers start. The module does not restart anything; it returns
    RV(restart_required) so that a handler can run C(./bitwarden.sh restart) (standard) or C(docker compose up -d) in
    the compose directory (Bitwarden Lite; C(docker compose restart) does not read C(settings.env) again).
  - "A push relay that was switched off (C(push_notifications: false) in C(config.yml), or C(globalSettings__pushRelayBaseUri)
    set to an empty value, C(SECRET) or C(REPLACE)) stays off; RV(push_relay_enabled) says so."
author:
  - selfhost.bitwarden contributors (@selfhost-bitwarden)
options:
  bwdata_path:
    description:
      - The C(bwdata) directory of a standard installation, the one that holds C(config.yml) and C(env/).
    type: path
    default: /opt/bitwarden/bwdata
  env_file:
    description:
      - The env file to edit.
      - Defaults to C(<bwdata_path>/env/global.override.env) (standard) or C(<compose_dir>/settings.env) (Bitwarden Lite).
    type: path
  enabled:
    description:
      - Value of C(globalSettings__enableCloudCommunication).
      - When V(true), the file must hold an installation id (not empty, not all zeros) and key. On a standard installation
        they are C(globalSettings__installation__id) and C(globalSettings__installation__key); on Bitwarden Lite
        C(BW_INSTALLATION_ID) and C(BW_INSTALLATION_KEY) (its entrypoint overwrites the C(globalSettings__installation__*) names).
      - The module fails before changing anything when they are missing, and says where to get them.
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
      - On Bitwarden Lite it checks that the compose file belongs to this user, who runs C(docker compose up -d).
    type: str
    version_added: 0.2.0
extends_documentation_fragment:
  - selfhost.bitwarden.attributes
  - selfhost.bitwarden.installation
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
        installation id and key, C(BW_INSTALLATION_ID), C(BW_DB_PASSWORD)) replaced by C(********).
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
  - Bitwarden Lite keeps comments, quoted values and every variable the module does not manage (C(BW_*) and others)
    byte for byte; the managed keys are written unquoted.
  - The file is readable by its owner only (mode 0600); run the task with C(become=true).
  - Without pipelining, Ansible copies every module with its arguments into a temporary directory on the host, and a
    killed run leaves that copy there. This module takes no secret, but the API modules run next to it do; set
    C(pipelining = true) in C(ansible.cfg) (see the quick start guide).
seealso:
  - name: Bitwarden Lite
    description: Bitwarden's single-container deployment and its settings.env.
    link: https://bitwarden.com/help/install-and-deploy-lite/
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

- name: Turn on cloud communication on Bitwarden Lite (docker-compose.yml and settings.env in /srv/bitwarden-lite)
  selfhost.bitwarden.bitwarden_cloud_comm:
    compose_dir: /srv/bitwarden-lite
    deployment: lite
    region: EU
    install_user: bitwarden
  become: true
  register: lite_cloud_comm

# docker compose restart would keep the old environment: up -d re-creates the container with the new settings.env.
- name: Apply the change on Bitwarden Lite
  ansible.builtin.command: docker compose up -d
  args:
    chdir: /srv/bitwarden-lite
  become: true
  become_user: bitwarden
  when: lite_cloud_comm.restart_required
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
    - When V(true) (and not in check mode), an empty marker file C(.selfhost-bitwarden-restart-pending) is left beside
      the env file; M(selfhost.bitwarden.bitwarden_wait_for_server) removes it once the restarted server answers, and
      M(selfhost.bitwarden.bitwarden_drift) reports a restart as pending while it is there.
  returned: always
  type: bool
  sample: true
env_file:
  description: The env file.
  returned: always
  type: str
  sample: /opt/bitwarden/bwdata/env/global.override.env
deployment:
  description: The kind of installation, V(standard) or V(lite) (Bitwarden Lite), as detected or as O(deployment) said.
  returned: always
  type: str
  sample: lite
  version_added: 0.3.0
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
removed_temp_files:
  description: Temporary files of an earlier, killed run of this module that were removed from the env file's directory.
  returned: when not in check mode
  type: list
  elements: str
  sample: [/opt/bitwarden/bwdata/env/.global.override.env.k2j4x9_a.tmp]
  version_added: 0.3.0
push_relay_enabled:
  description: Whether the push relay is on after the run; V(false) when it was switched off and kept off.
  returned: always
  type: bool
  sample: true
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _cloud_comm, _deployment, _env_file, _regions


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


def mark_restart_pending(module, marker, env_file):
    """Leave the restart marker beside the env file, owned like it (see _cloud_comm.RESTART_MARKER)."""
    try:
        with open(marker, "w"):
            pass
        owner = os.stat(env_file)
        if os.geteuid() == 0:
            os.chown(marker, owner.st_uid, owner.st_gid)
    except OSError as exc:
        module.fail_json(msg="Cannot write next to %s (the restart marker %s): %s. Nothing was changed. %s"
                             % (env_file, os.path.basename(marker), exc.strerror, _cloud_comm.BECOME))


def remove_stale_temp_files(module, env_file):
    """Remove what a killed earlier run left beside the env file (only our own temp files, only stale ones)."""
    removed = []
    for path in _cloud_comm.stale_temp_files(env_file):
        try:
            os.unlink(path)
            removed.append(path)
        except OSError as exc:
            module.warn("Cannot remove %s, left by an interrupted earlier run: %s." % (path, exc.strerror))
    return removed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bwdata_path=dict(type="path", default="/opt/bitwarden/bwdata"),
            compose_dir=dict(type="path"),
            deployment=dict(type="str", choices=list(_deployment.KINDS)),
            env_file=dict(type="path"),
            enabled=dict(type="bool", default=True),
            region=dict(type="str", default="US", choices=list(_regions.REGIONS)),
            backup=dict(type="bool", default=False),
            install_user=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    plan = _cloud_comm.plan(module, module.params["bwdata_path"], module.params["env_file"], module.params["region"],
                            module.params["enabled"], module.params["install_user"], module.params["deployment"],
                            module.params["compose_dir"])
    env_file, text, new_text = plan.env_file, plan.text, plan.new_text
    result = dict(
        changed=new_text != text,
        restart_required=plan.restart_required,
        env_file=env_file,
        deployment=plan.deployment,
        settings=plan.settings,
        duplicates_collapsed=plan.collapsed,
        push_relay_enabled=plan.push_relay_enabled,
    )
    if module.check_mode:
        result["changed"] = result["changed"] or bool(_cloud_comm.stale_temp_files(env_file))
    else:
        result["removed_temp_files"] = remove_stale_temp_files(module, env_file)
        result["changed"] = result["changed"] or bool(result["removed_temp_files"])
    if module._diff:
        result["diff"] = dict(before=_env_file.mask(text), after=_env_file.mask(new_text), before_header=env_file, after_header=env_file)
    if new_text != text and not module.check_mode:
        path = os.path.realpath(env_file)  # a symlinked env file stays a symlink
        if module.params["backup"]:
            try:
                result["backup_file"] = module.backup_local(path)
            except Exception as exc:  # backup_local raises a bare Exception
                module.fail_json(msg="%s Nothing was changed; check free space and permissions in %s." % (exc, os.path.dirname(path)))
        marker = _cloud_comm.restart_marker(path)
        new_marker = plan.restart_required and not os.path.exists(marker)
        if new_marker:
            # Written first: if the run dies between here and the end of the restart, the next run still restarts.
            mark_restart_pending(module, marker, path)
        written = False
        try:
            write_atomically(module, path, new_text)
            written = True
        finally:
            if new_marker and not written:
                os.remove(marker)  # nothing changed after all
    module.exit_json(**result)


if __name__ == "__main__":
    main()
