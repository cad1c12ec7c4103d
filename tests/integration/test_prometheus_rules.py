"""The example alert rules (docs/examples/prometheus) pass `promtool test rules` and only use metrics we write.

promtool comes from Debian's prometheus package (installed by `make system-packages` when missing).
"""

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from ansible_collections.selfhost.bitwarden.plugins.filter.prometheus_metrics import prometheus_metrics
from prometheus_client.parser import text_string_to_metric_families

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "prometheus"
RULES = EXAMPLES / "selfhost_bitwarden.rules.yml"
RULE_TESTS = EXAMPLES / "selfhost_bitwarden.rules.test.yml"
AGREED = ("BitwardenLicenseExpiresSoon", "BitwardenLicenseGraceEndsSoon", "BitwardenLicenseSyncOverdue",
          "BitwardenSponsorshipSyncFailed", "BitwardenSponsorshipSyncNotSeen", "BitwardenBillingSyncDrift",
          "BitwardenHostUnreadable", "BitwardenStatusStale", "BitwardenHostAbsent")  # agreed with the eda rulebooks


def promtool(*args, cwd):
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: run `make system-packages` (Debian package prometheus)"
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def test_rules_check_and_unit_tests_pass():
    checked = promtool("check", "rules", RULES.name, cwd=EXAMPLES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=EXAMPLES)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_rule_tests_can_fail(tmp_path):
    """A rule that alerts at 10 instead of 30 days must fail the same tests."""
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    (tmp_path / RULES.name).write_text(RULES.read_text().replace("< 30 * 86400", "< 10 * 86400"))
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert tested.returncode != 0 and "BitwardenLicenseExpiresSoon" in tested.stdout + tested.stderr


def test_rules_use_only_metrics_the_status_playbook_writes():
    row = {"host": "bw-1", "wanted_region": "US", "organization": "o", "version": "2026.8.0", "region": "US",
           "cloud_communication": True, "billing_sync": "enabled", "last_license_sync": "2026-11-22T10:00:00Z",
           "license_expiration_with_grace": "2027-01-18T10:00:00Z", "license_expiration_without_grace": "2026-11-19T10:00:00Z",
           "license_sync_stale_after_hours": 216, "sponsorship_sync": "synced", "sponsorship_last_sync": "2026-11-22T10:00:00Z",
           "sponsorship_last_seen": "2026-11-22T10:00:00Z", "drift": [], "error": None, "read_at": 1}
    written = {family.name for family in text_string_to_metric_families(prometheus_metrics([row]))}
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"selfhost_bitwarden_\w+", rule["expr"])}
    assert used and used <= written, used - written
    tested = yaml.safe_load(RULE_TESTS.read_text())
    inputs = {series["series"].split("{")[0] for test in tested["tests"] for series in test["input_series"]}
    inputs = {name for name in inputs if name.startswith("selfhost_bitwarden_")}
    assert inputs <= written, inputs - written


def test_the_agreed_alerts_each_fire_and_stay_quiet_and_carry_host():
    """The names branch eda reacts to; every rule has a case that fires and one that stays quiet; label host."""
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} == set(AGREED)
    checks = [check for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for check in test["alert_rule_test"]]
    for name in AGREED:
        cases = [check["exp_alerts"] for check in checks if check["alertname"] == name]
        assert [] in cases and any(cases), name
    assert all("host" in alert["exp_labels"] for check in checks for alert in check["exp_alerts"])
    healthy = yaml.safe_load(RULE_TESTS.read_text())["tests"][0]
    assert healthy["name"].startswith("healthy fleet three days after the rollout")
    assert {check["alertname"] for check in healthy["alert_rule_test"] if check["eval_time"] == "72h"} == set(AGREED)
    assert all(check["exp_alerts"] == [] for check in healthy["alert_rule_test"])
