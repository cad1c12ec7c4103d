# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kind and place of an installation, for the modules that read its files on the Bitwarden host."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  compose_dir:
    description:
      - Bitwarden Lite only. The directory that holds its C(docker-compose.yml) and C(settings.env), where
        C(docker compose up -d) applies a change.
      - Defaults to the directory that holds O(bwdata_path) (C(/opt/bitwarden) by default), so one install directory
        serves both kinds of installation.
    type: path
    version_added: 0.3.0
  deployment:
    description:
      - The kind of installation. V(standard) is C(bitwarden.sh) with C(bwdata/); V(lite) is Bitwarden Lite, the
        single container set up by C(docker-compose.yml) and C(settings.env).
      - When not set, detected from what is on disk; the module fails when it finds both kinds or none.
    type: str
    choices: [standard, lite]
    version_added: 0.3.0
"""
