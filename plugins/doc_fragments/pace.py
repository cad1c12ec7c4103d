# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``pace`` option of the modules that make the Bitwarden cloud issue a token (action plugin on the controller)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  pace:
    description:
      - A fleet-wide budget of cloud calls, taken on the controller right before the module runs, in the same task.
      - The Bitwarden cloud limits requests per client IP address (upstream C(src/Identity/appsettings.json) 10 token
        requests a minute, 60 requests a minute and 5 a second; C(src/Api/appsettings.json) C(GET /alive) 5 a
        minute, any GET 200 a minute), and servers behind one NAT share that budget.
      - Slots are evenly spaced, 60 / O(pace.calls_per_minute) seconds apart per call, no burst. The budget is a file
        under O(pace.state_dir), taken with an exclusive lock, so every fork, every C(serial) batch, a C(--limit) run
        and other runs on the same controller draw from it. AWX job slices and other controllers behind the same
        egress do not see it, so split the budget between them.
      - Omitted, or O(pace.calls_per_minute=0), turns pacing off.
    type: dict
    version_added: 0.4.0
    suboptions:
      key:
        description: Which budget, one per egress address and cloud region; letters, digits, C(.), C(_) and C(-).
        type: str
        required: true
      calls_per_minute:
        description: The budget; keep it under the binding limit (10 token requests a minute) with a margin.
        type: float
        required: true
      state_dir:
        description: Directory on the controller that keeps the budget files (created, mode 0700).
        type: path
        required: true
      max_wait:
        description: Fail instead of waiting longer than this many seconds for the slot (the slot stays booked).
        type: int
        default: 3600
"""
