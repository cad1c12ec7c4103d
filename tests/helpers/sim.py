"""Start and stop simulated fleets (tests/simulator/bwsim) from tests, the demo and the benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BWSIM = REPO / "scripts" / "bwsim"
SIM_ROOT = REPO / "tests" / "simulator"
if str(SIM_ROOT) not in sys.path:
    sys.path.insert(0, str(SIM_ROOT))

from bwsim.client import SimClient  # noqa: E402  pylint: disable=wrong-import-position


class Fleet:
    """A running fleet: `dir`, `inventory` (path), `client` (SimClient), `host_vars(name)`, `stop()`."""

    def __init__(self, directory):
        self.dir = Path(directory).resolve()
        self.inventory = self.dir / "inventory.yml"
        self.client = SimClient(self.dir)
        self._stopped = False
        with open(self.inventory, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
        self._hosts = {}
        for group in document["all"]["children"]["bitwarden"]["children"].values():
            self._hosts.update(group.get("hosts") or {})

    @property
    def names(self):
        return list(self._hosts)

    def host_vars(self, name):
        """The inventory variables of one host (a copy)."""
        return dict(self._hosts[name])

    def instance(self, name):
        """Full simulator state of one instance (control API)."""
        return self.client.instance(name)

    def install_dir(self, name):
        return self.dir / name

    def stop(self):
        if not self._stopped:
            self._stopped = True
            subprocess.run([sys.executable, str(BWSIM), "down", "--dir", str(self.dir)], check=True, capture_output=True, text=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_fleet(directory, instances=None, defaults=None, restart_delay=None):
    """Write DIR/fleet.yml and run `bwsim up`; `instances` is a list of dicts (each with `name`) or a count."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if instances is None:
        instances = 1
    if isinstance(instances, int):
        instances = [{"name": f"bw-{i}"} for i in range(1, instances + 1)]
    fleet_file = directory / "fleet.yml"
    with open(fleet_file, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"defaults": dict(defaults or {}), "instances": list(instances)}, handle, sort_keys=False)
    command = [sys.executable, str(BWSIM), "up", "--dir", str(directory), "--fleet", str(fleet_file)]
    if restart_delay is not None:
        command += ["--restart-delay", str(restart_delay)]
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), check=False)
    if result.returncode != 0:
        raise RuntimeError(f"bwsim up failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return Fleet(directory)
