"""Finding the real cause of a failed license sync in the api log."""

from __future__ import annotations

import datetime

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _api_log

INSTALLATION = "installation.1c2d3e4f-0000-4000-8000-000000000001"
UTC = datetime.timezone.utc


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def write_log(bwdata, lines, day=None):
    directory = bwdata / "logs" / "api" / "Api"
    directory.mkdir(parents=True, exist_ok=True)
    day = day or datetime.datetime.now(UTC)
    with open(directory / ("%s.txt" % day.strftime("%Y%m%d")), "a", encoding="utf-8") as handle:
        for moment, rest in lines:
            handle.write("%s %s\n" % (stamp(moment), rest))


def write_env(bwdata, text):
    (bwdata / "env").mkdir(parents=True, exist_ok=True)
    (bwdata / "env" / "global.override.env").write_text(text)


def test_parse_entries_joins_continuation_lines_and_drops_event_ids():
    text = ("2026-11-22T10:15:02.1234567+00:00 0HN8ABCDEF1GH [ERR] Request to https://api.bitwarden.com/licenses/"
            "organization/x is unsuccessful with status of BadRequest-Bad Request: Invalid Billing Sync Key\n"
            " (00000000)\n"
            "2026-11-22T10:15:03.0000000+00:00               [ERR] Unable to authenticate with identity server. (00003033)\n"
            "System.Net.Http.HttpRequestException: Name or service not known (identity.bitwarden.com:443)\n"
            "   at System.Net.Http.HttpConnectionPool.ConnectAsync()\n")
    entries = _api_log.parse_entries(text)
    assert [entry["level"] for entry in entries] == ["ERR", "ERR"]
    assert entries[0]["message"].endswith("Invalid Billing Sync Key") and entries[0]["detail"] == []
    assert entries[1]["message"] == "Unable to authenticate with identity server."
    assert entries[1]["detail"][0].startswith("System.Net.Http.HttpRequestException")


def test_wrong_billing_sync_token(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, "0HN8ABCDEF1GH [ERR] Request to https://api.bitwarden.com/licenses/organization/abc is "
                               "unsuccessful with status of BadRequest-Bad Request: Invalid Billing Sync Key\n (00000000)")])
    cause = _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1))
    assert "billing sync token" in cause and "bitwarden_billing_sync_token" in cause


def test_only_lines_written_since_the_request_count(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now - datetime.timedelta(minutes=5),
                          "0HN8ABCDEF1GH [ERR] Request to https://api.bitwarden.com/x is unsuccessful with status of "
                          "BadRequest-Bad Request: Invalid Billing Sync Key")])
    assert _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1)) is None


def test_newest_cause_wins(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [
        (now, "A [ERR] Request to https://api.bitwarden.com/x is unsuccessful with status of NotFound-Not Found: "
              "Resource not found."),
        (now + datetime.timedelta(milliseconds=5), "B [ERR] Request to https://api.bitwarden.com/x is unsuccessful "
                                                   "with status of BadRequest-Bad Request: Invalid installation id"),
    ])
    cause = _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1))
    assert "installation id" in cause


def test_region_mismatch_names_the_identity_uri_and_the_installation_region(tmp_path):
    now = datetime.datetime.now(UTC)
    write_env(tmp_path, "globalSettings__baseServiceUri__cloudRegion=EU\nglobalSettings__installation__key=SECRETKEY\n"
                        "globalSettings__enableCloudCommunication=true\n")
    write_log(tmp_path, [(now, "0HN8ABCDEF1GH [ERR] Unsuccessful token response from https://identity.bitwarden.com "
                               "for client %s with status BadRequest-Bad Request (00000000)" % INSTALLATION)])
    cause = _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1))
    assert cause.startswith("region mismatch")
    assert "EU region" in cause and "https://identity.bitwarden.com" in cause
    assert "globalSettings__installation__identityUri is not set" in cause
    assert "SECRETKEY" not in cause


def test_region_mismatch_with_an_explicit_identity_uri(tmp_path):
    now = datetime.datetime.now(UTC)
    write_env(tmp_path, "globalSettings__baseServiceUri__cloudRegion=US\n"
                        "globalSettings__installation__identityUri=https://identity.bitwarden.eu\n")
    write_log(tmp_path, [(now, "X [ERR] Unsuccessful token response from https://identity.bitwarden.eu for client %s "
                               "with status BadRequest-Bad Request" % INSTALLATION)])
    cause = _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1))
    assert "US region" in cause and "is https://identity.bitwarden.eu" in cause


def test_rejected_installation_without_a_region_mismatch(tmp_path):
    now = datetime.datetime.now(UTC)
    write_env(tmp_path, "globalSettings__baseServiceUri__cloudRegion=US\n")
    write_log(tmp_path, [(now, "X [ERR] Unsuccessful token response from https://identity.bitwarden.com for client %s "
                               "with status BadRequest-Bad Request" % INSTALLATION)])
    cause = _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1))
    assert "rejected %s" % INSTALLATION in cause and "installation id or key" in cause


def test_cloud_unreachable(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, "X [ERR] Unable to authenticate with identity server. (00003033)\n"
                               "System.Net.Http.HttpRequestException: Name or service not known (identity.bitwarden.com:443)"),
                         (now, "X [ERR] Empty token response from https://identity.bitwarden.com for client %s" % INSTALLATION)])
    cause = _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1))
    assert "cannot reach the Bitwarden cloud" in cause and "firewall" in cause


def test_no_log_directory(tmp_path):
    assert _api_log.explain_license_sync_failure(str(tmp_path / "missing"), datetime.datetime.now(UTC)) is None


def test_other_cloud_messages_are_quoted(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, "X [ERR] Request to https://api.bitwarden.com/x is unsuccessful with status of "
                               "BadRequest-Bad Request: Something new")])
    cause = _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1))
    assert cause == "the cloud answered BadRequest-Bad Request to https://api.bitwarden.com/x: Something new"


def test_unknown_cloud_organization_reads_resource_not_found(tmp_path):
    """The cloud's NotFoundException("Organization not found.") reaches the log as "Resource not found." (contract 10)."""
    now = datetime.datetime.now(UTC)
    url = "https://api.bitwarden.com/licenses/organization/6f1d2c1e-0000-4000-8000-000000000001"
    write_log(tmp_path, [(now, "A [ERR] Request to %s is unsuccessful with status of NotFound-Not Found: "
                               "Resource not found.\n(00000000)" % url)])
    cause = _api_log.explain_license_sync_failure(str(tmp_path), now - datetime.timedelta(seconds=1))
    assert cause.startswith("the cloud has no organization with the license's id at %s (NotFound-Not Found: "
                            "Resource not found.)" % url)


def test_sponsorship_job_runs(tmp_path):
    now = datetime.datetime.now(UTC)
    job = "0HN8ABCDEF1GH:00000001 [INF] %s job SelfHostedSponsorshipSyncJob at 11/29/2026 10:00:00. (00be778c)"
    write_log(tmp_path, [(now - datetime.timedelta(hours=30), job % "Finished"),
                         (now - datetime.timedelta(minutes=9), job % "Starting"),
                         (now - datetime.timedelta(minutes=9), "0HN8ABCDEF1GH:00000001 [ERR] Sponsorship sync for "
                                                               "organization Acme Failed (00000000)"),
                         (now - datetime.timedelta(minutes=8), job % "Finished"),
                         (now - datetime.timedelta(minutes=1), job % "Starting")])
    runs = _api_log.sponsorship_job_runs(str(tmp_path), now - datetime.timedelta(hours=24))
    assert [(run["finished"] is not None, run["failed"]) for run in runs] == [(True, True), (False, False)]
    assert _api_log.sponsorship_job_runs(str(tmp_path / "nothing"), now) == []
