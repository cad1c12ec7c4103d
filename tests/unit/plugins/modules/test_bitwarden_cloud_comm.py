"""bitwarden_cloud_comm run in-process through AnsibleModule (patch_module_args): results, check mode, errors."""

from __future__ import annotations

import json
import os
import pwd

import pytest
from helpers.module_args import patch_module_args

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _cloud_comm
from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_cloud_comm
from helpers.setup_env import Install, config_yml, setup_env

ENABLE = "globalSettings__enableCloudCommunication"
PUSH = "globalSettings__pushRelayBaseUri"
EU = {
    ENABLE: "true",
    "globalSettings__baseServiceUri__cloudRegion": "EU",
    "globalSettings__installation__identityUri": "https://identity.bitwarden.eu",
    "globalSettings__installation__apiUri": "https://api.bitwarden.eu",
    PUSH: "https://push.bitwarden.eu",
}


@pytest.fixture
def install(tmp_path):
    return Install(tmp_path)


@pytest.fixture
def run(capsys, monkeypatch):
    def run(install, check=False, diff=False, **params):
        args = dict(bwdata_path=str(install.bwdata), **params)
        args.update(_ansible_check_mode=check, _ansible_diff=diff)
        warnings = []
        # In a pytest process ansible counts as "controller" and would print warnings instead of returning them.
        monkeypatch.setattr(bitwarden_cloud_comm.AnsibleModule, "warn", lambda self, warning: warnings.append(warning))
        with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
            bitwarden_cloud_comm.main()
        out = capsys.readouterr().out
        for secret in install.secrets:
            assert secret not in out
        result = json.loads(out)
        assert ("failed" in result) == (exit_info.value.code != 0)
        if warnings:
            result["warnings"] = warnings
        return result
    return run


def test_check_mode_predicts_and_writes_nothing(install, run):
    before = install.snapshot()
    result = run(install, check=True, region="EU")
    assert install.snapshot() == before
    assert result["changed"] and result["restart_required"]
    assert result["settings"] == EU
    assert "backup_file" not in result


def test_real_run_then_idempotent(install, run):
    first = run(install, region="EU")
    assert first["changed"] and first["restart_required"]
    assert first["env_file"] == str(install.env)
    assert first["duplicates_collapsed"] == [] and first["push_relay_enabled"] is True
    text = install.text()
    for key, value in EU.items():
        assert "\n%s=%s\n" % (key, value) in text
    assert oct(install.env.stat().st_mode & 0o777) == "0o600"
    second = run(install, region="EU")
    assert not second["changed"] and not second["restart_required"]
    assert second["settings"] == first["settings"]
    assert install.text() == text


def test_switch_region_back_and_forth(install, run):
    run(install, region="EU")
    eu_text = install.text()
    us = run(install, region="US")
    assert us["changed"] and us["restart_required"]
    assert us["settings"]["globalSettings__installation__apiUri"] == "https://api.bitwarden.com"
    assert run(install, region="EU")["changed"]
    assert install.text() == eu_text


def test_diff_is_masked(install, run):
    result = run(install, diff=True, region="EU")
    assert "********" in result["diff"]["before"]
    assert result["diff"]["after"].endswith("globalSettings__pushRelayBaseUri=https://push.bitwarden.eu\n")
    assert result["diff"]["before_header"] == str(install.env)


def test_no_diff_without_diff_mode(install, run):
    assert "diff" not in run(install)


def test_backup_copy_of_old_content(install, run):
    old = install.env.read_bytes()
    result = run(install, backup=True)
    backup = result["backup_file"]
    assert os.path.dirname(backup) == str(install.env.parent)
    with open(backup, "rb") as handle:
        assert handle.read() == old
    assert "backup_file" not in run(install, backup=True)  # nothing changed, nothing copied


def test_explicit_env_file(tmp_path, run):
    install = Install(tmp_path)
    other = tmp_path / "other.env"
    other.write_bytes(install.env.read_bytes())
    result = run(install, env_file=str(other))
    assert result["env_file"] == str(other) and result["changed"]
    assert ENABLE + "=true\n" in other.read_text(encoding="utf-8")
    assert ENABLE not in install.text()


def test_symlinked_env_file_stays_a_symlink(install, run):
    target = install.env.parent / "real.env"
    install.env.rename(target)
    install.env.symlink_to(target.name)
    run(install)
    assert install.env.is_symlink()
    assert ENABLE + "=true\n" in target.read_text(encoding="utf-8")


def test_case_only_differences_are_no_change(install, run):
    run(install)
    install.write_env(install.text().replace(ENABLE + "=true", ENABLE.upper() + "=True"))
    result = run(install)
    assert not result["changed"] and not result["restart_required"]
    assert result["settings"][ENABLE] == "True"


def test_duplicates_collapsed_and_reported(install, run):
    run(install)
    install.write_env(ENABLE.lower() + "=false\n" + install.text())
    result = run(install)
    assert result["changed"] and result["duplicates_collapsed"] == [ENABLE]
    assert result["restart_required"]  # the two spellings are two variables; which one .NET takes is not defined
    assert install.text().lower().count(ENABLE.lower()) == 1


def test_same_value_duplicates_change_the_file_but_need_no_restart(install, run):
    run(install)
    install.write_env(install.text() + ENABLE + "=true\n")
    result = run(install)
    assert result["changed"] and not result["restart_required"]


def test_writing_out_defaults_needs_no_restart(tmp_path, run):
    text, dummy = setup_env()
    install = Install(tmp_path, env_text=text + ENABLE + "=true\n")
    result = run(install)
    assert result["changed"] and not result["restart_required"]


@pytest.mark.parametrize("relay", ["REPLACE", "secret", ""])
def test_push_relay_switched_off_in_env_stays_off(install, run, relay):
    install.write_env(install.text() + PUSH + "=" + relay + "\n")
    result = run(install, region="EU")
    assert result["push_relay_enabled"] is False
    assert result["settings"][PUSH] == relay
    assert "push_notifications: false to keep it off" in result["warnings"][0]
    assert install.text().endswith(PUSH + "=" + relay + "\n" + "".join(
        "%s=%s\n" % (key, value) for key, value in EU.items() if key not in (PUSH, "globalSettings__baseServiceUri__cloudRegion")))


def test_push_notifications_false_in_config_keeps_relay_off(tmp_path, run):
    install = Install(tmp_path, push_notifications=False)
    result = run(install, region="EU")
    assert result["push_relay_enabled"] is False and result["settings"][PUSH] == "REPLACE"
    assert "warnings" not in result, result["warnings"]
    (install.bwdata / "config.yml").write_text(config_yml(False).replace("push_notifications: false", "push_notifications: 'no'  # off"))
    install.write_env(install.text().replace(PUSH + "=REPLACE\n", ""))
    result = run(install, region="EU")
    assert result["push_relay_enabled"] is False and result["changed"]
    assert install.text().endswith(PUSH + "=REPLACE\n")


def test_disabling(install, run):
    result = run(install, enabled=False)
    assert result["settings"][ENABLE] == "false"
    assert result["changed"] and not result["restart_required"]  # false is the default the server already uses


def test_crlf_and_missing_final_newline_kept(tmp_path, run):
    text, dummy = setup_env()
    install = Install(tmp_path, env_text=text.rstrip("\n").replace("\n", "\r\n"))
    run(install)
    new = install.text()
    assert new.startswith(text.rstrip("\n").replace("\n", "\r\n") + "\r\n")
    assert new.endswith("=https://push.bitwarden.com") and "\n" not in new.replace("\r\n", "")


# --- errors: a precise message and an untouched file ------------------------------------------------------------------

def fails(install, run, match, **params):
    before = install.snapshot()
    result = run(install, **params)
    assert result["failed"]
    assert match in result["msg"], result["msg"]
    assert install.snapshot() == before
    return result["msg"]


def test_no_installation(tmp_path, run):
    install = Install(tmp_path)
    (install.bwdata / "config.yml").unlink()
    msg = fails(install, run, "No Bitwarden installation at %s" % install.bwdata)
    assert "Set bwdata_path" in msg


def _script(install, mode=0o755, uid=None):
    script = install.bwdata.parent / "bitwarden.sh"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(mode)
    if uid is not None:
        os.chown(script, uid, -1)
    return script


def test_install_user_owning_bitwarden_sh_passes(install, run):
    _script(install)
    me = pwd.getpwuid(os.geteuid()).pw_name
    result = run(install, install_user=me, region="EU")
    assert result["changed"] and result["settings"] == EU


def test_install_user_check_comes_first_and_changes_nothing(install, run):
    msg = fails(install, run, "No bitwarden.sh at %s, the directory that holds bwdata_path" % install.bwdata.parent,
                install_user="bitwarden")
    assert "billing_sync_install_dir" in msg


def test_install_user_is_not_the_owner(install, run):
    script = _script(install)
    me = pwd.getpwuid(os.geteuid()).pw_name
    msg = fails(install, run, "install_user is 'someone-else' but %s belongs to '%s'" % (script, me),
                install_user="someone-else")
    assert "billing_sync_user" in msg


def test_bitwarden_sh_not_executable(install, run, monkeypatch):
    script = _script(install, mode=0o644)
    # root may execute anything with an x bit only; the check is os.access, so pin its answer for any uid.
    monkeypatch.setattr(_cloud_comm.os, "access", lambda path, mode: False)
    fails(install, run, "%s is not executable by %s, the user" % (script, pwd.getpwuid(os.geteuid()).pw_name),
          install_user="bitwarden")


def test_not_executable_by_a_user_without_a_name(install, run, monkeypatch):
    script = _script(install, mode=0o644)
    monkeypatch.setattr(_cloud_comm.os, "access", lambda path, mode: False)
    monkeypatch.setattr(_cloud_comm, "user_name", lambda uid: None)
    fails(install, run, "%s is not executable by uid %d, the user" % (script, os.geteuid()), install_user="bitwarden")


def test_bitwarden_sh_owned_by_unknown_uid(install, run, monkeypatch):
    script = _script(install)
    uid = script.stat().st_uid

    def getpwuid(wanted):
        raise KeyError("getpwuid(): uid not found: %d" % wanted)
    monkeypatch.setattr(_cloud_comm.pwd, "getpwuid", getpwuid)
    msg = fails(install, run, "The owner of %s (uid %d) is not a known user" % (script, uid), install_user="bitwarden")
    assert "install_user" in msg


def test_env_file_missing(install, run):
    msg = fails(install, run, "does not exist", env_file=str(install.env) + ".nope")
    assert "rebuild" in msg


def test_env_file_unreadable(install, run, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    real_open = open
    monkeypatch.setattr(_cloud_comm, "open", lambda path, *a: denied() if str(path) == str(install.env) else real_open(path, *a),
                        raising=False)
    msg = fails(install, run, "Cannot read the env file %s: Permission denied" % install.env)
    assert "become" in msg


def test_env_file_not_utf8(install, run):
    install.write_env(install.env.read_bytes().replace(b"no-reply", b"no-r\xe9ply"))
    fails(install, run, "is not UTF-8 (invalid bytes on line 13)")


@pytest.mark.parametrize("installation_id, problem", [
    ("", "globalSettings__installation__id is missing"),
    ("00000000-0000-0000-0000-000000000000", "is all zeros"),
    ("REPLACE", "is not a valid id"),
])
def test_unusable_installation_id(tmp_path, run, installation_id, problem):
    text, dummy = setup_env(installation_id=installation_id)
    install = Install(tmp_path, env_text=text)
    msg = fails(install, run, problem, region="EU")
    assert "cloud communication cannot work" in msg and "EU region" in msg


def test_installation_id_line_absent(install, run):
    install.write_env("".join(line for line in install.text().splitlines(True) if "installation__id=" not in line))
    fails(install, run, "globalSettings__installation__id is missing")


def test_installation_key_missing(install, run):
    install.write_env("".join(line for line in install.text().splitlines(True) if "installation__key=" not in line))
    fails(install, run, "globalSettings__installation__key is missing")


def test_zero_installation_id_is_fine_when_disabling(tmp_path, run):
    text, dummy = setup_env(installation_id="00000000-0000-0000-0000-000000000000")
    assert run(Install(tmp_path, env_text=text), enabled=False)["changed"]


def test_region_outside_choices(install, run):
    fails(install, run, "value of region must be one of: US, EU, got: eu", region="eu")


def test_bad_push_notifications_value(install, run):
    (install.bwdata / "config.yml").write_text("push_notifications: maybe\n")
    fails(install, run, "push_notifications in %s is neither true nor false" % (install.bwdata / "config.yml"))


def test_write_failure_leaves_old_file(install, run, monkeypatch):
    def no_temp(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bitwarden_cloud_comm.tempfile, "mkstemp", no_temp)
    fails(install, run, "Cannot write next to %s: No space left on device" % install.env)


def test_crash_before_rename_leaves_old_file_and_no_temp(install, run, monkeypatch):
    def crash(module, src, dest):
        raise KeyboardInterrupt  # killed between writing the temp file and the rename

    monkeypatch.setattr(bitwarden_cloud_comm.AnsibleModule, "atomic_move", crash)
    before = install.snapshot()
    with patch_module_args(dict(bwdata_path=str(install.bwdata))), pytest.raises(KeyboardInterrupt):
        bitwarden_cloud_comm.main()
    assert install.snapshot() == before


def test_a_change_that_needs_a_restart_leaves_the_restart_marker(install, run):
    marker = install.env.parent / ".selfhost-bitwarden-restart-pending"
    assert run(install)["restart_required"]
    assert marker.exists() and marker.stat().st_uid == install.env.stat().st_uid
    marker.unlink()
    again = run(install)
    assert not again["changed"] and not marker.exists()
