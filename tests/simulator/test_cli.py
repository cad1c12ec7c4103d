"""bwsim up / down / status and the files `up` writes."""

import json
import os
import stat
import subprocess
import sys
import time

import requests
import yaml

from helpers.sim import BWSIM


def run(*args):
    return subprocess.run([sys.executable, str(BWSIM), *args], capture_output=True, text=True, check=False, timeout=120)


def test_up_status_down_with_instance_count(tmp_path):
    result = run("up", "--dir", str(tmp_path), "--instances", "3", "--restart-delay", "0.2")
    assert result.returncode == 0, result.stderr
    try:
        control = json.loads((tmp_path / "control.json").read_text())
        assert set(control) == {"pid", "port"}
        status = run("status", "--dir", str(tmp_path))
        assert status.returncode == 0
        lines = status.stdout.splitlines()
        assert lines[0].split() == ["NAME", "URL", "STATE", "VERSION", "REGION", "CLOUD", "COMM", "RESTARTS"]
        assert [line.split()[0] for line in lines[1:]] == ["bw-1", "bw-2", "bw-3"]
        assert all(line.split()[2:6] == ["up", "2026.8.0", "US", "off"] for line in lines[1:])
        inventory = yaml.safe_load((tmp_path / "inventory.yml").read_text())
        hosts = inventory["all"]["children"]["bitwarden"]["children"]["bitwarden_us"]["hosts"]
        assert list(hosts) == ["bw-1", "bw-2", "bw-3"]
        for name, hostvars in hosts.items():
            assert hostvars["billing_sync_install_dir"] == str(tmp_path / name)
            assert requests.get(hostvars["billing_sync_server_url"] + "/alive", timeout=5).text == "alive"
    finally:
        down = run("down", "--dir", str(tmp_path))
    assert down.returncode == 0
    assert not (tmp_path / "control.json").exists()
    assert run("status", "--dir", str(tmp_path)).returncode == 1


def test_up_rejects_a_bad_fleet_file(tmp_path):
    fleet = tmp_path / "fleet.yml"
    fleet.write_text("instances:\n  - name: a\n    region: APAC\n")
    result = run("up", "--dir", str(tmp_path / "d"), "--fleet", str(fleet))
    assert result.returncode == 2
    assert "region must be US or EU" in result.stderr


def test_install_dir_layout(sim_fleet):
    fleet = sim_fleet([{"name": "bw-a"}])
    root = fleet.install_dir("bw-a")
    state = fleet.instance("bw-a")
    assert os.access(root / "bitwarden.sh", os.X_OK)
    env = root / "bwdata" / "env" / "global.override.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert (root / "bwdata" / "config.yml").read_text().count(f"url: {state['url']}\n") == 1
    assert (root / "bwdata" / "core" / "licenses" / "organization" / f"{state['organization_id']}.json").is_file()
    # the api container's /etc/bitwarden/logs (DockerCompose.hbs ../logs/api); Serilog creates Api/ at its first line
    assert (root / "bwdata" / "logs" / "api").is_dir()
    uid, gid = (65534, 65534) if os.getuid() == 0 else (os.getuid(), os.getgid())
    assert (root / "bwdata" / "env" / "uid.env").read_text() == f"LOCAL_UID={uid}\nLOCAL_GID={gid}\n"


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_many_instances_idle_without_cpu_and_parallel_fleets(tmp_path):
    """One process for many instances, no poll loop while idle; two fleets side by side on free ports."""
    import concurrent.futures  # pylint: disable=import-outside-toplevel
    dirs = [tmp_path / "a", tmp_path / "b"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda d: run("up", "--dir", str(d), "--instances", "60"), dirs))
    try:
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        controls = [json.loads((d / "control.json").read_text()) for d in dirs]
        assert controls[0]["port"] != controls[1]["port"]
        urls = set()
        for directory in dirs:
            inventory = yaml.safe_load((directory / "inventory.yml").read_text())
            urls |= {h["billing_sync_server_url"] for h in inventory["all"]["children"]["bitwarden"]["children"]["bitwarden_us"]["hosts"].values()}
        assert len(urls) == 120
        pid = controls[0]["pid"]
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            threads = int(next(line for line in handle if line.startswith("Threads:")).split()[1])
        assert threads <= 3  # main + acceptor (+ a finishing connection thread), not one per instance
        before = cpu_ticks(pid)
        time.sleep(2)
        assert cpu_ticks(pid) - before <= 2  # ticks are 10 ms: idle means (almost) nothing
    finally:
        for directory in dirs:
            run("down", "--dir", str(directory))
