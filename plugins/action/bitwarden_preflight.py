# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bitwarden_preflight on the controller: with ``pace``, the cloud probe waits for its slots of the egress's budget."""

from __future__ import annotations

from ansible_collections.selfhost.bitwarden.plugins.plugin_utils._paced_action import PacedAction


class ActionModule(PacedAction):
    # A token request and GET /alive (5 a minute per client IP): two slots; read-only, so it calls in check mode too.
    COST = 2
    PACE_IN_CHECK_MODE = True
