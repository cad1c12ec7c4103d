import re

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.bitwarden.plugins.filter.fleet_report import fleet_report

ROWS = [
    {"host": "bw-2", "version": "2026.8.0", "region": "EU", "cloud_communication": True, "billing_sync": "enabled",
     "last_license_sync": "2026-11-22T10:00:00.0000000+00:00", "license_sync_stale": True, "license_sync_age_hours": 170,
     "license_expiration_with_grace": "2027-01-18T10:00:00Z", "license_expiration_without_grace": "2026-11-19T10:00:00Z",
     "license_days_left": 20, "license_expiring": True, "sponsorship_sync": "pending", "drift": [], "error": None},
    {"host": "bw-1", "deployment": "lite", "version": "2026.8.0", "region": "US", "cloud_communication": False, "billing_sync": "not configured",
     "last_license_sync": None, "license_error": "no license", "sponsorship_sync": "synced",
     "sponsorship_last_sync": "2026-11-28T01:00:00Z", "drift": ["cloud communication off", "never synced"], "error": None},
    {"host": "bw-3", "error": "could not be read: invalid_client | bad key\nsecond line", "drift": []},
]


READ_AT = 1796518800  # 2026-12-06T01:00:00Z, the moment the rows were read


def test_text_table_is_aligned_sorted_and_fits_120_columns():
    rows = [dict(row, read_at=READ_AT) for row in ROWS]
    lines = fleet_report(rows).splitlines()
    assert lines[0].split()[:3] == ["host", "kind", "version"] and lines[0].split()[-1] == "state"
    assert all(len(line) <= 120 for line in lines), [len(line) for line in lines]
    hosts = [line for line in lines[1:] if line.startswith("bw-")]
    assert [line.split()[0] for line in hosts] == ["bw-1", "bw-2", "bw-3"]
    assert [line.split()[-1] for line in hosts] == ["drift", "sync", "error"]
    assert hosts[1].endswith("in sync")
    # each drift or error on the line below its host, indented
    assert lines[lines.index(hosts[0]) + 1] == "    drift: cloud communication off; never synced"
    assert lines[lines.index(hosts[2]) + 1] == "    could not be read: invalid_client | bad key / second line"
    assert "off" in hosts[0] and "never" in hosts[0] and "error: no license" in hosts[0] and "not set" in hosts[0]
    # relative ages and one date format; 0.3.0 showed the raw .NET timestamp and "(170 h ago)"
    assert "synced 8 d ago" in hosts[0]
    assert "STALE 7 d ago" in hosts[1] and "EXPIRING 2026-11-19 (20 d)" in hosts[1] and "pending" in hosts[1]
    assert "T10:00" not in "\n".join(lines) and "+00:00" not in "\n".join(lines)
    assert "None" not in "\n".join(lines)
    legend = "\n".join(lines[lines.index(""):])
    assert legend.startswith("\nLegend: ") and "pending = it has not run since the server started" in legend


@pytest.mark.parametrize("hours, text", [(0.2, "12 min ago"), (5, "5 h ago"), (47.9, "47 h ago"), (72, "3 d ago"),
                                         (None, "never")])
def test_last_sync_is_a_relative_age(hours, text):
    row = {"host": "bw", "last_license_sync": "2026-12-06T01:09:08.4709603+00:00" if hours is not None else None,
           "license_sync_age_hours": hours, "drift": [], "error": None}
    assert text in fleet_report([row]).splitlines()[1]


def test_age_from_the_timestamp_when_the_row_has_no_age():
    row = {"host": "bw", "last_license_sync": "2026-12-03T01:00:00.1234567+00:00", "sponsorship_sync": "synced",
           "sponsorship_last_sync": "2026-12-06T00:00:00Z", "drift": [], "error": None, "read_at": READ_AT}
    line = fleet_report([row]).splitlines()[1]
    assert "3 d ago" in line and "synced 1 h ago" in line


def test_values_the_server_did_not_report_are_a_dash_not_none():
    row = {"host": "bw-lite", "deployment": "lite", "version": "2026.8.0", "region": None, "cloud_communication": False,
           "billing_sync": "not configured", "last_license_sync": None, "sponsorship_sync": None, "drift": ["never synced"],
           "error": None}
    text = fleet_report([row]) + fleet_report([row], "markdown")
    assert "None" not in text
    assert "| bw-lite | lite | 2026.8.0 | - | off | not set | never |" in text


def test_markdown_escapes_pipes_and_newlines_and_has_a_row_per_host():
    lines = fleet_report(ROWS, "markdown").splitlines()
    assert lines[0].startswith("| host | kind | version |") and lines[0].endswith("| drift |")
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(ROWS)
    assert table[-1].endswith("| could not be read: invalid_client \\| bad key<br>second line |")
    assert all(len(re.split(r"(?<!\\)\|", line)) == len(lines[0].split("|")) for line in table[2:])
    assert lines[-1].startswith("Legend: ")


@pytest.mark.parametrize("rows, fmt", [("nope", "text"), ([1], "text"), (ROWS, "html")])
def test_bad_input_is_a_clear_error(rows, fmt):
    with pytest.raises(AnsibleFilterError, match="fleet_report"):
        fleet_report(rows, fmt)
