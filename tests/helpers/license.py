"""License-sync helpers for tests: an owner saves the connection with an older LastLicenseSync (as the real update
route allows: it stores the config it is sent)."""

import requests

CLIENT_VERSION = "2026.8.0"


def set_last_license_sync(fleet, name, when):
    """PUT the billing sync connection of `name` back with LastLicenseSync = `when` (ISO 8601 text)."""
    host, state = fleet.host_vars(name), fleet.client.instance(name)
    session = requests.Session()
    session.trust_env = False
    url = state["url"]
    token = session.post(url + "/identity/connect/token", headers={"Bitwarden-Client-Version": CLIENT_VERSION}, timeout=10, data={
        "grant_type": "client_credentials", "scope": "api", "client_id": host["billing_sync_client_id"],
        "client_secret": host["billing_sync_client_secret"], "deviceType": "22", "deviceIdentifier": "test-backdate",
        "deviceName": "test"}).json()["access_token"]
    headers = {"Authorization": "Bearer " + token, "Bitwarden-Client-Version": CLIENT_VERSION}
    conn = session.get("%s/api/organizations/connections/%s/1" % (url, state["organization_id"]), headers=headers, timeout=10).json()
    body = {"organizationId": state["organization_id"], "type": 1, "enabled": True,
            "config": {"billingSyncKey": host["billing_sync_token"], "lastLicenseSync": when}}
    response = session.put("%s/api/organizations/connections/%s" % (url, conn["id"]), json=body, headers=headers, timeout=10)
    response.raise_for_status()
