"""bitwarden_lock: take, renew, wait, take over an abandoned lock, release only by the holder, check mode (issue 12 #7)."""

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest

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
    assert content["run_id"] == RUN and content["holder"] == "ctl alice" and content["controller"] == {}
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


JUNK = {
    "empty (killed between O_EXCL and write)": (b"", "the file is empty"),
    "not UTF-8": (b'{"run_id": "r\xff\xfe", "expires": "2099-01-01T00:00:00+00:00"}', "not UTF-8"),
    "truncated JSON": (b'{"run_id": "run-2222", "expi', "not JSON"),
    "expires without a time zone": (b'{"run_id": "run-2222", "expires": "2099-01-01T00:00:00"}', "has no time zone"),
    "expires not a date": (b'{"run_id": "run-2222", "expires": "soon"}', "expires is unusable"),
    "no run_id": (b'{"expires": "2099-01-01T00:00:00+00:00"}', "names no run_id"),
    "a JSON list": (b"[1, 2]", "names no run_id"),
}


@pytest.mark.parametrize("junk", sorted(JUNK))
def test_an_unreadable_lock_file_is_taken_over_at_once_with_a_warning(tmp_path, capsys, junk):
    data, why = JUNK[junk]
    lock_file(tmp_path).write_bytes(data)
    failed, result, output = run_module(module.main, args(tmp_path), capsys, diff=True)
    assert not failed, result
    assert result["changed"] and result["acquired"] and result["taken_over_because"] == "unreadable"
    assert why in result["taken_over"]["unreadable"] and why in output and "took it over" in output
    assert json.loads(lock_file(tmp_path).read_text(encoding="utf-8"))["run_id"] == RUN
    assert result["diff"]["before"] == result["taken_over"]


@pytest.mark.parametrize("junk", sorted(JUNK))
def test_release_of_an_unreadable_lock_fails_without_crashing(tmp_path, capsys, junk):
    lock_file(tmp_path).write_bytes(JUNK[junk][0])
    failed, result, dummy = run_module(module.main, args(tmp_path, state="released"), capsys)
    assert failed and "nobody readable" in result["msg"] and lock_file(tmp_path).read_bytes() == JUNK[junk][0]


def test_a_holder_the_controller_proved_dead_is_taken_over_at_once(tmp_path, capsys, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(module, "time", clock)
    dead = held_by(tmp_path, OTHER, 3600)
    failed, result, output = run_module(module.main, args(tmp_path, timeout=600, takeover_run_id=OTHER), capsys)
    assert not failed and result["changed"] and result["taken_over"] == dead and clock.sleeps == []
    assert result["taken_over_because"] == "holder dead" and "whose controller process is gone" in output


def test_a_takeover_for_another_run_id_still_waits(tmp_path, capsys, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(module, "time", clock)
    held_by(tmp_path, OTHER, 3600)  # a new run took the lock after the controller looked
    failed, result, dummy = run_module(module.main, args(tmp_path, timeout=4, poll=2, takeover_run_id="run-3333"), capsys)
    assert failed and clock.sleeps == [2, 2] and "is held by run %s" % OTHER in result["msg"]


def test_not_failing_when_held_reports_not_acquired(tmp_path, capsys):
    other = held_by(tmp_path, OTHER, 3600)
    failed, result, dummy = run_module(module.main, args(tmp_path, fail_when_held=False), capsys)
    assert not failed and result["acquired"] is False and result["holder"] == other and not result["changed"]


def test_the_controller_process_is_written_into_the_lock(tmp_path, capsys):
    me = {"host": "ctl", "boot_id": "b", "pid_ns": "pid:[1]", "pid": 42, "started": 7}
    failed, result, dummy = run_module(module.main, args(tmp_path, controller=me), capsys)
    assert not failed and json.loads(lock_file(tmp_path).read_text(encoding="utf-8"))["controller"] == me


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


def test_check_mode_never_writes_nor_waits_and_a_free_lock_is_no_change(tmp_path, capsys, monkeypatch):
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys, check_mode=True, diff=True)
    assert not failed and not result["changed"] and "diff" not in result and result["holder"]["run_id"] == RUN
    assert result["acquired"] and not lock_file(tmp_path).exists()

    clock = FakeClock()
    monkeypatch.setattr(module, "time", clock)
    other = held_by(tmp_path, OTHER, 3600)
    text = lock_file(tmp_path).read_text(encoding="utf-8")
    failed, result, output = run_module(module.main, args(tmp_path, timeout=600), capsys, check_mode=True, diff=True)
    assert not failed and result["holder"] == other and clock.sleeps == [] and not result["changed"]
    assert "diff" not in result and result["acquired"] is False
    # Outside a controller run, ansible-core prints module warnings instead of returning them.
    assert "this check-mode report may be out of date" in output
    # The role's release after a check-mode acquire: nothing to give back, no failure.
    failed, result, dummy = run_module(module.main, args(tmp_path, state="released"), capsys, check_mode=True)
    assert not failed and not result["changed"] and lock_file(tmp_path).read_text(encoding="utf-8") == text
    failed, result, dummy = run_module(module.main, args(tmp_path, state="released", run_id=OTHER), capsys, check_mode=True)
    assert not failed and result["changed"] and lock_file(tmp_path).read_text(encoding="utf-8") == text


def test_check_mode_shows_a_diff_only_for_a_stale_lock_it_would_take_over(tmp_path, capsys):
    stale = held_by(tmp_path, OTHER, -1)
    text = lock_file(tmp_path).read_text(encoding="utf-8")
    failed, result, output = run_module(module.main, args(tmp_path), capsys, check_mode=True, diff=True)
    assert not failed and result["changed"] and result["diff"]["before"] == stale
    assert "a real run would take it over" in output and lock_file(tmp_path).read_text(encoding="utf-8") == text


def test_bad_options_say_what_to_set(tmp_path, capsys):
    for extra, expected in (({"run_id": " "}, "run_id must not be empty"),
                            ({"expires_after": 10}, "expires_after must be from 60 to 86400 seconds"),
                            ({"timeout": -1}, "timeout must be from 0 to 86400 seconds"),
                            ({"bwdata_path": str(tmp_path / "missing")}, "does not exist: set bwdata_path")):
        failed, result, dummy = run_module(module.main, args(tmp_path, **extra), capsys)
        assert failed and expected in result["msg"], result["msg"]
