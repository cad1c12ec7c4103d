# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the modules that read the server's api log find it (standard: bwdata; Lite: its docker volume)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  deployment:
    description:
      - The kind of installation, which decides where the api log is. V(standard) writes it to
        C(<bwdata_path>/logs/api/Api/<yyyyMMdd>.txt) (C(log-<yyyyMMdd>.txt) with C(globalSettings__logRollBySizeLimit));
        V(lite) (Bitwarden Lite) to C(/etc/bitwarden/logs/api-<yyyyMMdd>.log) in its C(bitwarden) docker volume, found
        with C(docker volume inspect) and readable only by root.
      - When not set, V(lite) if O(compose_dir) holds a compose file and O(bwdata_path) no C(config.yml), else
        V(standard).
    type: str
    choices: [standard, lite]
    version_added: 0.4.0
  compose_dir:
    description:
      - Bitwarden Lite only. The directory that holds its C(docker-compose.yml); its compose project name (the
        top-level C(name), else C(COMPOSE_PROJECT_NAME) in its C(.env), else the directory name) names the volume
        C(<project>_bitwarden).
      - Defaults to the directory that holds O(bwdata_path).
    type: path
    version_added: 0.4.0
  docker_command:
    description: The docker CLI on the host (Bitwarden Lite only), a name on C(PATH) or an absolute path.
    type: str
    default: docker
    version_added: 0.4.0
notes:
  - Reading the api log needs the module to run on the Bitwarden host, as a user who can read it (Bitwarden Lite -
    root, through C(become)); otherwise the module says where the log is and why it could not read it.
"""
