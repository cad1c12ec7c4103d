"""`bwsim up | down | status | serve` (architecture.md, "CLI")."""

import argparse
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .fleet import FleetError, build_fleet, default_fleet, fleet_options, load_fleet

UP_TIMEOUT = 120
DOWN_TIMEOUT = 15
SIM_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _control(directory):
    try:
        with open(os.path.join(directory, "control.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid):
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _answers(url, context):
    """An instance answers once nginx does (GET /alive)."""
    try:
        if context is None:
            with OPENER.open(url + "/alive", timeout=5) as response:
                return response.status == 200
        https = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
        with https.open(url + "/alive", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _fetch_json(url, method="GET", timeout=10):
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None,
                                     headers={"Content-Type": "application/json"})
    with OPENER.open(request, timeout=timeout) as response:
        return json.load(response)


def _log_tail(directory, lines=30):
    try:
        with open(os.path.join(directory, "bwsim.log"), encoding="utf-8") as handle:
            return "".join(handle.readlines()[-lines:])
    except FileNotFoundError:
        return ""


def cmd_up(args):
    directory = os.path.abspath(args.dir)
    os.makedirs(directory, exist_ok=True)
    try:
        data = load_fleet(args.fleet) if args.fleet else default_fleet(args.instances)
        build_fleet(data, args.restart_delay)
    except (FleetError, OSError, ValueError) as exc:
        print(f"bwsim up: {exc}", file=sys.stderr)
        return 2
    control = _control(directory)
    if control and pid_alive(control["pid"]):
        print(f"bwsim up: a simulator is already running for {directory} (pid {control['pid']}); run `bwsim down` first", file=sys.stderr)
        return 1
    for stale in ("control.json", "inventory.yml"):
        if os.path.exists(os.path.join(directory, stale)):
            os.unlink(os.path.join(directory, stale))
    fleet_copy = os.path.join(directory, "fleet.json")
    with open(fleet_copy, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    command = [sys.executable, "-m", "bwsim", "serve", "--dir", directory, "--fleet", fleet_copy]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (SIM_ROOT, env.get("PYTHONPATH"))))
    if args.restart_delay is not None:
        command += ["--restart-delay", str(args.restart_delay)]
    started = time.monotonic()
    with open(os.path.join(directory, "bwsim.log"), "ab") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                start_new_session=True, close_fds=True, env=env, cwd=directory)
    deadline = started + UP_TIMEOUT
    while (control := _control(directory)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            print(f"bwsim up: the simulator did not start; bwsim.log:\n{_log_tail(directory)}", file=sys.stderr)
            if proc.poll() is None:
                proc.kill()
            return 1
        time.sleep(0.05)
    base = f"http://127.0.0.1:{control['port']}"
    instances = _fetch_json(base + "/_sim/instances")
    context = None
    if any(inst["tls"] for inst in instances):
        context = ssl.create_default_context(cafile=os.path.join(directory, "ca.pem"))
    pending = [inst["url"] for inst in instances]
    while pending:
        pending = [url for url in pending if not _answers(url, context)]
        if pending and time.monotonic() > deadline:
            print(f"bwsim up: {len(pending)} instance(s) do not answer: {', '.join(pending[:5])}", file=sys.stderr)
            return 1
        if pending:
            time.sleep(0.1)
    print(f"bwsim up: {len(instances)} instance(s) in {directory} (control {base}, pid {control['pid']}) "
          f"in {time.monotonic() - started:.2f} s")
    return 0


def cmd_down(args):
    directory = os.path.abspath(args.dir)
    control = _control(directory)
    if control is None:
        print(f"bwsim down: nothing running in {directory}")
        return 0
    pid = control["pid"]
    try:
        _fetch_json(f"http://127.0.0.1:{control['port']}/_sim/shutdown", "POST", timeout=5)
    except (urllib.error.URLError, OSError):
        pass
    deadline = time.monotonic() + DOWN_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)
    if os.path.exists(os.path.join(directory, "control.json")):
        os.unlink(os.path.join(directory, "control.json"))
    print(f"bwsim down: stopped pid {pid}")
    return 0


def cmd_status(args):
    directory = os.path.abspath(args.dir)
    control = _control(directory)
    if control is None or not pid_alive(control["pid"]):
        print(f"bwsim status: no simulator running in {directory}")
        return 1
    instances = _fetch_json(f"http://127.0.0.1:{control['port']}/_sim/instances")
    rows = [("NAME", "URL", "STATE", "VERSION", "REGION", "CLOUD COMM", "RESTARTS")]
    for inst in instances:
        rows.append((inst["name"], inst["url"], inst["state"], inst["version"], inst["region"],
                     "on" if inst["cloud_communication"] else "off", str(inst["restarts"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def cmd_serve(args):
    from .server import serve  # pylint: disable=import-outside-toplevel
    try:
        data = load_fleet(args.fleet) if args.fleet else default_fleet(args.instances)
        specs = build_fleet(data, args.restart_delay)
    except (FleetError, OSError, ValueError) as exc:
        print(f"bwsim serve: {exc}", file=sys.stderr)
        return 2
    return serve(args.dir, specs, fleet_options(data))


def parser():
    root = argparse.ArgumentParser(prog="bwsim", description="Simulated self-hosted Bitwarden fleet (plus US/EU clouds) on 127.0.0.1.")
    sub = root.add_subparsers(dest="command", required=True)
    for name, helptext in (("up", "start a fleet in the background"), ("serve", "run a fleet in the foreground")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--dir", required=True, help="fleet directory (install dirs, control.json, inventory.yml)")
        group = cmd.add_mutually_exclusive_group(required=True)
        group.add_argument("--fleet", help="fleet file (YAML)")
        group.add_argument("--instances", type=int, help="N default US instances bw-1..bw-N")
        cmd.add_argument("--restart-delay", type=float, default=None, help="seconds each instance refuses connections on restart")
    for name, helptext in (("down", "stop the fleet"), ("status", "print a table of the instances")):
        sub.add_parser(name, help=helptext).add_argument("--dir", required=True)
    return root


def main(argv=None):
    args = parser().parse_args(argv)
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status, "serve": cmd_serve}[args.command](args)
