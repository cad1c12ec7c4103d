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
           "license_expiration": "2027-01-18T10:00:00Z", "license_expiration_without_grace": "2026-11-19T10:00:00Z",
           "sponsorship_sync": "synced", "sponsorship_last_sync": "2026-11-22T10:00:00Z", "drift": [], "error": None,
           "read_at": 1}
    written = {family.name for family in text_string_to_metric_families(prometheus_metrics([row]))}
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"selfhost_bitwarden_\w+", rule["expr"])}
    assert used and used <= written, used - written
    tested = yaml.safe_load(RULE_TESTS.read_text())
    inputs = {series["series"].split("{")[0] for test in tested["tests"] for series in test["input_series"]}
    assert inputs <= written, inputs - written
