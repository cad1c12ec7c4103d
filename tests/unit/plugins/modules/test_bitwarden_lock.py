"""bitwarden_lock: take, renew, wait, take over an abandoned lock, release only by the holder, check mode (issue 12 #7)."""

from __future__ import annotations

import datetime
import json
import os
import stat

from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_lock as module

from unit.plugins.module_utils.bitwarden_fakes import FakeClock, run_module

RUN = "run-1111"
OTHER = "run-2222"


def lock_file(tmp_path):
    return tmp_path / ".selfhost-bitwarden.lock"


def args(tmp_path, **extra):
    return dict({"bwdata_path": str(tmp_path), "run_id": RUN, "holder": "ctl alice", "timeout": 0}, **extra)


def held_by(tmp_path, run_id, expires_in):
    now = datetime.datetime.now(datetime.timezone.utc)
    holder = {"run_id": run_id, "holder": "other controller", "host": "h", "pid": 1, "acquired": now.isoformat(),
              "expires": (now + datetime.timedelta(seconds=expires_in)).isoformat()}
    lock_file(tmp_path).write_text(json.dumps(holder), encoding="utf-8")
    return holder


def test_acquire_writes_the_holder_and_again_only_renews(tmp_path, capsys):
    failed, result, dummy = run_module(module.main, args(tmp_path, expires_after=600), capsys)
    assert not failed and result["changed"] and result["path"] == str(lock_file(tmp_path))
    content = json.loads(lock_file(tmp_path).read_text(encoding="utf-8"))
    assert content == result["holder"]
    assert content["run_id"] == RUN and content["holder"] == "ctl alice" and content["pid"] > 0
    acquired = datetime.datetime.fromisoformat(content["acquired"])
    assert datetime.datetime.fromisoformat(content["expires"]) - acquired == datetime.timedelta(seconds=600)
    assert stat.S_IMODE(os.stat(lock_file(tmp_path)).st_mode) == 0o644

    failed, result, dummy = run_module(module.main, args(tmp_path, expires_after=900), capsys)
    renewed = json.loads(lock_file(tmp_path).read_text(encoding="utf-8"))
    assert not failed and not result["changed"] and renewed["acquired"] == content["acquired"]
    assert datetime.datetime.fromisoformat(renewed["expires"]) > datetime.datetime.fromisoformat(content["expires"])


def test_a_lock_held_by_another_run_is_waited_for_then_fails_naming_the_holder(tmp_path, capsys, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(module, "time", clock)
    before = held_by(tmp_path, OTHER, 3600)
    text = lock_file(tmp_path).read_text(encoding="utf-8")
    failed, result, dummy = run_module(module.main, args(tmp_path, timeout=10, poll=2), capsys)
    assert failed and result["holder"] == before and result["waited"] >= 8
    assert "is held by run %s (other controller)" % OTHER in result["msg"] and "timeout=10" in result["msg"]
    assert clock.sleeps == [2] * 5 and lock_file(tmp_path).read_text(encoding="utf-8") == text


def test_the_waiter_takes_the_lock_when_the_holder_releases_it(tmp_path, capsys, monkeypatch):
    clock = FakeClock()
    held_by(tmp_path, OTHER, 3600)
    advance = clock.sleep

    def sleep(seconds):
        advance(seconds)
        if len(clock.sleeps) == 3:
            lock_file(tmp_path).unlink()  # the other run gives it back
    monkeypatch.setattr(module, "time", clock)
    monkeypatch.setattr(clock, "sleep", sleep)
    failed, result, dummy = run_module(module.main, args(tmp_path, timeout=60, poll=1), capsys)
    assert not failed and result["changed"] and result["waited"] == 3 and result["taken_over"] is None
    assert json.loads(lock_file(tmp_path).read_text(encoding="utf-8"))["run_id"] == RUN


def test_an_expired_lock_is_taken_over(tmp_path, capsys):
    stale = held_by(tmp_path, OTHER, -1)  # its holder was killed with -9 an hour ago
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys, diff=True)
    assert not failed and result["changed"] and result["taken_over"] == stale
    assert json.loads(lock_file(tmp_path).read_text(encoding="utf-8"))["run_id"] == RUN
    assert result["diff"] == {"before": stale, "after": result["holder"]}


def test_an_unwritten_lock_counts_as_held_until_the_grace_has_passed(tmp_path, capsys):
    lock_file(tmp_path).write_bytes(b"")  # holder killed between O_EXCL and write
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys)
    assert failed and "an unreadable lock file" in result["msg"]
    old = os.stat(lock_file(tmp_path)).st_mtime - module.UNWRITTEN_GRACE - 1
    os.utime(lock_file(tmp_path), (old, old))
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys)
    assert not failed and result["changed"] and result["taken_over"] == {}


def test_only_the_holder_releases(tmp_path, capsys):
    held_by(tmp_path, OTHER, 3600)
    text = lock_file(tmp_path).read_text(encoding="utf-8")
    failed, result, dummy = run_module(module.main, args(tmp_path, state="released"), capsys)
    assert failed and "only the holder releases it" in result["msg"] and OTHER in result["msg"]
    assert lock_file(tmp_path).read_text(encoding="utf-8") == text

    failed, result, dummy = run_module(module.main, args(tmp_path, state="released", run_id=OTHER), capsys)
    assert not failed and result["changed"] and not lock_file(tmp_path).exists()
    failed, result, dummy = run_module(module.main, args(tmp_path, state="released", run_id=OTHER), capsys)
    assert not failed and not result["changed"]


def test_check_mode_never_writes_nor_waits(tmp_path, capsys, monkeypatch):
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys, check_mode=True)
    assert not failed and result["changed"] and result["holder"]["run_id"] == RUN
    assert not lock_file(tmp_path).exists()

    clock = FakeClock()
    monkeypatch.setattr(module, "time", clock)
    other = held_by(tmp_path, OTHER, 3600)
    text = lock_file(tmp_path).read_text(encoding="utf-8")
    failed, result, output = run_module(module.main, args(tmp_path, timeout=600), capsys, check_mode=True)
    assert not failed and result["holder"] == other and clock.sleeps == []
    # Outside a controller run, ansible-core prints module warnings instead of returning them.
    assert "this check-mode report may be out of date" in output
    failed, result, dummy = run_module(module.main, args(tmp_path, state="released", run_id=OTHER), capsys, check_mode=True)
    assert not failed and result["changed"] and lock_file(tmp_path).read_text(encoding="utf-8") == text


def test_bad_options_say_what_to_set(tmp_path, capsys):
    for extra, expected in (({"run_id": " "}, "run_id must not be empty"),
                            ({"expires_after": 10}, "expires_after must be from 60 to 86400 seconds"),
                            ({"timeout": -1}, "timeout must be from 0 to 86400 seconds"),
                            ({"bwdata_path": str(tmp_path / "missing")}, "does not exist: set bwdata_path")):
        failed, result, dummy = run_module(module.main, args(tmp_path, **extra), capsys)
        assert failed and expected in result["msg"], result["msg"]
