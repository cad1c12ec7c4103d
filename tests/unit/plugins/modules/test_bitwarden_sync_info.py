"""bitwarden_sync_info: read-only state in the documented shape."""

from __future__ import annotations

import datetime

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
SUBSCRIPTION = "/api/organizations/%s/subscription" % ORG
LAST = "2026-08-20T14:03:11.1234567+00:00"
UTC = datetime.timezone.utc
JOB_LINE = "0HN8ABCDEF1GH:00000001 [INF] %s job SelfHostedSponsorshipSyncJob at 11/29/2026 10:00:00. (00be778c)"


def iso(days):
    return (datetime.datetime.now(UTC) + datetime.timedelta(days=days, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def subscription(days=20, grace=60):
    return Call("GET", SUBSCRIPTION, body={"object": "organizationSubscription", "expiration": iso(days + grace),
                                           "expirationWithoutGracePeriod": iso(days) if days is not None else None})


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def write_job_log(bwdata, lines):
    directory = bwdata / "logs" / "api" / "Api"
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(UTC)
    with open(directory / ("%s.txt" % now.strftime("%Y%m%d")), "a", encoding="utf-8") as handle:
        for minutes_ago, text in lines:
            handle.write("%s %s\n" % (stamp(now - datetime.timedelta(minutes=minutes_ago)), text))


def args(tmp_path):
    return dict(BASE_ARGS, organization_id=ORG, bwdata_path=str(tmp_path))


def test_full_state_in_check_mode(fake_server, capsys, tmp_path):
    server = fake_server([
        Call("GET", "/api/config", auth=False, body=CONFIG), token_call(), get_enabled(), get_connection(last_sync=LAST),
        Call("GET", STATUS, body={"object": "syncStatus", "lastSyncDate": "2026-08-21T01:00:00Z"}), subscription(20),
    ])
    failed, result, output = run_module(module.main, args(tmp_path), capsys, check_mode=True)
    server.done()
    assert not failed and not result["changed"]
    assert result["server_version"] == "2026.8.0" and result["cloud_region"] == "EU"
    assert result["cloud_communication_enabled"] is True
    organization = result["organization"]
    license_ = organization.pop("license")
    assert organization == {
        "id": ORG, "billing_sync_configured": True, "billing_sync_enabled": True, "cloud_organization_id": CLOUD_ORG,
        "last_license_sync": LAST, "sponsorship_last_sync_date": "2026-08-21T01:00:00Z", "sponsorship_sync_state": "synced",
        "sponsorship_last_job_run": None, "last_license_sync_age_hours": organization["last_license_sync_age_hours"],
        "sponsorship_sync_message": None, "sponsorship_last_seen": "2026-08-21T01:00:00+00:00",
        "sponsorship_sync_log": "%s/logs/api does not exist on this host: run the module on the Bitwarden host with "
                                "bwdata_path set" % tmp_path}
    assert organization["last_license_sync_age_hours"] > 24 * 90  # LAST is 2026-08-20
    assert (license_["days_left"], license_["days_left_with_grace"], license_["error"]) == (20, 80, None)
    assert license_["expiration"].endswith("Z") and license_["expiration_without_grace_period"].endswith("Z")
    assert_no_secret(output)


def test_nothing_configured_on_an_old_server(fake_server, capsys, tmp_path):
    fake_server([
        Call("GET", "/api/config", auth=False, body={"version": "2023.1.0", "environment": {"vault": "https://x"}}),
        token_call(), get_enabled(False), get_connection(conn_id=None),
        Call("GET", STATUS, body={"object": "syncStatus", "lastSyncDate": None}),
        Call("GET", SUBSCRIPTION, body={"object": "organizationSubscription", "expiration": iso(-3)}),
    ])
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys)
    assert result["cloud_region"] is None and result["cloud_communication_enabled"] is False
    assert result["organization"]["billing_sync_configured"] is False
    assert result["organization"]["billing_sync_enabled"] is False
    assert result["organization"]["last_license_sync"] is None
    assert result["organization"]["sponsorship_sync_state"] == "off"
    assert result["organization"]["license"]["days_left"] is None  # no expirationWithoutGracePeriod before 2023.5.0
    assert result["organization"]["license"]["days_left_with_grace"] == -3


def test_server_without_config_route_reads_the_version_route(fake_server, capsys, tmp_path):
    """Servers 2022.5-2022.9 have connections but no /api/config (contract 8)."""
    fake_server([
        Call("GET", "/api/config", auth=False, status=404), Call("GET", "/api/version", auth=False, body="2022.8.0"),
        token_call(), get_enabled(), get_connection(conn_id=None),
        Call("GET", STATUS, body={"object": "syncStatus", "lastSyncDate": None}),
        Call("GET", SUBSCRIPTION, body={"object": "organizationSubscription", "expiration": iso(100)}),
    ])
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys)
    assert not failed, result
    assert (result["server_version"], result["cloud_region"]) == ("2022.8.0", None)
    assert result["organization"]["sponsorship_sync_state"] == "not_configured"


def test_missing_license_is_reported_not_fatal(fake_server, capsys, tmp_path):
    fake_server([
        Call("GET", "/api/config", auth=False, body=CONFIG), token_call(), get_enabled(), get_connection(last_sync=LAST),
        Call("GET", STATUS, body={"object": "syncStatus", "lastSyncDate": None}),
        Call("GET", SUBSCRIPTION, status=500, body={"object": "error", "message": "An unhandled server error has occurred."}),
    ])
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys)
    assert not failed
    assert "could not read the organization's license" in result["organization"]["license"]["error"]
    assert result["organization"]["license"]["days_left"] is None


def sponsorship_result(fake_server, capsys, tmp_path, last_sync=None):
    fake_server([
        Call("GET", "/api/config", auth=False, body=CONFIG), token_call(), get_enabled(), get_connection(last_sync=LAST),
        Call("GET", STATUS, body={"object": "syncStatus", "lastSyncDate": last_sync}), subscription(200),
    ])
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys)
    assert not failed, result
    return result["organization"]


def test_sponsorship_pending_until_the_first_run_after_a_start(fake_server, capsys, tmp_path):
    write_job_log(tmp_path, [(25 * 60, JOB_LINE % "Starting"), (25 * 60, JOB_LINE % "Finished")])  # before the window
    assert sponsorship_result(fake_server, capsys, tmp_path)["sponsorship_sync_state"] == "pending"


def test_sponsorship_job_ran_without_sponsorships(fake_server, capsys, tmp_path):
    write_job_log(tmp_path, [(30, JOB_LINE % "Starting"),
                             (30, "0HN8ABCDEF1GH:00000001 [INF] No existing sponsorships to sync for organization %s "
                                  "(5a1b2c3d)" % ORG),
                             (29, JOB_LINE % "Finished")])
    organization = sponsorship_result(fake_server, capsys, tmp_path)
    assert organization["sponsorship_sync_state"] == "no_sponsorships"
    assert organization["sponsorship_last_job_run"] is not None
    assert organization["sponsorship_last_seen"] == organization["sponsorship_last_job_run"]


def test_sponsorship_job_that_ran_fine_is_synced_even_without_a_date(fake_server, capsys, tmp_path):
    """The cloud leaves lastSyncDate empty for sponsorships whose plan does not match the tier (contract 11)."""
    write_job_log(tmp_path, [(30, JOB_LINE % "Starting"), (29, JOB_LINE % "Finished")])
    organization = sponsorship_result(fake_server, capsys, tmp_path)
    assert organization["sponsorship_sync_state"] == "synced" and organization["sponsorship_last_seen"]


def test_sponsorship_job_failure_wins_over_an_old_sync(fake_server, capsys, tmp_path):
    write_job_log(tmp_path, [(30, JOB_LINE % "Starting"),
                             (30, "0HN8ABCDEF1GH:00000001 [ERR] Sponsorship sync for organization Acme Failed (00000000)"),
                             (29, JOB_LINE % "Finished")])
    organization = sponsorship_result(fake_server, capsys, tmp_path, last_sync="2026-08-21T01:00:00Z")
    assert organization["sponsorship_sync_state"] == "failed"


def test_organization_key_is_told_to_use_an_owner_key(fake_server, capsys):
    fake_server([Call("GET", "/api/config", auth=False, body=CONFIG), token_call(),
                 Call("GET", "/api/organizations/connections/enabled", status=403)])
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, organization_id=ORG), capsys)
    assert failed and "organization API key" in result["msg"]
