"""bitwarden_wait_for_server: the three readiness steps, the deadline and its message."""

from __future__ import annotations

import urllib.parse
from urllib.error import URLError

from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_wait_for_server as module

from unit.plugins.module_utils.bitwarden_fakes import (  # pylint: disable=unused-import
    BASE_ARGS,
    SERVER,
    Call,
    assert_no_secret,
    fake_server,
    run_module,
    token_call,
)

REFUSED = URLError(ConnectionRefusedError(111, "Connection refused"))
PROBE_CLIENT_ID = "user.00000000-0000-0000-0000-000000000000"


def alive(path, **kwargs):
    return Call("GET", path, auth=False, body="2026-08-20T18:24:37.1234567Z", **kwargs)


def test_waits_through_refused_502_and_token_5xx(fake_server, capsys):
    server = fake_server([
        alive("/api/alive", raises=REFUSED), alive("/api/alive", status=502), alive("/api/alive"),
        alive("/identity/alive", status=502), alive("/identity/alive"),
        token_call(status=500), token_call(),
    ], module)
    failed, result, output = run_module(module.main, dict(BASE_ARGS, delay=1), capsys)
    server.done()
    assert not failed and not result["changed"]
    assert result["attempts"] == 7 and result["elapsed"] == 4.0
    assert server.sleeps == [1, 1, 1, 1]  # one poll at a time: the client itself does not retry here
    assert_no_secret(output)


def test_without_a_key_an_unknown_client_proves_the_database(fake_server, capsys):
    server = fake_server([alive("/api/alive"), alive("/identity/alive"),
                          token_call(status=503), token_call(status=400, body={"error": "invalid_client"})], module)
    failed, result, dummy = run_module(module.main, {"server_url": SERVER, "delay": 2}, capsys, check_mode=True)
    server.done()
    assert not failed and result["attempts"] == 4
    form = dict(urllib.parse.parse_qsl(server.seen[2][3]))
    assert form["client_id"] == PROBE_CLIENT_ID and form["grant_type"] == "client_credentials"


def test_a_rejected_key_fails_at_once(fake_server, capsys):
    fake_server([alive("/api/alive"), alive("/identity/alive"),
                 token_call(status=400, body={"error": "invalid_client"})], module)
    failed, result, output = run_module(module.main, dict(BASE_ARGS), capsys)
    assert failed and "answers, but" in result["msg"] and "invalid_client" in result["msg"]
    assert_no_secret(output)


def test_timeout_names_the_step_that_never_answered(fake_server, capsys):
    server = fake_server([alive("/api/alive")] + [alive("/identity/alive", status=502)] * 6, module)
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, timeout=10, delay=2), capsys)
    assert failed
    assert "not ready within 10 s" in result["msg"] and "GET /identity/alive never succeeded" in result["msg"]
    assert "HTTP 502" in result["msg"]
    assert result["attempts"] == 7 and server.sleeps == [2, 2, 2, 2, 2]


def test_removes_the_restart_marker_once_the_server_answers(fake_server, capsys, tmp_path):
    marker = tmp_path / ".selfhost-bitwarden-restart-pending"
    marker.touch()
    server = fake_server([alive("/api/alive"), alive("/identity/alive"), token_call()], module)
    failed, dummy, dummy = run_module(module.main, dict(BASE_ARGS, restart_marker=str(marker)), capsys)
    server.done()
    assert not failed and not marker.exists()


def test_keeps_the_restart_marker_when_the_server_never_answers(fake_server, capsys, tmp_path):
    marker = tmp_path / ".selfhost-bitwarden-restart-pending"
    marker.touch()
    server = fake_server([alive("/api/alive", raises=REFUSED)] * 3, module)
    failed, dummy, dummy = run_module(module.main, dict(BASE_ARGS, restart_marker=str(marker), timeout=2, delay=1), capsys)
    assert failed and marker.exists()


def test_a_web_page_instead_of_the_api_fails_at_once(fake_server, capsys):
    page = b"<html><head><title>404 Not Found</title></head><body>nginx</body></html>"
    server = fake_server([Call("GET", "/api/alive", auth=False, status=404, body=page,
                               headers={"Content-Type": "text/html"})], module)
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, timeout=600, delay=2), capsys)
    server.done()
    assert failed and server.sleeps == [] and result["attempts"] == 1
    assert "with a web page (HTTP 404), not the Bitwarden API: set server_url" in result["msg"]


def test_each_request_waits_only_what_is_left_of_the_timeout(fake_server, capsys):
    servers = []

    def use_the_whole_timeout():
        server = servers[0]
        server.clock.now += server.seen[-1][4]["timeout"]
    timeout = URLError(TimeoutError("timed out"))
    servers.append(fake_server([alive("/api/alive", raises=timeout, effect=use_the_whole_timeout)] * 2, module))
    failed, result, dummy = run_module(module.main, dict(BASE_ARGS, timeout=15, delay=1), capsys)
    assert failed and "not ready within 15 s" in result["msg"] and "no answer within 4 s" in result["msg"]
    assert [seen[4]["timeout"] for seen in servers[0].seen] == [10, 4]
    assert result["elapsed"] == 15.0
