"""The env file under bad input, odd but valid syntax, file-system trouble, kill -9 and server faults (issue 12).

Items of issue 12 that each case pins (they failed before the fix): 3 (export lines), 4 (multi-line values),
5 (diff masking of ``KEY: value`` and multi-line secrets), 9 (temp file left by kill -9), 11 (simulator and BOM).
The others held before and must keep holding.
"""

import os
import shutil
import subprocess
import time

import pytest

from reliability.matrix import MANAGED, Case, assert_converged, module_result, run_killed, run_once, temp_files

ENABLE = "globalSettings__enableCloudCommunication"
PLANTED = "pl4nted-s3cret-"  # prefix of values a case adds under a secret-looking key


def edit_text(change):
    """prepare(host) that rewrites the env file's text with change(text)."""
    return lambda host: host.write(change(host.text()))


def append(lines):
    return edit_text(lambda text: text + lines)


def replace_line(key, new_line):
    """The (first) line of ``key`` becomes ``new_line`` (a format string given the old value)."""
    def change(text):
        out = []
        for line in text.splitlines(keepends=True):
            if line.startswith(key + "="):
                value = line.rstrip("\n").partition("=")[2]
                line = new_line.format(value=value) + "\n"
            out.append(line)
        return "".join(out)
    return edit_text(change)


def multi_line_intact(line):
    def check(host, runs):
        assert line in host.text()
    return check


# -- bad input and odd syntax (module runs with --diff at -vvvv) -----------------------------------------------------

def crlf(host):
    host.write(host.text().replace("\n", "\r\n"))


def check_crlf(host, runs):
    text = host.text()
    assert text.count("\r\n") == text.count("\n"), "a line lost its CRLF"


def export_everywhere(host):
    host.write("".join("export " + line + "\n" for line in host.text().splitlines()))


def check_export_everywhere(host, runs):
    lines = [line for line in host.text().splitlines() if line.partition("=")[0].lower() not in MANAGED]
    assert lines and all(line.startswith("export ") for line in lines)


def large(host):
    padding = "# %s\n" % ("x" * 97)
    host.write(host.text() + padding * (20 * 1024 * 1024 // len(padding)))


def bom(host):
    host.write(b"\xef\xbb\xbf" + host.read())


def check_bom(host, runs):
    assert host.read().startswith(b"\xef\xbb\xbf")


def symlinked(host):
    real = host.install_dir / "elsewhere" / "global.override.env"
    real.parent.mkdir()
    shutil.copy2(host.env_file, real)
    host.env_file.unlink()
    host.env_file.symlink_to(os.path.relpath(real, host.env_file.parent))


def read_only_dir(host):
    directory = host.env_file.parent
    if os.geteuid() == 0:  # root writes through a 0500 directory; the immutable flag stops it
        subprocess.run(["chattr", "+i", str(directory)], check=True)
        host.cleanups.append(lambda: subprocess.run(["chattr", "-i", str(directory)], check=True))
    else:
        directory.chmod(0o500)
        host.cleanups.append(lambda: directory.chmod(0o700))


def stale_and_fresh_temp_files(host):
    env_dir = host.env_file.parent
    for name in (".global.override.env.k2j4x9_a.tmp", ".global.override.env.fresh123.tmp", ".global.override.env.short.tmp",
                 "notes.tmp"):
        (env_dir / name).write_bytes(b"")
    old = time.time() - 300
    os.utime(env_dir / ".global.override.env.k2j4x9_a.tmp", (old, old))
    os.utime(env_dir / ".global.override.env.short.tmp", (old, old))
    os.utime(env_dir / "notes.tmp", (old, old))


def check_only_stale_own_temp_file_removed(host, runs):
    names = sorted(path.name for path in host.env_file.parent.iterdir())
    assert ".global.override.env.k2j4x9_a.tmp" not in names
    assert {".global.override.env.fresh123.tmp", ".global.override.env.short.tmp", "notes.tmp"} <= set(names)
    assert module_result(runs[0])["removed_temp_files"] == [str(host.env_file.parent / ".global.override.env.k2j4x9_a.tmp")]


def check_second_run_changes_nothing(host, runs):
    assert [module_result(run)["changed"] for run in runs] == [True] + [False] * (len(runs) - 1)


def check_export_everywhere_converged_once(host, runs):
    check_export_everywhere(host, runs)
    check_second_run_changes_nothing(host, runs)


def check_backup_made(host, runs):
    assert os.path.isfile(module_result(runs[0])["backup_file"])


MULTI_ADMINS = 'adminSettings__admins="ops@example.com\nglobalSettings__enableCloudCommunication=false"'
MULTI_SECRET = "custom__clientSecret=%s%sline-one\n%sline-two%s\n"

CASES = [
    Case("setup file converges, then nothing changes", runs=2, check=check_second_run_changes_nothing),
    Case("CRLF line endings kept", prepare=crlf, check=check_crlf),
    Case("NUL inside a value", prepare=append("custom__note=a\0b\n")),
    Case("NUL as a key: compose refuses, file untouched", prepare=append("\0\n"), env="unchanged", failed=True,
         message=r"docker compose cannot read the env file .*line 22: unexpected character"),
    Case("Latin-1 bytes: refused, file untouched", prepare=lambda host: host.write(host.read() + b"custom__city=M\xfcnchen\n"),
         env="unchanged", failed=True, message=r"is not UTF-8 \(invalid bytes on line 22\)"),
    Case("20 MB file", prepare=large),
    Case("symlinked env file stays a symlink", prepare=symlinked),
    Case("read-only env directory: refused, file untouched", prepare=read_only_dir, env="unchanged", failed=True,
         message=r"Cannot write next to .*global\.override\.env"),
    Case("backup holds no API secret", module_args={"backup": True}, check=check_backup_made),
    Case("unterminated quote: refused, file untouched", prepare=append('custom__x="open\n'), env="unchanged", failed=True,
         message=r"line 22: unterminated quoted value"),
    Case("space inside a key: refused, file untouched", prepare=append("custom x=1\n"), env="unchanged", failed=True,
         message=r"line 22: key cannot contain a space"),
    # issue 12 item 3
    Case("export everywhere is read (no false 'installation__id is missing')", prepare=export_everywhere, runs=2,
         check=check_export_everywhere_converged_once),
    # issue 12 item 4
    Case("multi-line double-quoted value stays byte for byte", prepare=replace_line("adminSettings__admins", MULTI_ADMINS),
         runs=2, check=multi_line_intact(MULTI_ADMINS)),
    Case("multi-line single-quoted value stays byte for byte",
         prepare=append("custom__motd='line one\r\nglobalSettings__pushRelayBaseUri=REPLACE'\n"),
         check=multi_line_intact("custom__motd='line one\r\nglobalSettings__pushRelayBaseUri=REPLACE'\n")),
    # issue 12 item 5
    Case("KEY: value secrets masked in the diff", prepare=append("custom__apiKey: %scolon\n" % PLANTED),
         secrets=(PLANTED + "colon",)),
    Case("installation key written as KEY: value", prepare=replace_line("globalSettings__installation__key",
                                                                        "globalSettings__installation__key: {value}")),
    Case("every line of a multi-line double-quoted secret masked in the diff",
         prepare=append(MULTI_SECRET % ('"', PLANTED, PLANTED, '"')), secrets=(PLANTED + "line-one", PLANTED + "line-two")),
    Case("every line of a multi-line single-quoted secret masked in the diff",
         prepare=append(MULTI_SECRET % ("'", PLANTED, PLANTED, "'")), secrets=(PLANTED + "line-one", PLANTED + "line-two")),
    # issue 12 item 9
    Case("stale temp file of a killed run removed, nothing else", prepare=stale_and_fresh_temp_files,
         check=check_only_stale_own_temp_file_removed),
    # issue 12 item 11: compose (the simulator) reads a file with a BOM, the module keeps the BOM
    Case("UTF-8 BOM", prepare=bom, check=check_bom),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_env_file(case, run_case):
    run_case(case)


# -- through the role: restarts and the running server ---------------------------------------------------------------

ROLE_CASES = [
    # issue 12 item 3: a later export line overrode the managed one, so every run restarted and the server stayed off
    Case("later export line overriding the managed key: one restart, then none", run="role", runs=2,
         prepare=append("globalSettings__enableCloudCommunication=true\nexport %s=false\n" % ENABLE),
         restarts=1, server_on=True),
    # issue 12 items 4 and 11: docker compose must be able to read the file, or the server stays down after the restart
    Case("multi-line value and BOM: the server comes up with cloud communication on", run="role",
         prepare=lambda host: (replace_line("adminSettings__admins", MULTI_ADMINS)(host), bom(host)),
         restarts=1, server_on=True, check=multi_line_intact(MULTI_ADMINS)),
    Case("server faults that are retried (429, 503 x2)", run="role", restarts=1, server_on=True,
         fleet={"faults": {"http": [
             {"method": "GET", "path_prefix": "/api/organizations/connections/", "status": 429, "times": 1, "retry_after": 1},
             {"method": "POST", "path_prefix": "/api/organizations/licenses/", "status": 503, "times": 2}]}}),
]


@pytest.mark.parametrize("case", ROLE_CASES, ids=[case.id for case in ROLE_CASES])
def test_role(case, run_case):
    run_case(case)


# -- kill -9 in the middle of the module ----------------------------------------------------------------------------

def killed_then_rerun(trigger):
    """runner: a run killed by ``trigger``, the file is the original or fully converged; then a later run (the
    leftover is older than a minute by then) converges and removes the killed run's temp file."""
    def runner(host, case):
        original = host.read()
        killed = run_killed(host, trigger)
        now = host.read()
        if now != original:
            assert_converged(host, original, now)
        leftovers = temp_files(host)
        for path in leftovers:
            os.utime(path, (time.time() - 120, time.time() - 120))
        again = run_once(host, case)
        assert again.rc == 0, again.output
        assert temp_files(host) == []
        assert module_result(again)["removed_temp_files"] == [str(path) for path in leftovers]
        return [killed, again]
    return runner


def when_temp_file_appears(host, elapsed):
    return bool(temp_files(host))


KILL_CASES = [
    Case("kill -9 while the temp file exists", prepare=large, diff=False, failed=None, runner=killed_then_rerun(when_temp_file_appears)),
    Case("kill -9 after 1.5 s", prepare=large, diff=False, failed=None, runner=killed_then_rerun(lambda host, elapsed: elapsed > 1.5)),
    Case("kill -9 after 3 s", prepare=large, diff=False, failed=None, runner=killed_then_rerun(lambda host, elapsed: elapsed > 3)),
]


@pytest.mark.parametrize("case", KILL_CASES, ids=[case.id for case in KILL_CASES])
def test_kill(case, run_case):
    run_case(case)
