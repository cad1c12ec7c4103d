"""bitwarden_drift: one read-only call; says what differs and which steps are due; never writes, never leaks."""

from __future__ import annotations

import os
from urllib.error import URLError

import pytest
from ansible_collections.selfhost.bitwarden.plugins.module_utils import _cloud_comm
from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_drift as module
from helpers.setup_env import Install, setup_env

from unit.plugins.module_utils.bitwarden_fakes import (  # pylint: disable=unused-import
    BASE_ARGS,
    Call,
    ORG,
    SYNC_TOKEN,
    assert_no_secret,
    fake_server,
    get_connection,
    get_enabled,
    run_module,
    token_call,
)

ALIVE = Call("GET", "/api/alive", auth=False, body="2026-12-06T00:00:00Z")
REFUSED = URLError(ConnectionRefusedError(111, "Connection refused"))
LAST_SYNC = "2026-08-20T14:03:11.1234567+00:00"
ENABLED_US = ("globalSettings__enableCloudCommunication=true\n"
              "globalSettings__installation__identityUri=https://identity.bitwarden.com\n"
              "globalSettings__installation__apiUri=https://api.bitwarden.com\n"
              "globalSettings__pushRelayBaseUri=https://push.bitwarden.com\n")


@pytest.fixture
def install(tmp_path):
    return Install(tmp_path)


def args(install, **extra):
    return dict(BASE_ARGS, bwdata_path=str(install.bwdata), organization_id=ORG, billing_sync_token=SYNC_TOKEN, **extra)


def converge_file(install):
    install.write_env(install.text() + ENABLED_US)


def test_converged_host_in_three_requests(install, fake_server, capsys):
    converge_file(install)
    before = install.snapshot()
    server = fake_server([token_call(), get_enabled(), get_connection(last_sync=LAST_SYNC)])
    failed, result, output = run_module(module.main, args(install), capsys)
    server.done()
    assert not failed and not result["changed"]
    assert result["converged"] and result["drift"] == []
    assert result["token_action"] == "none" and not result["first_sync_due"]
    assert not result["env_changed"] and not result["restart_required"] and not result["restart_pending"]
    assert install.snapshot() == before
    assert_no_secret(output)


def test_fresh_host_reports_every_step(install, fake_server, capsys):
    server = fake_server([token_call(), get_enabled(False), get_connection(conn_id=None)])
    failed, result, output = run_module(module.main, args(install), capsys, check_mode=True)
    server.done()
    assert not failed and not result["converged"]
    assert result["env_changed"] and result["restart_required"]
    # the restart for the env change covers the server's "off": not a second reason to restart
    assert not result["restart_pending"]
    assert result["token_action"] == "create" and result["first_sync_due"]
    assert result["drift"][0].startswith("env file: globalSettings__enableCloudCommunication")
    assert "no billing sync token" in result["drift"]
    assert_no_secret(output)


def test_file_on_but_server_off_is_a_pending_restart(install, fake_server, capsys):
    converge_file(install)
    server = fake_server([token_call(), get_enabled(False), get_connection(last_sync=LAST_SYNC)])
    failed, result, dummy = run_module(module.main, args(install), capsys)
    server.done()
    assert result["restart_pending"] and not result["env_changed"]
    assert result["drift"] == ["the running server has cloud communication off"]


def test_other_token_is_an_update_and_is_never_shown(install, fake_server, capsys):
    converge_file(install)
    server = fake_server([token_call(), get_enabled(), get_connection(key="old-token-value-1234", last_sync=LAST_SYNC)])
    failed, result, output = run_module(module.main, args(install), capsys)
    server.done()
    assert result["token_action"] == "update" and result["drift"] == ["billing sync token differs"]
    assert_no_secret(output, ("old-token-value-1234", SYNC_TOKEN))


def test_marker_and_a_down_server_is_a_pending_restart_after_one_attempt(install, fake_server, capsys):
    converge_file(install)
    open(_cloud_comm.restart_marker(str(install.env)), "w").close()
    server = fake_server([Call("GET", "/api/alive", auth=False, raises=REFUSED)])
    failed, result, dummy = run_module(module.main, args(install), capsys)
    server.done()
    assert not failed and result["restart_pending"] and not result["converged"] and not result["restart_marker_stale"]
    assert result["token_action"] == "unknown" and result["cloud_communication_enabled"] is None and server.sleeps == []
    assert result["restart_marker"] == _cloud_comm.restart_marker(str(install.env))


def test_marker_on_a_server_that_already_runs_the_file_is_stale_not_a_restart(install, fake_server, capsys):
    converge_file(install)
    open(_cloud_comm.restart_marker(str(install.env)), "w").close()
    server = fake_server([ALIVE, token_call(), get_enabled(), get_connection(last_sync=LAST_SYNC)])
    failed, result, dummy = run_module(module.main, args(install), capsys)
    server.done()
    assert not failed and not result["restart_pending"] and result["restart_marker_stale"] and not result["converged"]
    assert result["drift"] == ["an earlier run left its restart marker, but the server already runs with the env file's settings"]
    assert result["token_action"] == "none" and os.path.exists(result["restart_marker"])  # drift only reads


def test_marker_on_a_server_still_off_is_a_pending_restart(install, fake_server, capsys):
    converge_file(install)
    open(_cloud_comm.restart_marker(str(install.env)), "w").close()
    server = fake_server([ALIVE, token_call(), get_enabled(False), get_connection(last_sync=LAST_SYNC)])
    failed, result, dummy = run_module(module.main, args(install), capsys)
    server.done()
    assert not failed and result["restart_pending"] and not result["restart_marker_stale"]


def test_marker_with_a_file_to_change_asks_nothing(install, fake_server, capsys):
    open(_cloud_comm.restart_marker(str(install.env)), "w").close()
    server = fake_server([])
    failed, result, dummy = run_module(module.main, args(install), capsys)
    server.done()
    assert not failed and result["restart_required"] and not result["restart_pending"] and result["cloud_communication_enabled"] is None


def test_installation_problems_fail_like_cloud_comm(tmp_path, fake_server, capsys):
    text, dummy = setup_env(installation_id="00000000-0000-0000-0000-000000000000")
    install = Install(tmp_path, env_text=text)
    server = fake_server([])
    failed, result, dummy = run_module(module.main, args(install), capsys)
    server.done()
    assert failed and "globalSettings__installation__id is all zeros" in result["msg"]


@pytest.mark.parametrize("bad, expected", [
    ({"client_id": "organization.3fa85f64-5717-4562-b3fc-2c963f66afa6"}, "client_id must be the personal API key"),
    ({"organization_id": "not-a-guid"}, "organization_id 'not-a-guid' is not an organization id"),
    ({"billing_sync_token": "  "}, "billing_sync_token must not be empty"),
    ({"billing_sync_token": ["first-token-part", "second-token-part"]}, "billing_sync_token must be a string"),
])
def test_bad_inputs_fail_before_any_request(install, fake_server, capsys, bad, expected):
    server = fake_server([])
    failed, result, dummy = run_module(module.main, dict(args(install), **bad), capsys)
    server.done()
    assert failed and expected in result["msg"]


def test_compose_files_in_compose_order_with_the_first_override(install, fake_server, capsys, tmp_path):
    from ansible_collections.selfhost.bitwarden.plugins.module_utils import _deployment
    directory = tmp_path / "lite"
    directory.mkdir()

    class Module:
        def fail_json(self, **kwargs):
            raise AssertionError(kwargs)
    assert _deployment.compose_files(Module(), str(directory)) == []
    for name in ("docker-compose.yaml", "docker-compose.yml", "compose.yml", "docker-compose.override.yaml", "compose.override.yaml"):
        (directory / name).write_text("services: {}\n")
    assert _deployment.compose_files(Module(), str(directory)) == [str(directory / "compose.yml"), str(directory / "compose.override.yaml")]
    (directory / "compose.yml").unlink()
    (directory / "compose.override.yaml").unlink()
    expected = [str(directory / "docker-compose.yml"), str(directory / "docker-compose.override.yaml")]
    assert _deployment.compose_files(Module(), str(directory)) == expected


@pytest.mark.parametrize("max_age, due", [(None, False), ("168h", True), ("100000d", False)])
def test_license_sync_older_than_the_max_age_is_drift(install, fake_server, capsys, max_age, due):
    """The rule of bitwarden_license_sync max_age: one variable governs the rollout and the license_sync playbook."""
    converge_file(install)
    server = fake_server([token_call(), get_enabled(), get_connection(last_sync=LAST_SYNC)])
    extra = {} if max_age is None else {"license_sync_max_age": max_age}
    failed, result, dummy = run_module(module.main, args(install, **extra), capsys)
    server.done()
    assert not failed and result["license_sync_due"] is due and not result["first_sync_due"]
    assert result["converged"] is not due
    if due:
        assert result["drift"] == ["license sync due (last sync %s h ago, older than the max age (168 h))"
                                   % result["drift"][0].split("last sync ")[1].split(" h")[0]]


def test_bad_license_sync_max_age(install, fake_server, capsys):
    fake_server([])
    failed, result, dummy = run_module(module.main, args(install, license_sync_max_age="weekly"), capsys)
    assert failed and "license_sync_max_age 'weekly' is neither seconds nor a duration" in result["msg"]
