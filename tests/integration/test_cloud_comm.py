"""bitwarden_cloud_comm through real ansible-core (ansible-playbook subprocesses) on local installs."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest
import yaml
from pathlib import Path

from helpers.ansible_run import assert_no_secrets, run_module
from helpers.setup_env import Install, setup_env

MODULE = "selfhost.bitwarden.bitwarden_cloud_comm"
OWNER = (4321, 4322)  # Setup chowns bwdata to the installation user: never root
PUSH = "globalSettings__pushRelayBaseUri"


@pytest.fixture
def install(shared_tmp):
    install = Install(Path(shared_tmp))
    os.chown(install.env, *OWNER)
    return install


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    path.write_text(yaml.safe_dump({"all": {"hosts": {"bw1": host}}}), encoding="utf-8")
    return path


@pytest.fixture
def shared_tmp():
    """A directory any user may enter: for the unprivileged become user's install and remote_tmp (tmp_path is root-only)."""
    path = tempfile.mkdtemp(prefix="bw-cloud-comm-")
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path)


def module(install, inventory, check=False, diff=False, verbosity=0, task_vars=None, **args):
    run = run_module(MODULE, dict(bwdata_path=str(install.bwdata), **args), inventory, check=check, diff=diff,
                     verbosity=verbosity, task_vars=task_vars)
    assert_no_secrets(run.output, install.secrets)
    (event,) = run.results("module", "bw1")
    return run, dict(event["result"], status=event["status"])


def test_check_then_run_then_idempotent_keeps_mode_owner_and_backs_up(install, inventory):
    before = install.snapshot()
    run, result = module(install, inventory, check=True, region="EU", backup=True)
    assert run.rc == 0 and result["changed"] and result["restart_required"]
    assert install.snapshot() == before

    old = install.env.read_bytes()
    run, result = module(install, inventory, region="EU", backup=True)
    assert run.rc == 0 and result["changed"] and result["restart_required"]
    stat = install.env.stat()
    assert (stat.st_mode & 0o7777, stat.st_uid, stat.st_gid) == (0o600, *OWNER)
    old_lines = old.decode("utf-8").replace("cloudRegion=US", "cloudRegion=EU")
    assert install.text().startswith(old_lines)  # every other line as it was
    with open(result["backup_file"], "rb") as handle:
        assert handle.read() == old
    # beside it: the backup, and the marker of the restart this change needs (bitwarden_wait_for_server removes it)
    assert sorted(os.listdir(install.env.parent)) == sorted([install.env.name, os.path.basename(result["backup_file"]),
                                                             ".selfhost-bitwarden-restart-pending"])

    run, result = module(install, inventory, region="EU", backup=True)
    assert run.rc == 0 and not result["changed"] and not result["restart_required"]
    assert run.stats["bw1"]["changed"] == 0
    assert "backup_file" not in result


@pytest.mark.parametrize("check", [True, False])
def test_diff_masks_every_secret_even_at_vvvv(install, inventory, check):
    run, result = module(install, inventory, check=check, diff=True, verbosity=4, region="EU")
    assert run.rc == 0 and result["changed"]
    assert "+globalSettings__enableCloudCommunication=true" in run.stdout
    assert "globalSettings__sqlServer__connectionString=********" in run.stdout
    assert install.secrets  # assert_no_secrets in module() scanned stdout and stderr for each of them


def test_region_eu_us_eu(install, inventory):
    module(install, inventory, region="EU")
    eu = install.text()
    dummy, result = module(install, inventory, region="US")
    assert result["changed"] and result["restart_required"]
    assert result["settings"]["globalSettings__installation__identityUri"] == "https://identity.bitwarden.com"
    assert result["settings"]["globalSettings__baseServiceUri__cloudRegion"] == "US"
    dummy, result = module(install, inventory, region="EU")
    assert result["changed"] and result["restart_required"]
    assert install.text() == eu


def test_push_relay_replace_stays_off(tmp_path, inventory):
    install = Install(tmp_path, push_notifications=False)
    dummy, result = module(install, inventory, region="EU")
    assert result["push_relay_enabled"] is False
    assert result["settings"][PUSH] == "REPLACE"
    assert install.text().count(PUSH) == 1 and PUSH + "=REPLACE\n" in install.text()
    dummy, result = module(install, inventory, region="EU")
    assert not result["changed"]
    assert "warnings" not in result  # config.yml agrees: push_notifications: false


def broken_env(install):
    install.write_env(install.env.read_bytes().replace(b"no-reply", b"no-r\xe9ply"))


def zero_id(install):
    text, dummy = setup_env(installation_id="00000000-0000-0000-0000-000000000000")
    install.write_env(text)


def no_id(install):
    install.write_env("".join(line for line in install.text().splitlines(True) if "installation__id=" not in line))


def no_config(install):
    (install.bwdata / "config.yml").unlink()


# (name, prepare the install, module args, task vars, expected message part)
ERRORS = [
    ("no-installation", no_config, {}, None, "No Bitwarden installation at"),
    ("env-missing", None, {"env_file": "/nonexistent/global.override.env"}, None, "does not exist"),
    ("not-utf8", broken_env, {}, None, "is not UTF-8 (invalid bytes on line 13)"),
    ("zero-id", zero_id, {}, None, "globalSettings__installation__id is all zeros"),
    ("missing-id", no_id, {}, None, "globalSettings__installation__id is missing"),
    ("bad-region", None, {"region": "Gov"}, None, "value of region must be one of: US, EU, got: Gov"),
    # An unprivileged user on a plain system Python (no ansible installed there): the env file is 0600, owned by another user.
    ("unreadable", None, {}, {"ansible_become": True, "ansible_become_user": "nobody", "ansible_become_method": "ansible.builtin.su",
                              "ansible_become_flags": "-s /bin/sh", "ansible_python_interpreter": "/usr/bin/python3"},
     "Cannot read the env file"),
]


@pytest.mark.parametrize("prepare, args, task_vars, message", [error[1:] for error in ERRORS], ids=[error[0] for error in ERRORS])
def test_errors_leave_the_file_byte_identical(install, inventory, shared_tmp, prepare, args, task_vars, message):
    if prepare:
        prepare(install)
    if task_vars:
        task_vars = dict(task_vars, ansible_remote_tmp=os.path.join(shared_tmp, "remote"))
    before = install.snapshot()
    run, result = module(install, inventory, task_vars=task_vars, **args)
    assert run.rc != 0 and result["status"] == "failed"
    assert message in result["msg"], result["msg"]
    assert install.snapshot() == before
