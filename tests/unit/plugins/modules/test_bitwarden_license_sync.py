"""bitwarden_license_sync: when it syncs, how it checks the result, and the real cause of a failure."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_license_sync as module

from unit.plugins.module_utils.bitwarden_fakes import (  # pylint: disable=unused-import
    BASE_ARGS,
    ORG,
    Call,
    assert_no_secret,
    fake_server,
    get_connection,
    get_enabled,
    run_module,
    token_call,
)

ARGS = dict(BASE_ARGS, organization_id=ORG)
SYNC = "/api/organizations/licenses/self-hosted/%s/sync" % ORG
GENERIC = {"object": "error",
           "message": "An error has occurred. Check your internet connection and ensure the billing token is correct."}
OLD = "2026-08-20T14:03:11.1234567+00:00"


SUBSCRIPTION = "/api/organizations/%s/subscription" % ORG


def sub(days=400, seats=50, plan="Enterprise (Annually)"):
    """GET /api/organizations/{id}/subscription as a self-hosted server answers it (from the license file)."""
    end = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(days=days)
    return Call("GET", SUBSCRIPTION, body={"object": "organizationSubscription", "seats": seats, "planType": 20,
                                           "plan": {"object": "plan", "type": 20, "name": plan},
                                           "expiration": iso(end + datetime.timedelta(days=60)),
                                           "expirationWithoutGracePeriod": iso(end)})


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def recent():
    return iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1))


def test_first_sync(fake_server, capsys):
    new = recent()
    server = fake_server([token_call(), get_connection(last_sync=None), sub(), Call("POST", SYNC),
                          get_connection(last_sync=new), sub()])
    failed, result, output = run_module(module.main, ARGS, capsys)
    server.done()
    assert not failed and result["changed"] and result["synced"]
    assert result["previous_license_sync"] is None and result["last_license_sync"] == new
    assert result["organization_id"] == ORG
    assert_no_secret(output)


def test_already_synced_is_a_no_op_in_two_requests(fake_server, capsys):
    server = fake_server([token_call(), get_connection(last_sync=OLD)])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    server.done()
    assert not result["changed"] and not result["synced"] and result["last_license_sync"] == OLD


def test_check_mode_predicts_without_posting(fake_server, capsys):
    server = fake_server([token_call(), get_connection(last_sync=None)])
    failed, result, dummy = run_module(module.main, ARGS, capsys, check_mode=True)
    server.done()
    assert result["changed"] and not result["synced"]


def test_force_syncs_again(fake_server, capsys):
    new = recent()
    server = fake_server([token_call(), get_connection(last_sync=OLD), sub(), Call("POST", SYNC), get_connection(last_sync=new), sub()])
    failed, result, dummy = run_module(module.main, dict(ARGS, force=True), capsys)
    server.done()
    assert result["changed"] and result["previous_license_sync"] == OLD and result["last_license_sync"] == new


@pytest.mark.parametrize("max_age, syncs", [("1h", True), ("3600", True), ("400d", False), ("1d12h", True)])
def test_max_age(fake_server, capsys, max_age, syncs):
    last = iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3))
    calls = [token_call(), get_connection(last_sync=last)]
    if syncs:
        calls += [sub(), Call("POST", SYNC), get_connection(last_sync=recent()), sub()]
    server = fake_server(calls)
    failed, result, dummy = run_module(module.main, dict(ARGS, max_age=max_age), capsys)
    server.done()
    assert result["changed"] is syncs


def test_bad_max_age(fake_server, capsys):
    fake_server([])
    failed, result, dummy = run_module(module.main, dict(ARGS, max_age="soon"), capsys)
    assert failed and "max_age" in result["msg"]


@pytest.mark.parametrize("text, seconds", [("90", 90), ("2w", 1209600), ("1h30m", 5400), ("10 s", 10), ("1x", None)])
def test_parse_duration(text, seconds):
    assert module.parse_duration(text) == seconds


def test_no_connection_says_apply_the_token_first(fake_server, capsys):
    fake_server([token_call(), get_connection(conn_id=None)])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    assert failed and "apply the billing sync token first" in result["msg"]


def test_disabled_connection(fake_server, capsys):
    fake_server([token_call(), get_connection(enabled=False)])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    assert failed and "disabled" in result["msg"] and "enabled: true" in result["msg"]


def test_generic_error_is_explained_from_the_api_log(fake_server, capsys, tmp_path):
    log_dir = tmp_path / "logs" / "api" / "Api"
    log_dir.mkdir(parents=True)

    def server_logs_the_cause():
        now = datetime.datetime.now(datetime.timezone.utc)
        with open(log_dir / ("%s.txt" % now.strftime("%Y%m%d")), "a") as handle:
            handle.write('%s 0HN8ABCDEF1GH:00000002 [ERR] Request to "https://api.bitwarden.com/licenses/organization/x" '
                         'is unsuccessful with status of BadRequest-"Bad Request": "Invalid Billing Sync Key\n" (4e5b0096)\n'
                         % iso(now))

    fake_server([token_call(), get_connection(),
                 sub(), Call("POST", SYNC, status=400, body=GENERIC, effect=server_logs_the_cause)])
    failed, result, output = run_module(module.main, dict(ARGS, bwdata_path=str(tmp_path)), capsys)
    assert failed and "license sync failed" in result["msg"]
    assert "Invalid Billing Sync Key" in result["msg"] and "bitwarden_billing_sync_token" in result["msg"]
    assert_no_secret(output)


def test_generic_error_without_a_readable_log(fake_server, capsys, tmp_path):
    fake_server([token_call(), get_connection(), sub(), Call("POST", SYNC, status=400, body=GENERIC)])
    failed, result, dummy = run_module(module.main, dict(ARGS, bwdata_path=str(tmp_path)), capsys)
    assert failed and "api log (%s/logs/api/Api/<yyyyMMdd>.txt" % tmp_path in result["msg"]
    assert "run the module on the Bitwarden host with bwdata_path set" in result["msg"]


def test_old_server_names_the_version(fake_server, capsys):
    fake_server([token_call(), get_connection(), sub(), Call("POST", SYNC, status=404),
                 Call("GET", "/api/config", auth=False, body={"version": "2023.1.0"})])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    assert failed and "2023.1.0" in result["msg"] and "needs 2023.2.0" in result["msg"]


def test_404_on_a_new_server_says_apply_the_token(fake_server, capsys):
    fake_server([token_call(), get_connection(),
                 sub(), Call("POST", SYNC, status=404, body={"object": "error", "message": "Resource not found."}),
                 Call("GET", "/api/config", auth=False, body={"version": "2026.8.0"})])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    assert failed and "apply the billing sync token first" in result["msg"]


def test_cloud_communication_disabled(fake_server, capsys):
    fake_server([token_call(), get_connection(), sub(), Call("POST", SYNC, status=400, body={
        "object": "error", "message": "Cloud communication is disabled in global settings"})])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    assert failed and "bitwarden_cloud_comm" in result["msg"] and "restart" in result["msg"]


def test_503_is_retried(fake_server, capsys):
    server = fake_server([token_call(), get_connection(), sub(), Call("POST", SYNC, status=503),
                          Call("POST", SYNC), get_connection(last_sync=recent()), sub()])
    failed, result, dummy = run_module(module.main, ARGS, capsys)
    server.done()
    assert result["synced"] and server.sleeps == [1.0]


def test_sync_that_did_not_advance(fake_server, capsys):
    fake_server([token_call(), get_connection(last_sync=OLD), sub(), Call("POST", SYNC), get_connection(last_sync=OLD)])
    failed, result, dummy = run_module(module.main, dict(ARGS, force=True), capsys)
    assert failed and "did not advance" in result["msg"]


NGINX_504 = (b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1>"
             b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def test_the_sync_post_outwaits_the_server_and_is_not_repeated_after_a_timeout(fake_server, capsys, tmp_path):
    """Issue 21.5: the server may take 100 s (its HttpClient timeout) and nginx 90 s; a POST that timed out may still
    run on the server, so it is never sent again."""
    server = fake_server([token_call(), get_connection(), sub(), Call("POST", SYNC, raises=TimeoutError("timed out"))])
    failed, result, dummy = run_module(module.main, dict(ARGS, bwdata_path=str(tmp_path)), capsys)
    server.done()
    assert failed and "the license sync was sent once and not repeated" in result["msg"]
    assert "no answer within 130 s" in result["msg"]
    post = [seen for seen in server.seen if seen[0] == "POST" and seen[1].endswith("/sync")]
    assert [kwargs["timeout"] for dummy, dummy, dummy, dummy, kwargs in post] == [130]


def test_a_504_is_not_repeated_and_the_log_says_timed_out(fake_server, capsys, tmp_path):
    log_dir = tmp_path / "logs" / "api" / "Api"
    log_dir.mkdir(parents=True)

    def api_times_out():
        now = datetime.datetime.now(datetime.timezone.utc)
        with open(log_dir / ("%s.txt" % now.strftime("%Y%m%d")), "a") as handle:
            handle.write("%s 0HN8ABCDEF1GH:00000002 [ERR] Unable to authenticate with identity server. (6a5e3a2f)\n"
                         "System.Threading.Tasks.TaskCanceledException: The request was canceled due to the configured "
                         "HttpClient.Timeout of 100 seconds elapsing.\n ---> System.TimeoutException: A task was canceled.\n"
                         % iso(now))

    server = fake_server([token_call(), get_connection(),
                          sub(), Call("POST", SYNC, status=504, body=NGINX_504, headers={"Content-Type": "text/html"},
                                      effect=api_times_out)])
    failed, result, dummy = run_module(module.main, dict(ARGS, bwdata_path=str(tmp_path)), capsys)
    server.done()
    assert failed and result["msg"].startswith(
        "license sync failed: the server cannot reach the Bitwarden cloud (timed out: The request was canceled due to "
        "the configured HttpClient.Timeout of 100 seconds elapsing.)")
    assert "not repeated" in result["msg"] and "nginx answered 504 Gateway Time-out" in result["msg"]


def days_from_now(days):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)


def sub_ending_in(days, seats=50):
    """A subscription whose paid period ends ``days`` from now."""
    end = days_from_now(days)
    return Call("GET", SUBSCRIPTION, body={"object": "organizationSubscription", "seats": seats, "planType": 20,
                                           "plan": {"object": "plan", "type": 20, "name": "Enterprise (Annually)"},
                                           "expiration": iso(end + datetime.timedelta(days=60)),
                                           "expirationWithoutGracePeriod": iso(end)})


@pytest.mark.parametrize("ends_in, syncs", [(10, True), (200, False), (-40, True)])
def test_expiry_days(fake_server, capsys, ends_in, syncs):
    """Within expiry_days of the paid period's end (or of the grace period's, once the paid period is over) it syncs."""
    calls = [token_call(), get_connection(last_sync=iso(days_from_now(-2))), sub_ending_in(ends_in)]
    if syncs:
        calls += [Call("POST", SYNC), get_connection(last_sync=recent()), sub_ending_in(ends_in + 365, seats=75)]
    server = fake_server(calls)
    failed, result, dummy = run_module(module.main, dict(ARGS, max_age="7d", expiry_days=30), capsys)
    server.done()
    assert not failed and result["changed"] is syncs
    if syncs:
        assert "within 30" in result["reason"]
        fields = [change.split(":")[0] for change in result["changes"]]
        assert fields == ["expiration", "expiration_without_grace_period", "seats"]
        assert result["license_after"]["seats"] == 75 and result["license_before"]["plan"] == "Enterprise (Annually)"
    else:
        assert result["reason"].startswith("last sync") and "paid period ends in 19" in result["reason"]


def test_expiry_days_in_check_mode_reads_but_does_not_post(fake_server, capsys):
    server = fake_server([token_call(), get_connection(last_sync=iso(days_from_now(-2))), sub_ending_in(5)])
    failed, result, dummy = run_module(module.main, dict(ARGS, expiry_days=30), capsys, check_mode=True)
    server.done()
    assert result["changed"] and not result["synced"] and result["license_before"]["seats"] == 50


@pytest.mark.parametrize("calls, words", [
    ([get_connection(conn_id=None)], "apply the billing sync token first"),
    ([get_connection(enabled=False)], "is disabled"),
    ([get_connection(), get_enabled(False)], "cloud communication is off"),
])
def test_unconfigured_hosts_are_left_alone_with_the_reason(fake_server, capsys, calls, words):
    server = fake_server([token_call()] + calls)
    failed, result, dummy = run_module(module.main, dict(ARGS, force=True, unconfigured="skip"), capsys)
    server.done()
    assert not failed and not result["changed"] and result["reason"].startswith("left alone: ") and words in result["reason"]


def write_rate_limited(log_dir, what="token"):
    now = datetime.datetime.now(datetime.timezone.utc)
    if what == "token":
        line = ('%s 0HN8ABCDEF1GH:00000002 [ERR] Unsuccessful token response from https://identity.bitwarden.com/ for client '
                '"installation.0b1c2d3e-0000-4000-8000-000000000000" with status TooManyRequests-"Too Many Requests" (1a2b3c4d)\n')
    else:
        line = ('%s 0HN8ABCDEF1GH:00000002 [ERR] Request to "https://api.bitwarden.com/licenses/organization/x" is unsuccessful '
                'with status of TooManyRequests-"Too Many Requests": "Slow down! Too many requests. Try again in 1m.\n" (1a2b3c4d)\n')
    with open(log_dir / ("%s.txt" % now.strftime("%Y%m%d")), "a") as handle:
        handle.write(line % iso(now))


@pytest.mark.parametrize("what", ["token", "license"])
def test_rate_limited_sync_is_waited_out_and_retried(fake_server, capsys, tmp_path, what):
    log_dir = tmp_path / "logs" / "api" / "Api"
    log_dir.mkdir(parents=True)
    server = fake_server([token_call(), get_connection(), sub(),
                          Call("POST", SYNC, status=400, body=GENERIC, effect=lambda: write_rate_limited(log_dir, what)),
                          Call("POST", SYNC), get_connection(last_sync=recent()), sub()], module)
    failed, result, output = run_module(module.main, dict(ARGS, force=True, bwdata_path=str(tmp_path)), capsys)
    server.done()
    assert not failed and result["synced"] and result["rate_limited"] == 1
    assert server.sleeps == [60]
    assert "rate-limited this license sync (HTTP 429); waiting 60 s" in output


def test_rate_limited_past_the_deadline_names_the_rate_limit_not_the_key(fake_server, capsys, tmp_path):
    log_dir = tmp_path / "logs" / "api" / "Api"
    log_dir.mkdir(parents=True)
    # With the server's env file beside the log, a token rejection would be blamed on the key or the region.
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "global.override.env").write_text("globalSettings__baseServiceUri__cloudRegion=US\n")
    fake_server([token_call(), get_connection(), sub(),
                 Call("POST", SYNC, status=400, body=GENERIC, effect=lambda: write_rate_limited(log_dir))], module)
    failed, result, dummy = run_module(module.main, dict(ARGS, force=True, bwdata_path=str(tmp_path), rate_limit_deadline=0),
                                       capsys)
    assert failed and result["rate_limited"] == 1
    assert "the cloud is rate limiting this server's address" in result["msg"] and "TooManyRequests" in result["msg"]
    assert "rate-limited 1 time(s) within 0 s" in result["msg"] and "this is not a wrong key or region" in result["msg"]
    assert "rejected" not in result["msg"] and "mismatch" not in result["msg"]
