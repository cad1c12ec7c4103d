"""Start and stop Debian's real prometheus-node-exporter and prometheus on 127.0.0.1 for the end-to-end tests.

    with node_exporter(textfile_dir, workdir) as exporter, \
            prometheus(workdir, [exporter.address], rule_files=[RULES]) as prom:
        prom.wait_for(lambda: prom.query("up") or None)
        prom.alerts()

Every process binds 127.0.0.1 on a free port and writes its output to a file under `workdir` (shown when it fails
to start); the context managers stop it (SIGTERM, then SIGKILL) whatever happens. `make system-packages` installs the
binaries (Debian packages prometheus and prometheus-node-exporter).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

START_TIMEOUT = 60


def free_port():
    """A port that was free a moment ago (the caller retries when another process takes it first)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def binary(name):
    path = shutil.which(name) or (Path("/usr/bin") / name if (Path("/usr/bin") / name).exists() else None)
    assert path, "%s is missing: run `make system-packages` (Debian package %s)" % (name, name if name != "promtool" else "prometheus")
    return str(path)


def get(url, timeout=10):
    """GET url (loopback only, no proxy) -> (status, body text)."""
    assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def wait_for(check, timeout=START_TIMEOUT, interval=0.25, what="condition"):
    """Call check() until it returns something truthy; return that, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as exc:  # not listening yet, half-written answer
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


class Service:
    """One running process: `address` (host:port), `url`, `log` (its output file), `process`."""

    def __init__(self, name, process, port, log):
        self.name, self.process, self.port, self.log = name, process, port, Path(log)
        self.address = "127.0.0.1:%d" % port
        self.url = "http://" + self.address

    def output(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


class Prometheus(Service):
    """A prometheus server; queries go through its HTTP API."""

    def api(self, path, **params):
        status, body = get("%s/api/v1/%s?%s" % (self.url, path, urllib.parse.urlencode(params)))
        answer = json.loads(body)
        assert status == 200 and answer.get("status") == "success", (path, params, status, body)
        return answer["data"]

    def query(self, expr):
        """Instant vector or scalar result of expr, as the API returns it (a list of {metric, value})."""
        return self.api("query", query=expr)["result"]

    def query_range(self, expr, start, end, step):
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def alerts(self):
        """Active alerts (pending and firing) from /api/v1/alerts."""
        return self.api("alerts")["alerts"]

    def targets(self):
        return self.api("targets")["activeTargets"]

    def wait_for(self, check, timeout=START_TIMEOUT, what="a Prometheus answer"):
        return wait_for(check, timeout=timeout, what=what)

    def wait_for_scrape(self, timeout=START_TIMEOUT):
        """Wait until every target was scraped successfully at least once."""
        return wait_for(lambda: all(target["health"] == "up" for target in self.targets()) and self.targets(),
                        timeout=timeout, what="every target up")


def _start(name, argv_of_port, workdir, ready_path, cls=Service, attempts=3):
    """Start a process on a free port and wait for ready_path to answer 200; retries when the port was taken."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        port = free_port()
        log = workdir / ("%s-%d.log" % (name, attempt))
        with open(log, "wb") as output:
            process = subprocess.Popen(argv_of_port(port), stdout=output, stderr=subprocess.STDOUT, cwd=str(workdir),
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        service = cls(name, process, port, log)
        try:
            wait_for(lambda: process.poll() is not None or get(service.url + ready_path, timeout=2)[0] == 200,
                     what="%s to listen on %s" % (name, service.address))
        except BaseException:
            service.stop()
            raise
        if process.poll() is None:
            return service
        if "address already in use" not in service.output():
            raise AssertionError("%s exited with %s:\n%s" % (name, process.returncode, service.output()))
    raise AssertionError("%s: no free port after %d attempts" % (name, attempts))


@contextlib.contextmanager
def node_exporter(textfile_dir, workdir):
    """prometheus-node-exporter with only the textfile collector, reading textfile_dir."""
    command = binary("prometheus-node-exporter")
    service = _start("node_exporter", lambda port: [
        command, "--collector.disable-defaults", "--collector.textfile",
        "--collector.textfile.directory=%s" % textfile_dir, "--web.listen-address=127.0.0.1:%d" % port,
    ], workdir, "/metrics")
    try:
        yield service
    finally:
        service.stop()


def prometheus_config(targets, rule_files=(), interval="1s", alertmanagers=(), job="node"):
    """A prometheus.yml document: one static scrape job, the rule files, optional alertmanagers (host:port)."""
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    return config


@contextlib.contextmanager
def prometheus(workdir, targets, rule_files=(), interval="1s", alertmanagers=(), config=None):
    """A prometheus server with its own storage under workdir, scraping targets every `interval` and evaluating the
    rules as often; `config` (a dict) replaces the generated prometheus.yml."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config or prometheus_config(targets, rule_files, interval, alertmanagers)))
    command = binary("prometheus")
    service = _start("prometheus", lambda port: [
        command, "--config.file=%s" % config_file, "--storage.tsdb.path=%s" % (workdir / "data"),
        "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn",
    ], workdir, "/-/ready", cls=Prometheus)
    try:
        yield service
    finally:
        service.stop()
