"""_pace: the fleet-wide budget of cloud calls that the action plugins take on the controller."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _pace


class Clock:
    def __init__(self, now=1000.0):
        self.now = now
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def pace(tmp_path, rate=8, **extra):
    return _pace.settings(dict(key="nat-1-US", calls_per_minute=rate, state_dir=str(tmp_path / "pace"), **extra))


def test_slots_are_evenly_spaced_and_a_preflight_takes_two(tmp_path):
    clock = Clock()
    budget = pace(tmp_path)
    assert [_pace.take_slot(budget, clock=clock) for dummy in range(3)] == [0.0, 7.5, 7.5]
    assert _pace.take_slot(budget, cost=2, clock=clock) == 7.5
    assert _pace.take_slot(budget, clock=clock) == 15.0  # the preflight used two slots
    assert json.loads((tmp_path / "pace" / "nat-1-US.json").read_text())["next"] == 1000.0 + 7.5 * 6


def test_idle_budget_gives_the_slot_at_once(tmp_path):
    clock = Clock()
    budget = pace(tmp_path)
    _pace.take_slot(budget, clock=clock)
    clock.now += 600
    assert _pace.take_slot(budget, clock=clock) == 0.0


def _take(args):
    state_dir, index = args
    budget = _pace.settings(dict(key="shared", calls_per_minute=600, state_dir=state_dir))
    return _pace.reserve(budget["state_dir"] + "/shared.json", 0.1, 0.0)


def test_forks_never_share_a_slot(tmp_path):
    """Processes (Ansible's forks) taking slots at once each get their own."""
    (tmp_path / "pace").mkdir()
    with multiprocessing.get_context("fork").Pool(8) as pool:
        slots = pool.map(_take, [(str(tmp_path / "pace"), index) for index in range(40)])
    assert sorted(round(slot, 6) for slot in slots) == [round(index * 0.1, 6) for index in range(40)]


def test_booked_too_far_ahead(tmp_path):
    budget = pace(tmp_path, max_wait=10)
    clock = Clock()
    for dummy in range(2):
        _pace.take_slot(budget, clock=clock)
        clock.now = 1000.0
    with pytest.raises(ValueError, match="booked for 15 s ahead, more than max_wait"):
        _pace.take_slot(budget, clock=clock)


@pytest.mark.parametrize("value, words", [
    ("8", "must be a dictionary"),
    (dict(key="a b", calls_per_minute=8, state_dir="/x"), "pace key 'a b': use letters"),
    (dict(key="k", calls_per_minute=-1, state_dir="/x"), r"must be 0 \(pacing off\) or more, got -1"),
    (dict(key="k", calls_per_minute="fast", state_dir="/x"), "must be a number"),
    (dict(key="k", calls_per_minute=8), "state_dir is required"),
    (dict(key="k", calls_per_minute=8, state_dir="/x", burst=2), "unknown keys: burst"),
])
def test_bad_settings(value, words):
    with pytest.raises(ValueError, match=words):
        _pace.settings(value)


def test_off(tmp_path):
    assert _pace.settings(None) is None
    assert pace(tmp_path, rate=0) is None
