"""Fleet benchmark: `make bench`.

For fleets of N simulated installations it measures, with the same inventory, forks and environment:
the floor (`ansible all -m ansible.builtin.ping`), the hand-written builtin-modules baseline
(benchmarks/baseline.yml) and the role (playbooks/rollout.yml with one batch): first converge on a fresh
fleet, idempotent re-run and (role only) a --check --diff drift run.
Writes benchmarks/results/<date>.{md,json,png} and the README's "## Performance" section.
Scratch (fleets, logs) goes to benchmarks/work/. Environment: BENCH_SIZES ("10,50,200"), BENCH_FORKS (10),
BENCH_REPS ("N:converge:rerun,..." e.g. "10:3:3,50:2:3,200:1:2"), BENCH_RESTART_DELAY (0.5 s).
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

SIZES = [int(size) for size in os.environ.get("BENCH_SIZES", "10,50,200").split(",")]
FORKS = int(os.environ.get("BENCH_FORKS", "10"))
RESTART_DELAY = float(os.environ.get("BENCH_RESTART_DELAY", "0.5"))
WARMUP = 0.2
DEFAULT_REPS = {10: (3, 3), 50: (2, 3), 200: (1, 2)}
ROLE_ARGS = ["-e", '{"billing_sync_serial": ["100%"]}']

KINDS = (
    ("floor", "floor: ansible -m ping"),
    ("baseline_converge", "baseline: first converge"),
    ("baseline_rerun", "baseline: idempotent re-run"),
    ("role_converge", "role: first converge"),
    ("role_rerun", "role: idempotent re-run"),
    ("role_check", "role: --check --diff drift run"),
)


def reps_for(size):
    spec = os.environ.get("BENCH_REPS", "")
    for item in filter(None, spec.split(",")):
        parts = [int(part) for part in item.split(":")]
        if parts[0] == size:
            return parts[1], parts[2]
    return DEFAULT_REPS.get(size, (1, 2))


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Fleet:
    """One simulator process with N instances in benchmarks/work/fleets/<name>."""

    def __init__(self, name, size):
        self.dir = os.path.join(WORK, "fleets", name)
        self.size = size
        if os.path.exists(self.dir):
            subprocess.run([BWSIM, "down", "--dir", self.dir], capture_output=True, check=False)
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        fleet_file = os.path.join(self.dir, "bench-fleet.yml")
        doc = {"defaults": {"restart_delay": RESTART_DELAY, "warmup": WARMUP},
               "instances": [{"name": "bw-%03d" % index} for index in range(1, size + 1)]}
        with open(fleet_file, "w", encoding="utf-8") as handle:
            yaml.safe_dump(doc, handle)
        subprocess.run([BWSIM, "up", "--dir", self.dir, "--fleet", fleet_file], check=True, capture_output=True)
        with open(os.path.join(self.dir, "control.json"), encoding="utf-8") as handle:
            self.control = "http://127.0.0.1:%d" % json.load(handle)["port"]
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

    def down(self):
        subprocess.run([BWSIM, "down", "--dir", self.dir], capture_output=True, check=False)


def converged(state):
    connection = state.get("connection") or {}
    config = connection.get("config") or {}
    return bool(state["settings"].get("enableCloudCommunication") and config.get("LastLicenseSync")
                and connection.get("enabled"))


def timed(cmd, logfile):
    """Run cmd; wall time, CPU (user+sys of it and its descendants) and peak RSS from wait4."""
    env = dict(os.environ, ANSIBLE_FORKS=str(FORKS))
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


def measure(fleet, kind, cmd, tag):
    """One measured run with counters reset before and read after."""
    fleet.reset()
    before = {state["name"]: state["restarts"] for state in fleet.states()}
    logfile = os.path.join(WORK, "logs", "%s-n%d-%s.log" % (kind, fleet.size, tag))
    result = timed(cmd, logfile)
    states = fleet.states()
    size = float(fleet.size)
    result.update(
        restarts=sum(state["restarts"] - before[state["name"]] for state in states),
        requests_per_host=sum(state["counters"]["requests"] for state in states) / size,
        cloud_calls_per_host=sum(state["counters"]["cloud_calls"] for state in states) / size,
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
            "changed": max(run["changed"] for run in runs), "rc": max(run["rc"] for run in runs),
            "converged_hosts": min(run["converged_hosts"] for run in runs), "all": runs}


def bench_size(size):
    conv_reps, rerun_reps = reps_for(size)
    log("N=%d: %d converge(s) per side on fresh fleets, %d re-run(s) of each idempotent measurement" % (size, conv_reps, rerun_reps))
    ping = ["ansible", "all", "-m", "ansible.builtin.ping"]
    sides = {
        "baseline": ["ansible-playbook", BASELINE],
        "role": ["ansible-playbook", ROLLOUT] + ROLE_ARGS,
    }
    runs = {kind: [] for kind, unused_label in KINDS}
    for rep in range(conv_reps):
        # Alternate which side goes first so that load drifts hit both alike.
        order = ("baseline", "role") if rep % 2 == 0 else ("role", "baseline")
        for side in order:
            fleet = Fleet("%s-n%d" % (side, size), size)
            try:
                cmd = sides[side][:1] + ["-i", fleet.inventory] + sides[side][1:]
                runs[side + "_converge"].append(measure(fleet, side + "_converge", cmd, "r%d" % rep))
                if rep == conv_reps - 1:
                    for again in range(rerun_reps):
                        runs[side + "_rerun"].append(measure(fleet, side + "_rerun", cmd, "r%d" % again))
                        if side == "role":
                            runs["role_check"].append(measure(fleet, "role_check", cmd + ["--check", "--diff"], "r%d" % again))
                            runs["floor"].append(measure(fleet, "floor", ping[:1] + ["-i", fleet.inventory] + ping[1:], "r%d" % again))
            finally:
                fleet.down()
    return {kind: summary(items) for kind, items in runs.items()}


def ratios(table):
    for rows in table.values():
        floor = rows["floor"]["wall"]
        for kind, row in rows.items():
            row["x_floor"] = row["wall"] / floor
            other = kind.replace("role_", "baseline_") if kind.startswith("role_") else None
            row["x_baseline"] = row["wall"] / rows[other]["wall"] if other in rows else None
            batches = math.ceil(row_size(rows) / float(FORKS)) if kind.endswith("converge") else 0
            row["restart_component"] = batches * RESTART_DELAY
            row["wall_ex_restart"] = row["wall"] - row["restart_component"]
        for kind in ("role_converge",):
            row = rows[kind]
            row["x_baseline_ex_restart"] = row["wall_ex_restart"] / rows["baseline_converge"]["wall_ex_restart"]


def row_size(rows):
    return rows["floor"]["size"]


def render(meta, table):
    lines = ["| N | run | wall s (median) | × floor | × baseline | CPU s | CPU ms/host | max RSS MB | restarts | HTTP req/host "
             "| cloud calls/host | changed | converged |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, rows in sorted(table.items()):
        for kind, label in KINDS:
            row = rows[kind]
            lines.append("| %d | %s | %.1f (%d run%s, %.1f–%.1f) | %.2f | %s | %.1f | %.0f | %s | %d | %.1f | %.2f | %d | %s |" % (
                size, label, row["wall"], row["runs"], "" if row["runs"] == 1 else "s", row["wall_min"], row["wall_max"],
                row["x_floor"], "%.2f" % row["x_baseline"] if row["x_baseline"] else "",
                row["cpu"], 1000.0 * row["cpu"] / size, "%.0f" % row["maxrss_mb"] if row["maxrss_mb"] else "n/a", row["restarts"], row["requests_per_host"],
                row["cloud_calls_per_host"], row["changed"],
                "" if kind == "floor" else "%d/%d" % (row["converged_hosts"], size)))
    targets = []
    for size, rows in sorted(table.items()):
        rerun = rows["role_rerun"]
        conv = rows["role_converge"]
        targets.append("| %d | %.2f× %s | %d %s | %.2f %s | %.1f %s | %.1f s vs %.1f s (%.2f×) %s |" % (
            size, rerun["x_floor"], ok(rerun["x_floor"] <= 3), rerun["restarts"], ok(rerun["restarts"] == 0),
            rerun["cloud_calls_per_host"], ok(rerun["cloud_calls_per_host"] == 0), rerun["requests_per_host"],
            ok(rerun["requests_per_host"] <= 4), conv["wall_ex_restart"], rows["baseline_converge"]["wall_ex_restart"],
            conv["x_baseline_ex_restart"], ok(conv["x_baseline_ex_restart"] < 1)))
    per_host = []
    for kind, label in KINDS:
        per_host.append("| %s | %s |" % (label, " | ".join("%.0f" % (1000.0 * table[size][kind]["cpu"] / size) for size in sorted(table))))
    return "\n".join([
        "Measured %s on %s (%d cores), ansible-core %s, forks %d, pipelining off (defaults), fact gathering off "
        "(both playbooks), linear strategy. Simulated restart delay %.1f s (+%.1f s warm-up) per restart; the "
        "converge rows include ceil(N/forks) × %.1f s of it (\"ex restart\" below subtracts it). Load average before %s, "
        "after %s (other jobs share this machine: absolute times are noisy, ratios within one N are the signal)."
        % (meta["date"], meta["host"], meta["cores"], meta["ansible_core"], FORKS, RESTART_DELAY, WARMUP, RESTART_DELAY,
           meta["load_before"], meta["load_after"]),
        "",
        "\n".join(lines),
        "",
        "Targets (role): idempotent re-run ≤ 3× floor, 0 restarts, 0 cloud calls, ≤ 4 HTTP requests per host; "
        "first converge (ex restart) faster than the baseline.",
        "",
        "| N | re-run × floor | restarts | cloud calls/host | req/host | converge ex restart: role vs baseline |",
        "|---:|---|---|---|---|---|",
        "\n".join(targets),
        "",
        "Controller CPU per host (ms; flat across N = linear cost):",
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
    sizes = sorted(table)
    fig, axis = plt.subplots(figsize=(8, 5))
    styles = {"floor": ("black", "-", "o"), "baseline_converge": ("tab:orange", "-", "s"), "baseline_rerun": ("tab:orange", "--", "s"),
              "role_converge": ("tab:blue", "-", "^"), "role_rerun": ("tab:blue", "--", "^"), "role_check": ("tab:blue", ":", "v")}
    for kind, label in KINDS:
        color, line, marker = styles[kind]
        axis.plot(sizes, [table[size][kind]["wall"] for size in sizes], color=color, linestyle=line, marker=marker, label=label)
    axis.set_xlabel("instances (N)")
    axis.set_ylabel("wall time, s (median)")
    axis.set_title("selfhost.bitwarden fleet benchmark (forks %d)" % FORKS)
    axis.grid(True, alpha=0.3)
    axis.legend()
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


LOG_LINE = re.compile(r"\[bench (?P<time>[0-9:]+)\]   n=(?P<size>\d+) (?P<kind>\S+) +\S+ wall (?P<wall>[0-9.]+) s cpu (?P<cpu>[0-9.]+) s "
                      r"rc (?P<rc>\d+) changed (?P<changed>\d+) restarts (?P<restarts>\d+) req/host (?P<req>[0-9.]+) "
                      r"cloud/host (?P<cloud>[0-9.]+) converged (?P<conv>\d+)")


def table_from_log(path):
    """Rebuild the measurements of an interrupted run from its progress log (peak RSS is not in the log: 0)."""
    runs = {}
    with open(path, encoding="utf-8") as handle:
        for match in LOG_LINE.finditer(handle.read()):
            runs.setdefault(int(match["size"]), {}).setdefault(match["kind"], []).append({
                "wall": float(match["wall"]), "cpu": float(match["cpu"]), "rc": int(match["rc"]), "changed": int(match["changed"]),
                "restarts": int(match["restarts"]), "requests_per_host": float(match["req"]), "cloud_calls_per_host": float(match["cloud"]),
                "converged_hosts": int(match["conv"]), "maxrss_mb": 0.0})
    complete = {size: kinds for size, kinds in runs.items() if len(kinds) == len(KINDS)}
    return {size: {kind: summary(items) for kind, items in kinds.items()} for size, kinds in complete.items()}


def main():
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "host": os.uname().nodename, "cores": os.cpu_count(),
            "ansible_core": ansible_core_version(), "forks": FORKS, "restart_delay": RESTART_DELAY, "warmup": WARMUP,
            "load_before": "%.2f %.2f %.2f" % os.getloadavg(), "sizes": SIZES}
    started = time.monotonic()
    table = {}
    if len(sys.argv) == 3 and sys.argv[1] == "--from-log":
        # Re-render the complete sizes of an interrupted run from its progress log.
        table = table_from_log(sys.argv[2])
        meta.update(sizes=sorted(table), from_log=sys.argv[2], load_before=os.environ.get("BENCH_LOAD_BEFORE", "?"))
    for size in SIZES if not table else []:
        table[size] = bench_size(size)
    for size in table:
        table[size]["floor"]["size"] = size
    meta["load_after"] = "%.2f %.2f %.2f" % os.getloadavg()
    meta["duration_s"] = round(time.monotonic() - started, 1)
    ratios(table)
    stem = datetime.date.today().isoformat()
    body = render(meta, table)
    with open(os.path.join(RESULTS, stem + ".md"), "w", encoding="utf-8") as handle:
        run_note = ("Re-rendered from the progress log of an interrupted run (%s); sizes not finished are left out."
                    % meta["from_log"]) if meta.get("from_log") else "Whole run: %.0f s." % meta["duration_s"]
        handle.write("# Fleet benchmark %s\n\n%s\n\n%s Logs of every run: benchmarks/work/logs/.\n" % (stem, body, run_note))
    with open(os.path.join(RESULTS, stem + ".json"), "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "results": {str(size): rows for size, rows in table.items()}}, handle, indent=1, sort_keys=True)
    plot(table, os.path.join(RESULTS, stem + ".png"))
    update_readme(body, stem)
    log("done in %.0f s: benchmarks/results/%s.{md,json,png}, README updated" % (meta["duration_s"], stem))
    failed = [(size, kind) for size, rows in table.items() for kind, row in rows.items() if row["rc"] != 0]
    if failed:
        log("runs that failed: %s" % failed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
