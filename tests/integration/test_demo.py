"""`make demo` (scripts/demo.sh), issue 25 item 9: a mixed fleet (standard US and EU, Bitwarden Lite), the rollout,
the re-run with nothing to do, the fleet report, and where the files are, metrics included; no empty task banners."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from helpers.ansible_run import ansible_env

REPO = Path(__file__).resolve().parents[2]


def test_demo_shows_a_mixed_fleet_the_idle_rerun_and_the_files(tmp_path):
    fleet = yaml.safe_load((REPO / "scripts" / "demo-fleet.yml").read_text(encoding="utf-8"))
    kinds = {(item.get("deployment", "standard"), item.get("region", "US")) for item in fleet["instances"]}
    assert {("standard", "US"), ("standard", "EU"), ("lite", "US")} <= kinds
    env = ansible_env({"DEMO_DIR": str(tmp_path / "demo")})
    for name in ("ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_PLUGINS"):
        env.pop(name, None)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], capture_output=True, text=True, env=env,
                          cwd=str(REPO), timeout=1800, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    names = [item["name"] for item in fleet["instances"]]
    # the re-run: every host changed=0, and no restart (0.3.0's demo never showed it)
    rerun = out.split("== 2/3", 1)[1].split("== 3/3", 1)[0]
    assert sorted(re.findall(r"(?m)^(\S+) +: ok=\d+ +changed=0 ", rerun)) == sorted(names), rerun
    assert "re-run: changed=0 on all hosts, 0 restarts" in rerun
    # the report table, lite host included
    report = out.split("== 3/3", 1)[1]
    assert re.search(r"(?m)^host +kind +version", report) and re.search(r"(?m)^bw-lite-1 +lite ", report), report
    assert report.count("in sync") >= len(names)
    # no empty banners (0.3.0: "TASK [... Restart now if a setting the server reads at start changed]" with nothing under it)
    assert "Restart now if a setting" not in out
    # it ends with where the files are, the metrics file included, and they are there
    ending = out.rstrip().split("== files", 1)[1]
    for path in ("report/billing-sync-report.md", "report/billing-sync-report.json", "report/billing-sync-fleet.prom"):
        assert str(tmp_path / "demo" / path) in ending and (tmp_path / "demo" / path).is_file(), path
    assert "node_exporter" in ending and list((tmp_path / "demo" / "report" / "node_exporter").glob("*.prom"))
