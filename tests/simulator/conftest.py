"""Fixtures for the simulator's own tests: a fleet plus ready-made API helpers."""

import pytest
import requests

CLIENT_VERSION = "2026.8.0"


def pytest_configure(config):
    config.addinivalue_line("markers", "instance(name): the simulated instance a test works on")


class Api:
    """requests against one simulated instance, as the collection's client would send them."""

    def __init__(self, fleet, name, verify=True):
        self.fleet = fleet
        self.name = name
        self.state = fleet.instance(name)
        self.url = self.state["url"]
        self.org = self.state["organization_id"]
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = verify

    def refresh(self):
        self.state = self.fleet.instance(self.name)
        return self.state

    def token_form(self, who="owner", **extra):
        creds = self.state["credentials"][who]
        form = {"grant_type": "client_credentials", "scope": "api", "client_id": creds["client_id"],
                "client_secret": creds["client_secret"], "deviceType": "22", "deviceIdentifier": "bwsim-test-device",
                "deviceName": "selfhost.bitwarden"}
        if who == "organization":
            form = {"grant_type": "client_credentials", "scope": "api.organization", "client_id": creds["client_id"],
                    "client_secret": creds["client_secret"]}
        form.update(extra)
        return {k: v for k, v in form.items() if v is not None}

    def token_request(self, form, version=CLIENT_VERSION):
        headers = {"Bitwarden-Client-Version": version} if version is not None else {}
        return self.session.post(self.url + "/identity/connect/token", data=form, headers=headers, timeout=10)

    def token(self, who="owner"):
        response = self.token_request(self.token_form(who))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def call(self, method, path, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def connection_body(self, key=None, enabled=True, **config):
        return {"organizationId": self.org, "type": 1, "enabled": enabled,
                "config": {"billingSyncKey": key if key is not None else self.state["billing_sync_token"], **config}}


@pytest.fixture
def api_for():
    def factory(fleet, name, verify=True):
        return Api(fleet, name, verify)
    return factory


@pytest.fixture(scope="module")
def module_fleet(tmp_path_factory):
    """A factory for fleets shared by the tests of one module (each test uses its own instance)."""
    from helpers.sim import start_fleet  # pylint: disable=import-outside-toplevel
    fleets = []

    def factory(instances, **defaults):
        defaults.setdefault("restart_delay", 0.2)
        defaults.setdefault("warmup", 0.1)
        fleet = start_fleet(tmp_path_factory.mktemp("fleet"), instances=instances, defaults=defaults)
        fleets.append(fleet)
        return fleet

    yield factory
    for fleet in fleets:
        fleet.stop()
