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


@pytest.mark.parametrize("entry_point, needed", [("status", ["billing_sync_client_id", "billing_sync_client_secret"]),
                                                 ("rotate_token", ["billing_sync_client_id", "billing_sync_client_secret",
                                                                   "billing_sync_token"])])
def test_entry_points_check_needed_inputs_and_hide_secrets(entry_point, needed):
    """The role defaults credentials to "": `required` could never fire, so tasks/inputs.yml checks them by name."""
    options = SPECS[entry_point]["options"]
    assert [name for name, spec in options.items() if spec.get("required")] == []
    problems = (ROLE / "vars" / "main.yml").read_text(encoding="utf-8")
    for name in needed:
        assert name in options, name
        assert name + " is empty" in problems or name in problems, name
    for name, spec in options.items():
        assert spec.get("no_log", False) == (name.endswith("_secret") or name == "billing_sync_token"), name


def test_playbooks_name_entry_points_exactly():
    """ansible-core looks the spec up by the tasks_from string: 'status.yml' would skip validation."""
    playbooks = Path(__file__).resolve().parents[3] / "playbooks"
    for path in playbooks.glob("*.yml"):
        for play in yaml.safe_load(path.read_text(encoding="utf-8")):
            for task in play.get("tasks", []):
                entry = (task.get("ansible.builtin.import_role") or {}).get("tasks_from")
                if entry is not None:
                    assert entry in SPECS, (path.name, entry)
