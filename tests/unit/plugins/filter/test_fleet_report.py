import re

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.bitwarden.plugins.filter.fleet_report import fleet_report

ROWS = [
    {"host": "bw-2", "version": "2026.8.0", "region": "EU", "cloud_communication": True, "billing_sync": "enabled",
     "last_license_sync": "2026-11-22T10:00:00.0000000+00:00", "license_sync_stale": True, "license_sync_age_hours": 170,
     "license_expiration": "2027-01-18T10:00:00Z", "license_expiration_without_grace": "2026-11-19T10:00:00Z",
     "license_days_left": 20, "license_expiring": True, "sponsorship_sync": "pending", "drift": [], "error": None},
    {"host": "bw-1", "deployment": "lite", "version": "2026.8.0", "region": "US", "cloud_communication": False, "billing_sync": "not configured",
     "last_license_sync": None, "license_error": "no license", "sponsorship_sync": "synced",
     "sponsorship_last_sync": "2026-11-28T01:00:00Z", "drift": ["cloud communication off", "never synced"], "error": None},
    {"host": "bw-3", "error": "could not be read: invalid_client | bad key\nsecond line", "drift": []},
]


def test_text_table_is_aligned_and_sorted():
    lines = fleet_report(ROWS).splitlines()
    assert lines[0].split()[:3] == ["host", "kind", "version"]
    assert [line.split()[1] for line in lines[1:]] == ["lite", "standard", "standard"]
    assert len(lines) == 1 + len(ROWS)
    assert [line.split()[0] for line in lines[1:]] == ["bw-1", "bw-2", "bw-3"]
    drift_column = lines[0].index("drift")
    assert lines[1][drift_column:] == "cloud communication off; never synced"
    assert lines[2][drift_column:] == "in sync"
    assert "off" in lines[1] and "never" in lines[1] and "error: no license" in lines[1]
    assert "synced 2026-11-28T01:00:00Z" in lines[1]
    assert "STALE 2026-11-22T10:00:00.0000000+00:00 (170 h ago)" in lines[2]
    assert "EXPIRING 2026-11-19T10:00:00Z (20 days)" in lines[2] and "pending" in lines[2]
    assert lines[3].endswith("could not be read: invalid_client | bad key / second line")


def test_markdown_escapes_pipes_and_newlines_and_has_a_row_per_host():
    lines = fleet_report(ROWS, "markdown").splitlines()
    assert lines[0].startswith("| host | kind | version |")
    assert len(lines) == 2 + len(ROWS)
    assert lines[-1].endswith("| could not be read: invalid_client \\| bad key<br>second line |")
    assert all(len(re.split(r"(?<!\\)\|", line)) == len(lines[0].split("|")) for line in lines[2:])


@pytest.mark.parametrize("rows, fmt", [("nope", "text"), ([1], "text"), (ROWS, "html")])
def test_bad_input_is_a_clear_error(rows, fmt):
    with pytest.raises(AnsibleFilterError, match="fleet_report"):
        fleet_report(rows, fmt)
