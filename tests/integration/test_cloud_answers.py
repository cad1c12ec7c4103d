"""The cloud's answers the simulator used to leave out (LicensesController, ValidateBillingSyncKeyCommand,
GetCloudOrganizationLicenseQuery; contract §11, issue 21 item 9), each decoded with its fix by
bitwarden_license_sync through real ansible-core; and the license Token whose claims the server shows."""

from __future__ import annotations

import base64
import datetime
import json

import pytest

from helpers.ansible_run import assert_no_secrets, run_module
from helpers.sim import start_fleet

NS = "selfhost.bitwarden."
ARGS = {
    "server_url": "{{ billing_sync_server_url }}",
    "bwdata_path": "{{ billing_sync_install_dir }}/bwdata",
    "client_id": "{{ billing_sync_client_id }}",
    "client_secret": "{{ billing_sync_client_secret }}",
    "organization_id": "{{ billing_sync_organization_id }}",
}
HOSTS = [
    {"name": "no-sub", "faults": {"cloud_account": "no_subscription"}},
    {"name": "unpaid", "faults": {"cloud_account": "unpaid"}},
    {"name": "no-key", "faults": {"cloud_account": "no_billing_sync_key"}},
    {"name": "deleted", "faults": {"cloud_account": "deleted"}, "sponsorships": 2},
    {"name": "jwt"},
]
EXPECTED = {
    "no-sub": "the cloud organization has no active subscription (No active subscription found.): renew or reactivate it",
    "unpaid": ("the cloud will not issue a license while the subscription is unpaid (Unable to generate license due to a "
               "payment issue. Please update your billing information or contact support for assistance.): update the "
               "billing information"),
    "no-key": "It answers this when the cloud organization never generated a billing sync token: generate one",
    "deleted": "the cloud has no organization with the license's id at https://api.bitwarden.com/licenses/organization/",
}


def secrets_of(fleet):
    values = []
    for name in fleet.names:
        state = fleet.instance(name)
        values += [state["billing_sync_token"]] + [cred["client_secret"] for cred in state["credentials"].values()]
    return [value for value in values if value]


def run(fleet, module, args, hosts="all"):
    result = run_module(NS + module, args, fleet.inventory, hosts=hosts)
    assert_no_secrets(result.output, secrets_of(fleet))
    return {event["host"]: event["result"] for event in result.results("module")}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = start_fleet(tmp_path_factory.mktemp("cloud-answers"), instances=HOSTS, defaults={"restart_delay": 0.2, "warmup": 0.3})
    for name in fleet.names:
        env_file = fleet.install_dir(name) / "bwdata" / "env" / "global.override.env"
        with open(env_file, "a", encoding="utf-8") as handle:
            handle.write("globalSettings__enableCloudCommunication=true\n")
        assert fleet.client.bitwarden_sh(name, "restart")["exit_code"] == 0
    run(fleet, "bitwarden_wait_for_server", dict(ARGS, timeout=60, delay=0.2))
    assert {fleet.instance(name)["state"] for name in fleet.names} == {"up"}
    for name, result in run(fleet, "bitwarden_billing_sync_token", dict(ARGS, billing_sync_token="{{ billing_sync_token }}")).items():
        assert result["connection"]["enabled"], (name, result)
    yield fleet
    fleet.stop()


def test_each_refusal_is_decoded_with_its_fix(fleet):
    results = run(fleet, "bitwarden_license_sync", ARGS, hosts=",".join(EXPECTED))
    for name, expected in EXPECTED.items():
        result = results[name]
        assert result["msg"].startswith("license sync failed: "), (name, result)
        assert expected in result["msg"], (name, result["msg"])
        assert "[api log: %s/bwdata/logs/api/Api/" % fleet.install_dir(name) in result["msg"]
        state = fleet.instance(name)
        assert state["state"] == "up" and state["connection"]["config"]["LastLicenseSync"] is None, name
    assert "(InternalServerError-Internal Server Error: An unhandled server error has occurred.)" in results["no-key"]["msg"]


def test_sponsorship_sync_for_an_unknown_cloud_organization(fleet):
    """The cloud answers "Invalid organization" (not "Invalid Billing Sync Key"); sync_info names it."""
    fleet.client.run_job("deleted")
    text = next((fleet.install_dir("deleted") / "bwdata" / "logs" / "api" / "Api").glob("*.txt")).read_text(encoding="utf-8")
    assert 'is unsuccessful with status of BadRequest-"Bad Request": "Invalid organization\n"' in text
    organization = run(fleet, "bitwarden_sync_info", ARGS, hosts="deleted")["deleted"]["organization"]
    assert organization["sponsorship_sync_state"] == "failed"
    assert organization["sponsorship_sync_message"].startswith(
        "the cloud has no organization with the billing sync connection's cloud organization id (Invalid organization")


def test_license_token_claims_win_over_the_file(fleet):
    """The cloud's license carries a Token (JWT); since 2025.12.1 the server shows its claims, so an edited Expires in
    the file changes nothing."""
    results = run(fleet, "bitwarden_license_sync", dict(ARGS, force=True), hosts="jwt")
    assert results["jwt"]["changed"], results["jwt"]
    state = fleet.instance("jwt")
    path = fleet.install_dir("jwt") / "bwdata" / "core" / "licenses" / "organization" / ("%s.json" % state["organization_id"])
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["Token"].count(".") == 2
    before = run(fleet, "bitwarden_sync_info", ARGS, hosts="jwt")["jwt"]["organization"]["license"]
    document["Expires"] = "2099-01-01T00:00:00Z"
    document["ExpirationWithoutGracePeriod"] = "2098-11-02T00:00:00Z"
    path.write_text(json.dumps(document), encoding="utf-8")
    after = run(fleet, "bitwarden_sync_info", ARGS, hosts="jwt")["jwt"]["organization"]["license"]
    assert after == before and after["days_left"] is not None and after["days_left"] < 400
    payload = document["Token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    shown = datetime.datetime.strptime(claims["Expires"], "%m/%d/%Y %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%S")
    assert after["expiration"] == shown  # the claim's DateTime, written back without a kind
