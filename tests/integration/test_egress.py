"""Egress the restart and the server need, seen from where they really go (issue 21 items 5-8, issue 22 item 3),
through ansible-playbook against the simulator: the restart check probes the registry the way the daemon pulls, follows
bitwarden.sh's compose fallback and run.sh's Let's Encrypt step; nothing relies on `(healthy)`. Each failure names
its cause, changes nothing and leaves the server up."""

from pathlib import Path

from helpers.ansible_run import run_module, run_playbook

REPO = Path(__file__).resolve().parents[2]
ROLLOUT = REPO / "playbooks" / "rollout.yml"
FAST = {"restart_delay": 0.2, "warmup": 0.1}
CHECK_TASK = "Stop before any change when the restart cannot succeed"


def env_file(fleet, name):
    return Path(fleet.host_vars(name)["billing_sync_install_dir"]) / "bwdata" / "env" / "global.override.env"


def failure(run, task):
    messages = [event["result"]["msg"] for event in run.events
                if event["event"] == "task" and event["task"].endswith(task) and event["status"] == "failed"]
    assert messages, run.output
    return messages[0]


def assert_untouched(fleet, name, env_before):
    """Nothing changed before the failure and the server is still up."""
    assert env_file(fleet, name).read_bytes() == env_before
    state = fleet.instance(name)
    assert (state["state"], state["restarts"]) == ("up", 0)
    assert fleet.client.bitwarden_sh_calls(name) == []


def test_compose_v1_with_an_unreachable_registry_is_stopped_before_anything_goes_down(sim_fleet):
    """Issue 22.3: bitwarden.sh falls back to docker-compose, takes the server down, then the pull fails; the check
    used to say "docker compose config --images failed ... would fail before it takes anything down" and let it run."""
    fleet = sim_fleet([{"name": "bw-v1", "faults": {"compose_v1": True, "pull_fails": True}}], **FAST)
    before = env_file(fleet, "bw-v1").read_bytes()
    run = run_playbook(ROLLOUT, fleet.inventory)
    assert run.rc != 0
    message = failure(run, CHECK_TASK)
    assert message.startswith("Nothing was changed: the restart this host needs (billing_sync_restart_method bitwarden_sh) "
                              "cannot succeed. The container registry does not answer the Docker daemon (docker pull ")
    assert "bitwarden.sh restart pulls the images (docker-compose pull) after taking the server down" in message
    assert_untouched(fleet, "bw-v1", before)


def test_compose_v1_with_a_reachable_registry_converges(sim_fleet):
    fleet = sim_fleet([{"name": "bw-v1ok", "faults": {"compose_v1": True}}], **FAST)
    run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert [c["exit_code"] for c in fleet.client.bitwarden_sh_calls("bw-v1ok")] == [0]
    assert fleet.instance("bw-v1ok")["settings"]["enableCloudCommunication"] is True


def test_daemon_egress_failure_is_caught_although_the_cli_reaches_the_registry(sim_fleet):
    """Issue 21.7: `docker manifest inspect` (CLI) answers, the daemon's pull does not (its proxy or mirror)."""
    fleet = sim_fleet([{"name": "bw-daemon", "faults": {"daemon_registry_unreachable": True}}], **FAST)
    before = env_file(fleet, "bw-daemon").read_bytes()
    run = run_playbook(ROLLOUT, fleet.inventory)
    assert run.rc != 0
    message = failure(run, CHECK_TASK)
    assert "does not answer the Docker daemon (docker pull ghcr.io/bitwarden/mssql@sha256:" in message
    assert "proxyconnect tcp" in message and "for the Docker daemon (its proxy: systemd drop-in or daemon.json" in message
    assert_untouched(fleet, "bw-daemon", before)


def test_cli_only_egress_failure_does_not_block_a_restart_that_works(sim_fleet):
    """Issue 21.7: the shell cannot reach the registry but the daemon can: the restart works, so the check lets it."""
    fleet = sim_fleet([{"name": "bw-cli", "faults": {"cli_registry_unreachable": True}}], **FAST)
    run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert [c["exit_code"] for c in fleet.client.bitwarden_sh_calls("bw-cli")] == [0]
    argvs = [" ".join(call["argv"]) for call in fleet.client.docker_calls("bw-cli")]
    assert not any(a.startswith("manifest inspect") for a in argvs)


def test_letsencrypt_host_without_docker_hub_is_stopped_before_anything_goes_down(sim_fleet):
    """Issue 21.7: run.sh restart pulls certbot/certbot from Docker Hub after `down` when bwdata/letsencrypt/live exists."""
    fleet = sim_fleet([{"name": "bw-le", "faults": {"docker_hub_unreachable": True}}], **FAST)
    (fleet.install_dir("bw-le") / "bwdata" / "letsencrypt" / "live").mkdir(parents=True)
    before = env_file(fleet, "bw-le").read_bytes()
    run = run_playbook(ROLLOUT, fleet.inventory)
    assert run.rc != 0
    message = failure(run, CHECK_TASK)
    assert "bwdata/letsencrypt/live exists, so bitwarden.sh restart also pulls certbot/certbot from Docker Hub" in message
    assert "registry-1.docker.io" in message
    assert_untouched(fleet, "bw-le", before)


def test_letsencrypt_host_with_docker_hub_renews_during_the_restart_and_converges(sim_fleet):
    fleet = sim_fleet([{"name": "bw-le-ok"}], **FAST)
    (fleet.install_dir("bw-le-ok") / "bwdata" / "letsencrypt" / "live").mkdir(parents=True)
    run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    argvs = [" ".join(call["argv"]) for call in fleet.client.docker_calls("bw-le-ok")]
    assert any("certbot/certbot renew" in a for a in argvs)
    assert fleet.instance("bw-le-ok")["settings"]["enableCloudCommunication"] is True


def test_nothing_waits_on_compose_health(sim_fleet):
    """Issue 21.8: `ps` says "(health: starting)" for 30 s after up; the role waits on /alive and a token instead, so
    it never asks docker for health and a restart costs no 30 s."""
    fleet = sim_fleet([{"name": "bw-health"}], **FAST)
    run_playbook(ROLLOUT, fleet.inventory).assert_ok()
    assert fleet.instance("bw-health")["restarts"] == 1
    argvs = [call["argv"] for call in fleet.client.docker_calls("bw-health")]
    assert not [a for a in argvs if a[:2] == ["compose", "ps"] and "-q" not in a and "--quiet" not in a
                and a[0] != "docker-compose"][1:]  # run.sh's own `ps | wc -l` before down is the only full listing
    assert not [a for a in argvs if "inspect" in a and any("Health" in part for part in a)]


PREFLIGHT_TASK = "Check the region's cloud and the license file before anything changes"


def test_containers_that_cannot_reach_the_cloud_are_caught_although_the_host_can(sim_fleet):
    """Issue 21.6 hidden check: the host's probe succeeds, the server's own cloud calls (its containers' DNS/proxy) fail;
    such a host must not get its env file changed nor a restart."""
    fleet = sim_fleet([{"name": "bw-split", "faults": {"cloud_unreachable": True}}], **FAST)
    before = env_file(fleet, "bw-split").read_bytes()
    run = run_playbook(ROLLOUT, fleet.inventory)
    assert run.rc != 0
    message = failure(run, PREFLIGHT_TASK)
    assert message.startswith("Preflight for the US cloud failed before anything changed: ")
    assert ("https://identity.bitwarden.com/alive (container identity): container failed: from the api container: "
            "wget: bad address 'identity.bitwarden.com'; the server's containers cannot reach the cloud although this "
            "host can") in message
    assert "(identity): " not in message.replace("(container identity)", "")  # the host's own probe passed
    assert_untouched(fleet, "bw-split", before)
    argvs = [call["argv"] for call in fleet.client.docker_calls("bw-split")]
    assert ["compose", "exec", "-T", "api", "wget", "-q", "-T", "10", "-O", "/dev/null",
            "https://api.bitwarden.com/alive"] in argvs


def test_a_region_override_on_an_eu_host_is_stopped_by_the_preflight(sim_fleet):
    """Issue 21.6: the test endpoints used to be pinned to the host's own cloud, so `-e billing_sync_region=US` on an
    EU host passed, rewrote cloudRegion=EU to US and restarted. The region now picks its cloud, as DNS would."""
    fleet = sim_fleet([{"name": "bw-eu", "region": "EU"}], **FAST)
    before = env_file(fleet, "bw-eu").read_bytes()
    run = run_playbook(ROLLOUT, fleet.inventory, extra_vars={"billing_sync_region": "US"})
    assert run.rc != 0
    message = failure(run, PREFLIGHT_TASK)
    assert message.startswith("Preflight for the US cloud failed before anything changed: ")
    assert "invalid_client: the US cloud rejected the installation id and key" in message
    assert_untouched(fleet, "bw-eu", before)


def test_a_server_that_is_down_is_checked_from_the_host_and_says_so(sim_fleet):
    """No container to ask: the module falls back to the host's probe and says so in a warning and container_probe."""
    fleet = sim_fleet([{"name": "bw-down"}], **FAST)
    assert fleet.client.bitwarden_sh("bw-down", "stop")["exit_code"] == 0
    args = {"bwdata_path": "{{ billing_sync_install_dir }}/bwdata", "region": "{{ billing_sync_region }}",
            "endpoints": "{{ billing_sync_preflight_endpoints[billing_sync_region] }}",
            "ca_path": "{{ billing_sync_preflight_ca_path }}", "docker_command": "{{ billing_sync_docker_command }}"}
    run = run_module("selfhost.bitwarden.bitwarden_preflight", args, fleet.inventory, hosts="bw-down")
    (event,) = run.results("module", "bw-down")
    assert event["status"] == "ok", run.output
    assert event["result"]["container_probe"].startswith("not possible: docker compose exec api in ")
    assert 'service "api" is not running' in event["result"]["container_probe"]
    assert "The cloud was checked from this host only: docker compose exec api in" in " ".join(run.output.split())
    assert [check["name"] for check in event["result"]["checks"]] == ["identity", "api", "license_file"]


SYNC_ARGS = {"server_url": "{{ billing_sync_server_url }}", "bwdata_path": "{{ billing_sync_install_dir }}/bwdata",
             "client_id": "{{ billing_sync_client_id }}", "client_secret": "{{ billing_sync_client_secret }}",
             "organization_id": "{{ billing_sync_organization_id }}", "force": True}
SYNC_ROUTE = "POST /api/organizations/licenses/self-hosted/{id}/sync"


def test_dropped_egress_is_one_sync_decoded_as_timed_out(sim_fleet):
    """Issue 21.5, in real time (no time-scale knob: the one test that pays it): a firewall drops the server's packets
    to the cloud. The api's HttpClient waits its 100 s, nginx gives up at 90 s with a 504, the api logs the
    TaskCanceledException. The client waited longer than both, sent the POST once, and reads the cause from the log."""
    fleet = sim_fleet([{"name": "bw-drop", "preconfigured": True, "faults": {"cloud_drop": True}}], **FAST)
    before_env = env_file(fleet, "bw-drop").read_bytes()
    synced_before = fleet.instance("bw-drop")["connection"]["config"]["LastLicenseSync"]
    fleet.client.reset_counters("bw-drop")
    run = run_module("selfhost.bitwarden.bitwarden_license_sync", SYNC_ARGS, fleet.inventory, hosts="bw-drop")
    (event,) = run.results("module", "bw-drop")
    assert event["status"] == "failed", run.output
    message = event["result"]["msg"]
    assert message.startswith("license sync failed: the server cannot reach the Bitwarden cloud (timed out: The request "
                              "was canceled due to the configured HttpClient.Timeout of 100 seconds elapsing.)"), message
    assert "the license sync was sent once and not repeated" in message and "nginx answered 504 Gateway Time-out" in message
    state = fleet.instance("bw-drop")
    assert state["counters"]["by_route"].get(SYNC_ROUTE) == 1, state["counters"]  # no second POST
    assert state["connection"]["config"]["LastLicenseSync"] == synced_before
    assert env_file(fleet, "bw-drop").read_bytes() == before_env
    assert (state["state"], state["restarts"]) == ("up", 0)
