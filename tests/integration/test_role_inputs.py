"""Issue 25 items 2 and 3: every entry point checks the role's inputs the same way and names the role variable
and the fix; a misspelt billing_sync_* variable is warned about with the closest known name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers.ansible_run import assert_no_secrets, run_playbook

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
CREDENTIALS = ("billing_sync_client_id", "billing_sync_client_secret", "billing_sync_token")


def inventory_without(fleet, directory, names):
    """The fleet's inventory with `names` removed from every host: a vault file that was not loaded."""
    document = yaml.safe_load(fleet.inventory.read_text(encoding="utf-8"))
    for group in document["all"]["children"]["bitwarden"]["children"].values():
        for host in (group.get("hosts") or {}).values():
            for name in names:
                host.pop(name, None)
    path = Path(directory) / "inventory-without-vault.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def entry_points():
    return sorted(path.stem for path in PLAYBOOKS.glob("*.yml"))


@pytest.mark.parametrize("playbook", entry_points())
def test_missing_credentials_name_the_role_variable_in_every_entry_point(sim_fleet, tmp_path, playbook):
    fleet = sim_fleet([{"name": "bw-novault"}])
    inventory = inventory_without(fleet, tmp_path, CREDENTIALS)
    run = run_playbook(PLAYBOOKS / ("%s.yml" % playbook), inventory,
                       extra_vars={"billing_sync_report_dir": str(tmp_path)})
    assert run.rc != 0, run.output
    text = " ".join(run.output.split())
    # 0.3.0: "client_secret must not be empty: set it to the token itself (an empty value would remove the stored one)"
    assert "must not be empty" not in text, text
    assert "billing_sync inputs are incomplete or malformed on bw-novault" in text, text
    assert "billing_sync_client_secret is empty: put the owner API key secret in host_vars/bw-novault/vault.yml" in text
    assert "billing_sync_client_id is empty" in text
    assert ("billing_sync_token is empty" in text) == (playbook in ("rollout", "rotate_token")), text
    assert "the vault was not loaded (--ask-vault-pass or ANSIBLE_VAULT_PASSWORD_FILE)" in text
    state = fleet.client.instance("bw-novault")
    # rollout compares first (one read-only call: a converged host has proven its inputs), then checks them
    assert state["counters"]["token_requests"] == 0 and state["counters"]["writes"] == 0
    assert_no_secrets(run.output, [fleet.host_vars("bw-novault")[name] for name in CREDENTIALS[1:]])


def test_misspelt_variable_is_named_with_the_closest_known_one(sim_fleet, tmp_path):
    from helpers.ansible_run import override_host_vars

    fleet = sim_fleet([{"name": "bw-eu-typo", "region": "EU"}, {"name": "bw-fine"}])
    clean = run_playbook(PLAYBOOKS / "status.yml", fleet.inventory, extra_vars={"billing_sync_report_dir": str(tmp_path)})
    assert "is not a variable of selfhost.bitwarden.billing_sync" not in clean.output, clean.output
    typo = override_host_vars(tmp_path, {"bw-eu-typo": {"billing_sync_regoin": "EU", "billing_sync_tokne": "x"}})
    for playbook in ("status.yml", "rollout.yml"):
        run = run_playbook(PLAYBOOKS / playbook, [fleet.inventory, typo], check=True,
                           extra_vars={"billing_sync_report_dir": str(tmp_path)})
        text = " ".join(run.output.split())
        # 0.3.0 ignored it without a word
        assert ("billing_sync_regoin (bw-eu-typo) is not a variable of selfhost.bitwarden.billing_sync and has no "
                "effect: did you mean billing_sync_region?") in text, text
        assert "billing_sync_tokne (bw-eu-typo)" in text and "did you mean billing_sync_token?" in text
        assert "bw-fine)" not in text


def test_region_not_set_comes_from_the_env_file_and_the_summary_says_so(sim_fleet, tmp_path):
    """The issue's case: billing_sync_regoin: EU (so billing_sync_region not set) on an EU installation. 0.3.0 fell
    back to US although Setup wrote cloudRegion=EU in the env file, and the preflight stopped it far from the cause."""
    from helpers.ansible_run import override_host_vars

    fleet = sim_fleet([{"name": "bw-eu-noregion", "region": "EU"}], restart_delay=0.2, warmup=0.1)
    inventory = inventory_without(fleet, tmp_path, ["billing_sync_region"])
    typo = override_host_vars(tmp_path, {"bw-eu-noregion": {"billing_sync_regoin": "EU"}})
    run = run_playbook(PLAYBOOKS / "rollout.yml", [inventory, typo])
    assert run.rc == 0, run.output
    text = " ".join(run.output.split())
    assert "did you mean billing_sync_region?" in text
    assert "bw-eu-noregion: region EU (from " in text and "global.override.env: billing_sync_region is not set)" in text, text
    state = fleet.client.instance("bw-eu-noregion")
    assert state["settings"]["cloudRegion"] == "EU" and state["settings"]["enableCloudCommunication"] is True
    assert state["connection"] is not None
    again = run_playbook(PLAYBOOKS / "rollout.yml", [inventory, typo]).assert_ok()
    assert again.changed_total() == 0 and "region EU (from " in " ".join(again.output.split())
