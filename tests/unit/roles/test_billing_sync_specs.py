"""defaults/main.yml and meta/argument_specs.yml of the role must describe the same variables with the same defaults."""

from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "billing_sync"


def load(relative):
    return yaml.safe_load((ROLE / relative).read_text(encoding="utf-8"))


DEFAULTS = load("defaults/main.yml")
SPECS = load("meta/argument_specs.yml")["argument_specs"]


def test_every_default_is_documented_and_every_option_has_a_default():
    options = SPECS["main"]["options"]
    assert sorted(DEFAULTS) == sorted(options)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_default_values_agree(name):
    assert SPECS["main"]["options"][name]["default"] == DEFAULTS[name]


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_public_variables_carry_the_role_prefix(name):
    assert name.startswith("billing_sync_")


def test_every_entry_point_has_a_tasks_file():
    for entry_point in SPECS:
        assert (ROLE / "tasks" / ("%s.yml" % entry_point)).is_file(), entry_point
