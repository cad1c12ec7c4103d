# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What turning cloud communication on would change in an installation's env file (standard or Bitwarden Lite).

This is for internal selfhost.bitwarden collection use only: names and behaviour may change without notice.

Shared by the module that writes the file (bitwarden_cloud_comm) and the one that only compares
(the read-only drift check), so both see the same installation, the same errors and the same planned text.
"""

from __future__ import annotations

import collections
import os
import pwd
import re
import stat
import time
import uuid

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _deployment, _env_file, _regions
from ansible_collections.selfhost.bitwarden.plugins.module_utils._deployment import BECOME, LITE, STANDARD, is_file

# The variables that hold the installation id and key: Bitwarden Lite's entrypoint.sh exports
# globalSettings__installation__id/key from BW_INSTALLATION_ID/KEY unconditionally (contract 6.3).
INSTALLATION_VARIABLES = {
    STANDARD: ("globalSettings__installation__id", "globalSettings__installation__key"),
    LITE: ("BW_INSTALLATION_ID", "BW_INSTALLATION_KEY"),
}
INSTALLATION_ID, INSTALLATION_KEY = INSTALLATION_VARIABLES[STANDARD]
# A top-level `push_notifications:` line of config.yml; enough YAML for the one scalar Setup writes there.
_PUSH_LINE = re.compile(r"^push_notifications\s*:\s*(?P<value>[^#]*?)\s*(#.*)?$")
_YAML_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
# Placeholders of a key nobody filled in: Setup's REPLACE, the Lite template's xxxxxxxxxxxx.
_KEY_PLACEHOLDER = re.compile(r"^(replace|x+)$", re.I)
# How to get a file that is missing back, per deployment.
_RECREATE = {
    STANDARD: "Bitwarden Setup writes it on install and rebuild; run ./bitwarden.sh rebuild, or set env_file to the right path.",
    LITE: "Bitwarden Lite reads it beside docker-compose.yml (env_file: settings.env); create it from the Lite template, or "
          "set env_file to the right path.",
}


# The temp file bitwarden_cloud_comm writes beside the env file before renaming it over the file
# (tempfile.mkstemp(prefix=".<name>.", suffix=".tmp"): eight random characters). A write takes milliseconds; one
# older than this is the leftover of a run that was killed (kill -9, power loss) between creating and renaming it.
STALE_TEMP_AGE = 60


def stale_temp_files(env_file, now=None):
    """Our own temp files beside ``env_file`` that no running write can still own (regular files only, sorted)."""
    directory, name = os.path.split(os.path.realpath(env_file))
    ours = re.compile(r"\A\.%s\.[a-z0-9_]{8}\.tmp\Z" % re.escape(name))
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    now = time.time() if now is None else now
    found = []
    for entry in entries:
        if not ours.match(entry):
            continue
        path = os.path.join(directory, entry)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_TEMP_AGE:
            found.append(path)
    return sorted(found)


def user_name(uid):
    """The name of ``uid``, or None when no user has it (a deleted user, a container without that passwd entry)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def check_installation(module, layout, install_user):
    """Fail unless the restart can use the installation as ``install_user``: bitwarden.sh exists, may be run by us and
    belongs to that user; on Bitwarden Lite the compose file belongs to that user."""
    script = layout.owner_file
    if layout.deployment == STANDARD:
        if not is_file(module, script):
            module.fail_json(msg="No bitwarden.sh at %s, the directory that holds bwdata_path: point bwdata_path at the bwdata "
                                 "directory of a bitwarden.sh installation (role: set billing_sync_install_dir to the directory "
                                 "that holds bitwarden.sh and bwdata)." % layout.root)
        if not os.access(script, os.X_OK):
            module.fail_json(msg="%s is not executable by %s, the user this task runs as: fix its mode (chmod u+x) or run the "
                                 "task as the install user." % (script, user_name(os.geteuid()) or "uid %d" % os.geteuid()))
    owner_uid = os.stat(script).st_uid
    owner = user_name(owner_uid)
    if owner is None:
        module.fail_json(msg="The owner of %s (uid %d) is not a known user: give the installation to the install user "
                             "(chown) and set install_user (role: billing_sync_user) to it." % (script, owner_uid))
    if owner != install_user:
        module.fail_json(msg="install_user is '%s' but %s belongs to '%s': set install_user (role: billing_sync_user) to "
                             "the install user." % (install_user, script, owner))


def read_bytes(module, path, what, fix):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        module.fail_json(msg="Cannot read %s %s: %s. %s" % (what, path, exc.strerror, fix))


def push_notifications(module, config_path):
    """The push_notifications setting of config.yml (Setup's default is true)."""
    text = read_bytes(module, config_path, "the installation's", BECOME).decode("utf-8", "replace")
    for line in text.splitlines():
        match = _PUSH_LINE.match(line)
        if match:
            value = match.group("value").strip("'\"").lower()
            if value not in _YAML_BOOLS:
                module.fail_json(msg="push_notifications in %s is neither true nor false. Set it to true or false." % config_path)
            return _YAML_BOOLS[value]
    return True


def installation_problem(text, deployment=STANDARD):
    """Why the installation id/key in the env file cannot be used for cloud communication, or None."""
    id_name, key_name = INSTALLATION_VARIABLES[deployment]
    ids = _env_file.values(text, id_name)
    if not ids or not all(value.strip() for value in ids):
        return "%s is missing" % id_name
    for value in ids:
        try:
            if uuid.UUID(value.strip()).int == 0:
                return "%s is all zeros" % id_name
        except ValueError:
            return "%s is not a valid id" % id_name
    keys = _env_file.values(text, key_name)
    if not keys or not all(value.strip() and not _KEY_PLACEHOLDER.match(value.strip()) for value in keys):
        return "%s is missing" % key_name
    return None


# Beside the env file while the running server has not loaded it: written before a change that needs a restart,
# removed once the server answers after the restart. Its presence tells the next run to restart (contract 7: a failed
# bitwarden.sh restart leaves the containers down, and nothing on the server says so).
RESTART_MARKER = ".selfhost-bitwarden-restart-pending"


def read_installation(module, env_file, text, region, deployment=STANDARD):
    """(installation id, installation key) the server uses (the last line of each wins); fail_json when unusable.

    The key is registered with the module as a secret so that Ansible masks it everywhere.
    """
    problem = installation_problem(text, deployment)
    if problem:
        module.fail_json(msg="In %s, %s; cloud communication cannot work without the installation id and key. Get them for "
                             "the %s region on https://bitwarden.com/host and set %s and %s in this file, then run again."
                             % ((env_file, problem, region) + INSTALLATION_VARIABLES[deployment]))
    id_name, key_name = INSTALLATION_VARIABLES[deployment]
    installation_id = _env_file.values(text, id_name)[-1].strip()
    key = _env_file.values(text, key_name)[-1].strip()
    module.no_log_values.add(key)
    return installation_id, key


def restart_marker(env_file):
    return os.path.join(os.path.dirname(os.path.realpath(env_file)), RESTART_MARKER)


# region: the one planned for; region_source: "set" (the caller's), "env_file" (the file's cloudRegion, region not
# given) or "default" (neither: US).
Plan = collections.namedtuple("Plan", "env_file text new_text restart_required collapsed settings push_relay_enabled deployment "
                                      "region region_source")


def effective_region(region, text):
    """(region, source): the region given, else the env file's cloudRegion (Setup writes it), else US."""
    if region:
        return region, "set"
    found = [value.strip().upper() for value in _env_file.values(text, _regions.CLOUD_REGION) if value.strip()]
    if found and found[-1] in _regions.REGIONS:
        return found[-1], "env_file"
    return "US", "default"


def plan(module, bwdata, env_file=None, region="US", enabled=True, install_user=None, deployment=None, compose_dir=None):
    """Read the installation and compute the env file it should have; fail_json on anything unusable.

    ``deployment`` (standard, lite or None: detect from what is on disk) and ``compose_dir`` (Bitwarden Lite: the
    directory of docker-compose.yml and settings.env; default: the directory that holds ``bwdata``) say where it is.
    Nothing is written. ``restart_required`` is true when a value the server uses would change.
    """
    layout = _deployment.detect(module, bwdata, compose_dir, deployment, env_file)
    env_file = layout.env_file
    if install_user:
        check_installation(module, layout, install_user)
    if layout.config_yml and not is_file(module, layout.config_yml):
        module.fail_json(msg="No Bitwarden installation at %s: %s does not exist. Set bwdata_path to the bwdata directory of "
                             "the installation (the one that holds config.yml and env/), or for Bitwarden Lite compose_dir "
                             "to the directory that holds docker-compose.yml and settings.env." % (bwdata, layout.config_yml))
    # Lite has no config.yml; its image sets the push relay like standard's docker/global.env (contract 6.3).
    push_on_in_config = push_notifications(module, layout.config_yml) if layout.config_yml else True
    if not is_file(module, env_file):
        module.fail_json(msg="The env file %s does not exist. %s" % (env_file, _RECREATE[layout.deployment]))
    data = read_bytes(module, env_file, "the env file", "It holds secrets, so only its owner may read it. " + BECOME)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Name the line only: the bytes around it may belong to a secret.
        module.fail_json(msg="The env file %s is not UTF-8 (invalid bytes on line %d). Bitwarden Setup writes UTF-8; "
                             "re-save the file as UTF-8." % (env_file, data[:exc.start].count(b"\n") + 1))
    unreadable = _env_file.problem(text)
    if unreadable:
        module.fail_json(msg="docker compose cannot read the env file %s (%s), so Bitwarden would not start. Fix that line "
                             "(KEY=value, or a value in quotes), then run again." % (env_file, unreadable))

    region, region_source = effective_region(region, text)
    if enabled:
        read_installation(module, env_file, text, region, layout.deployment)

    push_off_in_env = any(_regions.push_relay_is_off(value) for value in _env_file.values(text, _regions.PUSH_RELAY))
    if push_off_in_env and push_on_in_config and layout.config_yml:
        module.warn("The push relay is switched off in %s, but %s has push_notifications: true. The next ./bitwarden.sh rebuild "
                    "or update removes a REPLACE value and switches the relay on; set push_notifications: false to keep it off."
                    % (env_file, layout.config_yml))
    push_off = push_off_in_env or not push_on_in_config
    desired = _regions.desired_settings(region, enabled, push_off)
    try:
        new_text, collapsed = _env_file.edit(text, desired, same=_regions.same_effect)
    except ValueError as exc:
        module.fail_json(msg="Cannot edit %s: %s" % (env_file, exc))
    restart_required = any(
        not _regions.same_effect(key, old, value)
        for key, value in desired.items()
        for old in (_env_file.values(text, key) or (None,))
    )
    settings = {key: _env_file.values(new_text, key)[-1] for key in _regions.MANAGED_KEYS}
    return Plan(env_file, text, new_text, restart_required, collapsed, settings,
                not _regions.push_relay_is_off(settings[_regions.PUSH_RELAY]), layout.deployment, region, region_source)
