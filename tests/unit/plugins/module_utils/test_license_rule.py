"""_license_rule: the one rule that says when a license sync is due (bitwarden_license_sync and bitwarden_drift)."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.selfhost.bitwarden.plugins.module_utils._license_rule import parse_duration, sync_due

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
WEEK = 7 * 86400


@pytest.mark.parametrize("kwargs, due, words", [
    (dict(last_sync=None), True, "never synced"),
    (dict(last_sync=NOW - DAY, force=True), True, "forced"),
    (dict(last_sync=NOW - 8 * DAY, max_age=WEEK), True, "last sync 192 h ago, older than the max age (168 h)"),
    (dict(last_sync=NOW - 6 * DAY, max_age=WEEK), False, "last sync 144 h ago"),
    (dict(last_sync=NOW - 2 * DAY, expiry_days=30, expiration_without_grace=NOW + 10 * DAY, expiration=NOW + 70 * DAY),
     True, "the paid period ends in 10 day(s), within 30"),
    (dict(last_sync=NOW - 2 * DAY, expiry_days=30, expiration_without_grace=NOW - 40 * DAY, expiration=NOW + 20 * DAY),
     True, "the license expires (grace period included) in 20 day(s), within 30"),
    (dict(last_sync=NOW - 2 * DAY, expiry_days=30, expiration_without_grace=NOW - 90 * DAY, expiration=NOW - 30 * DAY),
     True, "the license expired 30 day(s) ago"),
    (dict(last_sync=NOW - 2 * DAY, expiry_days=30, expiration_without_grace=NOW + 200 * DAY, expiration=NOW + 260 * DAY),
     False, "last sync 48 h ago, the paid period ends in 200 days"),
    # in the window at most daily: a second run stays free of cloud calls
    (dict(last_sync=NOW - DAY / 2, expiry_days=30, expiration_without_grace=NOW + 10 * DAY, expiration=NOW + 70 * DAY),
     False, "last sync 12 h ago, the paid period ends in 10 days"),
    (dict(last_sync=NOW - DAY, expiration_without_grace=NOW + 10 * DAY), False, "last sync 24 h ago"),
])
def test_sync_due(kwargs, due, words):
    assert sync_due(NOW, **kwargs) == (due, words)


@pytest.mark.parametrize("text, seconds", [("168h", 604800), ("7d", 604800), ("90", 90), ("1h30m", 5400), ("weekly", None)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds
