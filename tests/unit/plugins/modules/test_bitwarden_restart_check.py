"""bitwarden_restart_check: the check before any change that the restart cannot leave the server down, with a scripted
docker (run_command) instead of the host's."""

from __future__ import annotations

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


CONFIG = (["compose", "config", "--images"], 0, IMAGES_OUT, "")


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
    fake = docker(CONFIG, (["image", "inspect", API, IDENTITY], 0, "[]\n", ""))
    failed, result, dummy = run_module(module.main, args(tmp_path, deployment="lite", restart_method="compose"), capsys)
    assert not failed and result["checked"] is True and result["local_images_present"] is True
    assert [kwargs["cwd"] for dummy, kwargs in fake.calls] == [str(tmp_path)] * 2
    fake.done()


def test_a_failing_compose_config_is_ok_and_says_why(tmp_path, capsys, docker):
    fake = docker((["compose", "config", "--images"], 1, "", "docker: 'compose' is not a docker command.\nSee 'docker --help'\n"))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys)
    assert not failed and not result["changed"] and result["checked"] is False
    assert "docker compose config --images failed in %s/bwdata/docker (exit code 1: See 'docker --help')" % tmp_path \
        in result["reason"]
    assert "before it takes anything down" in result["reason"]
    fake.done()


def test_bitwarden_sh_needs_the_registry_and_fails_with_the_roles_message(tmp_path, capsys, docker):
    fake = docker(CONFIG, (["manifest", "inspect", API], 1, "", "first\n\n%s\n\n" % REGISTRY_ERROR))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys)
    assert failed and not result["changed"]
    assert result["msg"] == (
        "Nothing was changed: the restart this host needs (billing_sync_restart_method bitwarden_sh) cannot succeed. "
        "The container registry does not answer (first / %s), and bitwarden.sh restart pulls the images after taking "
        "the server down, which would leave it down. Allow egress to the registry (ghcr.io) or set "
        "billing_sync_restart_method to compose when the images are present locally." % REGISTRY_ERROR)
    assert (result["checked"], result["images"], result["local_images_present"], result["registry_answers"]) == \
        (True, [API, IDENTITY], None, False)
    fake.done()


def test_bitwarden_sh_with_a_registry_that_answers_is_ok(tmp_path, capsys, docker):
    fake = docker(CONFIG, (["manifest", "inspect", API], 0, "{}\n", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys)
    assert not failed and (result["checked"], result["registry_answers"], result["reason"]) == (True, True, None)
    fake.done()


def test_compose_with_the_images_present_never_asks_the_registry(tmp_path, capsys, docker):
    fake = docker(CONFIG, (["image", "inspect", API, IDENTITY], 0, "[]\n", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), restart_method="compose"), capsys)
    assert not failed and (result["checked"], result["local_images_present"], result["registry_answers"]) == (True, True, None)
    fake.done()


def test_compose_with_images_missing_is_ok_when_the_registry_answers(tmp_path, capsys, docker):
    fake = docker(CONFIG, (["image", "inspect", API, IDENTITY], 1, "[]\n", "Error response from daemon: No such image: %s\n" % API),
                  (["manifest", "inspect", API], 0, "{}\n", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), restart_method="compose"), capsys)
    assert not failed and (result["checked"], result["local_images_present"], result["registry_answers"]) == (True, False, True)
    fake.done()


def test_compose_without_images_or_registry_fails_with_the_roles_message(tmp_path, capsys, docker):
    missing = "\nError response from daemon: No such image: %s\nError response from daemon: No such image: %s\nthird\n" % (API, IDENTITY)
    fake = docker(CONFIG, (["image", "inspect", API, IDENTITY], 1, "[]\n", missing),
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
    fake = docker(CONFIG, (["manifest", "inspect", API], 0, "{}\n", ""))
    failed, dummy, dummy = run_module(module.main, args(standard(tmp_path), docker_command="/usr/local/bin/docker",
                                                        command_timeout=7), capsys)
    assert not failed
    assert [argv for argv, dummy in fake.calls] == [
        ["timeout", "7", "/usr/local/bin/docker", "compose", "config", "--images"],
        ["timeout", "7", "/usr/local/bin/docker", "manifest", "inspect", API],
    ]
    assert all(kwargs["cwd"] == str(tmp_path / "bwdata" / "docker") and kwargs["expand_user_and_vars"] is False
               for dummy, kwargs in fake.calls)


def test_the_default_timeout_is_60_seconds(tmp_path, capsys, docker):
    fake = docker(CONFIG, (["manifest", "inspect", API], 0, "{}\n", ""))
    run_module(module.main, args(standard(tmp_path)), capsys)
    assert [argv[:3] for argv, dummy in fake.calls] == [["timeout", "60", "docker"]] * 2


def test_a_registry_probe_stopped_by_the_timeout_fails(tmp_path, capsys, docker):
    fake = docker(CONFIG, (["manifest", "inspect", API], 124, "", ""))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path), command_timeout=5), capsys)
    assert failed and "The container registry does not answer ()" in result["msg"] and result["registry_answers"] is False
    fake.done()


def test_check_mode_runs_the_same_read_only_commands(tmp_path, capsys, docker):
    fake = docker(CONFIG, (["manifest", "inspect", API], 1, "", REGISTRY_ERROR + "\n"))
    failed, result, dummy = run_module(module.main, args(standard(tmp_path)), capsys, check_mode=True)
    assert failed and result["msg"].startswith("Nothing was changed") and not result["changed"]
    fake.done()


def test_no_images_means_nothing_to_check(tmp_path, capsys, docker):
    fake = docker((["compose", "config", "--images"], 0, "\n", ""))
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
