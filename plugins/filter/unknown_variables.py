# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that finds variables with a role's prefix that the role does not know, and the closest known name."""

from __future__ import annotations

DOCUMENTATION = r"""
name: unknown_variables
short_description: Find misspelt role variables and the known name each one is closest to
version_added: 0.4.0
description:
  - Takes the variable names each host has and returns one sentence per name that starts with O(prefix) but is not
    in O(known), with the hosts that have it and the closest known name (Python's C(difflib)).
  - The C(selfhost.bitwarden.billing_sync) role prints them as a warning before it starts, so that
    a misspelt C(billing_sync_regoin) does not silently leave the region at its default.
options:
  _input:
    description: The variable names per host, a dict of host name to a list of names.
    type: dict
    required: true
  known:
    description: The names that are known (the role's argument spec, the playbooks' variables, the role's facts).
    type: list
    elements: str
    required: true
  prefix:
    description: Only names with this prefix are checked.
    type: str
    default: billing_sync_
"""

EXAMPLES = r"""
- name: Warn about billing_sync_* variables the role does not know
  ansible.builtin.debug:
    msg: "{{ names | selfhost.bitwarden.unknown_variables(['billing_sync_region', 'billing_sync_token']) }}"
  vars:
    names:
      vault1.example.com: [billing_sync_regoin, billing_sync_token]
"""

RETURN = r"""
_value:
  description: One sentence per unknown name, sorted by name; empty when every name is known.
  type: list
  elements: str
  sample:
    - "billing_sync_regoin (vault1.example.com) is not a variable of selfhost.bitwarden.billing_sync and has no effect: did you mean billing_sync_region?"
"""

import difflib

from ansible.errors import AnsibleFilterError


def unknown_variables(names_by_host, known, prefix="billing_sync_"):
    if not isinstance(names_by_host, dict):
        raise AnsibleFilterError("unknown_variables expects {host: [variable names]}")
    known = set(str(name) for name in known)
    hosts = {}
    for host, names in names_by_host.items():
        for name in names or []:
            name = str(name)
            if name.startswith(prefix) and name not in known:
                hosts.setdefault(name, set()).add(str(host))
    sentences = []
    for name in sorted(hosts):
        closest = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        shown = sorted(hosts[name])
        where = ", ".join(shown[:5]) + (" and %d more" % (len(shown) - 5) if len(shown) > 5 else "")
        sentences.append("%s (%s) is not a variable of selfhost.bitwarden.billing_sync and has no effect%s"
                         % (name, where, (": did you mean %s?" % closest[0]) if closest else ""))
    return sentences


class FilterModule:
    def filters(self):
        return {"unknown_variables": unknown_variables}
