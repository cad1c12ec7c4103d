"""Self-healing end to end with the real parts: the status playbook's node_exporter textfile metrics, Debian's
prometheus-node-exporter, prometheus (the shipped alert rules) and prometheus-alertmanager (the docs' receiver
config), and ansible-rulebook (PyPI, Java 17) running the shipped rulebook, which runs the collection's playbooks
against the simulator.

The assertions look at what the playbook did to the simulated server, never at ansible-rulebook's exit code. The
rulebook runs one action at a time, in the order the events came: once a sentinel alert posted after Alertmanager's
notification has been answered, every action for that notification has finished.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers.ansible_run import run_playbook
from helpers.eda import alertmanager, alertmanager_config, rulebook
from helpers.held_lock import hold_lock
from helpers.prom import node_exporter, prometheus, wait_for

REPO = Path(__file__).resolve().parents[2]
RULEBOOK = REPO / "extensions" / "eda" / "rulebooks" / "self_heal.yml"
RULES = REPO / "docs" / "examples" / "prometheus" / "selfhost_bitwarden.rules.yml"
RECEIVER = REPO / "docs" / "examples" / "eda" / "alertmanager.yml"
TOKEN = "eda-test-token-0123456789"
SENTINEL = "bw-sentinel"

pytestmark = pytest.mark.slow


# -- the pieces ------------------------------------------------------------------------------------------------

def fast_rules(path):
    """The shipped rules with `for: 0s` (firing at the first evaluation); every expression stays as shipped."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def wrong_rulebook(path, alertname):
    """The shipped rulebook whose rule for `alertname` waits for a name Prometheus never sends."""
    text = RULEBOOK.read_text(encoding="utf-8")
    assert text.count('"%s"' % alertname) == 1
    path.write_text(text.replace('"%s"' % alertname, '"%sd"' % alertname), encoding="utf-8")
    return path


def inventory_with_metrics(fleet, textfile_dir, path):
    """The fleet's inventory, each host writing its node_exporter metrics into textfile_dir on every role run."""
    document = yaml.safe_load(fleet.inventory.read_text(encoding="utf-8"))
    for group in document["all"]["children"]["bitwarden"]["children"].values():
        for name, host in (group.get("hosts") or {}).items():
            host.update(billing_sync_metrics=True, billing_sync_metrics_path=str(textfile_dir / ("%s.prom" % name)))
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def drift(fleet, name):
    """Someone turned cloud communication off in the env file and restarted the server."""
    env_file = fleet.install_dir(name) / "bwdata" / "env" / "global.override.env"
    text = env_file.read_text(encoding="utf-8")
    assert "globalSettings__enableCloudCommunication=true" in text
    env_file.write_text(text.replace("globalSettings__enableCloudCommunication=true",
                                     "globalSettings__enableCloudCommunication=false"), encoding="utf-8")
    assert fleet.client.bitwarden_sh(name, "restart")["exit_code"] == 0
    assert not fleet.instance(name)["cloud_communication"]


def post(url, alerts, token=TOKEN):
    """One Alertmanager webhook notification (version 4), as Alertmanager sends it."""
    body = {"version": "4", "status": "firing", "receiver": "selfhost-bitwarden-eda", "groupKey": "{}:{}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:1",
            "alerts": [dict({"annotations": {}, "startsAt": "2026-12-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                             "generatorURL": "", "fingerprint": "%016x" % index}, **alert)
                       for index, alert in enumerate(alerts)]}
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, json.dumps(body).encode(), headers), timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def alert(name, host=None, status="firing"):
    labels = {"alertname": name, "severity": "warning"}
    if host:
        labels["host"] = host
    return {"status": status, "labels": labels}


def answered_sentinel(eda, number):
    """Post sentinel number N (an unreadable host the inventory lacks) and wait until the rulebook answered it."""
    host = "%s-%d" % (SENTINEL, number)
    assert post(eda.url + "/sentinel", [alert("BitwardenHostUnreadable", host)]) == 200
    wait_for(lambda: "%s: BitwardenHostUnreadable, no remediation" % host in eda.output(), timeout=600,
             what="the rulebook to answer %s\n%s" % (host, eda.output()[-3000:]))


def firing(prom, alertname, host):
    return [a for a in prom.alerts()
            if a["labels"].get("alertname") == alertname and a["labels"].get("host") == host and a["state"] == "firing"]


def playbook_runs(record):
    """{host: recap} of every ansible-playbook run the rulebook started, in order (test-only record callback)."""
    if not record.exists():
        return []
    events = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line]
    return [event["hosts"] for event in events if event["event"] == "stats"]


# -- the loop ----------------------------------------------------------------------------------------------------

def drift_fixed(before, after):
    return after["cloud_communication"] and after["restarts"] == before["restarts"] + 1


LICENSE_SYNC_ROUTE = "POST /api/organizations/licenses/self-hosted/{id}/sync"


def renewed_in_cloud(fleet, name):
    """The customer renewed in the cloud; the server still holds the license whose paid period ends in 20 days (last
    synced 30 hours ago: within the expiry window the license sync runs at most daily)."""
    fleet.client.renew_subscription(name, days=365)


def license_fixed(before, after):
    """The server synced once and now holds the renewed license."""
    synced = after["counters"]["by_route"].get(LICENSE_SYNC_ROUTE, 0) - before["counters"]["by_route"].get(LICENSE_SYNC_ROUTE, 0)
    return synced == 1 and after["license_expires"] > before["license_expires"]


# Each scenario: the alert, the fleet (bw-1 gets broken, bw-2 must stay untouched), how bw-1 gets broken, and what
# the simulator shows once the playbook fixed it.
SCENARIOS = {
    "drift": {"alert": "BitwardenBillingSyncDrift", "instances": [{"name": "bw-1"}, {"name": "bw-2"}],
              "break": drift, "fixed": drift_fixed},
    "license": {"alert": "BitwardenLicenseExpiresSoon",
                "instances": [{"name": "bw-1", "subscription_days": 20, "synced_hours_ago": 30}, {"name": "bw-2"}],
                "break": renewed_in_cloud, "fixed": license_fixed},
}


def state(fleet):
    """Each instance's simulator state, with the expiry of the license file the server holds."""
    found = {}
    for name in fleet.names:
        found[name] = fleet.instance(name)
        licenses = list((fleet.install_dir(name) / "bwdata" / "core" / "licenses" / "organization").glob("*.json"))
        found[name]["license_expires"] = json.loads(licenses[0].read_text(encoding="utf-8"))["Expires"] if licenses else None
    return found


def self_heal(tmp_path, sim_fleet, rulebook_path, scenario):
    """Break bw-1 of a two-host fleet, let the whole chain answer, return what happened."""
    alertname = scenario["alert"]
    fleet = sim_fleet(instances=scenario["instances"], preconfigured=True)
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    inventory = inventory_with_metrics(fleet, textfiles, tmp_path / "inventory.yml")
    scenario["break"](fleet, "bw-1")
    before = state(fleet)
    # The scheduled status run that notices.
    run_playbook("selfhost.bitwarden.status", inventory, extra_vars={"billing_sync_report_dir": str(tmp_path)}).assert_ok()
    assert (textfiles / "bw-1.prom").is_file()
    token_file = tmp_path / "eda.token"
    token_file.write_text(TOKEN, encoding="utf-8")
    record = tmp_path / "rulebook-playbooks.jsonl"
    outcome = {"scenario": scenario, "before": before}
    with rulebook(rulebook_path, inventory, tmp_path / "eda", TOKEN, record=record) as eda, \
            alertmanager(tmp_path / "am", alertmanager_config(RECEIVER, eda.url + "/alertmanager", token_file)) as am, \
            node_exporter(textfiles, tmp_path / "node") as exporter, \
            prometheus(tmp_path / "prom", [exporter.address], rule_files=[fast_rules(tmp_path / "rules.yml")],
                       alertmanagers=[am.address]) as prom:
        prom.wait_for(lambda: firing(prom, alertname, "bw-1"), timeout=120, what="%s firing for bw-1" % alertname)
        # Alertmanager delivered it to the rulebook (other alerts of the shipped rules may come first), then the
        # rulebook answered everything that came before the sentinel.
        wait_for(lambda: eda.received(alertname, "bw-1"), timeout=120,
                 what="Alertmanager's notification at the rulebook\n%s\n%s" % (am.output(), eda.output()[-3000:]))
        answered_sentinel(eda, 1)
        outcome["after"] = state(fleet)
        outcome["runs"] = playbook_runs(record)
        if scenario["fixed"](before["bw-1"], outcome["after"]["bw-1"]):
            # The playbook wrote fresh metrics: the alert resolves in Prometheus and then in Alertmanager.
            prom.wait_for(lambda: not firing(prom, alertname, "bw-1"), timeout=120,
                          what="%s to resolve in Prometheus" % alertname)
            wait_for(lambda: not am.alerts(alertname=alertname), timeout=120,
                     what="%s to resolve in Alertmanager" % alertname)
        outcome["prometheus_firing"] = firing(prom, alertname, "bw-1")
        outcome["alertmanager_active"] = am.alerts(alertname=alertname, host="bw-1")
        outcome["log"] = eda.output()
    return outcome


def assert_healed(outcome):
    before, after = outcome["before"], outcome["after"]
    assert outcome["scenario"]["fixed"](before["bw-1"], after["bw-1"]), "bw-1 not fixed\n%s" % outcome["log"][-4000:]
    # The playbook ran for bw-1 alone: one run, one host, and bw-2 untouched.
    assert [sorted(run) for run in outcome["runs"]] == [["bw-1"]], outcome["runs"]
    assert outcome["runs"][0]["bw-1"]["failures"] == 0
    for counter in ("writes", "cloud_calls"):
        assert after["bw-2"]["counters"][counter] == before["bw-2"]["counters"][counter], counter
    assert after["bw-2"]["restarts"] == before["bw-2"]["restarts"]
    assert not outcome["prometheus_firing"] and not outcome["alertmanager_active"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_alert_runs_the_playbook_for_that_host_and_resolves(tmp_path, sim_fleet, name):
    assert_healed(self_heal(tmp_path, sim_fleet, RULEBOOK, SCENARIOS[name]))


def test_a_rulebook_with_a_wrong_condition_fails_the_same_assertions(tmp_path, sim_fleet):
    scenario = SCENARIOS["drift"]
    outcome = self_heal(tmp_path, sim_fleet, wrong_rulebook(tmp_path / "wrong_self_heal.yml", scenario["alert"]), scenario)
    with pytest.raises(AssertionError):
        assert_healed(outcome)
    # Nothing ran: the host is still broken and its alert still firing in Prometheus and Alertmanager.
    assert not scenario["fixed"](outcome["before"]["bw-1"], outcome["after"]["bw-1"])
    assert not outcome["after"]["bw-1"]["cloud_communication"]
    assert outcome["after"]["bw-1"]["restarts"] == outcome["before"]["bw-1"]["restarts"]
    assert outcome["runs"] == []
    assert outcome["prometheus_firing"] and outcome["alertmanager_active"]


# -- what the rulebook leaves alone -------------------------------------------------------------------------------

def test_rulebook_guards(tmp_path, sim_fleet):
    """Throttle per host, a held lock, a host the inventory lacks, a resolved alert, an alert without host label."""
    fleet = sim_fleet(instances=[{"name": "bw-1"}, {"name": "bw-2"}, {"name": "bw-3"}], preconfigured=True)
    for name in fleet.names:
        drift(fleet, name)
    # Another run (a person's rollout, a schedule) holds bw-1's lock.
    lock, held = hold_lock(fleet, "bw-1")
    before = {name: fleet.instance(name) for name in fleet.names}
    record = tmp_path / "rulebook-playbooks.jsonl"
    with rulebook(RULEBOOK, fleet.inventory, tmp_path / "eda", TOKEN, record=record) as eda:
        assert post(eda.url + "/alertmanager", [alert("BitwardenBillingSyncDrift", "bw-3")], token=None) == 401
        assert post(eda.url + "/alertmanager", [alert("BitwardenBillingSyncDrift", "bw-3")], token="wrong") == 401
        assert post(eda.url + "/alertmanager", [
            alert("BitwardenBillingSyncDrift", "bw-2"),
            alert("BitwardenBillingSyncDrift", "bw-ghost"),
            alert("BitwardenBillingSyncDrift", "bw-3", status="resolved"),
            alert("BitwardenBillingSyncDrift"),
            alert("BitwardenBillingSyncDrift", "bw-1"),
            alert("BitwardenHostUnreadable", "bw-3"),
        ]) == 200
        # Alertmanager repeats a notification: within the hour, nothing runs again for bw-2.
        assert post(eda.url + "/alertmanager", [alert("BitwardenBillingSyncDrift", "bw-2")]) == 200
        answered_sentinel(eda, 1)
        log = eda.output()
    after = {name: fleet.instance(name) for name in fleet.names}
    runs = playbook_runs(record)
    # bw-2 fixed, once.
    assert after["bw-2"]["cloud_communication"] and after["bw-2"]["restarts"] == before["bw-2"]["restarts"] + 1, log[-4000:]
    # bw-1: the lock's holder is left alone; the run gave up at once instead of waiting 15 minutes.
    assert not after["bw-1"]["cloud_communication"] and after["bw-1"]["restarts"] == before["bw-1"]["restarts"]
    assert lock.read_text(encoding="utf-8") == held
    assert "is held by run someone-else (ops laptop)" in log and "(timeout=0)" in log
    # bw-3: its alert was resolved, and the alert without a host label ran nothing; the unreadable one is only logged.
    assert not after["bw-3"]["cloud_communication"] and after["bw-3"]["restarts"] == before["bw-3"]["restarts"]
    assert after["bw-3"]["counters"]["writes"] == before["bw-3"]["counters"]["writes"]
    assert "bw-3: BitwardenHostUnreadable, no remediation" in log
    # The host the inventory lacks: nothing ran, and ansible says so.
    assert "Could not match supplied host pattern, ignoring: bw-ghost" in log
    # Two playbook runs reached a host: bw-2's rollout and bw-1's, which stopped at the lock.
    assert [sorted(run) for run in runs] == [["bw-2"], ["bw-1"]], runs
    assert runs[0]["bw-2"]["failures"] == 0 and runs[1]["bw-1"]["failures"] == 1
