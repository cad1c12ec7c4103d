# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bitwarden_license_sync on the controller: with ``pace``, a due sync waits for its slot of the egress's budget."""

from __future__ import annotations

from ansible_collections.selfhost.bitwarden.plugins.plugin_utils._paced_action import PacedAction


class ActionModule(PacedAction):
    # A host that is not due makes no cloud call and takes no slot; a sync makes one token request.
    DECIDE_FIRST = True
