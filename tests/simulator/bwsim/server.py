"""The simulator process: every instance, the clouds, and the control API (/_sim/...)."""

import datetime
import json
import os
import re
import signal
import sys
import threading
import traceback

from .cloud import Clouds
from .docker import DockerHost
from .cloudports import CloudPorts
from .fleet import FleetError
from .httpserver import Acceptor, Listener, json_response
from .instance import Instance
from .lite import LiteInstance
from .layout import lay_out_docker
from .inventory import write_inventory

INSTANCE_ROUTE = re.compile(r"^/_sim/instances/([^/]+)(?:/([a-z-]+))?/?$")


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(value, handle)
    os.replace(tmp, path)


class Simulator:
    def __init__(self, directory, specs, options=None):
        options = options or {"serve_clouds": False}
        self.directory = os.path.abspath(directory)
        self.acceptor = Acceptor()
        self.clouds = Clouds()
        self.stopping = threading.Event()
        self._log_lock = threading.Lock()
        self.ca_path = os.path.join(self.directory, "ca.pem")
        self.ssl_context = None
        self.cloud_ports = None
        if any(spec["tls"] for spec in specs) or options["serve_clouds"]:
            # cryptography takes a tenth of a second to import: only fleets with TLS pay for it
            from . import tlsutil  # pylint: disable=import-outside-toplevel
            self.ssl_context = tlsutil.server_context(tlsutil.make_certificates(self.directory))
            if options["serve_clouds"]:
                untrusted = tlsutil.server_context(tlsutil.make_untrusted_certificate(self.directory))
                self.cloud_ports = CloudPorts(self.acceptor, self.clouds, self.ssl_context, untrusted,
                                              [spec["egress"] or spec["name"] for spec in specs])
        self.control = Listener(self.acceptor, self.handle_control)
        self.control_url = f"http://127.0.0.1:{self.control.port}"
        self.docker = DockerHost(self.stopping)
        self.bin_dir = os.path.join(self.directory, "bin")
        self.docker_path = lay_out_docker(self.bin_dir, self.control_url)
        self.instances = {}
        for spec in specs:
            self.instances[spec["name"]] = (LiteInstance if spec["deployment"] == "lite" else Instance)(self, spec)
            self.docker.register(self.instances[spec["name"]].project_dir, self.instances[spec["name"]])
        for instance in self.instances.values():
            instance.boot(instance.read_environment(), 0)
        self.control.start()
        write_inventory(os.path.join(self.directory, "inventory.yml"), self.instances.values(), self.ca_path, self.cloud_ports)
        _write_json(os.path.join(self.directory, "control.json"), {"pid": os.getpid(), "port": self.control.port})
        self.log(f"serving {len(self.instances)} instance(s); control on {self.control_url}")

    def log(self, message):
        """bwsim.log: what happened, never a secret."""
        stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
        with self._log_lock:
            print(f"{stamp} {message}", flush=True)

    def handle_control(self, request):
        path = request.path.rstrip("/") or "/"
        if path == "/_sim/instances" and request.method == "GET":
            return json_response(200, [inst.summary() for inst in self.instances.values()])
        if path == "/_sim/docker" and request.method == "POST":
            body = request.json()
            out, err, code = self.docker.run([str(a) for a in body.get("argv") or []], str(body.get("cwd") or ""),
                                             dict(body.get("env") or {}), str(body.get("user") or ""),
                                             str(body.get("program") or "docker"))
            return json_response(200, {"stdout": out, "stderr": err, "exit_code": code})
        if path == "/_sim/clouds" and request.method == "GET":
            return json_response(200, {region: {"rate_limits": cloud.rate_limiter.snapshot()} for region, cloud in self.clouds.regions.items()})
        if path == "/_sim/shutdown" and request.method == "POST":
            self.stopping.set()
            return json_response(200, {"stopping": True})
        match = INSTANCE_ROUTE.match(path)
        if not match or match.group(1) not in self.instances:
            return json_response(404, {"error": f"no such route or instance: {request.method} {request.path}"})
        inst, action = self.instances[match.group(1)], match.group(2)
        try:
            if action is None and request.method == "GET":
                return json_response(200, inst.full_state())
            if action == "faults" and request.method == "POST":
                inst.set_faults(request.json() if request.body else {})
                self.log(f"{inst.name}: faults replaced")
                return json_response(200, inst.full_state()["faults"])
            if action == "reset-counters" and request.method == "POST":
                inst.counters.reset()
                return json_response(200, inst.counters.snapshot())
            if action == "rotate-billing-sync-token" and request.method == "POST":
                self.log(f"{inst.name}: billing sync token rotated in the cloud")
                return json_response(200, {"billing_sync_token": inst.rotate_billing_sync_token()})
            if action == "renew-subscription" and request.method == "POST":
                body = request.json() if request.body else {}
                days = int(body.get("days", 365))
                self.log(f"{inst.name}: subscription renewed in the cloud for {days} more days")
                return json_response(200, inst.cloud.renew(inst.cloud_organization_id, days, body.get("seats")))
            if action == "run-job" and request.method == "POST":
                body = request.json() if request.body else {}
                self.log(f"{inst.name}: job {body.get('job')} fired")
                return json_response(200, inst.fire_job(str(body.get("job", ""))))
            if action == "bitwarden-sh" and request.method == "POST":
                body = request.json()
                output, errors, code = inst.run_script_command(str(body.get("command", "")), str(body.get("user", "")))
                return json_response(200, {"output": output, "stderr": errors, "exit_code": code})
        except (FleetError, ValueError, TypeError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(405, {"error": f"{request.method} not allowed on {request.path}"})

    def close(self):
        for instance in self.instances.values():
            instance.listener.close()
        if self.cloud_ports is not None:
            self.cloud_ports.close()
        self.control.close()


def serve(directory, specs, options=None):
    """Run in the foreground until POST /_sim/shutdown or SIGTERM/SIGINT."""
    try:
        sim = Simulator(directory, specs, options)
    except Exception:  # pylint: disable=broad-exception-caught
        traceback.print_exc()
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sim.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: sim.stopping.set())
    control_file = os.path.join(sim.directory, "control.json")
    # A fleet whose directory was deleted (e.g. pytest's old tmp dirs after an aborted run) stops on its own.
    while not sim.stopping.wait(30):
        if not os.path.exists(control_file):
            sim.log("control.json is gone; stopping")
            break
    # let the shutdown response reach the client before the sockets go
    threading.Event().wait(0.05)
    sim.log("shutting down")
    try:
        os.unlink(control_file)
    except FileNotFoundError:
        pass
    sim.close()
    sys.stdout.flush()
    return 0
