"""Issue 25 items 6 and 8 through real ansible-core: the status playbook prints a table that reads at 120 columns
(relative ages, one date format, a legend, no Python None, raw lines instead of a JSON-quoted list) before it writes
the report files, which land in the XDG state directory by default, in a directory created when missing, and do not
turn the read-only run into changed."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from helpers.ansible_run import run_playbook

REPO = Path(__file__).resolve().parents[2]
STATUS = REPO / "playbooks" / "status.yml"
MIXED = [{"name": "bw-us-1"}, {"name": "bw-eu-1", "region": "EU"}, {"name": "bw-lite-1", "deployment": "lite"}]


def table_of(output):
    """The printed table: from its header line to the end of the legend."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if re.match(r"host +kind +version", line))
    end = next(index for index, line in enumerate(lines) if index > start and line.startswith("Legend: "))
    while end + 1 < len(lines) and lines[end + 1].strip() and not lines[end + 1].startswith(("ok:", "TASK", "changed:")):
        end += 1
    return lines[start:end + 1]


def test_status_table_reads_at_120_columns_and_files_go_to_the_state_dir(sim_fleet, tmp_path):
    fleet = sim_fleet(MIXED, restart_delay=0.2, warmup=0.1)
    home = tmp_path / "home"
    home.mkdir()
    # No billing_sync_report_dir: 0.3.0 wrote into the working directory (the repository here).
    before = run_playbook(STATUS, fleet.inventory, env={"HOME": str(home), "XDG_STATE_HOME": ""})
    assert before.rc == 0, before.output
    state_dir = home / ".local" / "state" / "selfhost-bitwarden"
    for name in ("billing-sync-report.json", "billing-sync-report.md", "billing-sync-fleet.prom"):
        assert (state_dir / name).is_file(), name
        assert not (REPO / name).exists(), name
    assert "Report files in %s: billing-sync-report.json, billing-sync-report.md; fleet metrics: %s/billing-sync-fleet.prom" % (
        state_dir, state_dir) in before.stdout
    # Read-only: the recap shows no change on any host (0.3.0: changed=3 for the file writes).
    assert before.changed_total() == 0, before.output
    assert not re.search(r"changed=[1-9]", before.stdout)

    table = table_of(before.stdout)
    text = "\n".join(table)
    assert all(len(line) <= 120 for line in table), [len(line) for line in table]
    assert '"msg"' not in before.stdout and "\\n" not in text
    assert "None" not in before.output  # 0.3.0: "region None, want US" on Lite before the rollout
    lite = next(line for line in table if line.startswith("bw-lite-1"))
    assert lite.split()[1:4] == ["lite", "2026.8.0", "-"] and lite.split()[-1] == "drift"
    # what drifted, on the line below the host (wrapped at 120 columns, indented)
    assert table[table.index(lite) + 1].startswith("    drift: ")
    assert any(line.startswith("Legend: ") for line in table) and "pending = it has not run" in text

    rollout = run_playbook(REPO / "playbooks" / "rollout.yml", fleet.inventory)
    assert rollout.rc == 0, rollout.output
    after = run_playbook(STATUS, fleet.inventory, env={"HOME": str(home), "XDG_STATE_HOME": ""})
    assert after.rc == 0 and after.changed_total() == 0, after.output
    table = table_of(after.stdout)
    rows = [line for line in table if line.startswith("bw-")]
    assert len(rows) == 3 and all(line.endswith("in sync") for line in rows), table
    # Relative ages and one date format: no raw .NET timestamp (2026-12-06T01:09:08.4709603+00:00).
    assert all(" min ago " in line or " h ago " in line for line in rows), rows
    assert not re.search(r"\d{2}:\d{2}:\d{2}", "\n".join(table))
    assert all(re.search(r"  \d{4}-\d{2}-\d{2} \(\d+ d\)  ", line) for line in rows), rows


def test_missing_report_dir_is_created_and_an_unwritable_one_still_prints_the_table(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-1"}])
    nested = tmp_path / "reports" / "billing" / "today"
    run = run_playbook(STATUS, fleet.inventory, extra_vars={"billing_sync_report_dir": str(nested)})
    assert run.rc == 0, run.output
    assert (nested / "billing-sync-report.json").is_file() and (nested / "billing-sync-fleet.prom").is_file()

    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory\n", encoding="utf-8")
    failed = run_playbook(STATUS, fleet.inventory, extra_vars={"billing_sync_report_dir": str(blocked / "reports")})
    assert failed.rc != 0
    # 0.3.0 failed before the table: no report at all.
    assert table_of(failed.stdout)[1].startswith("bw-1 ")
    assert re.search(r"host +kind", failed.stdout).start() < failed.stdout.index("Create the report directory")
    assert str(blocked) in failed.output


def test_the_filter_example_prints_lines_not_escapes(tmp_path):
    """fleet_report's documented example, run as written with the default callback."""
    source = (REPO / "plugins" / "filter" / "fleet_report.py").read_text(encoding="utf-8")
    examples = yaml.safe_load(source.split('EXAMPLES = r"""', 1)[1].split('"""', 1)[0])
    rows = [{"host": "vault1.example.com", "version": "2026.8.0", "region": "US", "cloud_communication": True,
             "billing_sync": "enabled", "last_license_sync": "2026-12-06T01:09:08.4709603+00:00",
             "license_sync_age_hours": 30, "drift": [], "error": None},
            {"host": "vault2.example.com", "version": "2026.8.0", "region": None, "cloud_communication": False,
             "billing_sync": "not configured", "last_license_sync": None, "drift": ["cloud communication off"],
             "error": None}]
    playbook = tmp_path / "example.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "vars": {"rows": rows},
                                         "tasks": examples[:1]}]), encoding="utf-8")
    run = run_playbook(playbook, "localhost,").assert_ok()
    lines = run.stdout.splitlines()
    assert any(line.startswith("vault1.example.com  standard  2026.8.0  US") and "30 h ago" in line for line in lines)
    assert "    drift: cloud communication off" in lines
    assert "\\n" not in run.stdout and '"msg"' not in run.stdout
