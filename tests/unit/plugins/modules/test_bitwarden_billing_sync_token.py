"""bitwarden_billing_sync_token: read, compare, write only what differs; check and diff mode; masking."""

from __future__ import annotations

from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_billing_sync_token as module

from unit.plugins.module_utils.bitwarden_fakes import (  # pylint: disable=unused-import
    BASE_ARGS,
    CLOUD_ORG,
    CONN_ID,
    ORG,
    SYNC_TOKEN,
    Call,
    assert_no_secret,
    connection_body,
    fake_server,
    get_connection,
    get_enabled,
    run_module,
    token_call,
)

ARGS = dict(BASE_ARGS, organization_id=ORG, billing_sync_token=SYNC_TOKEN)
NEW_TOKEN = "rotated-billing-sync-token-987654"
LAST_SYNC = "2026-08-20T14:03:11.1234567+00:00"


def test_create(fake_server, capsys):
    server = fake_server([
        token_call(), get_enabled(), get_connection(conn_id=None),
        Call("POST", "/api/organizations/connections", body=connection_body(),
             json_body={"type": 1, "organizationId": ORG, "enabled": True, "config": {"billingSyncKey": SYNC_TOKEN}}),
    ])
    failed, result, output = run_module(module.main, ARGS, capsys)
    server.done()
    assert not failed and result["changed"] and result["action"] == "created"
    assert result["connection"] == {"id": CONN_ID, "enabled": True, "cloud_organization_id": CLOUD_ORG,
                                    "last_license_sync": None}
    assert result["organization_id"] == ORG and result["cloud_communication_enabled"] is True
    assert_no_secret(output)


def test_create_in_check_mode_only_reads(fake_server, capsys):
    server = fake_server([token_call(), get_enabled(), get_connection(conn_id=None)])
    failed, result, output = run_module(module.main, ARGS, capsys, check_mode=True, diff=True)
    server.done()
    assert result["changed"] and result["action"] == "created" and result["connection"]["id"] is None
    assert result["diff"]["before"] == {"state": "absent"}
    assert result["diff"]["after"]["billing_sync_token"].startswith("sha256:")
    assert_no_secret(output)


def test_same_token_changes_nothing_in_three_requests(fake_server, capsys):
    server = fake_server([token_call(), get_enabled(), get_connection(last_sync=LAST_SYNC)])
    failed, result, output = run_module(module.main, ARGS, capsys, diff=True)
    server.done()
    assert not failed and not result["changed"] and result["action"] == "none"
    assert result["connection"]["last_license_sync"] == LAST_SYNC
    assert result["diff"]["before"] == result["diff"]["after"]
    assert_no_secret(output)


def test_rotation_updates_and_keeps_the_last_license_sync(fake_server, capsys):
    server = fake_server([
        token_call(), get_enabled(), get_connection(last_sync=LAST_SYNC),
        Call("PUT", "/api/organizations/connections/%s" % CONN_ID,
             body=connection_body(key=NEW_TOKEN, last_sync=LAST_SYNC),
             json_body={"type": 1, "organizationId": ORG, "enabled": True,
                        "config": {"billingSyncKey": NEW_TOKEN, "lastLicenseSync": LAST_SYNC,
                                   "cloudOrganizationId": CLOUD_ORG}}),
    ])
    failed, result, output = run_module(module.main, dict(ARGS, billing_sync_token=NEW_TOKEN), capsys, diff=True)
    server.done()
    assert result["changed"] and result["action"] == "updated"
    assert result["connection"]["last_license_sync"] == LAST_SYNC
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["billing_sync_token"] != after["billing_sync_token"]
    assert_no_secret(output, (SYNC_TOKEN, NEW_TOKEN))


def test_disabling_updates_only_enabled(fake_server, capsys):
    server = fake_server([
        token_call(), get_enabled(), get_connection(),
        Call("PUT", "/api/organizations/connections/%s" % CONN_ID, body=connection_body(enabled=False),
             json_body={"type": 1, "organizationId": ORG, "enabled": False,
                        "config": {"billingSyncKey": SYNC_TOKEN, "lastLicenseSync": None,
                                   "cloudOrganizationId": CLOUD_ORG}}),
    ])
    failed, result, dummy = run_module(module.main, dict(ARGS, enabled=False), capsys)
    server.done()
    assert result["action"] == "updated" and result["connection"]["enabled"] is False


def test_absent_deletes(fake_server, capsys):
    server = fake_server([token_call(), get_enabled(), get_connection(),
                          Call("DELETE", "/api/organizations/connections/%s" % CONN_ID)])
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, organization_id=ORG, state="absent"), capsys)
    server.done()
    assert result["changed"] and result["action"] == "deleted" and result["connection"] is None


def test_absent_when_already_absent(fake_server, capsys):
    server = fake_server([token_call(), get_enabled(), get_connection(conn_id=None)])
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, organization_id=ORG, state="absent"), capsys)
    server.done()
    assert not result["changed"] and result["action"] == "none"


def test_absent_in_check_mode(fake_server, capsys):
    server = fake_server([token_call(), get_enabled(), get_connection()])
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, organization_id=ORG, state="absent"), capsys,
                                       check_mode=True)
    server.done()
    assert result["changed"] and result["action"] == "deleted"


def test_cloud_communication_off_warns(fake_server, capsys):
    fake_server([token_call(), get_enabled(False), get_connection()])
    failed, result, output = run_module(module.main, ARGS, capsys)
    assert result["cloud_communication_enabled"] is False
    warning = "the connection is saved but the running server has cloud communication off: run " \
              "selfhost.bitwarden.bitwarden_cloud_comm"
    # Returned with the result (2.19+: as {"event": {"msg": ...}}), or printed when the Display takes them.
    assert "[WARNING]: " + warning in output or any(warning in str(item) for item in result.get("warnings", [])), output


def test_cloud_communication_off_in_check_mode_says_would_be_saved(fake_server, capsys):
    fake_server([token_call(), get_enabled(False), get_connection(conn_id=None)])
    failed, result, output = run_module(module.main, ARGS, capsys, check_mode=True)
    warning = "the connection would be saved but the running server has cloud communication off"
    assert "[WARNING]: " + warning in output or any(warning in str(item) for item in result.get("warnings", [])), output


def test_organization_is_discovered(fake_server, capsys):
    server = fake_server([token_call(), Call("GET", "/api/organizations", body={"data": [
        {"id": ORG, "name": "Ours", "type": 0}]}), get_enabled(), get_connection()])
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, billing_sync_token=SYNC_TOKEN), capsys)
    server.done()
    assert result["organization_id"] == ORG and not result["changed"]


def test_missing_license_file(fake_server, capsys):
    fake_server([token_call(), get_enabled(), get_connection(conn_id=None),
                 Call("POST", "/api/organizations/connections", status=400,
                      body={"object": "error", "message": "Cannot verify license file."})])
    failed, result, output = run_module(module.main, ARGS, capsys)
    assert failed and "upload the organization license first" in result["msg"]
    assert_no_secret(output)


def test_missing_license_file_on_an_old_server_500(fake_server, capsys):
    fake_server([token_call(), get_enabled(), get_connection(conn_id=None),
                 Call("POST", "/api/organizations/connections", status=500,
                      body={"object": "error", "message": "An unhandled server error has occurred."}),
                 get_connection(conn_id=None)])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    assert failed and "before 2026.6.2" in result["msg"] and "core/licenses/organization/%s.json" % ORG in result["msg"]


def test_ambiguous_create_that_landed_is_reported_as_created(fake_server, capsys):
    server = fake_server([token_call(), get_enabled(), get_connection(conn_id=None),
                          Call("POST", "/api/organizations/connections", status=504), get_connection()])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    server.done()
    assert not failed and result["action"] == "created" and result["connection"]["id"] == CONN_ID


def test_not_owner(fake_server, capsys):
    fake_server([token_call(), get_enabled(),
                 Call("GET", "/api/organizations/connections/%s/1" % ORG, status=400, body={
                     "object": "error",
                     "message": "You do not have permission to retrieve a connection of type CloudBillingSync."}),
                 Call("GET", "/api/organizations", body={"data": [{"id": ORG, "name": "Acme", "type": 1}]})])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    assert failed and "is Admin of organization %s, not an owner" % ORG in result["msg"]


def test_organization_key_gets_the_403_message(fake_server, capsys):
    fake_server([token_call(), Call("GET", "/api/organizations/connections/enabled", status=403)])
    failed, result, output = run_module(module.main, ARGS, capsys)
    assert failed and "organization API key" in result["msg"] and "owner" in result["msg"]
    assert_no_secret(output)


def test_token_is_required_for_present(fake_server, capsys):
    fake_server([])
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, organization_id=ORG), capsys)
    assert failed and "billing_sync_token" in result["msg"]
