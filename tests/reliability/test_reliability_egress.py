"""Egress the restart and the server need, where it really goes (issue 21 items 6 and 7, issue 22 item 3): a role run
on a host whose daemon, Docker Hub, compose or containers cannot do what the restart or the server needs stops before
the env file changes and restarts nothing; a host where only the docker CLI's egress is broken converges, since the
restart does not depend on it."""

import pytest

from helpers.ansible_run import run_playbook
from reliability.matrix import ROLLOUT, Case


def letsencrypt(host):
    (host.install_dir / "bwdata" / "letsencrypt" / "live").mkdir(parents=True)


def with_region(region):
    def runner(host, case):
        return [run_playbook(ROLLOUT, host.fleet.inventory, limit=host.name, diff=case.diff, verbosity=4,
                             env=host.run_env(), extra_vars={"billing_sync_region": region})]
    return runner


STOPPED = dict(run="role", failed=True, env="unchanged", restarts=0, server_on=False)
CASES = [
    Case("compose v1 only and the registry unreachable", fleet={"faults": {"compose_v1": True, "pull_fails": True}},
         message=r"bitwarden\.sh restart pulls the images \(docker-compose pull\) after taking the server down", **STOPPED),
    Case("the daemon's egress to the registry broken, the CLI's fine", fleet={"faults": {"daemon_registry_unreachable": True}},
         message=r"does not answer the Docker daemon \(docker pull ghcr\.io/bitwarden/\S+@sha256:", **STOPPED),
    Case("Let's Encrypt install without Docker Hub", prepare=letsencrypt, fleet={"faults": {"docker_hub_unreachable": True}},
         message=r"also pulls certbot/certbot from Docker Hub", **STOPPED),
    Case("the containers cannot reach the cloud, the host can", fleet={"faults": {"cloud_unreachable": True}},
         message=r"\(container identity\): container failed: from the api container: wget: bad address", **STOPPED),
    Case("billing_sync_region=US on an EU host", fleet={"region": "EU"}, runner=with_region("US"),
         message=r"invalid_client: the US cloud rejected the installation id and key", **STOPPED),
    Case("only the docker CLI's egress broken", run="role", fleet={"faults": {"cli_registry_unreachable": True}},
         restarts=1, server_on=True),
    Case("compose v1 only with the registry reachable", run="role", fleet={"faults": {"compose_v1": True}},
         restarts=1, server_on=True),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_egress(case, run_case):
    run_case(case)
