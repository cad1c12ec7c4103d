"""bitwarden.sh and restart semantics: refused while down, env read only at start, log lines, root prompt.

Pinned to contract §7 and upstream self-host bitwarden.sh/run.sh (v2026.8.0): banner and progress on stdout, every
docker/compose/bash error on stderr; `restart` runs bwdata/scripts/run.sh, whose sequence is ps -> down (only when
`ps` has more than 2 lines) -> pull -> up -d -> setup -printenv under `set -e`.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from helpers.sim import start_fleet


# As root, answer the prompt the way the role does (a "y" on a pipe that then closes); other users get no prompt.
ANSWER = "y\n" if os.geteuid() == 0 else ""


def run_script(fleet, name, *args, stdin=ANSWER, user=None):
    """Run the script from its install dir, as the role does (the working dir tells the docker stand-in the host)."""
    command = [str(fleet.install_dir(name) / "bitwarden.sh"), *args]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, check=False,
                          cwd=str(fleet.install_dir(name)))


def refused(url):
    try:
        requests.get(url + "/alive", timeout=2)
    except requests.ConnectionError as exc:
        return "refused" in str(exc).lower()
    return False


def wait_state(fleet, name, state, timeout=5):
    deadline = time.monotonic() + timeout
    while fleet.instance(name)["state"] != state:
        assert time.monotonic() < deadline, fleet.instance(name)["state"]
        time.sleep(0.02)


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([
        {"name": "restart", "restart_delay": 0.8, "warmup": 2.5}, {"name": "banner"}, {"name": "root"}, {"name": "env"},
        {"name": "zero-id"}, {"name": "bad-bool"}, {"name": "quote"}, {"name": "rebuild"}, {"name": "stop"}, {"name": "reread"},
    ])


def env_path(fleet, name):
    return fleet.install_dir(name) / "bwdata" / "env" / "global.override.env"


def test_restart_refuses_then_warms_up_then_serves(fleet):
    url = fleet.instance("restart")["url"]
    started = time.monotonic()
    proc = subprocess.Popen([str(fleet.install_dir("restart") / "bitwarden.sh"), "restart"],  # pylint: disable=consider-using-with
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(fleet.install_dir("restart")))
    proc.stdin.write(ANSWER)
    proc.stdin.close()
    deadline = time.monotonic() + 30  # banner, compose checks, ps, then down (slow on a loaded machine)
    seen_refused = False
    while time.monotonic() < deadline and not seen_refused:
        seen_refused = refused(url)
        time.sleep(0.02)
    assert seen_refused
    assert fleet.instance("restart")["state"] == "down"
    out = proc.stdout.read()
    proc.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0
    assert elapsed >= 0.8  # returns when the containers exist; the state below shows it is before the warm-up ends
    assert "Bitwarden is up and running!" in out
    # warm-up: nginx answers, the apps do not yet
    assert requests.get(url + "/alive", timeout=2).status_code == 200
    for path in ("/api/alive", "/identity/alive", "/identity/.well-known/openid-configuration"):
        response = requests.get(url + path, timeout=2)
        assert response.status_code == 502
        assert "<center><h1>502 Bad Gateway</h1></center>" in response.text
    assert fleet.instance("restart")["state"] == "starting"
    wait_state(fleet, "restart", "up")
    assert requests.get(url + "/api/alive", timeout=2).status_code == 200
    state = fleet.instance("restart")
    assert state["restarts"] == 1
    calls = fleet.client.bitwarden_sh_calls("restart")
    assert [(c["command"], c["user"], c["exit_code"]) for c in calls] == [("restart", pwd.getpwuid(os.geteuid()).pw_name, 0)]


def test_banner_version_and_unknown_command(fleet):
    result = run_script(fleet, "banner", "frobnicate")
    assert result.returncode == 0
    assert "Open source password management solutions" in result.stdout
    assert "bitwarden.sh version 2026.8.0" in result.stdout
    assert "No command found.\n\nAvailable commands:\n\ninstall\nstart\nrestart\nstop\n" in result.stdout
    help_result = run_script(fleet, "banner", "help")
    assert "Available commands:" in help_result.stdout
    install = run_script(fleet, "banner", "install")
    assert install.returncode == 1
    assert "Looks like Bitwarden is already installed at" in install.stdout
    missing = run_script(fleet, "banner", "restart", "/nonexistent/bwdata")
    assert (missing.returncode, missing.stdout.splitlines()[-1]) == (1, "Cannot find a Bitwarden installation at /nonexistent/bwdata.")
    assert [c["command"] for c in fleet.client.bitwarden_sh_calls("banner")] == ["frobnicate", "help", "install", "restart"]
    assert [c["exit_code"] for c in fleet.client.bitwarden_sh_calls("banner")] == [0, 0, 1, 1]
    assert fleet.instance("banner")["restarts"] == 0


def test_script_passes_shellcheck(fleet):
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed")
    result = subprocess.run(["shellcheck", str(fleet.install_dir("banner") / "bitwarden.sh")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_root_is_asked_and_refused_without_yes(tmp_path):
    fleet = start_fleet(tmp_path / "f", instances=[{"name": "r"}], defaults={"restart_delay": 0.1, "warmup": 0})
    try:
        result = run_script(fleet, "r", "restart", stdin="")
        assert result.returncode == 1
        assert "WARNING: This script is running as the root user!" in result.stdout
        assert result.stderr == ""  # EOF on stdin: `read` fails silently, set -e exits 1
        # `read -p` shows its prompt only on a terminal, so a non-interactive run just exits 1
        result = run_script(fleet, "r", "restart", stdin="n\n")
        assert result.returncode == 1
        assert fleet.instance("r")["restarts"] == 0
        result = run_script(fleet, "r", "restart", stdin="yes\n")
        assert result.returncode == 0
        assert "Continuing...." in result.stdout
        assert [(c["command"], c["user"], c["exit_code"]) for c in fleet.client.bitwarden_sh_calls("r")] == [
            ("restart", "root", 1), ("restart", "root", 1), ("restart", "root", 0)]
        assert fleet.instance("r")["restarts"] == 1
    finally:
        fleet.stop()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root and runuser")
def test_unprivileged_owner_can_run_it():
    base = tempfile.mkdtemp(prefix="bwsim-user-")
    os.chmod(base, 0o755)
    try:
        fleet = start_fleet(os.path.join(base, "f"), instances=[{"name": "u"}], defaults={"restart_delay": 0.1, "warmup": 0})
        try:
            nobody = pwd.getpwnam("nobody")
            for root, dirs, files in os.walk(fleet.install_dir("u")):
                for entry in dirs + files:
                    os.chown(os.path.join(root, entry), nobody.pw_uid, nobody.pw_gid)
            os.chown(fleet.install_dir("u"), nobody.pw_uid, nobody.pw_gid)
            os.chmod(fleet.dir, 0o755)
            result = run_script(fleet, "u", "restart", user="nobody")
            assert result.returncode == 0, result.stdout + result.stderr
            assert "WARNING" not in result.stdout
            assert fleet.client.bitwarden_sh_calls("u")[-1]["user"] == "nobody"
            assert fleet.instance("u")["restarts"] == 1
        finally:
            fleet.stop()
    finally:
        shutil.rmtree(base)


def test_env_is_read_at_restart_only_compose_style(fleet):
    url = fleet.instance("env")["url"]
    with open(env_path(fleet, "env"), "a", encoding="utf-8") as handle:
        handle.write("# a comment\n\nexport globalSettings__enableCloudCommunication=false\n"
                     "globalSettings__enableCloudCommunication = \"TRUE\"  # quoted, spaced, commented\n"
                     "globalSettings__baseServiceUri__cloudRegion=EU # inline comment\n")
    assert fleet.instance("env")["settings"]["enableCloudCommunication"] is False
    assert requests.get(url + "/api/config", timeout=2).json()["environment"]["cloudRegion"] == "US"
    assert fleet.client.bitwarden_sh("env", "restart")["exit_code"] == 0
    wait_state(fleet, "env", "up")
    settings = fleet.instance("env")["settings"]
    assert (settings["enableCloudCommunication"], settings["cloudRegion"]) == (True, "EU")
    assert requests.get(url + "/api/config", timeout=2).json()["environment"]["cloudRegion"] == "EU"


@pytest.mark.parametrize("name, line, message", [
    ("zero-id", "globalSettings__installation__id=00000000-0000-0000-0000-000000000000\n",
     "Installation Id must be set for self-hosted installations."),
    ("bad-bool", "globalSettings__enableCloudCommunication=yes\n",
     "Failed to convert configuration value at 'globalSettings:enableCloudCommunication' to type 'System.Boolean'."),
])
def test_start_up_failure_keeps_the_apps_down(fleet, name, line, message):
    with open(env_path(fleet, name), "a", encoding="utf-8") as handle:
        handle.write(line)
    assert fleet.client.bitwarden_sh(name, "restart")["exit_code"] == 0
    time.sleep(0.3)
    state = fleet.instance(name)
    assert (state["state"], state["start_error"]) == ("down", message)
    assert requests.get(state["url"] + "/alive", timeout=2).status_code == 200
    assert requests.get(state["url"] + "/api/alive", timeout=2).status_code == 502
    # The host throws before Serilog's file sink writes anything: the real api log never carries the message.
    log_dir = fleet.install_dir(name) / "bwdata" / "logs" / "api" / "Api"
    assert message not in "".join(p.read_text() for p in log_dir.iterdir()) if log_dir.is_dir() else True


def test_empty_installation_id_fails_start_up(fleet):
    text = env_path(fleet, "reread").read_text()
    env_path(fleet, "reread").write_text(text.replace(f"__installation__id={fleet.instance('reread')['installation_id']}",
                                                      "__installation__id="))
    assert fleet.client.bitwarden_sh("reread", "restart")["exit_code"] == 0
    assert fleet.instance("reread")["start_error"] == "Installation Id must be set for self-hosted installations."
    env_path(fleet, "reread").write_text(text)
    assert fleet.client.bitwarden_sh("reread", "restart")["exit_code"] == 0
    wait_state(fleet, "reread", "up")


def test_unparsable_env_file_fails_restart(fleet):
    with open(env_path(fleet, "quote"), "a", encoding="utf-8") as handle:
        handle.write('globalSettings__hibpApiKey="unterminated\n')
    result = run_script(fleet, "quote", "restart")
    assert result.returncode == 1
    assert "unterminated quoted value" in result.stderr
    assert "unterminated" not in result.stdout
    assert fleet.instance("quote")["state"] == "down"
    assert refused(fleet.instance("quote")["url"])


def test_stop_and_start(fleet):
    url = fleet.instance("stop")["url"]
    assert run_script(fleet, "stop", "stop").returncode == 0
    assert refused(url)
    assert fleet.instance("stop")["state"] == "down"
    assert run_script(fleet, "stop", "start").returncode == 0
    wait_state(fleet, "stop", "up")
    assert requests.get(url + "/api/alive", timeout=2).status_code == 200


def test_rebuild_keeps_values_and_does_not_start(fleet):
    path = env_path(fleet, "rebuild")
    original = path.read_text()
    path.write_text(original + "# my comment\nglobalSettings__enableCloudCommunication=true\n"
                    "globalSettings__custom=\"a b\"\nglobalSettings__hibpApiKey=first\nglobalSettings__hibpApiKey=second\n")
    assert run_script(fleet, "rebuild", "rebuild").returncode == 0
    assert fleet.instance("rebuild")["state"] == "down"
    lines = path.read_text().splitlines()
    assert "# my comment" not in lines
    assert lines[:3] == original.splitlines()[:3]
    assert "globalSettings__hibpApiKey=second" in lines
    assert lines[-2:] == ["globalSettings__enableCloudCommunication=true", 'globalSettings__custom="a b"']
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert run_script(fleet, "rebuild", "start").returncode == 0
    wait_state(fleet, "rebuild", "up")
    assert fleet.instance("rebuild")["settings"]["enableCloudCommunication"] is True


def test_old_keep_alive_connections_are_dropped_on_restart(fleet):
    url = fleet.instance("stop")["url"]
    host, port = url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=2)
    sock.sendall(b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(1024).startswith(b"HTTP/1.1 200 OK")
    fleet.client.bitwarden_sh("stop", "stop")
    assert sock.recv(1024) == b""
    sock.close()
    fleet.client.bitwarden_sh("stop", "start")


# -- the restart sequence and its failures (contract §7; self-host run.sh `restart`) ---------------------------------
@pytest.fixture(scope="module")
def seq_fleet(module_fleet):
    names = ("seq", "seq-down", "pull", "nocompose", "norun", "noexec", "upfail", "hang", "prompt")
    return module_fleet([{"name": n} for n in names])


def docker_argvs(fleet, name):
    return [" ".join(call["argv"]) for call in fleet.client.docker_calls(name)]


def test_restart_runs_the_run_sh_sequence(seq_fleet):
    result = run_script(seq_fleet, "seq", "restart")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.rstrip().splitlines()[-3:] == [
        "", f"visit {seq_fleet.instance('seq')['url']}", "to update, run `./bitwarden.sh updateself` and then `./bitwarden.sh update`"]
    assert "Docker version" in result.stdout and "Docker Compose version" in result.stdout
    assert docker_argvs(seq_fleet, "seq") == [
        "compose", "--version", "compose version",  # bitwarden.sh: compose check, version lines
        "compose",  # run.sh: compose check
        "compose ps", "compose down", "compose pull", "compose up -d",
        "pull ghcr.io/bitwarden/setup:2026.8.0",
        f"run -i --rm --name setup -v {seq_fleet.install_dir('seq')}/bwdata:/bitwarden --env-file "
        f"{seq_fleet.install_dir('seq')}/bwdata/env/uid.env ghcr.io/bitwarden/setup:2026.8.0 /app/Setup -printenv 1 "
        "-os lin -corev 2026.8.0 -webv 2026.8.0 -keyconnectorv 2025.11.0",
    ]
    assert seq_fleet.instance("seq")["restarts"] == 1


def test_restart_of_a_stopped_deployment_skips_down(seq_fleet):
    assert run_script(seq_fleet, "seq-down", "stop").returncode == 0
    assert seq_fleet.instance("seq-down")["state"] == "down"
    before = len(docker_argvs(seq_fleet, "seq-down"))
    assert run_script(seq_fleet, "seq-down", "restart").returncode == 0
    steps = [a for a in docker_argvs(seq_fleet, "seq-down")[before:] if a.startswith("compose ") and a != "compose version"]
    assert steps == ["compose ps", "compose pull", "compose up -d"]  # `ps` prints only its header: no down
    wait_state(seq_fleet, "seq-down", "up")


def test_pull_failure_after_down_leaves_the_server_down(seq_fleet):
    """contract §7: registry unreachable -> "Error response from daemon: …" on stderr, rc 18, server down; again the same."""
    seq_fleet.client.set_faults("pull", {"pull_fails": True})
    url = seq_fleet.instance("pull")["url"]
    for attempt in range(2):
        result = run_script(seq_fleet, "pull", "restart")
        assert result.returncode == 18, (attempt, result.stderr)
        assert result.stderr.startswith("Error response from daemon: Get \"https://ghcr.io/v2/\"")
        assert "Error" not in result.stdout
        assert seq_fleet.instance("pull")["state"] == "down"
        assert refused(url)
    argvs = docker_argvs(seq_fleet, "pull")
    assert argvs.count("compose down") == 1 and argvs.count("compose up -d") == 0  # the 2nd run had nothing to take down
    assert [c["exit_code"] for c in seq_fleet.client.bitwarden_sh_calls("pull")] == [18, 18]


def test_no_compose_exits_1_with_the_real_message(seq_fleet):
    seq_fleet.client.set_faults("nocompose", {"no_compose": True})
    result = run_script(seq_fleet, "nocompose", "restart")
    assert result.returncode == 1
    assert result.stderr == ("Error: Neither 'docker compose' nor 'docker-compose' commands were found. "
                             "Please install Docker Compose.\n")
    assert seq_fleet.instance("nocompose")["state"] == "up"


def test_missing_run_sh_is_127_and_unexecutable_run_sh_is_126(seq_fleet):
    (seq_fleet.install_dir("norun") / "bwdata" / "scripts" / "run.sh").unlink()
    result = run_script(seq_fleet, "norun", "restart")
    assert result.returncode == 127
    assert "run.sh: No such file or directory" in result.stderr
    run_sh = seq_fleet.install_dir("noexec") / "bwdata" / "scripts" / "run.sh"
    run_sh.chmod(0o644)
    result = run_script(seq_fleet, "noexec", "restart")
    assert result.returncode == 126
    assert "run.sh: Permission denied" in result.stderr
    for name in ("norun", "noexec"):
        assert seq_fleet.instance(name)["state"] == "up"


def test_restart_fault_fail_is_on_stderr_and_leaves_it_down(seq_fleet):
    seq_fleet.client.set_faults("upfail", {"restart": "fail"})
    result = run_script(seq_fleet, "upfail", "restart")
    assert result.returncode == 1
    assert "port is already allocated" in result.stderr and "Error" not in result.stdout
    assert seq_fleet.instance("upfail")["state"] == "down"


def test_restart_fault_hangs_never_returns(seq_fleet):
    seq_fleet.client.set_faults("hang", {"restart": "hangs"})
    proc = subprocess.Popen([str(seq_fleet.install_dir("hang") / "bitwarden.sh"), "restart"],  # pylint: disable=consider-using-with
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                            cwd=str(seq_fleet.install_dir("hang")))
    proc.stdin.write(ANSWER)
    proc.stdin.close()
    try:
        # Taken down and `up -d` called: the script is then stuck in `up -d`, however long the machine took to get there.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and seq_fleet.instance("hang")["restarts"] < 1:
            time.sleep(0.1)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        state = seq_fleet.instance("hang")
        assert (state["state"], state["restarts"]) == ("down", 1)  # taken down, `up -d` never answered
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="the prompt is only shown to root")
def test_root_prompt_reads_stdin_like_the_real_script(seq_fleet):
    """contract §7 (measured): closed -> rc 1 "read error"; /dev/null -> rc 1; "y" -> continues; open pipe -> blocks."""
    script = str(seq_fleet.install_dir("prompt") / "bitwarden.sh")
    cwd = str(seq_fleet.install_dir("prompt"))
    closed = subprocess.run(["bash", "-c", 'exec "$0" restart <&-', script], capture_output=True, text=True, timeout=30,
                            check=False, cwd=cwd)
    assert closed.returncode == 1
    assert "read error: 0: Bad file descriptor" in closed.stderr
    devnull = subprocess.run([script, "restart"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                             check=False, cwd=cwd)
    assert (devnull.returncode, devnull.stderr) == (1, "")
    with subprocess.Popen([script, "restart"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,  # noqa: SIM117
                          stderr=subprocess.DEVNULL, cwd=cwd) as open_pipe:
        with pytest.raises(subprocess.TimeoutExpired):
            open_pipe.wait(timeout=1.5)
        open_pipe.kill()
    assert seq_fleet.instance("prompt")["restarts"] == 0
    assert run_script(seq_fleet, "prompt", "restart", stdin="y\n").returncode == 0
    assert seq_fleet.instance("prompt")["restarts"] == 1
