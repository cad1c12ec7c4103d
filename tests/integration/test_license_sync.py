"""playbooks/license_sync.yml through real ansible-core: a fleet behind one NAT, paced under the cloud's real per-IP
limits (bwsim enforces upstream's: identity 10 token requests a minute), idempotence, the same fleet unpaced (429s,
named as rate limiting), and a renewal that reaches the host, bitwarden_sync_info and the status report.

The pace is real: 8 calls a minute per egress and region (the role's default), so the paced run takes about a minute
per 8 due hosts of a region. The fleet splits its 32 hosts over both regions (the US and EU clouds count separately)
to keep the run near two minutes.
"""

import datetime
import json
from pathlib import Path

from helpers.ansible_run import assert_no_secrets, run_playbook
from helpers.held_lock import hold_lock
from helpers.license import set_last_license_sync

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
LICENSE_SYNC = PLAYBOOKS / "license_sync.yml"
SUMMARY = "selfhost.bitwarden.billing_sync : What the license sync did"
SYNC = "selfhost.bitwarden.billing_sync : Sync the license where it is due"


def fleet_secrets(fleet):
    return [fleet.host_vars(name)[key] for name in fleet.names for key in ("billing_sync_client_secret", "billing_sync_token")]


def ago(days):
    return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)).isoformat()


def last_sync(fleet, name):
    config = fleet.instance(name)["connection"]["config"]
    return next(value for key, value in config.items() if key.lower() == "lastlicensesync")


def summaries(run):
    return {event["host"]: event["result"]["msg"] for event in run.results(SUMMARY)}


def cloud_totals(fleet):
    return {region: data["rate_limits"] for region, data in fleet.client.clouds().items()}


def test_fleet_behind_one_egress_is_paced_under_the_limits(sim_fleet):
    instances = []
    for region in ("US", "EU"):
        prefix = "bw-%s-" % region.lower()
        instances += [{"name": prefix + "old%d" % index, "region": region} for index in range(8)]          # due: max age
        instances += [{"name": prefix + "ending%d" % index, "region": region, "subscription_days": 20}
                      for index in range(2)]                                                                    # due: expiry
        instances += [{"name": prefix + "fresh%d" % index, "region": region} for index in range(5)]        # not due
        instances.append({"name": prefix + "manual", "region": region, "preconfigured": False})            # left alone
    fleet = sim_fleet(instances, preconfigured=True, egress="office-nat")
    due = [name for name in fleet.names if "old" in name or "ending" in name]
    for name in due:
        set_last_license_sync(fleet, name, ago(10 if "old" in name else 2))
    before = {name: last_sync(fleet, name) for name in fleet.names if "manual" not in name}
    for name in fleet.names:
        fleet.client.reset_counters(name)

    paced = run_playbook(LICENSE_SYNC, fleet.inventory, forks=10)
    paced.assert_ok()
    said = summaries(paced)
    for name in fleet.names:
        after = fleet.instance(name)
        if name in due:
            assert said[name].startswith(name + ": synced ("), said[name]
            assert last_sync(fleet, name) != before[name]
            assert ("older than the max age (168 h)" if "old" in name else "the paid period ends in 19 day(s), within 30") in said[name]
        elif "fresh" in name:
            assert said[name].startswith(name + ": not due (last sync"), said[name]
            assert after["counters"]["cloud_calls"] == 0
        else:
            assert "left alone: " in said[name] and "no billing sync connection" in said[name], said[name]
        assert after["counters"]["cloud_rate_limited"] == 0
    totals = cloud_totals(fleet)
    assert all(totals[region]["rate_limited"] == 0 for region in totals), totals
    assert totals["US"]["by_egress"]["office-nat"]["requests"] == 20  # 10 syncs: a token request and a license request each
    assert_no_secrets(paced.output, fleet_secrets(fleet))

    # Inside the max age nothing is due: no cloud call at all, nothing changed.
    for name in fleet.names:
        fleet.client.reset_counters(name)
    again = run_playbook(LICENSE_SYNC, fleet.inventory, forks=10)
    again.assert_ok()
    assert again.changed_total() == 0
    assert not any(event["result"].get("paced_wait") is not None for event in again.results(SYNC))
    assert sum(fleet.instance(name)["counters"]["cloud_calls"] for name in fleet.names) == 0
    assert cloud_totals(fleet) == totals

    # The same fleet unpaced: the cloud refuses the NAT's eleventh token request of the minute, and the run says so.
    unpaced = run_playbook(LICENSE_SYNC, fleet.inventory, forks=10, extra_vars={
        "billing_sync_license_sync_force": True, "billing_sync_cloud_calls_per_minute": 0,
        "billing_sync_license_sync_rate_limit_deadline": 0})
    assert unpaced.rc != 0
    limited = cloud_totals(fleet)
    assert limited["US"]["rate_limited"] > 0 and limited["EU"]["rate_limited"] > 0
    failures = [event for event in unpaced.results(SYNC) if event["status"] == "failed"]
    assert failures
    for event in failures:
        message = event["result"]["msg"]
        assert "the cloud is rate limiting this server's address" in message and "TooManyRequests" in message, message
        assert "this is not a wrong key or region" in message
        assert "rejected" not in message and "region mismatch" not in message
    assert_no_secrets(unpaced.output, fleet_secrets(fleet))


def test_check_mode_is_read_only(sim_fleet):
    fleet = sim_fleet([{"name": "bw-old"}, {"name": "bw-fresh"}], preconfigured=True)
    set_last_license_sync(fleet, "bw-old", ago(10))
    stamp = last_sync(fleet, "bw-old")
    fleet.client.reset_counters("bw-old")
    run = run_playbook(LICENSE_SYNC, fleet.inventory, check=True)
    run.assert_ok()
    assert summaries(run)["bw-old"].startswith("bw-old: would sync (last sync 240 h ago")
    state = fleet.instance("bw-old")
    assert last_sync(fleet, "bw-old") == stamp
    assert state["counters"]["cloud_calls"] == 0 and state["counters"]["writes"] == 0


def test_renewal_reaches_the_host_on_the_next_scheduled_run(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-renewing", "subscription_days": 20}], preconfigured=True)
    # The last scheduled run synced two days ago; the customer renews in the cloud since.
    set_last_license_sync(fleet, "bw-renewing", ago(2))
    install = fleet.instance("bw-renewing")
    license_file = "%s/bwdata/core/licenses/organization/%s.json" % (install["install_dir"], install["organization_id"])
    with open(license_file, encoding="utf-8") as handle:
        old_end = json.load(handle)["ExpirationWithoutGracePeriod"]
    renewed = fleet.client.renew_subscription("bw-renewing", days=365, seats=60)

    run = run_playbook(LICENSE_SYNC, fleet.inventory)
    run.assert_ok()
    said = summaries(run)["bw-renewing"]
    assert "the paid period ends in 19 day(s), within 30" in said
    # the server prints the dates as its subscription route does (no zone for a JWT license's claims)
    assert "expiration_without_grace_period: %s" % old_end[:19] in said and "-> %s" % renewed["period_end"][:19] in said, said
    assert "seats: 50 -> 60" in said
    with open(license_file, encoding="utf-8") as handle:
        assert json.load(handle)["ExpirationWithoutGracePeriod"] == renewed["period_end"]

    report = tmp_path / "report"
    report.mkdir()
    reported = run_playbook(PLAYBOOKS / "status.yml", fleet.inventory, extra_vars={
        "billing_sync_report_dir": str(report), "billing_sync_metrics_path": str(report) + "/{{ inventory_hostname }}.prom"})
    reported.assert_ok()
    row = json.loads((report / "billing-sync-report.json").read_text(encoding="utf-8"))[0]
    assert row["license_expiration_without_grace"].startswith(renewed["period_end"][:19])
    assert row["license_days_left"] >= 380
    info = [event["result"] for event in reported.events if event["event"] == "task"
            and event["task"].endswith("Read server and organization state")][0]
    assert info["organization"]["license"]["expiration_without_grace_period"].startswith(renewed["period_end"][:19])


def test_a_host_whose_lock_another_run_holds_is_not_synced(sim_fleet):
    """The rollout's lock: a license sync never runs while another run (a rollout, a remediation) changes the host."""
    fleet = sim_fleet([{"name": "bw-held"}, {"name": "bw-free"}], preconfigured=True)
    for name in fleet.names:
        set_last_license_sync(fleet, name, ago(10))
    lock, held = hold_lock(fleet, "bw-held")
    stamps = {name: last_sync(fleet, name) for name in fleet.names}
    run = run_playbook(LICENSE_SYNC, fleet.inventory, extra_vars={"billing_sync_lock_timeout": 0})
    assert run.rc != 0
    assert run.stats["bw-held"]["failures"] == 1 and run.stats["bw-free"]["failures"] == 0, run.output
    assert last_sync(fleet, "bw-held") == stamps["bw-held"]  # not synced
    assert fleet.instance("bw-held")["counters"]["cloud_calls"] == 0
    assert lock.read_text(encoding="utf-8") == held  # the holder's lock is left alone
    assert last_sync(fleet, "bw-free") != stamps["bw-free"]  # synced, and its lock given back
    assert not (fleet.install_dir("bw-free") / "bwdata" / ".selfhost-bitwarden.lock").exists()
