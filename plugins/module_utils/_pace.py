# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""A fleet-wide budget of cloud calls per egress, kept in a locked file on the controller (option ``pace``).

The Bitwarden cloud limits requests per client IP address (upstream src/Identity/appsettings.json: 10 token requests
a minute). The action plugins of the modules that make the cloud issue a token take a slot here right before they
run the module, in the same task, so that the slots are the moments the cloud sees the calls (a separate waiting
task would let Ansible's linear strategy run every host's call together after the last slot).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time

PACE_OPTIONS = dict(
    key=dict(type="str", required=True, no_log=False),
    calls_per_minute=dict(type="float", required=True),
    state_dir=dict(type="path", required=True),
    max_wait=dict(type="int", default=3600),
)
KEY = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def settings(pace):
    """The validated ``pace`` option as a dict, or None when pacing is off (no option, or 0 calls a minute)."""
    if not pace:
        return None
    if not isinstance(pace, dict):
        raise ValueError("pace must be a dictionary with key, calls_per_minute and state_dir")
    unknown = sorted(set(pace) - set(PACE_OPTIONS))
    if unknown:
        raise ValueError("pace has unknown keys: %s (use key, calls_per_minute, state_dir, max_wait)" % ", ".join(unknown))
    key = str(pace.get("key") or "")
    if not KEY.match(key):
        raise ValueError("pace key %r: use letters, digits, '.', '_' and '-' only (an egress name and a region, like "
                         "nat-1-US)" % key)
    try:
        rate = float(pace.get("calls_per_minute"))
        max_wait = int(pace.get("max_wait", 3600))
    except (TypeError, ValueError):
        raise ValueError("pace calls_per_minute must be a number (0 turns pacing off) and max_wait whole seconds")
    if rate < 0:
        raise ValueError("pace calls_per_minute must be 0 (pacing off) or more, got %s" % rate)
    if rate == 0:
        return None
    if not pace.get("state_dir"):
        raise ValueError("pace state_dir is required: the directory on the controller that keeps the budgets")
    return dict(key=key, calls_per_minute=rate, state_dir=os.path.expanduser(str(pace["state_dir"])), max_wait=max_wait)


def reserve(path, interval, now):
    """Take the next slot of the budget in ``path``: max(now, next free); the next caller gets it + interval."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            state = json.loads(handle.read() or "{}")
        except ValueError:
            state = {}  # a torn file: start again; at worst one early slot
        slot = max(now, float(state.get("next", 0)))
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"next": slot + interval}))
        handle.flush()
        os.fsync(handle.fileno())
        return slot


def take_slot(pace, cost=1, clock=time):
    """Wait for ``cost`` slots of the budget ``pace`` (from settings()); returns the seconds waited."""
    try:
        os.makedirs(pace["state_dir"], mode=0o700, exist_ok=True)
        now = clock.time()
        slot = reserve(os.path.join(pace["state_dir"], pace["key"] + ".json"), 60.0 * cost / pace["calls_per_minute"], now)
    except (IOError, OSError) as exc:
        raise ValueError("cannot keep the cloud call budget in %s: %s" % (pace["state_dir"], exc))
    wait = slot - now
    if wait > pace["max_wait"]:
        raise ValueError("the cloud call budget %s is booked for %d s ahead, more than max_wait (%d s): other runs "
                         "share this egress; run later or raise calls_per_minute if the cloud allows it"
                         % (pace["key"], wait, pace["max_wait"]))
    if wait > 0:
        clock.sleep(wait)
    return round(max(wait, 0.0), 3)
