"""Start and stop Debian's real prometheus-alertmanager and ansible-rulebook (PyPI, Java 17) on 127.0.0.1 for the
Event-Driven Ansible end-to-end tests; prometheus and node_exporter come from helpers.prom.

    with rulebook(RULEBOOK, inventory, workdir, token) as eda, \
            alertmanager(workdir, alertmanager_config(EXAMPLE, eda.url + "/alertmanager", token_file)) as am:
        ...

Both bind 127.0.0.1 on a free port, write their output to a file under `workdir` and are stopped (SIGTERM, then
SIGKILL) whatever happens.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import yaml

from helpers.ansible_run import ansible_env
from helpers.prom import Service, _start, binary, free_port, get, wait_for

# The test-only timings: Alertmanager notifies within a second of an alert and of its resolution.
FAST_ROUTE = {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"}


class Alertmanager(Service):
    def alerts(self, **filters):
        """Alerts Alertmanager holds (/api/v2/alerts), active ones unless told otherwise."""
        params = [("active", "true"), ("silenced", "false"), ("inhibited", "false")]
        params += [("filter", '%s="%s"' % item) for item in filters.items()]
        status, body = get("%s/api/v2/alerts?%s" % (self.url, urllib.parse.urlencode(params)))
        assert status == 200, (status, body)
        return json.loads(body)


def alertmanager_config(example, webhook_url, token_file):
    """The docs example with the webhook pointed at the test's rulebook, its token file and FAST_ROUTE timings."""
    config = yaml.safe_load(Path(example).read_text(encoding="utf-8"))
    config = copy.deepcopy(config)
    for route in [config["route"], *config["route"].get("routes", [])]:
        route.update(FAST_ROUTE)
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook_url
            webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


@contextlib.contextmanager
def alertmanager(workdir, config):
    """prometheus-alertmanager with `config` (a dict), its own storage under workdir and no cluster port."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    command = binary("prometheus-alertmanager")
    service = _start("alertmanager", lambda port: [
        command, "--config.file=%s" % config_file, "--storage.path=%s" % (workdir / "alertmanager-data"),
        "--web.listen-address=127.0.0.1:%d" % port, "--cluster.listen-address=", "--log.level=warn",
    ], workdir, "/-/ready", cls=Alertmanager)
    try:
        yield service
    finally:
        service.stop()


class Rulebook(Service):
    def received(self, alertname, host):
        """Whether the rule engine got the alert (--print-events prints each event with pprint: sorted keys)."""
        return re.search(r"'alertname': '%s',\s+'host': '%s'" % (re.escape(alertname), re.escape(host)), self.output())

    def stop(self):
        """Stop ansible-rulebook and the ansible-playbook runs it started (its own session)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


def _listening(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


@contextlib.contextmanager
def rulebook(path, inventory, workdir, token, record=None, attempts=3):
    """ansible-rulebook running rulebook `path` against `inventory`, its webhook on 127.0.0.1 (token required).

    `record`: a file the test-only record callback appends every task result of the rulebook's playbooks to.
    """
    command = shutil.which("ansible-rulebook") or str(Path(sys.executable).parent / "ansible-rulebook")
    assert os.path.exists(command), "ansible-rulebook is missing: run `make venv` (requirements-dev.txt)"
    assert shutil.which("java"), "java is missing: run `make system-packages` (Debian package openjdk-17-jre-headless)"
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = ansible_env({"SELFHOST_BW_RECORD": str(record)} if record else None)
    for attempt in range(attempts):
        port = free_port()
        variables = workdir / ("eda-vars-%d.yml" % attempt)
        variables.write_text(yaml.safe_dump({"selfhost_bitwarden_eda_host": "127.0.0.1", "selfhost_bitwarden_eda_port": port,
                                             "selfhost_bitwarden_eda_token": token}), encoding="utf-8")
        log = workdir / ("ansible-rulebook-%d.log" % attempt)
        with open(log, "wb") as output:
            # -v: the webhook's access log; --print-events: each event (one alert) as the rule engine gets it.
            process = subprocess.Popen([command, "-r", str(path), "-i", str(inventory), "-e", str(variables), "-v",
                                        "--print-events"],
                                       stdout=output, stderr=subprocess.STDOUT, cwd=str(workdir), env=env,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        service = Rulebook("ansible-rulebook", process, port, log)
        try:
            # Ready when the rule engine waits for events (the webhook listens earlier, while Java still starts).
            wait_for(lambda: process.poll() is not None or ("Waiting for events" in service.output() and _listening(port)),
                     timeout=300, what="ansible-rulebook to listen on %s" % service.address)
        except BaseException:
            service.stop()
            raise
        if process.poll() is None:
            try:
                yield service
            finally:
                service.stop()
            return
        if "address already in use" not in service.output():
            raise AssertionError("ansible-rulebook exited with %s:\n%s" % (process.returncode, service.output()))
    raise AssertionError("ansible-rulebook: no free port after %d attempts" % attempts)
