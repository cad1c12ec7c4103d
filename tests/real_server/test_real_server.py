"""The same playbooks against a real self-hosted Bitwarden server: `make real-server`.

Not part of `make test` (no real server can run on CI machines). Point it at an inventory of real hosts whose
variables are the role's (billing_sync_*; secrets from Ansible Vault):

    BW_REAL_INVENTORY=/path/inventory.yml [BW_REAL_VAULT_PASSWORD_FILE=...] make real-server

`make real-server` runs the read-only and check-mode tests; `make real-server-apply` also runs the rollout for
real (it restarts servers that need it) and then requires it to be idempotent. A missing BW_REAL_INVENTORY fails
the run with this explanation instead of skipping silently.
"""

import os
from pathlib import Path

import pytest

from helpers.ansible_run import run_playbook

REPO = Path(__file__).resolve().parents[2]
INVENTORY = os.environ.get("BW_REAL_INVENTORY", "")
VAULT_FILE = os.environ.get("BW_REAL_VAULT_PASSWORD_FILE", "")


@pytest.fixture(scope="module")
def inventory():
    if not INVENTORY or not Path(INVENTORY).is_file():
        pytest.fail("set BW_REAL_INVENTORY to an inventory of real Bitwarden hosts with the billing_sync_* variables "
                    "(see the module docstring of %s)" % __file__)
    return INVENTORY


def run(playbook, inventory, **kwargs):
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": VAULT_FILE} if VAULT_FILE else None
    return run_playbook(REPO / "playbooks" / playbook, inventory, env=env, **kwargs)


def test_status_reads_every_host(inventory, tmp_path):
    result = run("status.yml", inventory, extra_vars={"billing_sync_report_dir": str(tmp_path)}).assert_ok()
    assert (tmp_path / "billing-sync-report.json").is_file(), result.output


def test_check_mode_rollout_changes_nothing(inventory):
    run("rollout.yml", inventory, check=True, diff=True).assert_ok()


def test_rollout_converges_then_is_idempotent(inventory, tmp_path):
    run("rollout.yml", inventory).assert_ok()
    second = run("rollout.yml", inventory).assert_ok()
    assert second.changed_total() == 0, second.output
    report = run("status.yml", inventory, extra_vars={"billing_sync_report_dir": str(tmp_path),
                                                      "billing_sync_fail_on_drift": True})
    report.assert_ok()
