"""bitwarden_restart_check: the check before any change that the restart cannot leave the server down, with a scripted
docker (run_command) instead of the host's."""

from __future__ import annotations

import json
import os
import pwd

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.bitwarden.plugins.modules import bitwarden_restart_check as module

from unit.plugins.module_utils.bitwarden_fakes import run_module

ME = pwd.getpwuid(os.geteuid()).pw_name
API = "ghcr.io/bitwarden/api:2026.8.0"
IDENTITY = "ghcr.io/bitwarden/identity:2026.8.0"
IMAGES_OUT = "%s\n%s\n" % (API, IDENTITY)
REGISTRY_ERROR = 'Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io on 127.0.0.53:53: no such host'


class FakeDocker:
    """Scripted answers to run_command, in order: (argv after `timeout <s> <docker>`, rc, stdout, stderr)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append((list(args), kwargs))
        assert self.answers, "unexpected command %s" % args
        expected, rc, out, err = self.answers.pop(0)
        assert args[3:] == expected
        return rc, out, err

    def done(self):
        assert not self.answers, "commands not run: %s" % self.answers


@pytest.fixture
def docker(monkeypatch):
    def install(*answers):
        fake = FakeDocker(answers)
        monkeypatch.setattr(AnsibleModule, "run_command", fake)
        return fake
    return install


def standard(tmp_path, owner_file="bitwarden.sh"):
    """An install dir with bitwarden.sh (owned by the user running the tests) and bwdata/docker."""
    (tmp_path / "bwdata" / "docker").mkdir(parents=True)
    if owner_file:
        (tmp_path / owner_file).write_text("#!/bin/bash\n", encoding="utf-8")
    return tmp_path


def args(tmp_path, **extra):
    return dict({"install_dir": str(tmp_path), "install_user": ME, "restart_method": "bitwarden_sh"}, **extra)


COMPOSE = (["compose"], 0, "\nUsage:  docker compose [OPTIONS] COMMAND\n", "")
CONFIG = (["compose", "config", "--images"], 0, IMAGES_OUT, "")
API_DIGEST = "ghcr.io/bitwarden/api@sha256:" + "ab" * 32
CERTBOT_DIGEST = "certbot/certbot@sha256:" + "cd" * 32
INSPECT_API = (["image", "inspect", API], 0, json.dumps([{"RepoTags": [API], "RepoDigests": [API_DIGEST]}]), "")
NOT_PRESENT = (["image", "inspect", API], 1, "[]\n", "Error response from daemon: No such image: %s\n" % API)
PULL_OK = (["pull", API_DIGEST], 0, "Status: Image is up to date for %s\n" % API_DIGEST, "")
DAEMON_ERROR = 'Get "https://ghcr.io/v2/": proxyconnect tcp: dial tcp 192.0.2.10:3128: connect: connection refused'


def test_a_wrong_owner_is_not_checked_and_runs_nothing(tmp_path, capsys, docker):
    fake = docker()
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), install_user="nobody-else"), capsys)
    assert not failed and not result["changed"] and result["checked"] is False
    assert result["reason"].startswith("%s/bitwarden.sh belongs to %s, not to install_user nobody-else" % (tmp_path, ME))
    assert (result["images"], result["local_images_present"], result["registry_answers"]) == ([], None, None)
    assert fake.calls == []


def test_a_missing_installation_is_not_checked(tmp_path, capsys, docker):
    fake = docker()
    failed, result, dummy = run_module(module.main, args(standard(tmp_path, owner_file=None)), capsys)
    assert not failed and result["checked"] is False
    assert "cannot look at %s/bitwarden.sh (No such file or directory)" % tmp_path in result["reason"]
    assert fake.calls == []


def test_lite_looks_at_the_compose_file_and_runs_in_the_install_dir(tmp_path, capsys, docker):
    (tmp_path / "docker-compose.yml").write_text("services: {}\n", encoding="utf-8")
    fake = docker(COMPOSE, CONFIG, (["image", "inspect", API, IDENTITY], 0, "[]\n", ""))
    failed, result, dummy = run_module(module.main, args(tmp_path, deployment="lite", restart_method="compose"), capsys)
    assert not failed and result["checked"] is True and result["local_images_present"] is True
    assert [kwargs["cwd"] for dummy, kwargs in fake.calls] == [str(tmp_path)] * 3
    fake.done()


def test_a_failing_compose_config_is_ok_and_says_why(tmp_path, capsys, docker):
    fake = docker(COMPOSE, (["compose", "config", "--images"], 15, "", "yaml: line 3: did not find expected key\n"))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys)
    assert not failed and not result["changed"] and result["checked"] is False
    assert "docker compose config --images failed in %s/bwdata/docker (exit code 15: yaml: line 3: did not find expected " \
        "key)" % tmp_path in result["reason"]
    assert "before it takes anything down" in result["reason"]
    fake.done()


def without_compose_v1(monkeypatch):
    real = AnsibleModule.get_bin_path
    monkeypatch.setattr(AnsibleModule, "get_bin_path",
                        lambda self, name, *a, **k: None if name == "docker-compose" else real(self, name, *a, **k))


def test_no_compose_at_all_is_not_checked(tmp_path, capsys, docker, monkeypatch):
    """bitwarden.sh stops with "Neither 'docker compose' nor 'docker-compose'" before it takes anything down."""
    without_compose_v1(monkeypatch)
    fake = docker((["compose"], 1, "", "docker: 'compose' is not a docker command.\nSee 'docker --help'\n"))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys)
    assert not failed and result["checked"] is False and result["compose"] is None
    assert result["reason"].startswith("neither `docker compose` nor docker-compose answers on this host (docker: 'compose' is "
                                       "not a docker command.)")
    fake.done()


def test_compose_v1_is_what_bitwarden_sh_falls_back_to_and_its_pull_is_probed(tmp_path, capsys, docker):
    """Issue 22.3: no compose plugin, docker-compose v1 beside docker: the script stops the server and then pulls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    v1 = bin_dir / "docker-compose"
    v1.write_text("#!/bin/sh\n", encoding="utf-8")
    v1.chmod(0o755)
    config = "services:\n  api:\n    image: %s\n  identity:\n    image: '%s'\nversion: '3.9'\n" % (API, IDENTITY)
    fake = docker((["compose"], 1, "", "docker: 'compose' is not a docker command.\n"), (["config"], 0, config, ""),
                  INSPECT_API, (["pull", API_DIGEST], 1, "", "Error response from daemon: %s\n" % REGISTRY_ERROR))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), docker_command=str(bin_dir / "docker")), capsys)
    assert failed and result["compose"] == "docker-compose" and result["images"] == [API, IDENTITY]
    assert fake.calls[1][0] == ["timeout", "60", str(v1), "config"]
    assert "bitwarden.sh restart pulls the images (docker-compose pull) after taking the server down" in result["msg"]
    fake.done()


def test_bitwarden_sh_needs_the_registry_and_fails_with_the_roles_message(tmp_path, capsys, docker):
    fake = docker(COMPOSE, CONFIG, INSPECT_API, (["pull", API_DIGEST], 1, "", "first\n\nError response from daemon: %s\n\n" % DAEMON_ERROR))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys)
    assert failed and not result["changed"]
    assert result["msg"] == (
        "Nothing was changed: the restart this host needs (billing_sync_restart_method bitwarden_sh) cannot succeed. "
        "The container registry does not answer the Docker daemon (docker pull %s) (first / Error response from daemon: %s), and "
        "bitwarden.sh restart pulls the images (docker compose pull) after taking the server down, which would leave it "
        "down. Allow egress to the registry (ghcr.io) for the Docker daemon (its proxy: systemd drop-in or daemon.json; its "
        "registry mirrors) or set billing_sync_restart_method to compose when the images are present locally."
        % (API_DIGEST, DAEMON_ERROR))
    assert (result["checked"], result["images"], result["local_images_present"], result["registry_answers"]) == \
        (True, [API, IDENTITY], None, False)
    assert result["registry_probe"] == "the Docker daemon (docker pull %s)" % API_DIGEST
    fake.done()


def test_bitwarden_sh_with_a_registry_that_answers_the_daemon_is_ok(tmp_path, capsys, docker):
    """The CLI's manifest request is never asked when the image is present: its egress is not the pull's."""
    fake = docker(COMPOSE, CONFIG, INSPECT_API, PULL_OK)
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys)
    assert not failed and (result["checked"], result["registry_answers"], result["reason"]) == (True, True, None)
    assert result["letsencrypt"] is None
    fake.done()


def test_an_image_not_present_locally_is_probed_with_the_cli_and_says_so(tmp_path, capsys, docker):
    fake = docker(COMPOSE, CONFIG, NOT_PRESENT, (["manifest", "inspect", API], 0, "{}\n", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys)
    assert not failed and result["registry_answers"] is True
    assert result["registry_probe"].startswith("the docker CLI (docker manifest inspect %s; not present locally" % API)
    fake.done()


def test_letsencrypt_needs_docker_hub_for_certbot(tmp_path, capsys, docker):
    install = standard(tmp_path)
    (install / "bwdata" / "letsencrypt" / "live").mkdir(parents=True)
    hub = 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host'
    fake = docker(COMPOSE, CONFIG, INSPECT_API, PULL_OK,
                  (["image", "inspect", "certbot/certbot"], 0, json.dumps([{"RepoDigests": [CERTBOT_DIGEST]}]), ""),
                  (["pull", CERTBOT_DIGEST], 1, "", "Error response from daemon: %s\n" % hub))
    failed, result, dummy = run_module(module.main, args(install), capsys)
    assert failed and result["registry_answers"] is True
    assert result["letsencrypt"] == {"image": "certbot/certbot", "registry_answers": False,
                                     "registry_probe": "the Docker daemon (docker pull %s)" % CERTBOT_DIGEST}
    assert ("%s/bwdata/letsencrypt/live exists, so bitwarden.sh restart also pulls certbot/certbot from Docker Hub and runs "
            "certbot renew after taking the server down (run.sh updateLetsEncrypt)" % install) in result["msg"]
    assert hub in result["msg"]
    fake.done()


def test_letsencrypt_is_not_the_compose_methods_business(tmp_path, capsys, docker):
    install = standard(tmp_path)
    (install / "bwdata" / "letsencrypt" / "live").mkdir(parents=True)
    fake = docker(COMPOSE, CONFIG, (["image", "inspect", API, IDENTITY], 0, "[]\n", ""))
    failed, result, dummy = run_module(module.main, args(install, restart_method="compose"), capsys)
    assert not failed and result["letsencrypt"] is None
    fake.done()


def test_compose_with_the_images_present_never_asks_the_registry(tmp_path, capsys, docker):
    fake = docker(COMPOSE, CONFIG, (["image", "inspect", API, IDENTITY], 0, "[]\n", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), restart_method="compose"), capsys)
    assert not failed and (result["checked"], result["local_images_present"], result["registry_answers"]) == (True, True, None)
    fake.done()


def test_compose_with_images_missing_is_ok_when_the_registry_answers(tmp_path, capsys, docker):
    fake = docker(COMPOSE, CONFIG, (["image", "inspect", API, IDENTITY], 1, "[]\n", "Error response from daemon: No such image: %s\n" % API),
                  NOT_PRESENT, (["manifest", "inspect", API], 0, "{}\n", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), restart_method="compose"), capsys)
    assert not failed and (result["checked"], result["local_images_present"], result["registry_answers"]) == (True, False, True)
    fake.done()


def test_compose_without_images_or_registry_fails_with_the_roles_message(tmp_path, capsys, docker):
    missing = "\nError response from daemon: No such image: %s\nError response from daemon: No such image: %s\nthird\n" % (API, IDENTITY)
    fake = docker(COMPOSE, CONFIG, (["image", "inspect", API, IDENTITY], 1, "[]\n", missing), NOT_PRESENT,
                  (["manifest", "inspect", API], 1, "", "earlier line\n%s\n\n" % REGISTRY_ERROR))
    compose_dir = tmp_path / "compose"
    compose_dir.mkdir()
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), restart_method="compose",
                                                         compose_dir=str(compose_dir)), capsys)
    assert failed and not result["changed"]
    assert result["msg"] == (
        "Nothing was changed: the restart this host needs (billing_sync_restart_method compose) cannot succeed. "
        "Images named in %s/docker-compose.yml are missing locally (Error response from daemon: No such image: %s / "
        "Error response from daemon: No such image: %s) and the container registry does not answer (%s). Pull the "
        "images while the host can reach the registry (docker compose pull), then re-run."
        % (compose_dir, API, IDENTITY, REGISTRY_ERROR))
    assert (result["checked"], result["local_images_present"], result["registry_answers"]) == (True, False, False)
    assert {kwargs["cwd"] for dummy, kwargs in fake.calls} == {str(compose_dir)}
    fake.done()


def test_argv_cwd_and_timeout_are_exact(tmp_path, capsys, docker):
    fake = docker(COMPOSE, CONFIG, INSPECT_API, PULL_OK)
    failed, dummy, dummy = run_module(module.main, args(standard(tmp_path), docker_command="/usr/local/bin/docker",
                                                        command_timeout=7), capsys)
    assert not failed
    assert [argv for argv, dummy in fake.calls] == [
        ["timeout", "7", "/usr/local/bin/docker", "compose"],
        ["timeout", "7", "/usr/local/bin/docker", "compose", "config", "--images"],
        ["timeout", "7", "/usr/local/bin/docker", "image", "inspect", API],
        ["timeout", "7", "/usr/local/bin/docker", "pull", API_DIGEST],
    ]
    assert all(kwargs["cwd"] == str(tmp_path / "bwdata" / "docker") and kwargs["expand_user_and_vars"] is False
               for dummy, kwargs in fake.calls)


def test_the_default_timeout_is_60_seconds(tmp_path, capsys, docker):
    fake = docker(COMPOSE, CONFIG, INSPECT_API, PULL_OK)
    run_module(module.main, args(standard(tmp_path)), capsys)
    assert [argv[:3] for argv, dummy in fake.calls] == [["timeout", "60", "docker"]] * 4


def test_a_registry_probe_stopped_by_the_timeout_fails(tmp_path, capsys, docker):
    fake = docker(COMPOSE, CONFIG, INSPECT_API, (["pull", API_DIGEST], 124, "", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), command_timeout=5), capsys)
    assert failed and "The container registry does not answer the Docker daemon (docker pull %s) ()" % API_DIGEST in result["msg"]
    assert result["registry_answers"] is False
    fake.done()


def test_check_mode_runs_the_same_read_only_commands(tmp_path, capsys, docker):
    fake = docker(COMPOSE, CONFIG, INSPECT_API, (["pull", API_DIGEST], 1, "", REGISTRY_ERROR + "\n"))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys, check_mode=True)
    assert failed and result["msg"].startswith("Nothing was changed") and not result["changed"]
    fake.done()


def test_no_images_means_nothing_to_check(tmp_path, capsys, docker):
    fake = docker(COMPOSE, (["compose", "config", "--images"], 0, "\n", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), restart_method="compose"), capsys)
    assert not failed and result["checked"] is False and "named no image" in result["reason"]
    fake.done()


def test_a_missing_compose_dir_or_timeout_is_not_checked(tmp_path, capsys, docker, monkeypatch):
    fake = docker()
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), compose_dir=str(tmp_path / "nope")), capsys)
    assert not failed and result["checked"] is False and "is not a directory" in result["reason"]
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    failed, result, dummy = run_module(module.main, args(tmp_path), capsys)
    assert not failed and result["checked"] is False and "coreutils timeout is not on PATH" in result["reason"]
    assert fake.calls == []


@pytest.mark.parametrize("extra, expected", [
    ({"install_dir": "relative/dir"}, "install_dir must be an absolute path, not relative/dir"),
    ({"compose_dir": "bwdata/docker"}, "compose_dir must be an absolute path, not bwdata/docker"),
    ({"install_user": " "}, "install_user must not be empty"),
    ({"docker_command": ""}, "docker_command must not be empty"),
    ({"command_timeout": 0}, "command_timeout must be from 1 to 3600 seconds, not 0"),
    ({"deployment": "lite"}, "restart_method bitwarden_sh needs a standard installation"),
])
def test_bad_inputs_name_the_option_and_run_nothing(tmp_path, capsys, docker, extra, expected):
    fake = docker()
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), **extra), capsys)
    assert failed and result["msg"].startswith(expected)
    assert fake.calls == []
