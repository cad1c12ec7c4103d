"""Bad API-side inputs through real ansible-core against the simulator (issue 12 #2, #6, #8, #10; issue 16 API side).

Every case runs one module at -vvvv with an Ansible log and the recording callback, and asserts: the outcome, a
message that names the option and the fix, that it came within seconds (no retries for what retrying cannot fix),
the stored billing sync key when the case could touch it, and that no secret (nor its repr, JSON, URL-encoded or
trimmed spelling) appears in stdout, stderr, the log or the callback data.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
import uuid

import pytest

from helpers.ansible_run import run_module, run_playbook
from helpers.sim import start_fleet

NS = "selfhost.bitwarden."
CONNECTION = {
    "server_url": "{{ billing_sync_server_url }}",
    "client_id": "{{ billing_sync_client_id }}",
    "client_secret": "{{ billing_sync_client_secret }}",
    "retry_deadline": 60,  # the default: a case that retries what it should not would take a minute
}
TOKEN = dict(CONNECTION, organization_id="{{ billing_sync_organization_id }}", billing_sync_token="{{ billing_sync_token }}")
INFO = dict(CONNECTION, organization_id="{{ billing_sync_organization_id }}")
# "Within seconds": the wall time of a whole ansible-playbook run at -vvvv on a loaded 2-core machine is 10-17 s, so
# the bound sits between that and the 60 s retry_deadline a retried case would run into.
FAST = 35
# A made-up access token the cases inject: a JWT-shaped core that must never be printed.
FAKE_TOKEN_CORE = "eyJhbGciOiJSUzI1NiJ9.ZmFrZS1hY2Nlc3MtdG9rZW4tY29yZQ.c2lnbmF0dXJlLXZhbHVl"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    running = start_fleet(tmp_path_factory.mktemp("api-inputs"), instances=[{"name": "bw-plain"}, {"name": "bw-tls", "tls": True}],
                          defaults={"restart_delay": 0.2, "warmup": 0.2})
    yield running
    running.stop()


def secret_spellings(secret):
    """Every way a secret can leak: as is, trimmed, URL-encoded, repr of str/bytes, JSON-escaped."""
    forms = set()
    for text in (secret, secret.strip()):
        forms |= {text, urllib.parse.quote(text, safe=""), urllib.parse.quote_plus(text), repr(text)[1:-1],
                  repr(text.encode("utf-8"))[2:-1], json.dumps(text)[1:-1]}
    return {form for form in forms if len(form) >= 6}


def host_secrets(fleet, host):
    state = fleet.instance(host)
    values = [state["billing_sync_token"]] + [cred["client_secret"] for cred in state["credentials"].values()]
    return [value for value in values if value]


def run_case(fleet, module, args, host="bw-plain", extra_secrets=(), tmp_path=None, **kwargs):
    """Run one module at -vvvv; scan every artefact for secrets; return (rc, result, seconds, run)."""
    log = tmp_path / "ansible.log"
    started = time.monotonic()
    run = run_module(NS + module, args, fleet.inventory, hosts=host, verbosity=4, env={"ANSIBLE_LOG_PATH": str(log)},
                     **kwargs)
    seconds = time.monotonic() - started
    artefacts = run.output + json.dumps(run.events) + (log.read_text(encoding="utf-8") if log.exists() else "")
    for index, secret in enumerate(host_secrets(fleet, host) + list(extra_secrets)):
        for form in secret_spellings(secret):
            assert form not in artefacts, "secret #%d leaked (spelling %d chars)" % (index, len(form))
    (event,) = run.results("module", host)
    return run.rc, event["result"], seconds, run


def stored_key(fleet, host="bw-plain"):
    connection = fleet.instance(host)["connection"]
    return connection["config"]["BillingSyncKey"] if connection else None


# -- 12 #2: header-unsafe access tokens ------------------------------------------------------------------------

@pytest.mark.parametrize("token", [FAKE_TOKEN_CORE + "\r", FAKE_TOKEN_CORE + "\r\nX-Injected: 1", "\n" + FAKE_TOKEN_CORE])
def test_access_token_with_cr_lf_is_never_printed(fleet, tmp_path, token):
    fleet.client.reset_counters("bw-plain")
    rc, result, seconds, run = run_case(fleet, "bitwarden_sync_info", {"server_url": "{{ billing_sync_server_url }}",
                                                                       "access_token": token},
                                        extra_secrets=[token], tmp_path=tmp_path)
    assert rc != 0 and seconds < FAST
    assert "Invalid header value" not in run.output
    # Inside the token: rejected before sending. Around it: trimmed with a warning, then the server's 401.
    if "X-Injected" in token:
        assert "access_token" in result["msg"] and "control character" in result["msg"]
        assert fleet.instance("bw-plain")["counters"]["requests"] == 0  # rejected before anything was sent
    else:
        assert "401" in result["msg"] or "access_token" in result["msg"]
        assert any("access_token" in warning for warning in result.get("warnings", []))


# -- 12 #6: tokens validated where they enter --------------------------------------------------------------------

def test_billing_sync_token_with_a_trailing_newline_is_trimmed_with_a_warning(fleet, tmp_path):
    token = fleet.instance("bw-plain")["billing_sync_token"]
    rc, result, dummy, dummy = run_case(fleet, "bitwarden_billing_sync_token",
                                        dict(TOKEN, billing_sync_token="{{ billing_sync_token }}\n"), tmp_path=tmp_path)
    assert rc == 0, result
    assert stored_key(fleet) == token
    assert any("billing_sync_token" in warning and "whitespace" in warning for warning in result["warnings"])
    rc, result, dummy, dummy = run_case(fleet, "bitwarden_billing_sync_token", TOKEN, tmp_path=tmp_path)
    assert rc == 0 and not result["changed"], result


@pytest.mark.parametrize("value, expected", [
    ("", "billing_sync_token must not be empty"),
    ("   \n", "billing_sync_token must not be empty"),
    (["first-half-of-a-token", "second-half-of-a-token"], "billing_sync_token must be a string"),
    ({"key": "value"}, "billing_sync_token must be a string"),
    (12345, "billing_sync_token must be a string"),
])
def test_bad_billing_sync_token_is_rejected_and_the_stored_key_stays(fleet, tmp_path, value, expected):
    before = stored_key(fleet)
    fleet.client.reset_counters("bw-plain")
    rc, result, seconds, dummy = run_case(fleet, "bitwarden_billing_sync_token", dict(TOKEN, billing_sync_token=value),
                                          tmp_path=tmp_path)
    assert rc != 0 and expected in result["msg"] and seconds < FAST, result
    assert stored_key(fleet) == before
    assert fleet.instance("bw-plain")["counters"]["writes"] == 0


@pytest.mark.parametrize("value, expected", [
    (12345, "client_secret must be a string"),
    (["client-secret-in-a-list"], "client_secret must be a string"),
    ("", "client_secret must not be empty"),
])
def test_bad_client_secret_is_rejected_naming_the_option(fleet, tmp_path, value, expected):
    rc, result, seconds, dummy = run_case(fleet, "bitwarden_sync_info", dict(INFO, client_secret=value), tmp_path=tmp_path)
    assert rc != 0 and expected in result["msg"] and seconds < FAST, result


def test_client_secret_with_a_trailing_newline_is_trimmed_with_a_warning(fleet, tmp_path):
    rc, result, dummy, dummy = run_case(fleet, "bitwarden_sync_info",
                                        dict(INFO, client_secret="{{ billing_sync_client_secret }}\n"), tmp_path=tmp_path)
    assert rc == 0, result
    assert any("client_secret" in warning for warning in result["warnings"])


# -- 12 #10: every bad connection input answered within seconds, naming the option --------------------------------

def bad_inputs(fleet):
    plain = fleet.host_vars("bw-plain")["billing_sync_server_url"]
    port = plain.rsplit(":", 1)[1]
    return {
        "timeout 0": (dict(INFO, timeout=0), "timeout must be"),
        "timeout negative": (dict(INFO, timeout=-5), "timeout must be"),
        "timeout huge": (dict(INFO, timeout=10 ** 12), "timeout must be"),
        "retry_deadline negative": (dict(INFO, retry_deadline=-1), "retry_deadline must be"),
        "port 99999": (dict(INFO, server_url="http://127.0.0.1:99999"), "server_url"),
        "no scheme": (dict(INFO, server_url="127.0.0.1:%s" % port), "server_url"),
        "path /api": (dict(INFO, server_url=plain + "/api"), "server_url"),
        "path /vault": (dict(INFO, server_url=plain + "/vault"), "server_url"),
        "fragment": (dict(INFO, server_url=plain + "/#/login"), "server_url"),
        "path /bitwarden": (dict(INFO, server_url=plain + "/bitwarden"), "with a web page (HTTP 404), not the Bitwarden API"),
        "missing ca_path": (dict(INFO, ca_path="/nonexistent/ca.pem"), "ca_path /nonexistent/ca.pem does not exist"),
        "wrong secret": (dict(INFO, client_secret="wrong-secret-value-0123456789"), "invalid_client"),
        "unknown organization": (dict(INFO, organization_id=str(uuid.uuid4())), "is not an organization"),
        "malformed organization": (dict(INFO, organization_id="my-org"), "organization_id"),
    }


CASES = ["timeout 0", "timeout negative", "timeout huge", "retry_deadline negative", "port 99999", "no scheme",
         "path /api", "path /vault", "fragment", "path /bitwarden", "missing ca_path", "wrong secret", "unknown organization",
         "malformed organization"]


@pytest.mark.parametrize("case", CASES)
def test_bad_connection_input_fails_fast_with_the_option_and_the_fix(fleet, tmp_path, case):
    args, expected = bad_inputs(fleet)[case]
    rc, result, seconds, dummy = run_case(fleet, "bitwarden_sync_info", args, tmp_path=tmp_path,
                                          extra_secrets=["wrong-secret-value-0123456789"])
    assert rc != 0, result
    assert expected in result["msg"], result["msg"]
    assert seconds < FAST, "%s took %.1f s" % (case, seconds)
    assert "<html" not in result["msg"].lower() and "Traceback" not in result.get("module_stderr", "")
    if case == "wrong secret":
        assert "client_id/client_secret" in result["msg"]


def test_admin_key_is_reported_as_not_an_owner(fleet, tmp_path):
    admin = fleet.instance("bw-plain")["credentials"]["admin"]
    args = dict(INFO, client_id=admin["client_id"], client_secret=admin["client_secret"])
    rc, result, seconds, dummy = run_case(fleet, "bitwarden_sync_info", args, tmp_path=tmp_path)
    assert rc != 0 and seconds < FAST
    assert "not an owner" in result["msg"] and "Admin" in result["msg"], result["msg"]


def test_tls_failure_names_ca_path_and_validate_certs(fleet, tmp_path):
    rc, result, seconds, dummy = run_case(fleet, "bitwarden_sync_info", INFO, host="bw-tls", tmp_path=tmp_path)
    assert rc != 0 and seconds < FAST
    assert "ca_path" in result["msg"] and "validate_certs" in result["msg"], result["msg"]


# -- 12 #8: wait_for_server keeps to its timeout ------------------------------------------------------------------

@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a hung proxy)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


def test_wait_for_server_stops_at_its_timeout_and_says_so_truthfully(fleet, tmp_path, silent_port):
    args = {"server_url": "http://127.0.0.1:%d" % silent_port, "timeout": 15, "delay": 1}
    rc, result, seconds, dummy = run_case(fleet, "bitwarden_wait_for_server", args, tmp_path=tmp_path)
    assert rc != 0
    assert 14 <= result["elapsed"] <= 16 and seconds < 15 + FAST, (result, seconds)
    # The first request may wait 10 s, the last only what is left of the 15 s: the message says what happened.
    assert "within 15 s" in result["msg"] and "no answer within" in result["msg"], result["msg"]


# -- 12 #10: the role's input check on a secret that YAML read as a number ---------------------------------------

@pytest.mark.parametrize("secret", [12345, ["client-secret-in-a-list"]])
def test_role_input_check_names_a_secret_that_is_no_string(fleet, tmp_path, secret):
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(
        "- hosts: bw-plain\n  gather_facts: false\n  tasks:\n"
        "    - name: preflight\n      ansible.builtin.include_role:\n"
        "        name: selfhost.bitwarden.billing_sync\n        tasks_from: inputs\n"
        "      vars:\n        _billing_sync_entry_point: main\n", encoding="utf-8")
    run = run_playbook(playbook, fleet.inventory, extra_vars={"billing_sync_client_secret": secret})
    assert run.rc != 0
    (event,) = [event for event in run.results(host="bw-plain") if event["status"] == "failed"]
    assert "set billing_sync_client_secret as a quoted string" in event["result"]["msg"], event["result"]
    assert "has no len" not in run.output


def test_wait_for_server_at_a_wrong_path_fails_at_once(fleet, tmp_path):
    args = {"server_url": fleet.host_vars("bw-plain")["billing_sync_server_url"] + "/bitwarden", "timeout": 600}
    rc, result, seconds, dummy = run_case(fleet, "bitwarden_wait_for_server", args, tmp_path=tmp_path)
    assert rc != 0 and seconds < FAST and result["attempts"] == 1
    assert "with a web page (HTTP 404), not the Bitwarden API: set server_url" in result["msg"]
