# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that merges the status rows of one run into the fleet rows of earlier runs."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_merge
short_description: Merge the status rows of one run into the fleet report of earlier runs
version_added: 0.4.0
description:
  - The fleet files of the C(selfhost.bitwarden.status) playbook (C(billing-sync-report.json) and
    C(billing-sync-fleet.prom)) hold every host, also after a run limited to some of them (C(--limit), AWX job limits).
  - Rows of this run replace the earlier rows of the same hosts. Earlier rows of other hosts are kept, unchanged (their
    C(read_at) tells how old they are), until they are older than O(keep_hours); then they are dropped.
  - An earlier report that is not a JSON list of rows (missing, empty, damaged) counts as empty.
options:
  _input:
    description: The status rows of this run.
    type: list
    elements: dict
    required: true
  previous:
    description: The text of the earlier C(billing-sync-report.json), or an empty string.
    type: str
    required: true
  keep_hours:
    description: How long a row of a host that later runs did not read stays in the files, in hours from its C(read_at).
    type: int
    default: 168
  now:
    description: The current time in Unix seconds (for tests); default the controller's clock.
    type: float
"""

EXAMPLES = r"""
- name: Write the fleet report, keeping the hosts this run did not read
  ansible.builtin.copy:
    content: "{{ rows | selfhost.bitwarden.fleet_merge(lookup('ansible.builtin.file', path, errors='ignore') or '') | to_nice_json }}"
    dest: "{{ path }}"
    mode: "0644"
  vars:
    path: /srv/reports/billing-sync-report.json
"""

RETURN = r"""
_value:
  description: The merged rows, sorted by host.
  type: list
  elements: dict
"""

import json
import time

from ansible.errors import AnsibleFilterError


def _read_at(row):
    try:
        return float(row.get("read_at"))
    except (TypeError, ValueError):
        return None


def fleet_merge(rows, previous, keep_hours=168, now=None):
    if not isinstance(rows, list) or not all(isinstance(row, dict) and row.get("host") for row in rows):
        raise AnsibleFilterError("fleet_merge expects a list of billing_sync_status dicts, each with a host")
    try:
        keep_seconds = float(keep_hours) * 3600
    except (TypeError, ValueError):
        raise AnsibleFilterError("fleet_merge: keep_hours (billing_sync_report_keep_hours) must be a number of hours, not %r"
                                 % (keep_hours,))
    now = time.time() if now is None else float(now)
    try:
        earlier = json.loads(previous) if previous else []
    except ValueError:
        earlier = []
    if not isinstance(earlier, list):
        earlier = []
    read = {row["host"] for row in rows}
    kept = [row for row in earlier if isinstance(row, dict) and row.get("host") and row["host"] not in read
            and _read_at(row) is not None and now - _read_at(row) <= keep_seconds]
    return sorted(rows + kept, key=lambda row: str(row["host"]))


class FilterModule:
    def filters(self):
        return {"fleet_merge": fleet_merge}
