# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which kind of Bitwarden installation a host has, and where its files are.

This is for internal selfhost.bitwarden collection use only: names and behaviour may change without notice.

standard: ``bitwarden.sh`` beside ``bwdata/`` (``config.yml``, ``env/global.override.env``), restarted by
``bitwarden.sh restart``. lite (Bitwarden Lite, formerly "unified"): ``docker-compose.yml`` beside ``settings.env``,
applied by ``docker compose up -d`` in that directory.
"""

from __future__ import annotations

import collections
import os
import stat

STANDARD = "standard"
LITE = "lite"
KINDS = (STANDARD, LITE)
SETTINGS_ENV = "settings.env"
# The files `docker compose` looks for in its working directory, in its order of preference, and the override files
# it adds to the one it found (compose-go cli/options.go: DefaultFileNames, DefaultOverrideFileNames; first match each).
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yml", "compose.override.yaml", "docker-compose.override.yml", "docker-compose.override.yaml")
BECOME = "Run the task as root or as the installation user (become: true)."

# root: the install dir (standard: holds bitwarden.sh and bwdata; lite: the compose dir).
# owner_file: the file the install user owns and runs or hands to docker compose (bitwarden.sh or the compose file).
Layout = collections.namedtuple("Layout", "deployment root env_file config_yml owner_file")


def is_file(module, path):
    """Whether ``path`` is a file; a path we may not look at is an error, not a missing file."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        module.fail_json(msg="Cannot access %s: %s. %s" % (path, exc.strerror, BECOME))


def compose_file(module, directory):
    """The compose file `docker compose` would use in ``directory``, or None."""
    for name in COMPOSE_FILES:
        path = os.path.join(directory, name)
        if is_file(module, path):
            return path
    return None


def compose_files(module, directory):
    """What `docker compose` in ``directory`` loads: its compose file and the first override file; [] without one."""
    main = compose_file(module, directory)
    if not main:
        return []
    override = next((path for path in (os.path.join(directory, name) for name in OVERRIDE_FILES) if is_file(module, path)), None)
    return [main, override] if override else [main]


def detect(module, bwdata, compose_dir=None, deployment=None, env_file=None):
    """The installation at ``bwdata`` (standard) or ``compose_dir`` (lite; default: the directory that holds bwdata).

    ``deployment`` (standard or lite) skips the detection; otherwise a Lite compose file decides, and finding it next
    to a standard config.yml is an error. A standard layout is returned without checking that config.yml exists.
    """
    install_dir = os.path.dirname(os.path.normpath(bwdata))
    compose_dir = compose_dir or install_dir
    config_yml = os.path.join(bwdata, "config.yml")
    if deployment is None:
        compose = compose_file(module, compose_dir)
        if compose and is_file(module, config_yml):
            module.fail_json(msg="Found both a standard installation (%s) and a Bitwarden Lite one (%s): set deployment "
                                 "to standard or lite (role: billing_sync_deployment)." % (config_yml, compose))
        deployment = LITE if compose else STANDARD
    if deployment == STANDARD:
        lite_here = not is_file(module, config_yml) and compose_file(module, install_dir)
        if lite_here:
            module.fail_json(msg="No Bitwarden installation at %s, but %s is there: for Bitwarden Lite set deployment to lite "
                                 "(role: billing_sync_deployment: lite)." % (bwdata, lite_here))
        # config.yml itself is checked by the caller, after the install user check (bitwarden.sh names a wrong dir best).
        return Layout(STANDARD, install_dir, env_file or os.path.join(bwdata, "env", "global.override.env"), config_yml,
                      os.path.join(install_dir, "bitwarden.sh"))
    compose = compose_file(module, compose_dir)
    if not compose:
        module.fail_json(msg="No Bitwarden Lite installation at %s: it has no docker-compose.yml. Set compose_dir (role: "
                             "billing_sync_install_dir) to the directory that holds docker-compose.yml and settings.env."
                             % compose_dir)
    return Layout(LITE, compose_dir, env_file or os.path.join(compose_dir, SETTINGS_ENV), None, compose)
