"""Issue 25 item 7: `--check --diff` shows what would change and nothing else: no warning about the cloud
communication the role itself is about to turn on, no root-prompt notice for a restart that does not happen, and a
restart handler title that is right for every host (0.3.0 named bitwarden_sh on Bitwarden Lite hosts)."""

from __future__ import annotations

from pathlib import Path

from helpers.ansible_run import assert_no_secrets, run_playbook

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = REPO / "playbooks" / "rollout.yml"


def test_check_diff_preview_has_no_noise(sim_fleet):
    fleet = sim_fleet([{"name": "bw-std"}, {"name": "bw-lite", "deployment": "lite"}], restart_delay=0.2, warmup=0.1)
    run = run_playbook(ROLLOUT, fleet.inventory, check=True, diff=True).assert_ok()
    text = " ".join(run.output.split())
    # 0.3.0: "the connection would be saved but the running server has cloud communication off: run ..."
    assert "cloud communication off: run" not in text, text
    # 0.3.0 printed the notice in check mode when the install user is root (the tests' user here)
    assert "answering bitwarden.sh's prompt" not in text
    titles = [line for line in run.output.splitlines() if line.startswith("RUNNING HANDLER [") and "Restart Bitwarden" in line]
    assert titles and all("bitwarden_sh" not in line and "docker compose up -d on Bitwarden Lite" in line for line in titles), titles
    # What would change is shown: the env file diff and a restart per host, and nothing was written or restarted.
    assert "enableCloudCommunication=true" in run.output
    for name in fleet.names:
        assert "%s: region US, drift: " % name in text and "would restart" in text
        state = fleet.client.instance(name)
        assert state["counters"]["writes"] == 0 and state["restarts"] == 0
    assert_no_secrets(run.output, [fleet.host_vars(name)[key] for name in fleet.names
                                   for key in ("billing_sync_client_secret", "billing_sync_token")])
