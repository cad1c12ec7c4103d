"""Helpers shared by the license-sync and fault tests: enable cloud communication, create a connection, read the api log."""

import glob
import os
import re
import time

GENERIC = "An error has occurred. Check your internet connection and ensure the billing token is correct."
STAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}\+00:00"
LINE_RE = re.compile(rf"^{STAMP} 0H[0-9A-V]{{11}}:[0-9A-F]{{8}} \[(INF|ERR|FTL|WRN)\] ")
EU_LINES = ("globalSettings__baseServiceUri__cloudRegion=EU\n"
            "globalSettings__installation__identityUri=https://identity.bitwarden.eu\n"
            "globalSettings__installation__apiUri=https://api.bitwarden.eu\n"
            "globalSettings__pushRelayBaseUri=https://push.bitwarden.eu\n")


def api_log(api):
    files = glob.glob(os.path.join(api.state["install_dir"], "bwdata", "logs", "api", "Api", "*.txt"))
    assert len(files) <= 1
    if not files:
        return ""
    assert re.fullmatch(r"\d{8}\.txt", os.path.basename(files[0]))
    with open(files[0], encoding="utf-8") as handle:
        return handle.read()


def enable_cloud(api, extra=""):
    with open(os.path.join(api.state["install_dir"], "bwdata", "env", "global.override.env"), "a", encoding="utf-8") as handle:
        handle.write("globalSettings__enableCloudCommunication=true\n" + extra)
    result = api.fleet.client.bitwarden_sh(api.name, "restart")
    assert result["exit_code"] == 0, result
    wait_up(api)


def wait_up(api):
    for dummy in range(200):
        if api.refresh()["state"] == "up":
            return
        time.sleep(0.02)
    raise AssertionError(api.state["state"])


def prepare(api, key=None):
    """Owner token + a billing sync connection."""
    api.tok = api.token()
    response = api.call("POST", "/api/organizations/connections", api.tok, json=api.connection_body(key=key))
    assert response.status_code == 200, response.text
    return response.json()


def sync(api):
    return api.call("POST", f"/api/organizations/licenses/self-hosted/{api.org}/sync", api.tok)
