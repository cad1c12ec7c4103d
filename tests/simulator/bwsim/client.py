"""Python client of the control API, for tests: `SimClient(DIR)`."""

import json
import os

import requests


class SimClient:
    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        with open(os.path.join(self.directory, "control.json"), encoding="utf-8") as handle:
            control = json.load(handle)
        self.pid = control["pid"]
        self.base = f"http://127.0.0.1:{control['port']}"
        self.session = requests.Session()
        self.session.trust_env = False  # never send 127.0.0.1 through a proxy from the environment

    def _call(self, method, path, body=None, timeout=30):
        response = self.session.request(method, self.base + path, json=body, timeout=timeout)
        if response.status_code >= 400:
            raise RuntimeError(f"bwsim control {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def instances(self):
        return self._call("GET", "/_sim/instances")

    def instance(self, name):
        return self._call("GET", f"/_sim/instances/{name}")

    def set_faults(self, name, faults):
        return self._call("POST", f"/_sim/instances/{name}/faults", faults or {})

    def reset_counters(self, name):
        return self._call("POST", f"/_sim/instances/{name}/reset-counters", {})

    def rotate_billing_sync_token(self, name):
        """Generate a new token in the instance's cloud organization (the old one stops working); returns it."""
        return self._call("POST", f"/_sim/instances/{name}/rotate-billing-sync-token", {})["billing_sync_token"]

    def clouds(self):
        """Per region: the rate limiter's counts (`rate_limits`: requests, rate_limited, by_egress)."""
        return self._call("GET", "/_sim/clouds")

    def renew_subscription(self, name, days=365, seats=None):
        """The customer renewed in the cloud: the organization's paid period ends `days` later (new license dates)."""
        body = {"days": days} if seats is None else {"days": days, "seats": seats}
        return self._call("POST", f"/_sim/instances/{name}/renew-subscription", body)

    def run_job(self, name, job="SelfHostedSponsorshipSyncJob"):
        """Fire a scheduled api job now, as its Quartz trigger would (fails when the job is not registered)."""
        return self._call("POST", f"/_sim/instances/{name}/run-job", {"job": job})

    def bitwarden_sh(self, name, command, user="bwsim-client", timeout=600):
        """What bitwarden.sh asks the simulator to do, without the script (no log line, no root prompt)."""
        return self._call("POST", f"/_sim/instances/{name}/bitwarden-sh", {"command": command, "user": user}, timeout)

    def bitwarden_sh_calls(self, name):
        """Parsed `<install dir>/bitwarden.sh.log`: one dict per invocation, oldest first."""
        calls = []
        path = os.path.join(self.directory, name, "bitwarden.sh.log")
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                when, command, user, code = line.rstrip("\n").split("\t")
                calls.append({"time": when, "command": command, "user": user, "exit_code": int(code)})
        return calls

    def docker_calls(self, name):
        """The docker stand-in's calls for one instance, oldest first: {"argv", "user", "exit_code"}."""
        return self.instance(name)["docker_calls"]

    def shutdown(self):
        return self._call("POST", "/_sim/shutdown", {})
