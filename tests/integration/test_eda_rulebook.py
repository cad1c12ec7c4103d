"""The shipped rulebook and its Automation Platform twin pass ansible-rulebook's own schema and condition parser, and
say the same thing; ansible-rulebook finds the rulebook in the collection by its FQCN.

What the rulebook does at run time: test_eda_e2e.py.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from ansible_rulebook.collection import load_rulebook
from ansible_rulebook.exception import ConditionParsingException
from ansible_rulebook.rules_parser import parse_rule_sets
from ansible_rulebook.validators import Validate
from jsonschema.exceptions import ValidationError

from helpers.ansible_run import ansible_env

REPO = Path(__file__).resolve().parents[2]
RULEBOOK = REPO / "extensions" / "eda" / "rulebooks" / "self_heal.yml"
CONTROLLER = REPO / "docs" / "examples" / "eda" / "self_heal_controller.yml"
RULES = REPO / "docs" / "examples" / "prometheus" / "selfhost_bitwarden.rules.yml"
PLAYBOOKS = {"selfhost.bitwarden.license_sync": "Bitwarden license sync", "selfhost.bitwarden.rollout": "Bitwarden rollout"}


def load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def check(document):
    """What ansible-rulebook does with a rulebook before it starts: schema, then conditions into the engine's AST."""
    Validate.rulebook(document)
    return parse_rule_sets(copy.deepcopy(document))


@pytest.mark.parametrize("path", [RULEBOOK, CONTROLLER], ids=["shipped", "controller"])
def test_rulebook_passes_ansible_rulebooks_checks(path):
    rule_sets = check(load(path))
    assert [rule.name for rule in rule_sets[0].rules] == [rule["name"] for rule in load(path)[0]["rules"]]


def test_the_checks_can_fail():
    bad_schema = load(RULEBOOK)
    bad_schema[0]["rules"][0]["throttle"]["once_within"] = "an hour"
    with pytest.raises(ValidationError):
        check(bad_schema)
    bad_condition = load(RULEBOOK)
    bad_condition[0]["rules"][0]["condition"] = 'event.status === "firing"'
    with pytest.raises(ConditionParsingException):
        check(bad_condition)


def test_every_remediation_is_limited_throttled_and_does_not_wait_for_the_lock():
    for rule in load(RULEBOOK)[0]["rules"]:
        condition = rule["condition"]
        assert 'event.status == "firing"' in condition and "event.labels.host is defined" in condition, rule["name"]
        assert rule["throttle"]["group_by_attributes"] == ["event.labels.host"], rule["name"]
        if "run_playbook" in rule["action"]:
            assert rule["action"]["run_playbook"]["name"] in PLAYBOOKS
            assert rule["action"]["run_playbook"]["extra_vars"] == {"billing_sync_lock_timeout": 0}
    source = load(RULEBOOK)[0]["sources"][0]
    assert source["eda.builtin.webhook"]["token"] == "{{ selfhost_bitwarden_eda_token }}"


def test_rulebook_answers_alerts_the_shipped_rules_raise():
    """Every alert name the rulebook waits for is one the shipped rules send."""
    waited_for = set(re.findall(r'"(Bitwarden\w+)"', RULEBOOK.read_text(encoding="utf-8")))
    assert waited_for == {"BitwardenLicenseExpiresSoon", "BitwardenLicenseGraceEndsSoon", "BitwardenLicenseSyncOverdue",
                          "BitwardenBillingSyncDrift", "BitwardenHostUnreadable"}
    rules = [rule for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]
    assert waited_for <= {rule["alert"] for rule in rules}, waited_for - {rule["alert"] for rule in rules}


def test_controller_variant_says_what_the_shipped_rulebook_says():
    shipped, controller = load(RULEBOOK)[0], load(CONTROLLER)[0]
    assert controller["sources"][0]["filters"] == shipped["sources"][0]["filters"]
    assert len(controller["rules"]) == len(shipped["rules"])
    for ours, theirs in zip(shipped["rules"], controller["rules"]):
        assert {k: v for k, v in ours.items() if k != "action"} == {k: v for k, v in theirs.items() if k != "action"}
        if "run_playbook" in ours["action"]:
            job = theirs["action"]["run_job_template"]
            assert job["name"] == PLAYBOOKS[ours["action"]["run_playbook"]["name"]]
            assert job["job_args"] == {"limit": "{{ event.labels.host }}",
                                       "extra_vars": ours["action"]["run_playbook"]["extra_vars"]}
        else:
            assert theirs["action"] == ours["action"]


def test_ansible_rulebook_finds_the_rulebook_by_its_fqcn(monkeypatch):
    """`ansible-rulebook -r selfhost.bitwarden.self_heal` reads extensions/eda/rulebooks/self_heal.yml."""
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", ansible_env()["ANSIBLE_COLLECTIONS_PATH"])
    vaulted, document = load_rulebook("selfhost.bitwarden", "self_heal")
    assert not vaulted and document == load(RULEBOOK)
