"""bitwarden_lock's action plugin: which controller process holds a run, and when it is provably dead (issue 22 #1)."""

from __future__ import annotations

import os
import subprocess
import sys

from ansible_collections.selfhost.bitwarden.plugins.action import bitwarden_lock as action


def identity_of(pid):
    me = action.controller_identity()
    return dict(me, pid=pid, started=action.process_start(pid))


def test_the_controller_identity_is_the_parent_process_with_its_start_time():
    me = action.controller_identity()
    assert me["pid"] == os.getppid() and isinstance(me["started"], int) and me["boot_id"] and me["pid_ns"].startswith("pid:")


def test_a_live_holder_is_not_dead_and_a_killed_one_is():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"run_id": "r", "controller": identity_of(child.pid)}
        me = action.controller_identity()
        assert not action.holder_dead(holder, me)
    finally:
        child.kill()
        child.wait()
    assert action.holder_dead(holder, me)


def test_a_reused_pid_with_another_start_time_is_dead():
    me = action.controller_identity()
    mine = identity_of(me["pid"])
    assert not action.holder_dead({"controller": mine}, me)
    assert action.holder_dead({"controller": dict(mine, started=mine["started"] - 1)}, me)


def test_a_holder_on_another_controller_boot_or_pid_namespace_is_never_called_dead():
    me = action.controller_identity()
    gone = dict(me, pid=2 ** 22 + 12345, started=1)  # no such process here
    assert action.holder_dead({"controller": gone}, me)
    for key, value in (("host", "other-controller"), ("boot_id", "another-boot"), ("pid_ns", "pid:[1]")):
        assert not action.holder_dead({"controller": dict(gone, **{key: value})}, me), key
    assert not action.holder_dead({"controller": {}}, me)  # written without the action plugin (0.3.0)
    assert not action.holder_dead({"controller": dict(gone, started=None)}, me)
    assert not action.holder_dead({}, me)
