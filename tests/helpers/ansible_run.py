"""Run playbooks and single modules through real ansible-core, for the integration tests.

Every run is a subprocess `ansible-playbook` with the default callback on stdout (what users see, and what
the secret checks scan) and the test-only `record` callback writing structured results to a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CALLBACK_DIR = Path(__file__).resolve().parent / "callback"
COLLECTIONS = REPO / ".cache" / "collections"


@dataclass
class PlaybookRun:
    """The outcome of one ansible-playbook run."""

    rc: int
    stdout: str
    stderr: str
    events: list = field(default_factory=list)

    @property
    def stats(self):
        """Per-host recap: {host: {ok, changed, failures, unreachable, skipped, rescued, ignored}}."""
        for event in reversed(self.events):
            if event["event"] == "stats":
                return event["hosts"]
        return {}

    @property
    def output(self):
        """Everything the run printed, for secret checks."""
        return self.stdout + self.stderr

    def results(self, task=None, host=None):
        """Task results in run order, filtered by task name and/or host."""
        return [
            event
            for event in self.events
            if event["event"] == "task"
            and (task is None or event["task"] == task)
            and (host is None or event["host"] == host)
        ]

    def result(self, task, host):
        """The one result of `task` on `host` (the module's return dict)."""
        matches = self.results(task, host)
        assert len(matches) == 1, "expected one result of %r on %s, got %d\n%s" % (task, host, len(matches), self.output)
        return matches[0]["result"]

    def handlers_run(self):
        return [event["task"] for event in self.events if event["event"] == "handler"]

    def changed_total(self):
        return sum(host["changed"] for host in self.stats.values())

    def assert_ok(self):
        assert self.rc == 0, "ansible-playbook failed (rc=%d)\n%s" % (self.rc, self.output)
        return self


def ansible_env(extra=None):
    """The environment the Makefile gives every tool, so tests also work when pytest is run directly."""
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS))
    env.setdefault("ANSIBLE_HOME", str(REPO / ".cache" / "ansible-home"))
    env.setdefault("ANSIBLE_PYTHON_INTERPRETER", sys.executable)
    env.setdefault("ANSIBLE_NOCOWS", "1")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    env["ANSIBLE_HOST_KEY_CHECKING"] = "0"
    env["ANSIBLE_CALLBACK_PLUGINS"] = str(CALLBACK_DIR)
    env["ANSIBLE_CALLBACKS_ENABLED"] = "record"
    env["PATH"] = "%s:%s" % (Path(sys.executable).parent, env.get("PATH", ""))
    if extra:
        env.update(extra)
    return env


def run_playbook(playbook, inventory, *, extra_vars=None, check=False, diff=False, verbosity=0, tags=None,
                 skip_tags=None, limit=None, forks=None, env=None, timeout=600, cli_vars=None):
    """Run `playbook` against `inventory` (a path, or a list of paths: later ones override host variables).

    ``cli_vars``: ``{name: text}`` passed as ``-e name=text``, the way people type them (every value a string).

    Returns a PlaybookRun; never raises on a failed play.
    """
    with tempfile.TemporaryDirectory(prefix="bw-run-") as scratch:
        record = Path(scratch) / "record.jsonl"
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook)]
        for source in inventory if isinstance(inventory, (list, tuple)) else [inventory]:
            cmd += ["-i", str(source)]
        if extra_vars:
            vars_file = Path(scratch) / "extra_vars.json"
            vars_file.write_text(json.dumps(extra_vars), encoding="utf-8")
            cmd += ["-e", "@%s" % vars_file]
        for name, value in (cli_vars or {}).items():
            cmd += ["-e", "%s=%s" % (name, value)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if tags:
            cmd += ["--tags", ",".join(tags)]
        if skip_tags:
            cmd += ["--skip-tags", ",".join(skip_tags)]
        if limit:
            cmd += ["--limit", limit]
        if forks:
            cmd += ["--forks", str(forks)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO), check=False,
                              env=ansible_env(dict(env or {}, SELFHOST_BW_RECORD=str(record))))
        events = []
        if record.exists():
            events = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line]
        return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, events)


def run_module(module, args, inventory, *, hosts="all", check=False, diff=False, verbosity=0, extra_vars=None,
               env=None, task_vars=None):
    """Run one module (FQCN) with `args` on `hosts` through a generated one-task playbook.

    `args` may template inventory variables ("{{ billing_sync_client_secret }}"), so secrets stay out of the
    generated file. The task is named "module" in the results.
    """
    task = {"name": "module", module: args}
    if task_vars:
        task["vars"] = task_vars
    play = [{"name": "run %s" % module, "hosts": hosts, "gather_facts": False, "tasks": [task]}]
    with tempfile.TemporaryDirectory(prefix="bw-module-") as scratch:
        playbook = Path(scratch) / "module.yml"
        playbook.write_text(yaml.safe_dump(play, sort_keys=False), encoding="utf-8")
        return run_playbook(playbook, inventory, check=check, diff=diff, verbosity=verbosity,
                            extra_vars=extra_vars, env=env)


def secret_forms(secret):
    """The ways a secret can leak: verbatim, URL-encoded (form bodies), JSON-escaped."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret), json.dumps(secret)[1:-1]}
    return {form for form in forms if form}


def assert_no_secrets(text, secrets):
    """Fail naming which secret (by position, never its value) appears in `text`."""
    for index, secret in enumerate(secrets):
        assert secret, "secret #%d is empty: the test would prove nothing" % index
        for form in secret_forms(secret):
            assert form not in text, "secret #%d leaked into the output" % index


def override_host_vars(directory, overrides):
    """Write an inventory that overrides host variables ({host: {var: value}}); pass it after the fleet's."""
    path = Path(directory) / "override-inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": overrides}}), encoding="utf-8")
    return path


def load_yaml(path):
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
