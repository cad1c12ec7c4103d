"""A mixed fleet (standard US, standard EU, Bitwarden Lite US, Bitwarden Lite EU) through playbooks/rollout.yml.

Check mode touches nothing; one run converges every host with one restart each (bitwarden.sh restart on standard,
`docker compose up -d` in the compose dir on Lite); a re-run changes nothing and restarts nothing. Assertions are on
the simulator's own state (container (re)creations, docker calls, settings read at start, connections, counters).
"""

import shutil
from pathlib import Path

import pytest
import yaml

from helpers.ansible_run import assert_no_secrets, run_playbook
from helpers.lite_env import lite_settings

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = REPO / "playbooks" / "rollout.yml"
EXAMPLES = REPO / "docs" / "examples"
MIXED = [
    {"name": "std-us"},
    {"name": "std-eu", "region": "EU"},
    {"name": "lite-us", "deployment": "lite"},
    {"name": "lite-eu", "deployment": "lite", "region": "EU"},
]
LITE = ("lite-us", "lite-eu")
ENABLE = "globalSettings__enableCloudCommunication"
EU_LINES = (
    "globalSettings__enableCloudCommunication=true\n"
    "globalSettings__baseServiceUri__cloudRegion=EU\n"
    "globalSettings__installation__identityUri=https://identity.bitwarden.eu\n"
    "globalSettings__installation__apiUri=https://api.bitwarden.eu\n"
    "globalSettings__pushRelayBaseUri=https://push.bitwarden.eu\n"
)


def env_file(fleet, name):
    root = Path(fleet.host_vars(name)["billing_sync_install_dir"])
    lite = fleet.host_vars(name).get("billing_sync_deployment") == "lite"
    return root / "settings.env" if lite else root / "bwdata" / "env" / "global.override.env"


def compose_ups(fleet, name):
    return [call for call in fleet.client.instance(name)["docker_calls"] if call["argv"][:2] == ["compose", "up"]]


def secrets_of(fleet, name):
    state = fleet.client.instance(name)
    host = fleet.host_vars(name)
    return [state["credentials"]["owner"]["client_secret"], state["billing_sync_token"], host["billing_sync_client_secret"]]


def example_inventory(fleet, directory):
    """The quick start's Lite layout: Lite hosts also in group bitwarden_lite, whose group_vars file is the docs example
    (billing_sync_deployment comes from there, not from the simulator's host vars)."""
    document = yaml.safe_load(fleet.inventory.read_text(encoding="utf-8"))
    groups = document["all"]["children"]["bitwarden"]["children"]
    lite_hosts = {}
    for group in groups.values():
        for name, host in (group.get("hosts") or {}).items():
            if host.pop("billing_sync_deployment", None) == "lite":
                lite_hosts[name] = None
    groups["bitwarden_lite"] = {"hosts": lite_hosts}
    inventory = directory / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    shutil.copy(EXAMPLES / "inventory" / "group_vars" / "bitwarden_lite.yml", inventory / "group_vars")
    (inventory / "hosts.yml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return inventory


def test_lite_settings_example_shows_what_the_role_writes():
    from ansible_collections.selfhost.bitwarden.plugins.module_utils import _regions

    lines = (EXAMPLES / "lite" / "settings.env").read_text(encoding="utf-8").splitlines()
    managed = [line for line in lines if line.startswith("globalSettings__")]
    assert managed == ["%s=true" % _regions.ENABLE] + ["%s=%s" % item for item in _regions.REGIONS["EU"].items()]
    assert any(line.startswith("BW_INSTALLATION_ID=") for line in lines)
    hosts = yaml.safe_load((EXAMPLES / "lite" / "hosts.yml").read_text(encoding="utf-8"))
    groups = hosts["bitwarden"]["children"]
    assert set(groups["bitwarden_lite"]["hosts"]) <= set(groups["bitwarden_us"]["hosts"]) | set(groups["bitwarden_eu"]["hosts"])


@pytest.fixture
def mixed_fleet(sim_fleet):
    return sim_fleet(MIXED, restart_delay=0.2, warmup=0.1)


def test_mixed_fleet_check_converge_rerun(mixed_fleet, tmp_path):
    fleet = mixed_fleet
    inventory = example_inventory(fleet, tmp_path)
    names = [spec["name"] for spec in MIXED]
    secrets = [secret for name in names for secret in secrets_of(fleet, name)]
    before = {name: env_file(fleet, name).read_bytes() for name in names}

    check = run_playbook(ROLLOUT, inventory, check=True, diff=True).assert_ok()
    for name in names:
        state = fleet.client.instance(name)
        assert env_file(fleet, name).read_bytes() == before[name]
        assert state["restarts"] == 0 and compose_ups(fleet, name) == []
        assert state["counters"]["writes"] == 0 and state["counters"]["cloud_calls"] == 0
        assert state["connection"] is None
    assert check.stdout.count("+" + ENABLE + "=true") == 4, check.output
    assert_no_secrets(check.output, secrets)

    first = run_playbook(ROLLOUT, inventory).assert_ok()
    for name in names:
        state = fleet.client.instance(name)
        assert state["restarts"] == 1, (name, first.output)
        assert state["settings"]["enableCloudCommunication"] is True
        assert state["connection"]["enabled"] is True
        assert state["connection"]["config"]["LastLicenseSync"] is not None
    for name in ("std-eu", "lite-eu"):
        settings = fleet.client.instance(name)["settings"]
        assert settings["cloudRegion"] == "EU" and settings["identityUri"] == "https://identity.bitwarden.eu"
    for name in LITE:
        ups = compose_ups(fleet, name)
        assert [call["argv"] for call in ups] == [["compose", "up", "-d"]]
        assert ups[0]["user"] == fleet.host_vars(name)["billing_sync_user"] and ups[0]["exit_code"] == 0
        assert not (Path(fleet.host_vars(name)["billing_sync_install_dir"]) / "bitwarden.sh").exists()
    # settings.env: every byte the role does not manage kept, the managed keys appended (it had none of them).
    assert env_file(fleet, "lite-eu").read_bytes() == before["lite-eu"] + EU_LINES.encode()
    for name in ("std-us", "std-eu"):
        assert [call["command"] for call in fleet.client.bitwarden_sh_calls(name)] == ["restart"]
    assert_no_secrets(first.output, secrets)

    for name in names:
        fleet.client.reset_counters(name)
    second = run_playbook(ROLLOUT, inventory).assert_ok()
    assert second.changed_total() == 0, second.output
    for name in names:
        state = fleet.client.instance(name)
        assert state["restarts"] == 1
        assert state["counters"]["cloud_calls"] == 0 and state["counters"]["writes"] == 0
    for name in LITE:
        assert len(compose_ups(fleet, name)) == 1

    drift = run_playbook(ROLLOUT, inventory, check=True, diff=True).assert_ok()
    assert drift.changed_total() == 0, drift.output


def test_lite_with_a_zero_installation_id_fails_before_any_change(sim_fleet):
    """A Lite host whose BW_INSTALLATION_ID is still the template's zeros: the role stops on that host with the
    variable and where to get it; settings.env and the running container stay as they were."""
    fleet = sim_fleet([{"name": "lite-zero", "deployment": "lite", "region": "EU"}], restart_delay=0.2, warmup=0.1)
    path = env_file(fleet, "lite-zero")
    installation_id = fleet.client.instance("lite-zero")["installation_id"]
    path.write_text(path.read_text(encoding="utf-8").replace(installation_id, "00000000-0000-0000-0000-000000000000"),
                    encoding="utf-8")
    before = path.read_bytes()
    run = run_playbook(ROLLOUT, fleet.inventory)
    assert run.rc != 0
    assert "BW_INSTALLATION_ID is all zeros" in run.output
    assert "Get them for the EU region on https://bitwarden.com/host" in run.output
    assert path.read_bytes() == before
    state = fleet.client.instance("lite-zero")
    assert state["restarts"] == 0 and compose_ups(fleet, "lite-zero") == [] and state["connection"] is None


def test_lite_settings_env_keeps_every_unmanaged_byte(sim_fleet):
    """An admin's settings.env (comments, quoted values, inline comments, unknown keys, a managed key already quoted)
    goes through the role with only the managed lines touched."""
    fleet = sim_fleet([{"name": "lite-own", "deployment": "lite"}], restart_delay=0.2, warmup=0.1)
    state = fleet.client.instance("lite-own")
    path = env_file(fleet, "lite-own")
    key = next(line for line in path.read_text(encoding="utf-8").splitlines()
               if line.startswith("BW_INSTALLATION_KEY="))  # the key the cloud knows
    text, dummy = lite_settings(installation_id=state["installation_id"], installation_key=key.split("=", 1)[1].strip("'"),
                                extra="globalSettings__baseServiceUri__vault='%s'\n"
                                      "globalSettings__enableCloudCommunication=\"false\"   # not yet\n"
                                      "MY_OWN_SETTING=\"keep # me\"\n" % state["url"])
    path.write_text(text, encoding="utf-8")
    run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    expected = text.replace('globalSettings__enableCloudCommunication="false"   # not yet',
                            'globalSettings__enableCloudCommunication="true"   # not yet') + (
        "globalSettings__baseServiceUri__cloudRegion=US\n"
        "globalSettings__installation__identityUri=https://identity.bitwarden.com\n"
        "globalSettings__installation__apiUri=https://api.bitwarden.com\n"
        "globalSettings__pushRelayBaseUri=https://push.bitwarden.com\n")
    assert path.read_text(encoding="utf-8") == expected
    state = fleet.client.instance("lite-own")
    assert state["settings"]["enableCloudCommunication"] is True and state["restarts"] == 1


def test_lite_restart_check_looks_in_the_compose_dir(sim_fleet):
    """The restart check reads the images of Lite's docker-compose.yml: missing locally and no registry means
    `docker compose up -d` would have to pull and cannot, so the role stops before it touches settings.env."""
    fleet = sim_fleet([{"name": "lite-offline", "deployment": "lite", "faults": {"images_missing": True, "pull_fails": True}}],
                      restart_delay=0.2, warmup=0.1)
    path = env_file(fleet, "lite-offline")
    before = path.read_bytes()
    run = run_playbook(ROLLOUT, fleet.inventory)
    assert run.rc != 0
    assert "Nothing was changed" in run.output
    assert "Images named in %s/docker-compose.yml are missing locally" % fleet.install_dir("lite-offline") in run.output
    assert path.read_bytes() == before
    assert fleet.client.instance("lite-offline")["restarts"] == 0 and compose_ups(fleet, "lite-offline") == []
