"""bitwarden_sync_info: read-only state in the documented shape."""

from __future__ import annotations

from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_sync_info as module

from unit.plugins.module_utils.bitwarden_fakes import (  # pylint: disable=unused-import
    BASE_ARGS,
    CLOUD_ORG,
    ORG,
    Call,
    assert_no_secret,
    fake_server,
    get_connection,
    get_enabled,
    run_module,
    token_call,
)

CONFIG = {"object": "config", "version": "2026.8.0", "environment": {"cloudRegion": "EU", "vault": "https://x"}}
STATUS = "/api/organization/sponsorship/%s/sync-status" % ORG
LAST = "2026-08-20T14:03:11.1234567+00:00"


def test_full_state_in_check_mode(fake_server, capsys):
    server = fake_server([
        Call("GET", "/api/config", auth=False, body=CONFIG), token_call(), get_enabled(), get_connection(last_sync=LAST),
        Call("GET", STATUS, body={"object": "syncStatus", "lastSyncDate": "2026-08-21T01:00:00Z"}),
    ])
    failed, result, output = run_module(module.main, dict(BASE_ARGS, organization_id=ORG), capsys, check_mode=True)
    server.done()
    assert not failed and not result["changed"]
    assert result["server_version"] == "2026.8.0" and result["cloud_region"] == "EU"
    assert result["cloud_communication_enabled"] is True
    assert result["organization"] == {
        "id": ORG, "billing_sync_configured": True, "billing_sync_enabled": True, "cloud_organization_id": CLOUD_ORG,
        "last_license_sync": LAST, "sponsorship_last_sync_date": "2026-08-21T01:00:00Z"}
    assert_no_secret(output)


def test_nothing_configured_on_an_old_server(fake_server, capsys):
    fake_server([
        Call("GET", "/api/config", auth=False, body={"version": "2023.1.0", "environment": {"vault": "https://x"}}),
        token_call(), get_enabled(False), get_connection(conn_id=None),
        Call("GET", STATUS, body={"object": "syncStatus", "lastSyncDate": None}),
    ])
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, organization_id=ORG), capsys)
    assert result["cloud_region"] is None and result["cloud_communication_enabled"] is False
    assert result["organization"]["billing_sync_configured"] is False
    assert result["organization"]["billing_sync_enabled"] is False
    assert result["organization"]["last_license_sync"] is None


def test_organization_key_is_told_to_use_an_owner_key(fake_server, capsys):
    fake_server([Call("GET", "/api/config", auth=False, body=CONFIG), token_call(),
                 Call("GET", "/api/organizations/connections/enabled", status=403)])
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, organization_id=ORG), capsys)
    assert failed and "organization API key" in result["msg"]
