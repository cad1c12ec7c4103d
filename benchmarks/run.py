"""Fleet benchmark: `make bench`.

With the same inventory, forks and environment it measures per fleet size N: the floor (`ansible all -m ping`), the
role's idempotent re-run and its `--check --diff` drift run, each with pipelining off (Ansible's default) and on; at
the converge sizes also the first converge of the role and of the hand-written builtin-modules baseline
(benchmarks/baseline.yml) on fresh fleets; at the scale sizes only the floor and the re-run, with the simulator's RSS.
Idempotent runs at sizes without a converge start from a preconfigured fleet (the four manual steps already done).
Writes benchmarks/results/<date>.{md,json,png} and the README's "## Performance" section.
Scratch (fleets, logs) goes to benchmarks/work/. Environment: BENCH_SIZES ("50,200"), BENCH_CONVERGE_SIZES ("50"),
BENCH_SCALE_SIZES ("500"), BENCH_FORKS (10), BENCH_REPS (idempotent repetitions, 2), BENCH_RESTART_DELAY (0.5 s).

One more figure, the license sync behind one egress: BENCH_LICENSE_SIZES ("200") hosts behind one NAT address,
every one due (forced), synced by playbooks/license_sync.yml at the role's default pace (8 syncs a minute per egress
and region) under the simulated cloud's real per-IP limits (10 token requests a minute), next to the lower bound the
limits allow. It runs in real time: 200 hosts take about 25 minutes. `benchmarks/run.py --license-only N` runs just
this figure: benchmarks/results/<date>-license.{md,json} and the README's license table.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, "work")
RESULTS = os.path.join(HERE, "results")
BWSIM = os.path.join(ROOT, "scripts", "bwsim")
ROLLOUT = os.path.join(ROOT, "playbooks", "rollout.yml")
BASELINE = os.path.join(HERE, "baseline.yml")
README = os.path.join(ROOT, "README.md")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sizes(name, default):
    return [int(size) for size in os.environ.get(name, default).split(",") if size.strip()]


SIZES = sizes("BENCH_SIZES", "50,200")
CONVERGE_SIZES = sizes("BENCH_CONVERGE_SIZES", "50")
SCALE_SIZES = sizes("BENCH_SCALE_SIZES", "500")
LICENSE_SIZES = sizes("BENCH_LICENSE_SIZES", "200")
LICENSE_SYNC = os.path.join(ROOT, "playbooks", "license_sync.yml")
TOKEN_LIMIT = 10  # identity post:/connect/token per client IP and minute (bitwarden/server src/Identity/appsettings.json)
DEFAULT_PACE = 8  # billing_sync_cloud_calls_per_minute
FORKS = int(os.environ.get("BENCH_FORKS", "10"))
REPS = int(os.environ.get("BENCH_REPS", "2"))
RESTART_DELAY = float(os.environ.get("BENCH_RESTART_DELAY", "0.5"))
WARMUP = 0.2
ROLE_ARGS = ["-e", '{"billing_sync_serial": ["100%"]}']
PIPELINING = {"ANSIBLE_PIPELINING": "True"}

KINDS = (
    ("floor", "floor: ansible -m ping"),
    ("baseline_converge", "baseline: first converge"),
    ("role_converge", "role: first converge"),
    ("role_rerun", "role: idempotent re-run"),
    ("role_check", "role: --check --diff drift run"),
    ("floor_pl", "floor, pipelining on"),
    ("role_rerun_pl", "role: re-run, pipelining on"),
    ("role_check_pl", "role: drift run, pipelining on"),
)
GOAL_RERUN = 1.5
GOAL_CONVERGE = 0.5
GOAL_REQUESTS = 3


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Fleet:
    """One simulator process with N instances in benchmarks/work/fleets/<name>."""

    def __init__(self, name, size, preconfigured=False, egress=None):
        self.dir = os.path.join(WORK, "fleets", name)
        self.size = size
        if os.path.exists(self.dir):
            subprocess.run([BWSIM, "down", "--dir", self.dir], capture_output=True, check=False)
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        fleet_file = os.path.join(self.dir, "bench-fleet.yml")
        defaults = {"restart_delay": RESTART_DELAY, "warmup": WARMUP, "preconfigured": preconfigured}
        if egress:
            defaults["egress"] = egress
        doc = {"defaults": defaults,
               "instances": [{"name": "bw-%03d" % index} for index in range(1, size + 1)]}
        with open(fleet_file, "w", encoding="utf-8") as handle:
            yaml.safe_dump(doc, handle)
        subprocess.run([BWSIM, "up", "--dir", self.dir, "--fleet", fleet_file], check=True, capture_output=True)
        with open(os.path.join(self.dir, "control.json"), encoding="utf-8") as handle:
            control = json.load(handle)
        self.control = "http://127.0.0.1:%d" % control["port"]
        self.pid = control["pid"]
        self.inventory = os.path.join(self.dir, "inventory.yml")
        self.names = doc["instances"]

    def call(self, path, method="GET"):
        request = urllib.request.Request(self.control + path, method=method, data=b"{}" if method == "POST" else None,
                                         headers={"Content-Type": "application/json"})
        with OPENER.open(request, timeout=30) as response:
            return json.load(response)

    def states(self):
        return [self.call("/_sim/instances/" + item["name"]) for item in self.names]

    def reset(self):
        for item in self.names:
            self.call("/_sim/instances/%s/reset-counters" % item["name"], method="POST")

    def rss_mb(self):
        """Resident memory of the simulator process serving the whole fleet."""
        with open("/proc/%d/status" % self.pid, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def down(self):
        subprocess.run([BWSIM, "down", "--dir", self.dir], capture_output=True, check=False)


def converged(state):
    connection = state.get("connection") or {}
    config = connection.get("config") or {}
    return bool(state["settings"].get("enableCloudCommunication") and config.get("LastLicenseSync")
                and connection.get("enabled"))


def timed(cmd, logfile, extra_env=None):
    """Run cmd; wall time, CPU (user+sys of it and its descendants) and peak RSS from wait4."""
    env = dict(os.environ, ANSIBLE_FORKS=str(FORKS), **(extra_env or {}))
    with open(logfile, "w", encoding="utf-8") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)  # pylint: disable=consider-using-with
        status, usage = os.wait4(proc.pid, 0)[1:]
        wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(logfile, encoding="utf-8") as handle:
        text = handle.read()
    changed = sum(int(value) for value in re.findall(r"changed=(\d+)", text.split("PLAY RECAP")[-1])) if "PLAY RECAP" in text else 0
    return {"rc": proc.returncode, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_mb": usage.ru_maxrss / 1024.0,
            "changed": changed}


def measure(fleet, kind, cmd, tag, extra_env=None):
    """One measured run with counters reset before and read after."""
    fleet.reset()
    before = {state["name"]: state["restarts"] for state in fleet.states()}
    logfile = os.path.join(WORK, "logs", "%s-n%d-%s.log" % (kind, fleet.size, tag))
    result = timed(cmd, logfile, extra_env)
    states = fleet.states()
    size = float(fleet.size)
    result.update(
        restarts=sum(state["restarts"] - before[state["name"]] for state in states),
        requests_per_host=sum(state["counters"]["requests"] for state in states) / size,
        cloud_calls_per_host=sum(state["counters"]["cloud_calls"] for state in states) / size,
        writes_per_host=sum(state["counters"]["writes"] for state in states) / size,
        converged_hosts=sum(1 for state in states if converged(state)),
        log=os.path.relpath(logfile, ROOT),
    )
    log("  n=%d %-18s %s wall %.1f s cpu %.1f s rc %d changed %d restarts %d req/host %.1f cloud/host %.2f converged %d"
        % (fleet.size, kind, tag, result["wall"], result["cpu"], result["rc"], result["changed"], result["restarts"],
           result["requests_per_host"], result["cloud_calls_per_host"], result["converged_hosts"]))
    return result


def summary(runs):
    def med(key):
        return statistics.median(run[key] for run in runs)
    return {"runs": len(runs), "wall": med("wall"), "wall_min": min(run["wall"] for run in runs),
            "wall_max": max(run["wall"] for run in runs), "cpu": med("cpu"),
            "maxrss_mb": max(run["maxrss_mb"] for run in runs), "restarts": max(run["restarts"] for run in runs),
            "requests_per_host": max(run["requests_per_host"] for run in runs),
            "cloud_calls_per_host": max(run["cloud_calls_per_host"] for run in runs),
            "writes_per_host": max(run.get("writes_per_host", 0.0) for run in runs),
            "changed": max(run["changed"] for run in runs), "rc": max(run["rc"] for run in runs),
            "converged_hosts": min(run["converged_hosts"] for run in runs), "all": runs}


def idempotent_runs(fleet, runs, kinds):
    """The floor and the role's idempotent runs on a converged fleet, pipelining off then on, REPS times each."""
    inventory = ["-i", fleet.inventory]
    ping = ["ansible", "all"] + inventory + ["-m", "ansible.builtin.ping"]
    role = ["ansible-playbook"] + inventory + [ROLLOUT] + ROLE_ARGS
    commands = {"floor": ping, "role_rerun": role, "role_check": role + ["--check", "--diff"]}
    for rep in range(REPS if kinds != ("floor", "role_rerun") else 1):
        for kind in kinds:
            runs[kind].append(measure(fleet, kind, commands[kind], "r%d" % rep))
            if kind + "_pl" in runs:
                runs[kind + "_pl"].append(measure(fleet, kind + "_pl", commands[kind], "r%d" % rep, PIPELINING))


def bench_size(size, scale=False):
    log("N=%d%s" % (size, " (scale: floor and re-run only)" if scale else ""))
    runs = {kind: [] for kind, unused_label in KINDS if not scale or kind in ("floor", "role_rerun")}
    if size in CONVERGE_SIZES and not scale:
        fleet = Fleet("baseline-n%d" % size, size)
        try:
            runs["baseline_converge"].append(measure(fleet, "baseline_converge",
                                                     ["ansible-playbook", "-i", fleet.inventory, BASELINE], "r0"))
        finally:
            fleet.down()
    else:
        runs.pop("baseline_converge", None)
        runs.pop("role_converge", None)
    fleet = Fleet("role-n%d" % size, size, preconfigured="role_converge" not in runs)
    try:
        if "role_converge" in runs:
            runs["role_converge"].append(measure(fleet, "role_converge",
                                                 ["ansible-playbook", "-i", fleet.inventory, ROLLOUT] + ROLE_ARGS, "r0"))
        idempotent_runs(fleet, runs, ("floor", "role_rerun") if scale else ("floor", "role_rerun", "role_check"))
        rss = fleet.rss_mb()
    finally:
        fleet.down()
    table = {kind: summary(items) for kind, items in runs.items()}
    table["floor"]["simulator_rss_mb"] = rss
    return table


def bench_license(size):
    """Every one of `size` hosts behind one egress due (forced): wall time at the default pace, and 429s."""
    log("license sync pace n=%d" % size)
    fleet = Fleet("license-n%d" % size, size, preconfigured=True, egress="office-nat")
    try:
        fleet.reset()
        logfile = os.path.join(WORK, "logs", "license-sync-n%d.log" % size)
        result = timed(["ansible-playbook", LICENSE_SYNC, "-i", fleet.inventory, "-e", '{"billing_sync_license_sync_force": true}'],
                       logfile)
        clouds = fleet.call("/_sim/clouds")
        states = fleet.states()
    finally:
        fleet.down()
    row = {"size": size, "rc": result["rc"], "wall": result["wall"], "changed": result["changed"],
           "pace_bound": (size - 1) * 60.0 / DEFAULT_PACE, "limit_bound": (math.ceil(size / float(TOKEN_LIMIT)) - 1) * 60.0,
           "rate_limited": sum(region["rate_limits"]["rate_limited"] for region in clouds.values()),
           "synced": sum(1 for state in states if state["counters"]["cloud_calls"] == 2),
           "log": os.path.relpath(logfile, ROOT)}
    log("  n=%d license sync wall %.0f s (pace bound %.0f s, limit bound %.0f s) rc %d synced %d 429s %d"
        % (size, row["wall"], row["pace_bound"], row["limit_bound"], row["rc"], row["synced"], row["rate_limited"]))
    return row


def render_license(rows):
    lines = ["", "License sync behind one egress (`playbooks/license_sync.yml`, every host due, default pace %d a minute, "
             "simulated cloud limit %d token requests a minute per client IP):" % (DEFAULT_PACE, TOKEN_LIMIT), "",
             "| N | wall, s | the pace's own bound (N−1)·60/%d, s | lower bound the limits allow (⌈N/%d⌉−1)·60, s | synced | 429s |"
             % (DEFAULT_PACE, TOKEN_LIMIT), "|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        values = (row["size"], row["wall"], row["pace_bound"], row["limit_bound"], row["synced"], row["rate_limited"])
        lines.append("| %d | %.0f | %.0f | %.0f | %d | %d |" % values)
    return "\n".join(lines)


def ratios(table):
    for size, rows in table.items():
        rows["floor"]["size"] = size
        for kind, row in rows.items():
            floor = rows["floor_pl" if kind.endswith("_pl") and "floor_pl" in rows else "floor"]["wall"]
            row["x_floor"] = row["wall"] / floor
            row["x_baseline"] = None
            batches = math.ceil(size / float(FORKS)) if kind.endswith("converge") else 0
            row["restart_component"] = batches * RESTART_DELAY
            row["wall_ex_restart"] = row["wall"] - row["restart_component"]
        if "baseline_converge" in rows:
            row = rows["role_converge"]
            row["x_baseline"] = row["wall"] / rows["baseline_converge"]["wall"]
            row["x_baseline_ex_restart"] = row["wall_ex_restart"] / rows["baseline_converge"]["wall_ex_restart"]


def row_size(rows):
    return rows["floor"]["size"]


def render(meta, table):
    lines = ["| N | run | wall s (median) | × floor | × baseline | CPU s | CPU ms/host | max RSS MB | restarts | HTTP req/host "
             "| writes/host | cloud calls/host | changed | converged |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, rows in sorted(table.items()):
        for kind, label in KINDS:
            if kind not in rows:
                continue
            row = rows[kind]
            lines.append("| %d | %s | %.1f (%d run%s, %.1f–%.1f) | %.2f | %s | %.1f | %.0f | %s | %d | %.1f | %.1f | %.2f | %d | %s |" % (
                size, label, row["wall"], row["runs"], "" if row["runs"] == 1 else "s", row["wall_min"], row["wall_max"],
                row["x_floor"], "%.2f" % row["x_baseline"] if row["x_baseline"] else "",
                row["cpu"], 1000.0 * row["cpu"] / size, "%.0f" % row["maxrss_mb"] if row["maxrss_mb"] else "n/a", row["restarts"],
                row["requests_per_host"], row["writes_per_host"], row["cloud_calls_per_host"], row["changed"],
                "" if kind.startswith("floor") else "%d/%d" % (row["converged_hosts"], size)))
    targets = []
    for size, rows in sorted(table.items()):
        rerun, check = rows["role_rerun"], rows.get("role_check")
        idle = [rerun] + ([check] if check else [])
        converge = rows.get("role_converge")
        targets.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
            size,
            "%.2f× %s" % (rerun["x_floor"], ok(rerun["x_floor"] <= GOAL_RERUN)),
            "%.2f× %s" % (check["x_floor"], ok(check["x_floor"] <= GOAL_RERUN)) if check else "not run",
            " / ".join("%.2f×" % rows[kind]["x_floor"] for kind in ("role_rerun_pl", "role_check_pl") if kind in rows) or "not run",
            "%d %s" % (max(row["restarts"] for row in idle), ok(max(row["restarts"] for row in idle) == 0)),
            "%.1f / %.2f / %.1f %s" % (
                max(row["writes_per_host"] for row in idle), max(row["cloud_calls_per_host"] for row in idle),
                max(row["requests_per_host"] for row in idle),
                ok(all(row["writes_per_host"] == 0 and row["cloud_calls_per_host"] == 0
                       and row["requests_per_host"] <= GOAL_REQUESTS for row in idle))),
            "%.1f s vs %.1f s (%.2f×) %s" % (
                converge["wall_ex_restart"], rows["baseline_converge"]["wall_ex_restart"],
                converge["x_baseline_ex_restart"], ok(converge["x_baseline_ex_restart"] <= GOAL_CONVERGE))
            if converge else "not run at this N",
            "%.0f MB" % rows["floor"]["simulator_rss_mb"]))
    per_host = []
    for kind, label in KINDS:
        cells = ["%.0f" % (1000.0 * table[size][kind]["cpu"] / size) if kind in table[size] else "" for size in sorted(table)]
        per_host.append("| %s | %s |" % (label, " | ".join(cells)))
    return "\n".join([
        "Measured %s on %s (%d cores), ansible-core %s, forks %d, fact gathering off (both playbooks), linear strategy; "
        "pipelining off (Ansible's default) unless a row says on. Simulated restart delay %.1f s (+%.1f s warm-up) per "
        "restart; the converge rows include ceil(N/forks) × %.1f s of it (\"ex restart\" subtracts it). Sizes without a "
        "converge row start from a preconfigured fleet (the four manual steps already done by hand). Load average "
        "before %s, after %s (ratios within one N are the signal)."
        % (meta["date"], meta["host"], meta["cores"], meta["ansible_core"], FORKS, RESTART_DELAY, WARMUP, RESTART_DELAY,
           meta["load_before"], meta["load_after"]),
        "",
        "\n".join(lines),
        "",
        "Goals (role): idempotent re-run and drift run ≤ %.1f× the floor (pipelining off), 0 restarts, 0 writes, 0 cloud "
        "calls and ≤ %d HTTP requests per host; first converge (ex restart) ≤ %.1f× the baseline."
        % (GOAL_RERUN, GOAL_REQUESTS, GOAL_CONVERGE),
        "",
        "| N | re-run × floor | drift run × floor | pipelining on: re-run / drift × floor | restarts | writes / cloud calls / "
        "requests per host | converge ex restart: role vs baseline | simulator RSS |",
        "|---:|---|---|---|---|---|---|---:|",
        "\n".join(targets),
        "",
        "CPU per host (ms; ansible and, over the local connection, the module processes; flat across N = linear cost):",
        "",
        "| run | " + " | ".join("N=%d" % size for size in sorted(table)) + " |",
        "|---|" + "---:|" * len(table),
        "\n".join(per_host),
    ])


def ok(flag):
    return "✓" if flag else "✗"


def plot(table, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    fig, axis = plt.subplots(figsize=(8, 5))
    styles = {"floor": ("black", "-", "o"), "floor_pl": ("black", ":", "o"), "baseline_converge": ("tab:orange", "-", "s"),
              "role_converge": ("tab:blue", "-", "^"), "role_rerun": ("tab:blue", "--", "^"), "role_check": ("tab:green", "--", "v"),
              "role_rerun_pl": ("tab:blue", ":", "^"), "role_check_pl": ("tab:green", ":", "v")}
    for kind, label in KINDS:
        points = sorted(size for size in table if kind in table[size])
        if not points:
            continue
        color, line, marker = styles[kind]
        axis.plot(points, [table[size][kind]["wall"] for size in points], color=color, linestyle=line, marker=marker, label=label)
    axis.set_xlabel("instances (N)")
    axis.set_ylabel("wall time, s (median)")
    axis.set_title("selfhost.bitwarden fleet benchmark (forks %d)" % FORKS)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def update_readme(body, stem):
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    head = text.split("\n## Performance\n")[0]
    section = ("## Performance\n\n`make bench` writes `benchmarks/results/<date>.md`; the latest results are summarised here "
               "(`benchmarks/results/%s.md`, plot `benchmarks/results/%s.png`).\n\n%s\n" % (stem, stem, body))
    with open(README, "w", encoding="utf-8") as handle:
        handle.write(head + "\n" + section)


def ansible_core_version():
    out = subprocess.run(["ansible", "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"core ([0-9.]+)", out)
    return match.group(1) if match else "?"


def main():
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "host": os.uname().nodename, "cores": os.cpu_count(),
            "ansible_core": ansible_core_version(), "forks": FORKS, "restart_delay": RESTART_DELAY, "warmup": WARMUP,
            "load_before": "%.2f %.2f %.2f" % os.getloadavg(), "sizes": SIZES, "converge_sizes": CONVERGE_SIZES,
            "scale_sizes": SCALE_SIZES, "reps": REPS}
    started = time.monotonic()
    table = {size: bench_size(size) for size in SIZES}
    table.update({size: bench_size(size, scale=True) for size in SCALE_SIZES})
    license_rows = [bench_license(size) for size in LICENSE_SIZES]
    meta["load_after"] = "%.2f %.2f %.2f" % os.getloadavg()
    meta["duration_s"] = round(time.monotonic() - started, 1)
    ratios(table)
    stem = datetime.date.today().isoformat()
    body = render(meta, table) + render_license(license_rows)
    with open(os.path.join(RESULTS, stem + ".md"), "w", encoding="utf-8") as handle:
        handle.write("# Fleet benchmark %s\n\n%s\n\nWhole run: %.0f s. Logs of every run: benchmarks/work/logs/.\n"
                     % (stem, body, meta["duration_s"]))
    with open(os.path.join(RESULTS, stem + ".json"), "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "results": {str(size): rows for size, rows in table.items()}, "license_sync": license_rows},
                  handle, indent=1, sort_keys=True)
    plot(table, os.path.join(RESULTS, stem + ".png"))
    update_readme(body, stem)
    log("done in %.0f s: benchmarks/results/%s.{md,json,png}, README updated" % (meta["duration_s"], stem))
    failed = [(size, kind) for size, rows in table.items() for kind, row in rows.items() if row["rc"] != 0]
    failed += [(row["size"], "license_sync") for row in license_rows if row["rc"] != 0 or row["rate_limited"]]
    if failed:
        log("runs that failed: %s" % failed)
        return 1
    return 0


def license_only(size):
    """The license figure alone (it runs in real time): results/<date>-license.{md,json} and the README's license table."""
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "host": os.uname().nodename, "cores": os.cpu_count(),
            "ansible_core": ansible_core_version(), "load_before": "%.2f %.2f %.2f" % os.getloadavg()}
    row = bench_license(size)
    meta["load_after"] = "%.2f %.2f %.2f" % os.getloadavg()
    stem = datetime.date.today().isoformat() + "-license"
    body = render_license([row]).lstrip("\n") + ("\n\nMeasured %s on %s (%d cores), ansible-core %s, load average before %s, "
                                                 "after %s (`benchmarks/run.py --license-only %d`, `benchmarks/results/%s.md`)."
                                                 % (meta["date"], meta["host"], meta["cores"], meta["ansible_core"],
                                                    meta["load_before"], meta["load_after"], size, stem))
    with open(os.path.join(RESULTS, stem + ".md"), "w", encoding="utf-8") as handle:
        handle.write("# License sync benchmark %s\n\n%s\n" % (stem, body))
    with open(os.path.join(RESULTS, stem + ".json"), "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "license_sync": [row]}, handle, indent=1, sort_keys=True)
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    # The license table ends the Performance section, which ends the README (update_readme): replaced to the end.
    head = text.partition("\nLicense sync behind one egress")[0]
    text = head.rstrip("\n") + "\n\n" + body + "\n"
    with open(README, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(body)
    return 0 if row["rc"] == 0 and not row["rate_limited"] and row["synced"] == size else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--license-only"]:
        sys.exit(license_only(int(sys.argv[2])))
    sys.exit(main())
