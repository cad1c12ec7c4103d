"""Bitwarden Lite's api log is where the real image writes it (/etc/bitwarden/logs/api-<yyyyMMdd>.log in the
`bitwarden` docker volume, found with `docker volume inspect`), and its sponsorship sync fails the way the
Entity Framework repository does on the template's MariaDB (contract §11; issue 21 items 3 and 4). Through real
ansible-core against the simulator."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest

from prometheus_client.parser import text_string_to_metric_families

from helpers.ansible_run import assert_no_secrets, run_module, run_playbook

STATUS = Path(__file__).resolve().parents[2] / "playbooks" / "status.yml"

NS = "selfhost.bitwarden."
API_ARGS = {
    "server_url": "{{ billing_sync_server_url }}",
    "client_id": "{{ billing_sync_client_id }}",
    "client_secret": "{{ billing_sync_client_secret }}",
    "organization_id": "{{ billing_sync_organization_id }}",
}
LITE_ARGS = {
    **API_ARGS,
    "deployment": "lite",
    "compose_dir": "{{ billing_sync_install_dir }}",
    "docker_command": "{{ billing_sync_docker_command }}",
}
EF_ERROR = ("System.InvalidOperationException: The entity type 'OrganizationSponsorship' was not found. Ensure that the "
            "entity type has been added to the model.")


def secrets_of(state):
    return [state["billing_sync_token"]] + [cred["client_secret"] for cred in state["credentials"].values()]


def call(fleet, name, module, args):
    run = run_module(NS + module, args, fleet.inventory, hosts=name)
    assert_no_secrets(run.output, secrets_of(fleet.instance(name)))
    (event,) = run.results("module", name)
    return run.rc, event["result"]


def enable_cloud(fleet, name):
    """What bitwarden_cloud_comm and the role's restart do on Lite (tested elsewhere): settings.env, compose up -d."""
    compose_dir = Path(fleet.host_vars(name)["billing_sync_install_dir"])
    with open(compose_dir / "settings.env", "a", encoding="utf-8") as handle:
        handle.write("globalSettings__enableCloudCommunication=true\n")
    docker = fleet.host_vars(name)["billing_sync_docker_command"]
    subprocess.run([docker, "compose", "up", "-d"], cwd=compose_dir, check=True, capture_output=True, timeout=120)
    for dummy in range(300):
        if fleet.instance(name)["state"] == "up":
            return
    raise AssertionError(fleet.instance(name)["state"])


def apply_token(fleet, name):
    rc, result = call(fleet, name, "bitwarden_billing_sync_token", dict(API_ARGS, billing_sync_token="{{ billing_sync_token }}"))
    assert rc == 0, result


@pytest.fixture
def lite(sim_fleet):
    fleet = sim_fleet([{"name": "lite-one", "deployment": "lite", "sponsorships": 1}], restart_delay=0.2, warmup=0.1)
    enable_cloud(fleet, "lite-one")
    apply_token(fleet, "lite-one")
    return fleet


def volume_log(fleet, name):
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    return Path(fleet.install_dir(name)).parent / "docker-volumes" / ("%s_bitwarden" % name) / "_data" / "logs" / ("api-%s.log" % day)


def test_failed_license_sync_on_lite_is_explained_from_the_volume(lite):
    name = "lite-one"
    lite.client.set_faults(name, {"wrong_billing_sync_token": True})
    rc, result = call(lite, name, "bitwarden_license_sync", LITE_ARGS)
    assert rc != 0
    assert result["msg"].startswith("license sync failed: the cloud rejected the billing sync token (Invalid Billing Sync Key)")
    log_dir = volume_log(lite, name).parent
    assert "[api log: %s/api-<yyyyMMdd>.log (/etc/bitwarden/logs/api-<yyyyMMdd>.log in the docker volume %s_bitwarden)]" \
        % (log_dir, name) in result["msg"]
    assert 'Invalid Billing Sync Key\n"' in volume_log(lite, name).read_text(encoding="utf-8")
    state = lite.instance(name)
    assert state["state"] == "up" and state["connection"]["config"]["LastLicenseSync"] is None
    docker_calls = [call_["argv"] for call_ in lite.client.docker_calls(name)]
    assert ["volume", "inspect", "--format", "{{ .Mountpoint }}", "%s_bitwarden" % name] in docker_calls


def test_lite_sponsorship_sync_fails_in_entity_framework(lite):
    """MariaDB (the template's BW_DB_PROVIDER=mysql): the cloud answers, then UpsertManyAsync throws; lastSyncDate
    stays null and sync_info says failed with the server's message."""
    name = "lite-one"
    rc, result = call(lite, name, "bitwarden_license_sync", LITE_ARGS)
    assert rc == 0, result
    lite.client.run_job(name)
    text = volume_log(lite, name).read_text(encoding="utf-8")
    assert '[ERR] Sponsorship sync for organization "lite-one Org" Failed (' in text and EF_ERROR in text
    rc, result = call(lite, name, "bitwarden_sync_info", LITE_ARGS)
    assert rc == 0, result
    organization = result["organization"]
    assert organization["sponsorship_sync_state"] == "failed"
    assert organization["sponsorship_sync_message"] == EF_ERROR
    assert organization["sponsorship_last_sync_date"] is None
    assert organization["sponsorship_sync_log"].startswith(str(volume_log(lite, name).parent))
    assert lite.instance(name)["state"] == "up"


def test_unreadable_lite_log_is_unknown_not_pending(lite):
    """The compose project is not the directory's name (top-level `name:`): the module looks for that volume, does not
    find it, says so and reports unknown; a readable log gives the job's real outcome."""
    name = "lite-one"
    lite.client.run_job(name)
    rc, result = call(lite, name, "bitwarden_sync_info", LITE_ARGS)
    assert rc == 0 and result["organization"]["sponsorship_sync_state"] == "failed"
    compose = Path(lite.host_vars(name)["billing_sync_install_dir"]) / "docker-compose.yml"
    compose.write_text("name: renamed\n" + compose.read_text(encoding="utf-8"), encoding="utf-8")
    rc, result = call(lite, name, "bitwarden_sync_info", LITE_ARGS)
    assert rc == 0, result
    organization = result["organization"]
    assert organization["sponsorship_sync_state"] == "unknown"
    assert "volume inspect renamed_bitwarden` failed (Error response from daemon: get renamed_bitwarden: no such volume)" \
        in organization["sponsorship_sync_log"]


def test_status_and_metrics_say_failed_on_lite(lite, tmp_path):
    """The status playbook (the role passes deployment, compose_dir and docker_command) reads the volume's log: the
    sponsorship state is failed, in the report and in the metrics."""
    name = "lite-one"
    lite.client.run_job(name)
    run = run_playbook(STATUS, lite.inventory, extra_vars={
        "billing_sync_report_dir": str(tmp_path), "billing_sync_metrics_path": str(tmp_path) + "/{{ inventory_hostname }}.prom"})
    assert_no_secrets(run.output, secrets_of(lite.instance(name)))
    assert run.rc == 0, run.output
    samples = {}
    for family in text_string_to_metric_families((tmp_path / ("%s.prom" % name)).read_text(encoding="utf-8")):
        for sample in family.samples:
            samples[(sample.name, sample.labels.get("state"))] = sample.value
    assert samples[("selfhost_bitwarden_sponsorship_sync_state", "failed")] == 1
    assert "failed" in (tmp_path / "billing-sync-report.json").read_text(encoding="utf-8")
