"""fleet_merge: a limited status run keeps the other hosts' rows until they are older than keep_hours."""

import json

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.bitwarden.plugins.filter.fleet_merge import fleet_merge

NOW = 1_800_000_000


def row(host, hours_ago, **extra):
    return dict({"host": host, "drift": [], "error": None, "read_at": NOW - hours_ago * 3600}, **extra)


def test_this_runs_rows_replace_and_other_hosts_stay():
    earlier = json.dumps([row("bw-a", 5, version="old"), row("bw-b", 5), row("bw-c", 167)])
    merged = fleet_merge([row("bw-a", 0, version="new")], earlier, 168, NOW)
    assert [r["host"] for r in merged] == ["bw-a", "bw-b", "bw-c"]
    assert merged[0]["version"] == "new" and merged[1] == row("bw-b", 5)


def test_rows_older_than_keep_hours_age_out():
    earlier = json.dumps([row("bw-old", 169), row("bw-recent", 1), {"host": "no-read-at"}, "junk"])
    assert [r["host"] for r in fleet_merge([row("bw-a", 0)], earlier, 168, NOW)] == ["bw-a", "bw-recent"]
    assert [r["host"] for r in fleet_merge([row("bw-a", 0)], earlier, 0, NOW)] == ["bw-a"]


@pytest.mark.parametrize("previous", ["", "{not json", '{"host": "bw-b"}', "null"])
def test_a_missing_or_damaged_earlier_report_counts_as_empty(previous):
    assert fleet_merge([row("bw-a", 0)], previous, 168, NOW) == [row("bw-a", 0)]


def test_bad_input_names_the_problem():
    with pytest.raises(AnsibleFilterError, match="fleet_merge expects"):
        fleet_merge("nope", "")
    with pytest.raises(AnsibleFilterError, match="billing_sync_report_keep_hours"):
        fleet_merge([row("bw-a", 0)], "", "a week")
