"""The cloud preflight (bitwarden_preflight through the billing_sync role) against the simulator's served clouds.

Every fault stops its host before the env file changes (same sha256, no bitwarden.sh call) with a message that names
the layer; a healthy host in the same run converges. The faults are the simulator's `cloud_endpoint_fault`
(dns, refused, tls, wrong_region) and license files the server could not read (contract 2.3, bitwarden/server#2082).
"""

import hashlib
from pathlib import Path

import pytest

from helpers.ansible_run import assert_no_secrets, run_module, run_playbook
from helpers.connect_proxy import proxy_server

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = REPO / "playbooks" / "rollout.yml"
MODULE = "selfhost.bitwarden.bitwarden_preflight"

FAULTS = {
    # host: (fleet keys, words the failure message must hold)
    "pf-dns": ({"cloud_endpoint_fault": "dns"}, ["(identity): DNS failed", "(api): DNS failed", "does not resolve"]),
    "pf-refused": ({"cloud_endpoint_fault": "refused"}, ["(identity): TCP failed", "refused", "allow outbound HTTPS"]),
    "pf-tls": ({"cloud_endpoint_fault": "tls"}, ["(identity): TLS failed", "does not verify", "TLS-inspecting proxy"]),
    "pf-wrong-region": ({"cloud_endpoint_fault": "wrong_region"},
                        ["invalid_client", "not known to the EU cloud: a US id on an EU config?", "billing_sync_region",
                         "https://bitwarden.com/host"]),
    "pf-no-license": ({"license": False}, ["(license_file): license file missing", "Update license"]),
    "pf-stray-bytes": ({}, ["(license_file): license file is not JSON", "Extra data", "bitwarden/server#2082"]),
}


def env_file(fleet, name):
    return Path(fleet.host_vars(name)["billing_sync_install_dir"]) / "bwdata" / "env" / "global.override.env"


def preflight_results(run, name):
    return [dict(event["result"], status=event["status"]) for event in run.results(host=name) if event["action"] == MODULE]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def installation_key(fleet, name):
    for line in env_file(fleet, name).read_text(encoding="utf-8").splitlines():
        if line.startswith("globalSettings__installation__key="):
            return line.partition("=")[2]
    raise AssertionError("no installation key in the env file of %s" % name)


@pytest.fixture
def fleet(sim_fleet):
    instances = [{"name": "pf-ok"}] + [dict(keys, name=name) for name, (keys, dummy) in FAULTS.items()]
    fleet = sim_fleet(instances, restart_delay=0.2, warmup=0.1)
    state = fleet.instance("pf-stray-bytes")
    license_file = fleet.install_dir("pf-stray-bytes") / "bwdata/core/licenses/organization" / (state["organization_id"] + ".json")
    license_file.write_bytes(license_file.read_bytes() + b"}\n")  # bitwarden/server#2082: bytes after the closing brace
    return fleet


def test_each_fault_stops_its_host_before_any_change_and_a_healthy_host_converges(fleet):
    before = {name: sha256(env_file(fleet, name)) for name in fleet.names}
    # The whole fleet in one batch, failures tolerated: every host reaches its own preflight.
    run = run_playbook(ROLLOUT, fleet.inventory, extra_vars={"billing_sync_serial": 0, "billing_sync_max_fail_percentage": 100})
    assert run.rc != 0
    for name, (dummy, words) in FAULTS.items():
        assert run.stats[name]["failures"] == 1, run.output
        assert sha256(env_file(fleet, name)) == before[name], name
        assert fleet.client.bitwarden_sh_calls(name) == [], name
        state = fleet.instance(name)
        assert state["counters"]["writes"] == 0 and state["connection"] is None, name
        (result,) = preflight_results(run, name)
        assert result["status"] == "failed" and result["changed"] is False
        for word in words:
            assert word in result["msg"], "%s: %r not in %s" % (name, word, result["msg"])
    assert run.stats["pf-ok"]["failures"] == 0, run.output
    ok = fleet.instance("pf-ok")
    assert ok["settings"]["enableCloudCommunication"] is True
    assert ok["connection"]["config"]["LastLicenseSync"] is not None
    checks = preflight_results(run, "pf-ok")[0]["checks"]
    assert [(check["name"], check["ok"]) for check in checks] == [
        ("identity", True), ("api", True), ("container identity", True), ("container api", True), ("license_file", True)]
    secrets = [installation_key(fleet, name) for name in fleet.names]
    secrets += [fleet.host_vars(name)["billing_sync_client_secret"] for name in fleet.names]
    assert_no_secrets(run.output, secrets)

    rerun = run_playbook(ROLLOUT, fleet.inventory, limit="pf-ok").assert_ok()
    assert rerun.changed_total() == 0, rerun.output


def test_the_preflight_can_be_turned_off(fleet):
    run = run_playbook(ROLLOUT, fleet.inventory, limit="pf-no-license,pf-dns", check=True,
                       extra_vars={"billing_sync_preflight": False}).assert_ok()
    for name in ("pf-no-license", "pf-dns"):
        assert [result for result in preflight_results(run, name) if result["status"] != "skipped"] == []
        assert run.stats[name]["changed"] >= 1


def test_through_the_hosts_proxy(fleet):
    """HTTPS_PROXY in the module's environment: both endpoints are tunnelled (CONNECT), the credentials never shown,
    and a warning says the containers do not get that proxy. A proxy that refuses CONNECT is named as the layer."""
    address, seen = proxy_server()
    args = {"bwdata_path": "{{ billing_sync_install_dir }}/bwdata", "region": "{{ billing_sync_region }}",
            "endpoints": "{{ billing_sync_preflight_endpoints[billing_sync_region] }}", "ca_path": "{{ billing_sync_preflight_ca_path }}"}
    run = run_module(MODULE, args, fleet.inventory, hosts="pf-ok", env={"HTTPS_PROXY": "http://ops:pr0xy-s3cret@" + address})
    (event,) = run.results("module", "pf-ok")
    assert event["status"] == "ok", run.output
    result = event["result"]
    assert result["proxy"] == {"url": "http://********@" + address, "source": "HTTPS_PROXY in the environment"}
    endpoints = fleet.host_vars("pf-ok")["billing_sync_preflight_endpoints"][fleet.host_vars("pf-ok")["billing_sync_region"]]
    assert sorted(head.split(" ")[1] for head in seen) == sorted(url.split("//")[1] for url in endpoints.values())
    assert "the server's containers do not get it" in " ".join(result.get("warnings", [])) + " ".join(run.output.split())
    assert_no_secrets(run.output, ["pr0xy-s3cret", installation_key(fleet, "pf-ok")])

    refusing, dummy = proxy_server(b"403 Forbidden")
    run = run_module(MODULE, args, fleet.inventory, hosts="pf-ok", env={"HTTPS_PROXY": "http://" + refusing})
    (event,) = run.results("module", "pf-ok")
    assert event["status"] == "failed"
    assert "(identity): proxy failed: the proxy http://%s answered CONNECT" % refusing in event["result"]["msg"]
    assert "403" in event["result"]["msg"]
