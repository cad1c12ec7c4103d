"""The README is for users (Galaxy shows it): what the collection does, requirements, install, quick start, the
versions CI really tests, docs, support, code of conduct, release notes, licence; development in CONTRIBUTING.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def sections():
    return re.findall(r"(?m)^## (.+)$", README)


def section(title):
    return README.split("\n## %s\n" % title, 1)[1].split("\n## ", 1)[0]


def matrix():
    """MATRIX in the Makefile: [(ansible-core, python)], what `make matrix` (part of `make test`) runs."""
    line = re.search(r"(?m)^MATRIX := (.+)$", (REPO / "Makefile").read_text(encoding="utf-8")).group(1)
    return [tuple(entry.split("/")) for entry in line.split()]


def test_tested_with_lists_exactly_the_matrix():
    rows = [tuple(cell.strip() for cell in line.strip("|").split("|")[:2])
            for line in section("Tested with").splitlines() if re.match(r"\| \d", line)]
    assert rows == matrix()
    cores = [core for core, _python in matrix()]
    # Oldest: what meta/runtime.yml claims; newest: the .venv the other suites run in.
    requires = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text(encoding="utf-8"))["requires_ansible"]
    assert requires == ">=%s.0" % ".".join(cores[0].split(".")[:2])
    pins = dict(line.split("==") for line in (REPO / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
                if "==" in line)
    assert pins["ansible-core"] == cores[-1]


def test_users_first_development_in_contributing():
    expected = ["Requirements", "Installation", "Quick start", "Tested with", "Documentation",
                "Support and communication", "Code of conduct", "Release notes", "Development", "Licence"]
    found = sections()
    assert [title for title in found if title in expected] == expected, found
    assert found[-1] == "Performance"  # benchmarks/run.py replaces everything from this heading on
    assert "ansible-galaxy collection install selfhost.bitwarden" in section("Installation")
    development = section("Development")
    assert "make demo" in development and "make test" in development and "CONTRIBUTING.md" in development
    contributing = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for topic in ("make demo", "make test", "## The simulator", "## Benchmarks", "make matrix", "make release"):
        assert topic in contributing, topic
    for link in re.findall(r"\]\(([^)#]+)\)", README):
        if not link.startswith("http"):
            assert (REPO / link).exists(), link


def test_communication_channels_agree_with_the_docs_site():
    links = yaml.safe_load((REPO / "docs" / "docsite" / "links.yml").read_text(encoding="utf-8"))
    communication = links["communication"]
    assert communication.get("forums") or communication.get("matrix_rooms")
    support = section("Support and communication")
    for forum in communication.get("forums", []):
        assert forum["url"] in support, forum
    for room in communication.get("matrix_rooms", []):
        assert room["room"] in support, room
    assert "(CODE_OF_CONDUCT.md)" in section("Code of conduct")
    assert "code of conduct" in (REPO / "CODE_OF_CONDUCT.md").read_text(encoding="utf-8").lower()


# -- the quick start, run as written (issue 25 item 1) -----------------------------------------------------------

def quick_start_blocks():
    """The Quick start's fenced blocks: [(language, path or None, text)], path from a leading `# <path>` comment."""
    blocks = []
    for language, text in re.findall(r"(?ms)^```(\w+)\n(.*?)^```$", section("Quick start")):
        first = text.splitlines()[0]
        match = re.match(r"# (\S+?/\S+?)[,\s]", first + " ")
        blocks.append((language, match.group(1) if match else None, text))
    return blocks


def test_quick_start_runs_as_written_against_the_simulator(sim_fleet, tmp_path):
    """The README's own snippets, written to the paths their first line names, its commands run as written (with the
    vault password typed at the --ask-vault-pass prompt) from the installed collection tarball. The test replaces
    only the README's placeholders (the API key and the token); the simulated servers' own facts (where each one is
    installed, its URL, the local connection, the test-only cloud endpoints) go into host_vars/<host>/simulator.yml,
    as a real server's would be the README's /opt/bitwarden."""
    import subprocess
    import sys

    import pexpect

    from helpers.ansible_run import ansible_env, assert_no_secrets

    blocks = quick_start_blocks()
    files = [(path, text) for language, path, text in blocks if language == "yaml" and path]
    commands = [line for language, _path, text in blocks if language == "bash" for line in text.splitlines()
                if line.strip() and not line.startswith("#")]
    assert [path for path, _text in files] == ["inventory/hosts.yml", "inventory/host_vars/vault1.example.com/vault.yml"]
    assert len(commands) == 4 and all("--ask-vault-pass" in command for command in commands)

    project = tmp_path / "project"
    hosts_yml = yaml.safe_load(files[0][1])
    hosts = hosts_yml["bitwarden"]["hosts"]
    fleet = sim_fleet([{"name": name, "region": (values or {}).get("billing_sync_region", "US")}
                       for name, values in hosts.items()], restart_delay=0.2, warmup=0.1)
    vault_template = files[1][1]
    for placeholder in ("user.00000000-0000-0000-0000-000000000000", 'billing_sync_client_secret: "..."',
                        'billing_sync_token: "..."'):
        assert placeholder in vault_template, placeholder
    (project / "inventory").mkdir(parents=True)
    (project / files[0][0]).write_text(files[0][1], encoding="utf-8")
    password = tmp_path / "vault-password"
    password.write_text("readme-quick-start\n", encoding="utf-8")
    env = ansible_env({"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": "", "ANSIBLE_NOCOLOR": "1"})
    for name in ("ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_PLUGINS"):
        env.pop(name, None)  # the user's own shell: no password file, the default callback only
    # The collection as users get it: built and installed from the tarball, not the source tree.
    build = subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build", "--force",
                            "--output-path", str(tmp_path), str(REPO)], capture_output=True, text=True, env=env, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    env["ANSIBLE_COLLECTIONS_PATH"] = str(tmp_path / "collections")
    install = subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "install", "-p",
                              env["ANSIBLE_COLLECTIONS_PATH"]] + [str(path) for path in tmp_path.glob("*.tar.gz")],
                             capture_output=True, text=True, env=env, check=False)
    assert install.returncode == 0, install.stdout + install.stderr

    secrets = []
    for name in hosts:
        host = fleet.host_vars(name)
        secrets += [host["billing_sync_client_secret"], host["billing_sync_token"]]
        host_dir = project / "inventory" / "host_vars" / name
        host_dir.mkdir(parents=True)
        vault = (vault_template.replace("user.00000000-0000-0000-0000-000000000000", host["billing_sync_client_id"])
                 .replace('billing_sync_client_secret: "..."', 'billing_sync_client_secret: "%s"' % host["billing_sync_client_secret"])
                 .replace('billing_sync_token: "..."', 'billing_sync_token: "%s"' % host["billing_sync_token"]))
        (host_dir / "vault.yml").write_text(vault, encoding="utf-8")
        encrypt = subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "encrypt", "--vault-password-file",
                                  str(password), str(host_dir / "vault.yml")], capture_output=True, text=True, env=env,
                                 check=False)
        assert encrypt.returncode == 0, encrypt.stderr
        machine = {key: value for key, value in host.items()
                   if key.startswith("ansible_") or key in ("billing_sync_install_dir", "billing_sync_user",
                                                            "billing_sync_server_url", "billing_sync_ca_path",
                                                            "billing_sync_docker_command", "billing_sync_preflight_endpoints",
                                                            "billing_sync_preflight_ca_path")}
        (host_dir / "simulator.yml").write_text(yaml.safe_dump(machine), encoding="utf-8")

    def run_as_written(command):
        argv = command.split("#", 1)[0].split()
        child = pexpect.spawn(argv[0], argv[1:], cwd=str(project), env=env, encoding="utf-8", timeout=600)
        child.expect("Vault password: ")
        child.sendline(password.read_text(encoding="utf-8").strip())
        child.expect(pexpect.EOF)
        child.close()
        return child.exitstatus, child.before

    outputs = []
    for command in commands:
        rc, output = run_as_written(command)
        outputs.append(output)
        assert rc == 0, "%s\n%s" % (command, output)
        assert "inputs are incomplete" not in output and "could not be read:" not in output, output
    status, check, rollout, rotate = outputs
    assert re.search(r"(?m)^vault1\.example\.com +standard .* drift\s*$", status), status
    assert "would restart" in check and "changed=0" not in check.split("PLAY RECAP", 1)[1]
    for name in hosts:
        state = fleet.client.instance(name)
        assert state["settings"]["enableCloudCommunication"] is True and state["connection"] is not None
        assert state["restarts"] == 1, state["restarts"]  # once by the rollout, not by the preview or the rotation
    assert fleet.client.instance("vault-eu.example.com")["settings"]["cloudRegion"] == "EU"
    assert re.findall(r"changed=(\d+)", rotate.split("PLAY RECAP", 1)[1]) == ["0"] * len(hosts)
    report = tmp_path / "home" / ".local" / "state" / "selfhost-bitwarden" / "billing-sync-report.json"
    assert report.is_file()
    assert_no_secrets("\n".join(outputs), secrets)
