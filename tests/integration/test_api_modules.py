"""The API modules through real ansible-core against the simulator: check mode, real run, idempotent re-run, state."""

from __future__ import annotations

import pytest

from helpers.ansible_run import assert_no_secrets, run_module

NS = "selfhost.bitwarden."
CONNECTION_ARGS = {
    "server_url": "{{ billing_sync_server_url }}",
    "bwdata_path": "{{ billing_sync_install_dir }}/bwdata",
    "client_id": "{{ billing_sync_client_id }}",
    "client_secret": "{{ billing_sync_client_secret }}",
}
TOKEN_ARGS = dict(CONNECTION_ARGS, organization_id="{{ billing_sync_organization_id }}",
                  billing_sync_token="{{ billing_sync_token }}")
SYNC_ARGS = dict(CONNECTION_ARGS, organization_id="{{ billing_sync_organization_id }}")
FAST = {"restart_delay": 0.2, "warmup": 0.3}


def secrets_of(state):
    values = [state["billing_sync_token"]] + [cred["client_secret"] for cred in state["credentials"].values()]
    return [value for value in values if value]


def call(fleet, name, module, args, check=False, diff=False, verbosity=0, host=None, extra_secrets=()):
    """Run one module on one simulated host; the output never holds a secret. Returns (rc, result)."""
    host = host or fleet.names[0]
    run = run_module(NS + module, args, fleet.inventory, hosts=host, check=check, diff=diff, verbosity=verbosity)
    assert_no_secrets(run.output, secrets_of(fleet.instance(host)) + list(extra_secrets))
    (event,) = run.results("module", host)
    return run.rc, event["result"]


def enable_cloud_communication(fleet, name, extra_lines=()):
    """What bitwarden_cloud_comm and the role's restart do (tested elsewhere): env line, then bitwarden.sh restart."""
    env_file = fleet.install_dir(name) / "bwdata" / "env" / "global.override.env"
    with open(env_file, "a", encoding="utf-8") as handle:
        handle.write("globalSettings__enableCloudCommunication=true\n")
        for line in extra_lines:
            handle.write(line + "\n")
    assert fleet.client.bitwarden_sh(name, "restart")["exit_code"] == 0


def wait(fleet, name):
    rc, result = call(fleet, name, "bitwarden_wait_for_server", dict(CONNECTION_ARGS, timeout=30, delay=0.2),
                      host=name)
    assert rc == 0, result
    return result


def routes(fleet, name):
    return fleet.instance(name)["counters"]["by_route"]


@pytest.fixture
def us(sim_fleet):
    fleet = sim_fleet([{"name": "bw-us-1"}], **FAST)
    enable_cloud_communication(fleet, "bw-us-1")
    wait(fleet, "bw-us-1")
    return fleet


def test_token_check_create_idempotent_rotate_absent(us):
    name = "bw-us-1"
    rc, result = call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS, check=True, diff=True)
    assert rc == 0 and result["changed"] and result["action"] == "created"
    assert result["diff"]["before"] == {"state": "absent"}
    assert us.instance(name)["connection"] is None

    rc, result = call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS)
    state = us.instance(name)
    assert rc == 0 and result["changed"] and result["action"] == "created"
    assert result["cloud_communication_enabled"] is True
    assert result["connection"]["id"] == state["connection"]["id"]
    assert result["connection"]["cloud_organization_id"] == state["cloud_organization_id"]
    assert state["connection"]["config"]["BillingSyncKey"] == state["billing_sync_token"]
    assert "BillingSyncKey" not in str(result) and "billing_sync_key" not in str(result)

    us.client.reset_counters(name)
    rc, result = call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS)
    assert rc == 0 and not result["changed"] and result["action"] == "none"
    counters = us.instance(name)["counters"]
    assert counters["writes"] == 0 and counters["requests"] == 3, counters
    assert not any(route.startswith(("PUT", "POST /api")) for route in counters["by_route"])

    rc, result = call(us, name, "bitwarden_license_sync", SYNC_ARGS)
    assert rc == 0 and result["synced"]
    synced_at = us.instance(name)["connection"]["config"]["LastLicenseSync"]
    assert synced_at

    new_token = "rotated-" + us.instance(name)["billing_sync_token"][::-1]
    rotate = dict(TOKEN_ARGS, billing_sync_token=new_token)
    rc, result = call(us, name, "bitwarden_billing_sync_token", rotate, check=True, diff=True, extra_secrets=[new_token])
    assert rc == 0 and result["action"] == "updated"
    assert result["diff"]["before"]["billing_sync_token"] != result["diff"]["after"]["billing_sync_token"]
    rc, result = call(us, name, "bitwarden_billing_sync_token", rotate, extra_secrets=[new_token])
    config = us.instance(name)["connection"]["config"]
    assert rc == 0 and result["action"] == "updated"
    assert config["BillingSyncKey"] == new_token and config["LastLicenseSync"] == synced_at
    assert result["connection"]["last_license_sync"] == synced_at

    absent = dict(SYNC_ARGS, state="absent")
    rc, result = call(us, name, "bitwarden_billing_sync_token", absent, check=True)
    assert rc == 0 and result["action"] == "deleted" and us.instance(name)["connection"] is not None
    rc, result = call(us, name, "bitwarden_billing_sync_token", absent)
    assert rc == 0 and result["action"] == "deleted" and us.instance(name)["connection"] is None
    rc, result = call(us, name, "bitwarden_billing_sync_token", absent)
    assert rc == 0 and not result["changed"] and result["action"] == "none"


def test_first_sync_once_then_not_again_then_force(us):
    name = "bw-us-1"
    assert call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS)[0] == 0

    rc, result = call(us, name, "bitwarden_license_sync", SYNC_ARGS, check=True)
    assert rc == 0 and result["changed"] and not result["synced"]
    assert us.instance(name)["connection"]["config"]["LastLicenseSync"] is None

    us.client.reset_counters(name)
    rc, result = call(us, name, "bitwarden_license_sync", SYNC_ARGS)
    first = us.instance(name)
    assert rc == 0 and result["changed"] and result["synced"] and result["previous_license_sync"] is None
    assert result["last_license_sync"] == first["connection"]["config"]["LastLicenseSync"]
    # token, GET connection, GET license, POST sync, GET connection, GET license (the license before and after)
    assert first["counters"]["requests"] == 6, first["counters"]
    assert first["counters"]["by_route"]["POST /api/organizations/licenses/self-hosted/{id}/sync"] == 1

    us.client.reset_counters(name)
    rc, result = call(us, name, "bitwarden_license_sync", SYNC_ARGS)
    second = us.instance(name)
    assert rc == 0 and not result["changed"] and not result["synced"]
    assert second["counters"]["requests"] == 2 and second["counters"]["cloud_calls"] == 0

    rc, result = call(us, name, "bitwarden_license_sync", dict(SYNC_ARGS, force=True))
    assert rc == 0 and result["changed"] and result["synced"]
    assert result["previous_license_sync"] == first["connection"]["config"]["LastLicenseSync"]
    assert result["last_license_sync"] > result["previous_license_sync"]


def test_sync_info_reports_the_state(us):
    name = "bw-us-1"
    assert call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS)[0] == 0
    assert call(us, name, "bitwarden_license_sync", SYNC_ARGS)[0] == 0
    state = us.instance(name)
    rc, result = call(us, name, "bitwarden_sync_info", SYNC_ARGS, check=True)
    assert rc == 0 and not result["changed"]
    assert result["server_version"] == state["version"] and result["cloud_region"] == "US"
    assert result["cloud_communication_enabled"] is True
    organization = result["organization"]
    assert organization["id"] == state["organization_id"]
    assert organization["billing_sync_configured"] and organization["billing_sync_enabled"]
    assert organization["cloud_organization_id"] == state["cloud_organization_id"]
    assert organization["last_license_sync"] == state["connection"]["config"]["LastLicenseSync"]
    assert "sponsorship_last_sync_date" in organization


def test_wrong_billing_sync_token_gives_the_real_reason(us):
    name = "bw-us-1"
    us.client.set_faults(name, {"wrong_billing_sync_token": True})
    assert call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS)[0] == 0
    rc, result = call(us, name, "bitwarden_license_sync", SYNC_ARGS)
    assert rc != 0
    assert "Invalid Billing Sync Key" in result["msg"] and "bitwarden_billing_sync_token" in result["msg"]


def test_cloud_unreachable_gives_the_real_reason(us):
    name = "bw-us-1"
    us.client.set_faults(name, {"cloud_unreachable": True})
    assert call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS)[0] == 0
    rc, result = call(us, name, "bitwarden_license_sync", SYNC_ARGS)
    assert rc != 0 and "cannot reach the Bitwarden cloud" in result["msg"]


def test_eu_installation_with_us_uris_names_the_region_mismatch(sim_fleet):
    fleet = sim_fleet([{"name": "bw-eu-1", "region": "EU"}], **FAST)
    name = "bw-eu-1"
    enable_cloud_communication(fleet, name)  # without the EU identity/api URIs
    wait(fleet, name)
    assert call(fleet, name, "bitwarden_billing_sync_token", TOKEN_ARGS)[0] == 0
    rc, result = call(fleet, name, "bitwarden_license_sync", SYNC_ARGS)
    assert rc != 0
    assert result["msg"].startswith("license sync failed: region mismatch")
    assert "EU region" in result["msg"] and "https://identity.bitwarden.com" in result["msg"]


def test_cloud_communication_off(sim_fleet):
    fleet = sim_fleet([{"name": "bw-1"}], **FAST)
    rc, result = call(fleet, "bw-1", "bitwarden_billing_sync_token", TOKEN_ARGS)
    assert rc == 0 and result["changed"] and result["cloud_communication_enabled"] is False
    rc, result = call(fleet, "bw-1", "bitwarden_license_sync", SYNC_ARGS)
    assert rc != 0 and "bitwarden_cloud_comm" in result["msg"] and "restart" in result["msg"]


def test_no_connection_says_apply_the_token_first(us):
    rc, result = call(us, "bw-us-1", "bitwarden_license_sync", SYNC_ARGS)
    assert rc != 0 and "apply the billing sync token first" in result["msg"]


def test_organization_api_key_gets_the_clear_403_message(us):
    name = "bw-us-1"
    org_key = us.instance(name)["credentials"]["organization"]
    args = dict(TOKEN_ARGS, client_id=org_key["client_id"], client_secret=org_key["client_secret"])
    rc, result = call(us, name, "bitwarden_billing_sync_token", args)
    assert rc != 0 and "organization API key" in result["msg"] and "owner" in result["msg"]
    assert us.instance(name)["connection"] is None


def test_admin_that_is_not_owner(us):
    name = "bw-us-1"
    admin = us.instance(name)["credentials"]["admin"]
    args = dict(TOKEN_ARGS, client_id=admin["client_id"], client_secret=admin["client_secret"])
    rc, result = call(us, name, "bitwarden_billing_sync_token", args)
    assert rc != 0 and "not an owner" in result["msg"]


def test_wrong_key_is_invalid_client(us):
    rc, result = call(us, "bw-us-1", "bitwarden_billing_sync_token", dict(TOKEN_ARGS, client_secret="not-the-key"),
                      extra_secrets=["not-the-key"])
    assert rc != 0 and "invalid_client" in result["msg"] and "another server" in result["msg"]


@pytest.mark.parametrize("version, expected", [
    ("2026.8.0", "Cannot verify license file"),
    ("2026.5.0", "before 2026.6.2"),
])
def test_missing_license_file(sim_fleet, version, expected):
    fleet = sim_fleet([{"name": "bw-1"}], version=version, license=False, **FAST)
    rc, result = call(fleet, "bw-1", "bitwarden_billing_sync_token", TOKEN_ARGS)
    assert rc != 0 and expected in result["msg"] and "license" in result["msg"]
    assert fleet.instance("bw-1")["connection"] is None


def test_server_2023_1_names_the_version_needed(sim_fleet):
    fleet = sim_fleet([{"name": "bw-old"}], version="2023.1.0", **FAST)
    enable_cloud_communication(fleet, "bw-old")
    wait(fleet, "bw-old")
    assert call(fleet, "bw-old", "bitwarden_billing_sync_token", TOKEN_ARGS)[0] == 0
    rc, result = call(fleet, "bw-old", "bitwarden_license_sync", SYNC_ARGS)
    assert rc != 0 and "2023.1.0" in result["msg"] and "needs 2023.2.0" in result["msg"]


def test_429_and_503_are_retried(us):
    name = "bw-us-1"
    us.client.set_faults(name, {"http": [
        {"method": "GET", "path_prefix": "/api/organizations/connections/", "status": 429, "times": 1, "retry_after": 1},
        {"method": "POST", "path_prefix": "/api/organizations/licenses/", "status": 503, "times": 2},
    ]})
    assert call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS)[0] == 0
    rc, result = call(us, name, "bitwarden_license_sync", SYNC_ARGS)
    assert rc == 0 and result["synced"]
    counters = us.instance(name)["counters"]["by_route"]
    assert sum(n for route, n in counters.items() if route.startswith("POST /api/organizations/licenses")) == 3, counters


def test_the_same_device_identifier_on_every_run(us):
    name = "bw-us-1"
    for dummy in range(2):
        assert call(us, name, "bitwarden_billing_sync_token", TOKEN_ARGS)[0] == 0
        assert call(us, name, "bitwarden_sync_info", SYNC_ARGS)[0] == 0
    devices = us.instance(name)["devices"]
    assert len(devices) == 1, devices


def test_no_secret_in_the_output_at_vvvv(us):
    name = "bw-us-1"
    for module, args, check in (("bitwarden_billing_sync_token", TOKEN_ARGS, True),
                                ("bitwarden_billing_sync_token", TOKEN_ARGS, False),
                                ("bitwarden_license_sync", SYNC_ARGS, False),
                                ("bitwarden_sync_info", SYNC_ARGS, False),
                                ("bitwarden_wait_for_server", CONNECTION_ARGS, False)):
        rc, dummy = call(us, name, module, args, check=check, diff=True, verbosity=4)
        assert rc == 0


def test_wait_for_server_after_a_restart(us):
    name = "bw-us-1"
    assert us.client.bitwarden_sh(name, "restart")["exit_code"] == 0
    result = wait(us, name)
    assert not result["changed"] and result["attempts"] >= 3


def test_wait_for_server_names_what_never_answered(sim_fleet):
    fleet = sim_fleet([{"name": "bw-1"}], **FAST)
    fleet.client.set_faults("bw-1", {"http": [{"path_prefix": "/identity/alive", "status": 502, "times": 1000}]})
    rc, result = call(fleet, "bw-1", "bitwarden_wait_for_server", dict(CONNECTION_ARGS, timeout=2, delay=0.5))
    assert rc != 0 and "GET /identity/alive never succeeded" in result["msg"] and "HTTP 502" in result["msg"]
