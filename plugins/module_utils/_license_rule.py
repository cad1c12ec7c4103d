# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""When a license sync is due: the one rule of bitwarden_license_sync and bitwarden_drift.

The server never syncs its license by itself (contract 11), so the collection decides: never synced, the last sync
older than a max age, the license ending within some days (paid period or grace period; then at most daily), or
forced.
"""

from __future__ import annotations

import re

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
EXPIRY_WINDOW_MAX_AGE = 86400


def parse_duration(value):
    """Seconds in '3600', '12h', '1d12h', '30m'; None when unparsable."""
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"(\d+)\s*([wdhms])", text)
    if not parts or re.sub(r"\d+\s*[wdhms]\s*", "", text):
        return None
    return sum(int(number) * UNITS[unit] for number, unit in parts)


def _hours(seconds):
    return "%d h" % (seconds // 3600) if seconds >= 3600 else "%d min" % (seconds // 60)


def sync_due(now, last_sync, max_age=None, expiry_days=None, expiration=None, expiration_without_grace=None,
             force=False):
    """(due, reason). Times are aware datetimes or None; ``max_age`` in seconds, ``expiry_days`` in days.

    ``reason`` says why a sync is due, or why not, in a few words for the run's report.
    """
    if force:
        return True, "forced"
    if last_sync is None:
        return True, "never synced"
    age = max(0, int((now - last_sync).total_seconds()))
    if max_age is not None and age > max_age:
        return True, "last sync %s ago, older than the max age (%s)" % (_hours(age), _hours(max_age))
    # Within the expiry window a renewal should arrive soon, so sync daily, but not on every run: a second run stays
    # free of cloud calls.
    if expiry_days is not None and age > EXPIRY_WINDOW_MAX_AGE:
        for moment, what in ((expiration_without_grace, "the paid period ends"),
                             (expiration, "the license expires (grace period included)")):
            left = None if moment is None else (moment - now).total_seconds()
            if left is not None and 0 <= left < expiry_days * 86400:
                return True, "%s in %d day(s), within %d" % (what, left // 86400, expiry_days)
        if expiration is not None and expiration <= now:
            return True, "the license expired %d day(s) ago" % ((now - expiration).total_seconds() // 86400)
    reason = "last sync %s ago" % _hours(age)
    if expiry_days is not None and expiration_without_grace is not None:
        reason += ", the paid period ends in %d days" % ((expiration_without_grace - now).total_seconds() // 86400)
    return False, reason
