"""Finding the real cause of a failed license sync in the api log (lines as the real server writes them; the exact
rendering rules are pinned by tests/vectors/api_log.yml)."""

from __future__ import annotations

import datetime

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _api_log

INSTALLATION = "installation.1c2d3e4f-0000-4000-8000-000000000001"
LICENSE_URL = "https://api.bitwarden.com/licenses/organization/6f1d2c1e-0000-4000-8000-000000000001"
UTC = datetime.timezone.utc


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def entry(message, request_id="0HN8ABCDEF1GH:00000002", level="ERR", event_id="4e5b0096"):
    """`{RequestId,13} [{Level:u3}] {Message} ({EventId:x8})` after the timestamp."""
    return "%13s [%s] %s (%s)" % (request_id, level, message, event_id)


def refused(message, url=LICENSE_URL, status='BadRequest-"Bad Request"'):
    """BaseIdentityClientService's line since 2026.6.0: the ErrorResponse's AppendLine puts the closing quote on the
    next line."""
    return entry('Request to "%s" is unsuccessful with status of %s: "%s\n"' % (url, status, message.replace('"', '\\"')))


def token_refused(identity="https://identity.bitwarden.com/", status='BadRequest-"Bad Request"'):
    return entry('Unsuccessful token response from %s for client "%s" with status %s' % (identity, INSTALLATION, status),
                 event_id="0e652604")


def write_log(directory, lines, name=None):
    folder = directory / "Api"
    folder.mkdir(parents=True, exist_ok=True)
    name = name or "%s.txt" % datetime.datetime.now(UTC).strftime("%Y%m%d")
    with open(folder / name, "a", encoding="utf-8") as handle:
        for moment, rest in lines:
            handle.write("%s %s\n" % (stamp(moment), rest))


def write_env(directory, text):
    path = directory / "global.override.env"
    path.write_text(text)
    return _api_log.read_env_settings(str(path))


def explain(directory, since, settings=None):
    return _api_log.explain_license_sync_failure(str(directory), since, settings)


def test_parse_entries_keeps_the_line_break_inside_the_value_and_drops_event_ids():
    text = ('2026-11-22T10:15:02.1234560+00:00 0HN8ABCDEF1GH:00000002 [ERR] Request to "%s" is unsuccessful with '
            'status of BadRequest-"Bad Request": "Invalid Billing Sync Key\n'
            '" (4e5b0096)\n'
            "2026-11-22T10:15:03.0000000+00:00               [ERR] Unable to authenticate with identity server. (066d6197)\n"
            "System.Net.Http.HttpRequestException: Name or service not known (identity.bitwarden.com:443)\n"
            "   at System.Net.Http.HttpConnectionPool.ConnectAsync()\n" % LICENSE_URL)
    entries = _api_log.parse_entries(text)
    assert [item["level"] for item in entries] == ["ERR", "ERR"]
    assert entries[0]["message"].endswith(': "Invalid Billing Sync Key\n"') and entries[0]["detail"] == []
    assert entries[1]["message"] == "Unable to authenticate with identity server."
    assert entries[1]["detail"][0].startswith("System.Net.Http.HttpRequestException")


def test_wrong_billing_sync_token(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, refused("Invalid Billing Sync Key"))])
    cause = explain(tmp_path, now - datetime.timedelta(seconds=1))
    assert "billing sync token" in cause and "bitwarden_billing_sync_token" in cause


def test_size_rolled_file_is_read(tmp_path):
    """globalSettings__logRollBySizeLimit set: Api/log-<yyyyMMdd>.txt, then _001."""
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, refused("Invalid license key."))], name="log-%s_001.txt" % now.strftime("%Y%m%d"))
    assert "license key" in explain(tmp_path, now - datetime.timedelta(seconds=1))


def test_only_lines_written_since_the_request_count(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now - datetime.timedelta(minutes=5), refused("Invalid Billing Sync Key"))])
    assert explain(tmp_path, now - datetime.timedelta(seconds=1)) is None


def test_newest_cause_wins(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, refused("Resource not found.", status='NotFound-"Not Found"')),
                         (now + datetime.timedelta(milliseconds=5), refused("Invalid installation id"))])
    assert "installation id" in explain(tmp_path, now - datetime.timedelta(seconds=1))


def test_region_mismatch_names_the_identity_uri_and_the_installation_region(tmp_path):
    now = datetime.datetime.now(UTC)
    settings = write_env(tmp_path, "globalSettings__baseServiceUri__cloudRegion=EU\n"
                                   "globalSettings__installation__key=SECRETKEY\n"
                                   "globalSettings__enableCloudCommunication=true\n")
    write_log(tmp_path, [(now, token_refused())])
    cause = explain(tmp_path, now - datetime.timedelta(seconds=1), settings)
    assert cause.startswith("region mismatch")
    assert "EU region" in cause and "https://identity.bitwarden.com/" in cause and "in global.override.env" in cause
    assert "globalSettings__installation__identityUri is not set" in cause
    assert "SECRETKEY" not in cause


def test_region_mismatch_with_an_explicit_identity_uri(tmp_path):
    now = datetime.datetime.now(UTC)
    settings = write_env(tmp_path, "globalSettings__baseServiceUri__cloudRegion=US\n"
                                   "globalSettings__installation__identityUri=https://identity.bitwarden.eu\n")
    write_log(tmp_path, [(now, token_refused("https://identity.bitwarden.eu/"))])
    cause = explain(tmp_path, now - datetime.timedelta(seconds=1), settings)
    assert "US region" in cause and "is https://identity.bitwarden.eu" in cause


def test_rejected_installation_without_a_region_mismatch(tmp_path):
    now = datetime.datetime.now(UTC)
    settings = write_env(tmp_path, "globalSettings__baseServiceUri__cloudRegion=US\n")
    write_log(tmp_path, [(now, token_refused())])
    cause = explain(tmp_path, now - datetime.timedelta(seconds=1), settings)
    assert "rejected %s" % INSTALLATION in cause and "installation id or key" in cause
    assert 'BadRequest-Bad Request' in cause


def test_rate_limited_token_request_is_not_a_wrong_key(tmp_path):
    """The cloud's per-IP limit: the identity server answers 429, logged as TooManyRequests-"Too Many Requests"."""
    now = datetime.datetime.now(UTC)
    settings = write_env(tmp_path, "globalSettings__baseServiceUri__cloudRegion=EU\n")
    write_log(tmp_path, [(now, token_refused(status='TooManyRequests-"Too Many Requests"'))])
    cause = explain(tmp_path, now - datetime.timedelta(seconds=1), settings)
    assert "rate limiting" in cause and "retry" in cause
    assert "region mismatch" not in cause and "installation id or key" not in cause


def test_cloud_unreachable(tmp_path):
    now = datetime.datetime.now(UTC)
    failed = entry("Unable to authenticate with identity server.", event_id="066d6197")
    exception = "System.Net.Http.HttpRequestException: Name or service not known (identity.bitwarden.com:443)"
    write_log(tmp_path, [(now, failed + "\n" + exception),
                         (now, entry('Empty token response from https://identity.bitwarden.com/ for client "%s"' % INSTALLATION))])
    cause = explain(tmp_path, now - datetime.timedelta(seconds=1))
    assert "cannot reach the Bitwarden cloud" in cause and "firewall" in cause


def test_no_log_directory(tmp_path):
    assert explain(tmp_path / "missing", datetime.datetime.now(UTC)) is None


def test_other_cloud_messages_are_quoted(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, refused('Something "new"', url="https://api.bitwarden.com/x"))])
    assert explain(tmp_path, now - datetime.timedelta(seconds=1)) == \
        'the cloud answered BadRequest-Bad Request to https://api.bitwarden.com/x: Something "new"'


def test_before_2026_6_the_log_has_no_cloud_message(tmp_path):
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, entry('Request to "%s" is unsuccessful with status of BadRequest-"Bad Request"' % LICENSE_URL,
                                     event_id="bd4282bb"))])
    cause = explain(tmp_path, now - datetime.timedelta(seconds=1))
    assert "does not log the cloud's reason" in cause and "billing sync token" in cause


def test_older_layouts(tmp_path):
    """Before 2025.12.0: RollingFile's `[{Level}] {Message}` (quoted) and, with logRollBySizeLimit (Lite's
    api.log), Serilog.Sinks.File's `[{Level:u3}] {Message:lj}` (bare)."""
    now = datetime.datetime.now(UTC)
    short = now.strftime("%Y-%m-%d %H:%M:%S.") + "%03d +00:00" % (now.microsecond // 1000)
    (tmp_path / "Api").mkdir()
    (tmp_path / "Api" / ("%s.txt" % now.strftime("%Y%m%d"))).write_text(
        '%s [Error] Unsuccessful token response from https://identity.bitwarden.com/ for client "%s" with status '
        'BadRequest-"Bad Request"\n' % (short, INSTALLATION))
    since = now - datetime.timedelta(seconds=1)
    assert "rejected %s (BadRequest-Bad Request)" % INSTALLATION in explain(tmp_path, since)
    lite = tmp_path / "lite"
    lite.mkdir()
    (lite / "api.log").write_text("%s [ERR] Unsuccessful token response from https://identity.bitwarden.com/ for client "
                                  "%s with status TooManyRequests-Too Many Requests\n" % (short, INSTALLATION))
    assert "rate limiting" in explain(lite, since)


def test_unknown_cloud_organization_reads_resource_not_found(tmp_path):
    """The cloud's NotFoundException("Organization not found.") reaches the log as "Resource not found." (contract 10)."""
    now = datetime.datetime.now(UTC)
    write_log(tmp_path, [(now, refused("Resource not found.", status='NotFound-"Not Found"'))])
    cause = explain(tmp_path, now - datetime.timedelta(seconds=1))
    assert cause.startswith("the cloud has no organization with the license's id at %s (NotFound-Not Found: "
                            "Resource not found.)" % LICENSE_URL)


def job(verb, moment):
    return entry('%s job "SelfHostedSponsorshipSyncJob" at %s.' % (verb, moment.strftime("%m/%d/%Y %H:%M:%S")),
                 request_id="", level="INF", event_id="41861683")


def test_sponsorship_job_runs(tmp_path):
    now = datetime.datetime.now(UTC)
    ago = [now - datetime.timedelta(minutes=minutes) for minutes in (1800, 9, 8, 1)]
    write_log(tmp_path, [(ago[0], job("Finished", ago[0])),
                         (ago[1], job("Starting", ago[1])),
                         (ago[1], entry('Sponsorship sync for organization "Acme" Failed', request_id="", event_id="98dcfab6")
                          + "\nBit.Core.Exceptions.BadRequestException: Organization sync failed"),
                         (ago[2], job("Finished", ago[2])),
                         (ago[3], job("Starting", ago[3]))])
    runs = _api_log.sponsorship_job_runs(str(tmp_path), now - datetime.timedelta(hours=24))
    assert [(run["finished"] is not None, run["failed"]) for run in runs] == [(True, True), (False, False)]
    assert runs[0]["message"] == "Bit.Core.Exceptions.BadRequestException: Organization sync failed"
    outcome = _api_log.sponsorship_job_outcome(str(tmp_path), now - datetime.timedelta(hours=24))
    assert outcome["outcome"] == "failed" and outcome["message"].endswith("Organization sync failed")
    assert _api_log.sponsorship_job_runs(str(tmp_path / "nothing"), now) == []
    assert _api_log.sponsorship_job_outcome(str(tmp_path / "nothing"), now)["outcome"] == "not_seen"


def test_sponsorship_job_outcomes(tmp_path):
    now = datetime.datetime.now(UTC)
    start, end = now - datetime.timedelta(minutes=3), now - datetime.timedelta(minutes=2)
    org = "0b7d1f2e-0000-4000-8000-000000000003"
    write_log(tmp_path, [(start, job("Starting", start)),
                         (start, entry("No existing sponsorships to sync for organization %s" % org, request_id="",
                                       level="INF", event_id="0ab9d7b0")),
                         (end, job("Finished", end))])
    outcome = _api_log.sponsorship_job_outcome(str(tmp_path), now - datetime.timedelta(hours=1))
    assert outcome == {"outcome": "no_sponsorships", "finished": _api_log.parse_entries(
        "%s %s" % (stamp(end), job("Finished", end)))[0]["time"], "message": None}
    later = now - datetime.timedelta(minutes=1)
    write_log(tmp_path, [(later, job("Starting", later)), (later, job("Finished", later))])
    assert _api_log.sponsorship_job_outcome(str(tmp_path), now - datetime.timedelta(hours=1))["outcome"] == "ok"


def test_compose_project_name(tmp_path):
    """docker compose's rule: top-level name, else COMPOSE_PROJECT_NAME in .env, else the directory's name normalized."""
    directory = tmp_path / "Bitwarden.Lite"
    directory.mkdir()
    compose = directory / "docker-compose.yml"
    compose.write_text("---\nservices:\n  bitwarden:\n    image: x\n")
    assert _api_log.compose_project(str(directory), str(compose)) == "bitwardenlite"
    (directory / ".env").write_text("COMPOSE_PROJECT_NAME=vault\n")
    assert _api_log.compose_project(str(directory), str(compose)) == "vault"
    compose.write_text("name: 'prod'\nservices:\n  bitwarden:\n    name: not-this\n")
    assert _api_log.compose_project(str(directory), str(compose)) == "prod"


def test_sponsorship_failure_names_the_clouds_reason(tmp_path):
    """The job's exception says only "Organization sync failed"; the cloud's refusal just before it says why."""
    now = datetime.datetime.now(UTC)
    start = now - datetime.timedelta(minutes=2)
    url = "https://api.bitwarden.com/organization/sponsorship/sync"
    write_log(tmp_path, [(start, job("Starting", start)),
                         (start, refused("Invalid organization", url=url)),
                         (start, entry('Sponsorship sync for organization "Acme" Failed', request_id="", event_id="98dcfab6")
                          + "\nBit.Core.Exceptions.BadRequestException: Organization sync failed"),
                         (start, job("Finished", start))])
    outcome = _api_log.sponsorship_job_outcome(str(tmp_path), now - datetime.timedelta(hours=1))
    assert outcome["outcome"] == "failed"
    assert outcome["message"].startswith("the cloud has no organization with the billing sync connection's cloud "
                                         "organization id (Invalid organization, %s)" % url)
