"""The served clouds (fleet option serve_clouds, default on) and the inventory's cloud_endpoint_fault.

Pins what the cloud preflight meets: the same Cloud objects the instances call in-process (contract 3.2:
`POST {IdentityUri}/connect/token` with grant_type=client_credentials, scope=api.licensing,
client_id=installation.<id>, the installation key; `GET {ApiUri}/licenses/organization/{id}`), `GET /alive` on both
(server src/Api/Controllers/InfoController.cs and src/Identity/Controllers/InfoController.cs: `~/alive` returns
DateTime.UtcNow), the identity server's `{"error":"invalid_client"}` for an installation another region issued,
and the host egress faults (DNS, connection refused, an untrusted certificate), which block the server's own
license sync as well.
"""

import os
import socket
import subprocess
import sys

import pytest
import requests
import yaml

from helpers.sim import BWSIM, Fleet
from synchelpers import GENERIC, api_log, enable_cloud, prepare, sync


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([
        {"name": "us"},
        {"name": "eu", "region": "EU"},
        {"name": "dns", "cloud_endpoint_fault": "dns"},
        {"name": "refused", "cloud_endpoint_fault": "refused"},
        {"name": "tls", "cloud_endpoint_fault": "tls"},
        {"name": "wrong", "cloud_endpoint_fault": "wrong_region"},
    ])


def endpoints(fleet, name, region=None):
    """The served cloud the host's region (or ``region``) picks from the inventory's two."""
    host = fleet.host_vars(name)
    return host["billing_sync_preflight_endpoints"][region or host["billing_sync_region"]]


def installation(fleet, name):
    values = {}
    with open(os.path.join(fleet.install_dir(name), "bwdata", "env", "global.override.env"), encoding="utf-8") as handle:
        for line in handle:
            key, dummy, value = line.rstrip("\n").partition("=")
            values[key] = value
    return values["globalSettings__installation__id"], values["globalSettings__installation__key"]


def token(fleet, name, identity, **extra):
    installation_id, key = installation(fleet, name)
    form = {"grant_type": "client_credentials", "scope": "api.licensing", "client_id": f"installation.{installation_id}",
            "client_secret": key}
    form.update(extra)
    return requests.post(identity + "/connect/token", data=form, verify=str(fleet.dir / "ca.pem"), timeout=5)


def test_installation_token_from_its_region_only(fleet):
    ca = str(fleet.dir / "ca.pem")
    us, eu = endpoints(fleet, "us"), endpoints(fleet, "eu")
    assert us != eu and fleet.host_vars("us")["billing_sync_preflight_ca_path"] == ca
    response = token(fleet, "us", us["identity"])
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"
    assert token(fleet, "eu", eu["identity"]).status_code == 200
    # The other region's identity server does not know the installation.
    response = token(fleet, "us", eu["identity"])
    assert response.status_code == 400 and response.json() == {"error": "invalid_client"}
    assert token(fleet, "us", us["identity"], client_secret="wrong").json() == {"error": "invalid_client"}
    for service in ("identity", "api"):
        alive = requests.get(us[service] + "/alive", verify=ca, timeout=5)
        assert alive.status_code == 200 and alive.json().endswith("Z")


def test_served_api_is_the_cloud_the_instances_call(fleet):
    us = endpoints(fleet, "us")
    state = fleet.instance("us")
    access = token(fleet, "us", us["identity"]).json()["access_token"]
    url = us["api"] + "/licenses/organization/" + state["cloud_organization_id"]
    response = requests.get(url, headers={"Authorization": "Bearer " + access}, json={"licenseKey": "x", "billingSyncKey": "y"},
                            verify=str(fleet.dir / "ca.pem"), timeout=5)
    assert response.status_code == 400 and response.json() == {"message": "Invalid license key."}
    assert requests.get(url, verify=str(fleet.dir / "ca.pem"), timeout=5).status_code == 401


def test_egress_faults(fleet):
    ca = str(fleet.dir / "ca.pem")
    dns = endpoints(fleet, "dns")["identity"]
    assert ".bwsim.invalid:" in dns
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(dns.split("//")[1].split(":")[0], 443)
    with pytest.raises(requests.exceptions.ConnectionError) as refused:
        requests.get(endpoints(fleet, "refused")["identity"] + "/alive", verify=ca, timeout=5)
    assert "refused" in str(refused.value).lower()
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(endpoints(fleet, "tls")["api"] + "/alive", verify=ca, timeout=5)


@pytest.mark.parametrize("name", ["dns", "refused", "tls"])
def test_egress_faults_block_the_servers_own_license_sync(fleet, api_for, name):
    api = api_for(fleet, name)
    enable_cloud(api)
    prepare(api)
    response = sync(api)
    assert response.status_code == 400 and response.json()["message"] == GENERIC
    assert "Unable to authenticate with identity server." in api_log(api)


def test_wrong_region_inventory(fleet):
    host = fleet.host_vars("wrong")
    assert fleet.instance("wrong")["region"] == "US"
    assert host["billing_sync_region"] == "EU"
    # The EU cloud, on the ports of this host's own egress (fleet key egress): it issues the EU installation's token.
    assert endpoints(fleet, "wrong") != endpoints(fleet, "eu")
    assert token(fleet, "eu", endpoints(fleet, "wrong")["identity"]).status_code == 200
    inventory = yaml.safe_load((fleet.dir / "inventory.yml").read_text(encoding="utf-8"))
    assert "wrong" in inventory["all"]["children"]["bitwarden"]["children"]["bitwarden_eu"]["hosts"]
    assert token(fleet, "wrong", endpoints(fleet, "wrong")["identity"]).json() == {"error": "invalid_client"}
    # both regions are served to every host: the US one (the id's own) answers the same installation
    assert token(fleet, "wrong", endpoints(fleet, "wrong", "US")["identity"]).status_code == 200


def test_serve_clouds_off(tmp_path):
    fleet_file = tmp_path / "fleet.yml"
    fleet_file.write_text(yaml.safe_dump({"serve_clouds": False, "instances": [{"name": "plain"}]}), encoding="utf-8")
    subprocess.run([sys.executable, str(BWSIM), "up", "--dir", str(tmp_path), "--fleet", str(fleet_file)], check=True,
                   capture_output=True)
    fleet = Fleet(tmp_path)
    try:
        assert "billing_sync_preflight_endpoints" not in fleet.host_vars("plain")
        assert not (tmp_path / "ca.pem").exists()
    finally:
        fleet.stop()
