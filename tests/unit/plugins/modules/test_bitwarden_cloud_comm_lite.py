"""bitwarden_cloud_comm on Bitwarden Lite: settings.env beside docker-compose.yml (contract 6.3).

Same guarantees as for global.override.env: managed keys only, every other byte kept, mode and owner kept, check and
diff mode, secrets masked; BW_INSTALLATION_ID/KEY checked before any change.
"""

from __future__ import annotations

import json
import os
import pwd

import pytest
from helpers.module_args import patch_module_args

from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_cloud_comm
from helpers.lite_env import LiteInstall, lite_settings
from helpers.setup_env import Install

ENABLE = "globalSettings__enableCloudCommunication"
EU_LINES = (
    "globalSettings__enableCloudCommunication=true\n"
    "globalSettings__baseServiceUri__cloudRegion=EU\n"
    "globalSettings__installation__identityUri=https://identity.bitwarden.eu\n"
    "globalSettings__installation__apiUri=https://api.bitwarden.eu\n"
    "globalSettings__pushRelayBaseUri=https://push.bitwarden.eu\n"
)


@pytest.fixture
def lite(tmp_path):
    return LiteInstall(tmp_path / "bitwarden")


@pytest.fixture
def run(capsys):
    def run(install, check=False, diff=False, secrets=(), **params):
        args = dict(params)
        args.setdefault("compose_dir", str(install.root))
        args.update(_ansible_check_mode=check, _ansible_diff=diff)
        with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
            bitwarden_cloud_comm.main()
        out = capsys.readouterr().out
        for secret in list(install.secrets) + list(secrets):
            assert secret not in out
        result = json.loads(out)
        assert ("failed" in result) == (exit_info.value.code != 0)
        return result
    return run


def test_detected_from_disk_and_only_managed_keys_change(lite, run):
    before = lite.text()
    result = run(lite, region="EU")
    assert result["changed"] and result["restart_required"]
    assert result["deployment"] == "lite" and result["env_file"] == str(lite.env)
    # Comments, quoted values, a value with a trailing comment, $-references and unknown keys: byte for byte; the
    # commented-out managed key stays a comment; the managed keys are appended (the file had none of them).
    assert lite.text() == before + EU_LINES
    assert not run(lite, region="EU")["changed"]


def test_existing_managed_lines_edited_in_place(tmp_path, run):
    text, secrets = lite_settings(extra='globalSettings__baseServiceUri__cloudRegion="US"   # set by hand\n'
                                        "globalSettings__enableCloudCommunication='true'\n"
                                        "AFTER=1\n")
    lite = LiteInstall(tmp_path, settings_text=text)
    result = run(lite, secrets=secrets, region="EU")
    assert result["changed"] and result["restart_required"]
    new = lite.text()
    # The region line takes the new value in its own quotes, comment kept; the quoted 'true' has the same effect and
    # stays as it is.
    assert text.replace('globalSettings__baseServiceUri__cloudRegion="US"   # set by hand',
                        'globalSettings__baseServiceUri__cloudRegion="EU"   # set by hand') + "".join(
        line + "\n" for line in EU_LINES.splitlines()[2:]) == new
    assert result["settings"][ENABLE] == "true"


def test_mode_and_owner_kept(tmp_path, run):
    lite = LiteInstall(tmp_path, mode=0o640)
    before = lite.env.stat()
    run(lite)
    after = lite.env.stat()
    assert (after.st_mode, after.st_uid, after.st_gid) == (before.st_mode, before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # replaced by a rename, never rewritten in place


def test_check_mode_writes_nothing_and_diff_is_masked(lite, run):
    before = lite.snapshot()
    result = run(lite, check=True, diff=True, region="EU")
    assert lite.snapshot() == before
    assert result["changed"] and result["deployment"] == "lite"
    diff = result["diff"]
    assert diff["before_header"] == str(lite.env)
    for name in ("BW_DB_PASSWORD", "BW_INSTALLATION_ID", "BW_INSTALLATION_KEY"):
        assert "\n%s=********\n" % name in diff["after"]
    assert diff["after"].endswith(EU_LINES)


def test_explicit_deployment_and_default_compose_dir(tmp_path, run):
    """compose_dir defaults to the directory that holds bwdata_path: one install dir variable serves both kinds."""
    lite = LiteInstall(tmp_path / "bw")
    result = run(lite, compose_dir=None, bwdata_path=str(tmp_path / "bw" / "bwdata"), deployment="lite")
    assert result["changed"] and result["deployment"] == "lite" and result["env_file"] == str(lite.env)


# --- errors: a precise message and an untouched file ------------------------------------------------------------------

def fails(install, run, match, **params):
    before = install.snapshot()
    result = run(install, **params)
    assert result["failed"]
    assert match in result["msg"], result["msg"]
    assert install.snapshot() == before
    return result["msg"]


@pytest.mark.parametrize("installation_id, problem", [
    ("", "BW_INSTALLATION_ID is missing"),
    ("00000000-0000-0000-0000-000000000000", "BW_INSTALLATION_ID is all zeros"),
    ("not-a-guid", "BW_INSTALLATION_ID is not a valid id"),
])
def test_unusable_installation_id_fails_before_any_change(tmp_path, run, installation_id, problem):
    # A standard-style id in settings.env does not help: entrypoint.sh overwrites it with BW_INSTALLATION_ID.
    text, secrets = lite_settings(installation_id=installation_id,
                                  extra="globalSettings__installation__id=2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11\n")
    lite = LiteInstall(tmp_path, settings_text=text)
    msg = fails(lite, run, problem, secrets=secrets, region="EU")
    assert "In %s, %s;" % (lite.env, problem) in msg
    assert "Get them for the EU region on https://bitwarden.com/host and set BW_INSTALLATION_ID and BW_INSTALLATION_KEY" in msg


@pytest.mark.parametrize("key", ["", "xxxxxxxxxxxx"])
def test_installation_key_missing_or_template_placeholder(tmp_path, run, key):
    text, secrets = lite_settings(installation_key=key)
    fails(LiteInstall(tmp_path, settings_text=text), run, "BW_INSTALLATION_KEY is missing", secrets=secrets)


def test_installation_id_line_absent(tmp_path, run):
    text, secrets = lite_settings()
    text = "".join(line for line in text.splitlines(True) if not line.startswith("BW_INSTALLATION_ID="))
    fails(LiteInstall(tmp_path, settings_text=text), run, "BW_INSTALLATION_ID is missing", secrets=secrets)


def test_zero_installation_id_is_fine_when_disabling(tmp_path, run):
    text, secrets = lite_settings(installation_id="00000000-0000-0000-0000-000000000000")
    result = run(LiteInstall(tmp_path, settings_text=text), secrets=secrets, enabled=False)
    assert result["changed"] and result["settings"][ENABLE] == "false"


def test_settings_env_missing(lite, run):
    lite.env.unlink()
    result = run(lite)
    assert result["failed"] and "The env file %s does not exist. Bitwarden Lite reads it beside docker-compose.yml" % lite.env in result["msg"]


def test_no_compose_file(tmp_path, run):
    lite = LiteInstall(tmp_path)
    lite.compose.unlink()
    msg = fails(lite, run, "No Bitwarden installation at")
    assert "compose_dir to the directory that holds docker-compose.yml and settings.env" in msg
    fails(lite, run, "No Bitwarden Lite installation at %s: it has no docker-compose.yml" % tmp_path, deployment="lite")


def test_both_kinds_in_one_place_needs_deployment(tmp_path, run):
    standard = Install(tmp_path)  # bwdata under tmp_path
    lite = LiteInstall(tmp_path)  # compose file beside it
    msg = fails(lite, run, "Found both a standard installation (%s/config.yml) and a Bitwarden Lite one (%s)"
                % (standard.bwdata, lite.compose), secrets=standard.secrets, bwdata_path=str(standard.bwdata))
    assert "billing_sync_deployment" in msg
    assert run(lite, secrets=standard.secrets, bwdata_path=str(standard.bwdata), deployment="lite")["deployment"] == "lite"
    assert run(lite, secrets=standard.secrets, bwdata_path=str(standard.bwdata), deployment="standard")["deployment"] == "standard"


def test_install_user_owns_the_compose_file(lite, run):
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert run(lite, install_user=me)["changed"]


def test_install_user_is_not_the_owner_of_the_compose_file(lite, run):
    me = pwd.getpwuid(os.geteuid()).pw_name
    msg = fails(lite, run, "install_user is 'someone-else' but %s belongs to '%s'" % (lite.compose, me),
                install_user="someone-else")
    assert "billing_sync_user" in msg


def test_standard_expected_but_lite_on_disk_says_so(lite, run):
    msg = fails(lite, run, "but %s is there: for Bitwarden Lite set deployment to lite" % lite.compose, deployment="standard",
                compose_dir=str(lite.root / "bwdata" / "docker"), bwdata_path=str(lite.root / "bwdata"))
    assert "billing_sync_deployment: lite" in msg
