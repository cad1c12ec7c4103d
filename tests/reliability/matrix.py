"""The reliability matrix: each case is an installation state, a bad input or a fault, one or more runs through real
ansible-core against the simulator, and what must hold afterwards.

A table of cases lives in each ``test_reliability_*.py`` of this directory (one per owner); they all go through
``run_case`` so every case is held to the same checks:

* the run's result: failed or not, and the message (a regex on everything the run printed);
* the env file: sha256 unchanged, or converged (docker compose, i.e. the simulator's stand-in for it, reads it; cloud
  communication on for the host's region; every variable we do not manage as before), and mode, owner and group kept
  (a symlink stays a symlink);
* the restart count: ``bitwarden.sh restart`` calls in the simulator's log;
* no secret in any artefact: stdout/stderr at -vvvv, the ANSIBLE_LOG_PATH log, the callback's data, the remote tmp;
  the API secrets also not in any file beside the env file (backups).

A case passes when all of that holds: it "held". conftest.py prints "N cases, N held" at the end of the session.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import yaml
from bwsim import envfile as compose

from helpers.ansible_run import REPO, PlaybookRun, ansible_env, assert_no_secrets, run_module, run_playbook

ROLLOUT = REPO / "playbooks" / "rollout.yml"
MODULE = "selfhost.bitwarden.bitwarden_cloud_comm"
MODULE_ARGS = {"bwdata_path": "{{ billing_sync_install_dir }}/bwdata", "install_user": "{{ billing_sync_user }}",
               "region": "{{ billing_sync_region }}"}
FAST = {"restart_delay": 0.2, "warmup": 0.1}
ENABLE = "globalSettings__enableCloudCommunication"
MANAGED = {key.lower() for key in (ENABLE, "globalSettings__baseServiceUri__cloudRegion", "globalSettings__installation__identityUri",
                                   "globalSettings__installation__apiUri", "globalSettings__pushRelayBaseUri")}
SECRET_KEY = re.compile(r"key|password|secret|token|connectionstring|credential", re.I)
IDENTITY = {"US": "https://identity.bitwarden.com", "EU": "https://identity.bitwarden.eu"}


@dataclass
class Case:
    """One row of the matrix. Only ``id`` is required; the defaults describe a clean module run that converges."""

    id: str
    prepare: Optional[Callable] = None      # prepare(host): change the installation before the first run
    run: str = "module"                     # "module": bitwarden_cloud_comm with --diff; "role": playbooks/rollout.yml
    runs: int = 1                           # runs in a row; each must end the same way and restart nothing more
    module_args: dict = field(default_factory=dict)
    fleet: dict = field(default_factory=dict)  # simulator settings of the instance (version, faults, ...)
    env: str = "converged"                  # "converged" or "unchanged"
    failed: Optional[bool] = False          # every run fails (None: not checked, e.g. a run that is killed)
    message: Optional[str] = None           # regex that the first run's output must match
    restarts: Optional[int] = 0             # bitwarden.sh restart calls after all runs (None: the case counts otherwise)
    server_on: Optional[bool] = None        # the running server has cloud communication on at the end
    check: Optional[Callable] = None        # check(host, runs): further assertions
    runner: Optional[Callable] = None       # runner(host, case) -> [PlaybookRun]: instead of the plain runs
    secrets: tuple = ()                     # more values that must appear nowhere (planted by prepare)
    diff: bool = True                       # run with --diff


class Host:
    """One simulated installation and the scratch space of its case."""

    def __init__(self, fleet, name, scratch):
        self.fleet = fleet
        self.name = name
        self.scratch = Path(scratch)
        self.install_dir = fleet.install_dir(name)
        self.env_file = self.install_dir / "bwdata" / "env" / "global.override.env"
        self.vars = fleet.host_vars(name)
        self.cleanups = []

    def read(self):
        return Path(os.path.realpath(self.env_file)).read_bytes()

    def write(self, data):
        """Replace the env file's content in place (mode, owner and a symlink stay)."""
        with open(os.path.realpath(self.env_file), "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)

    def text(self):
        return self.read().decode("utf-8")

    def restarts(self):
        return [call for call in self.fleet.client.bitwarden_sh_calls(self.name) if call["command"] == "restart"]

    def run_env(self):
        (self.scratch / "remote-tmp").mkdir(exist_ok=True)
        return {"ANSIBLE_LOG_PATH": str(self.scratch / "ansible.log"), "ANSIBLE_REMOTE_TMP": str(self.scratch / "remote-tmp")}

    def api_secrets(self):
        state = self.fleet.instance(self.name)
        return [self.vars["billing_sync_client_secret"], self.vars["billing_sync_token"], state["billing_sync_token"],
                state["credentials"]["owner"]["client_secret"]]


def run_once(host, case):
    if case.run == "role":
        return run_playbook(ROLLOUT, host.fleet.inventory, limit=host.name, diff=case.diff, verbosity=4, env=host.run_env())
    return run_module(MODULE, dict(MODULE_ARGS, **case.module_args), host.fleet.inventory, hosts=host.name, diff=case.diff,
                      verbosity=4, env=host.run_env())


def module_result(run):
    """The module's result of a module-mode run."""
    events = run.results("module")
    assert len(events) == 1, run.output
    return events[0]["result"]


def env_secrets(data):
    """The secret values an env file holds (every line of a value that spans lines too), read as compose reads it."""
    try:
        env = compose.load_compose_env(data)
    except compose.EnvFileError:
        env = dict(line.partition("=")[::2] for line in data.decode("utf-8", "replace").splitlines() if "=" in line)
    found = set()
    for key, value in env.items():
        if SECRET_KEY.search(key) and value.strip().upper() not in ("", "REPLACE"):
            found.add(value)
            found.update(part for part in value.splitlines() if len(part.strip()) >= 6)
    return sorted(found)


def file_state(host):
    path = Path(os.path.realpath(host.env_file))
    info = path.stat()
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "mode": info.st_mode & 0o7777, "uid": info.st_uid,
            "gid": info.st_gid, "link": os.readlink(host.env_file) if host.env_file.is_symlink() else None}


def assert_converged(host, before, after):
    """docker compose reads ``after``; cloud communication is on for the host's region; nothing else changed."""
    old = compose.load_compose_env(before)
    try:
        new = compose.load_compose_env(after)
    except compose.EnvFileError as exc:
        raise AssertionError("docker compose would refuse the env file after the run: %s" % exc) from None
    settings = {key.lower(): value for key, value in new.items()}
    assert settings[ENABLE.lower()].lower() == "true", "cloud communication is not on in the file"
    assert settings["globalsettings__baseserviceuri__cloudregion"] == host.vars["billing_sync_region"]
    assert settings["globalsettings__installation__identityuri"] == IDENTITY[host.vars["billing_sync_region"]]
    unmanaged = [{key: value for key, value in env.items() if key.lower() not in MANAGED} for env in (old, new)]
    assert unmanaged[0] == unmanaged[1], "a variable we do not manage changed"


def artefacts(host, runs):
    """Everything a run leaves for people or tools to read."""
    texts = []
    for run in runs:
        texts += [run.output, json.dumps(run.events)]
    for path in [host.scratch / "ansible.log"] + sorted((host.scratch / "remote-tmp").rglob("*")):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return texts


def run_case(case, sim_fleet, scratch):
    fleet = sim_fleet([{"name": "bw", **case.fleet}], **FAST)
    host = Host(fleet, "bw", scratch)
    try:
        if case.prepare:
            case.prepare(host)
        before = host.read()
        state_before = file_state(host)
        secrets = env_secrets(before) + list(case.secrets)
        runs = case.runner(host, case) if case.runner else [run_once(host, case) for dummy in range(case.runs)]
        if case.failed is not None:
            for number, run in enumerate(runs):
                assert (run.rc != 0) == case.failed, "run %d: rc %d\n%s" % (number + 1, run.rc, run.output[-6000:])
        if case.message:
            assert re.search(case.message, runs[0].output), "message %r not in the output\n%s" % (case.message, runs[0].output[-6000:])

        state_after = file_state(host)
        for key in ("mode", "uid", "gid", "link"):
            assert state_after[key] == state_before[key], "the env file's %s changed" % key
        if case.env == "unchanged":
            assert state_after["sha256"] == state_before["sha256"], "the env file changed"
        else:
            assert_converged(host, before, host.read())
        if case.restarts is not None:
            assert len(host.restarts()) == case.restarts, host.restarts()
        if case.server_on is not None:
            assert host.fleet.instance(host.name)["settings"]["enableCloudCommunication"] is case.server_on

        for text in artefacts(host, runs):
            assert_no_secrets(text, secrets + host.api_secrets())
        for path in host.env_file.parent.iterdir():  # backups and anything else beside the env file
            if path.is_file() and path.name != host.env_file.name:
                assert_no_secrets(path.read_bytes().decode("utf-8", "replace"), host.api_secrets())
        if case.check:
            case.check(host, runs)
    finally:
        for cleanup in reversed(host.cleanups):
            cleanup()


# -- kill -9 in the middle of a run ------------------------------------------------------------------------------

def temp_files(host):
    return sorted(path for path in host.env_file.parent.iterdir() if path.name.startswith(".global.override.env.") and path.name.endswith(".tmp"))


def _children():
    """{parent pid: [child pids]} of every process."""
    tree = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, encoding="utf-8") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry))
    return tree


def kill_tree(pid):
    """SIGKILL ``pid`` and every process it started (ansible's connection starts the module in a session of its own,
    so the process group is not enough). Every process is stopped first (SIGSTOP), until the stopped tree no longer
    grows, so that none starts a child or is re-parented and missed while the others die."""
    stopped = set()
    spared = {os.getpid(), os.getppid()}  # never this test process or its runner, whatever /proc said meanwhile
    while True:
        tree = _children()
        order, todo = [], [pid]
        while todo:
            current = todo.pop()
            order.append(current)
            todo.extend(tree.get(current, []))
        fresh = [victim for victim in order if victim not in stopped and victim not in spared]
        if not fresh:
            break
        for victim in fresh:
            try:
                os.kill(victim, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            stopped.add(victim)
    for victim in stopped:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_killed(host, trigger, timeout=120, playbook=None, env=None):
    """Start bitwarden_cloud_comm (or ``playbook``, limited to the host) through ansible-playbook and SIGKILL it with
    every process it started when ``trigger(host, elapsed)`` says so; returns the PlaybookRun of the killed run
    (rc -9, or the real rc if it finished first)."""
    play = [{"name": "killed", "hosts": host.name, "gather_facts": False, "tasks": [{"name": "module", MODULE: MODULE_ARGS}]}]
    with tempfile.TemporaryDirectory(prefix="bw-kill-") as scratch:
        if playbook is None:
            playbook = Path(scratch) / "module.yml"
            playbook.write_text(yaml.safe_dump(play), encoding="utf-8")
        out, err = Path(scratch) / "out", Path(scratch) / "err"
        with open(out, "w", encoding="utf-8") as stdout, open(err, "w", encoding="utf-8") as stderr:
            proc = subprocess.Popen([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(host.fleet.inventory), "-vvvv",
                                     "--limit", host.name, str(playbook)], stdout=stdout, stderr=stderr, cwd=str(REPO),
                                    env=ansible_env(dict(host.run_env(), **(env or {}))))
            start = time.monotonic()
            while proc.poll() is None:
                elapsed = time.monotonic() - start
                if trigger(host, elapsed) or elapsed > timeout:
                    kill_tree(proc.pid)
                    break
                time.sleep(0.001)
            rc = proc.wait()
        return PlaybookRun(rc, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"), [])
