"""TLS instances: a CA per fleet directory, certificates for 127.0.0.1 and localhost."""

import pytest
import requests


@pytest.fixture(scope="module")
def fleet(module_fleet):
    return module_fleet([{"name": "tls", "tls": True}, {"name": "plain"}])


def test_tls_with_the_fleet_ca(fleet):
    state = fleet.instance("tls")
    assert state["url"].startswith("https://127.0.0.1:")
    ca = str(fleet.dir / "ca.pem")
    assert fleet.host_vars("tls")["billing_sync_ca_path"] == ca
    assert "billing_sync_ca_path" not in fleet.host_vars("plain")
    assert requests.get(state["url"] + "/alive", verify=ca, timeout=5).text == "alive"
    localhost = state["url"].replace("127.0.0.1", "localhost")
    assert requests.get(localhost + "/api/alive", verify=ca, timeout=5).status_code == 200


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_rejected_without_the_ca(fleet):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(fleet.instance("tls")["url"] + "/alive", timeout=5)
    assert requests.get(fleet.instance("tls")["url"] + "/alive", verify=False, timeout=5).status_code == 200


def test_plain_http_to_tls_port_fails(fleet):
    with pytest.raises(requests.ConnectionError):
        requests.get(fleet.instance("tls")["url"].replace("https", "http") + "/alive", timeout=5)


def test_token_over_tls(fleet, api_for):
    api = api_for(fleet, "tls", verify=str(fleet.dir / "ca.pem"))
    assert api.token_request(api.token_form()).status_code == 200
    assert api.refresh()["settings"]["vault"] == api.url
