# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bitwarden_billing_sync_token on the controller: with ``pace`` and ``verify``, a token change waits for its slot."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.selfhost.bitwarden.plugins.plugin_utils._paced_action import PacedAction


class ActionModule(PacedAction):
    # Saving the connection calls no cloud; the license sync that ``verify`` runs after a token change makes the
    # server ask identity for a token (one slot). A token that is already in place costs nothing.
    DECIDE_FIRST = True

    def calls_the_cloud(self, args):
        return boolean(args.get("verify", False), strict=False)
