"""Every example the docs show is a file under docs/examples/, and every one of them runs here.

Playbooks and scripts run against the simulator; what cannot run here (AWX, systemd) is validated, and the
commands inside it are parsed with ansible's own CLI parser and then run with local substitutes (git URL,
paths). Module EXAMPLES are syntax-checked, and run for real against the simulator with the placeholders
replaced (see MODULE_EXAMPLE_SUBSTITUTIONS).
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
import yaml

from helpers.ansible_run import ansible_env, assert_no_secrets, run_playbook

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
RST = DOCS / "docsite" / "rst"
EXAMPLES = DOCS / "examples"
BIN = Path(sys.executable).parent
SECRET_KEYS = ("billing_sync_client_id", "billing_sync_client_secret", "billing_sync_organization_id", "billing_sync_token")

pytestmark = pytest.mark.slow


# -- helpers -------------------------------------------------------------------------------------------------

def ci_get(data, key):
    """Case-insensitive dict lookup (the simulator answers in the server's camelCase)."""
    for name, value in (data or {}).items():
        if name.lower() == key.lower():
            return value
    return None


def run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=str(cwd), env=ansible_env(env), capture_output=True, text=True, timeout=timeout,
                          check=False)
    return proc


def vault_values(fleet, name):
    host = fleet.host_vars(name)
    return {"vault_" + key: host[key] for key in SECRET_KEYS}


def secrets_of(fleet, name):
    host = fleet.host_vars(name)
    return [host["billing_sync_client_secret"], host["billing_sync_token"]]


def write_inventory(fleet, directory, vault_password_file, rename=None):
    """The quick-start inventory layout for a simulated fleet.

    hosts.yml: the simulator's hosts and connection settings without the secrets; group_vars/: the example files
    unchanged; host_vars/<host>/vault.yml: the example vault file filled with the host's values, encrypted.
    """
    rename = rename or {}
    inventory = directory / "inventory"
    shutil.copytree(EXAMPLES / "inventory" / "group_vars", inventory / "group_vars")
    document = yaml.safe_load(fleet.inventory.read_text(encoding="utf-8"))
    groups = document["all"]["children"]["bitwarden"]["children"]
    hosts = {"bitwarden": {"children": {}}}
    for group, content in groups.items():
        members = {}
        for name, host in (content.get("hosts") or {}).items():
            members[rename.get(name, name)] = {key: value for key, value in host.items() if key not in SECRET_KEYS}
            template = yaml.safe_load((EXAMPLES / "quickstart" / "vault.yml").read_text(encoding="utf-8"))
            assert set(template) == set(vault_values(fleet, name)), "vault.yml example and the role's inputs disagree"
            vault_file = inventory / "host_vars" / rename.get(name, name) / "vault.yml"
            vault_file.parent.mkdir(parents=True)
            vault_file.write_text(yaml.safe_dump(vault_values(fleet, name)), encoding="utf-8")
            proc = run([str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(vault_password_file),
                        str(vault_file)], directory)
            assert proc.returncode == 0, proc.stderr
            assert vault_file.read_text(encoding="utf-8").startswith("$ANSIBLE_VAULT;")
        hosts["bitwarden"]["children"][group] = {"hosts": members}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8")
    return inventory


@pytest.fixture
def vault_password(tmp_path):
    path = tmp_path / "vault-pass"
    path.write_text("docs-example-vault-password\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def env_lines(fleet, name):
    env_file = fleet.install_dir(name) / "bwdata" / "env" / "global.override.env"
    return env_file.read_text(encoding="utf-8").splitlines()


# -- the guides reference exactly the example files ------------------------------------------------------------

def literal_includes():
    found = {}
    for rst in sorted(RST.glob("*.rst")):
        for match in re.finditer(r"^\.\. literalinclude:: (\S+)", rst.read_text(encoding="utf-8"), re.M):
            found.setdefault((rst.parent / match.group(1)).resolve(), []).append(rst.name)
    return found


def test_guides_include_every_example_and_nothing_else():
    included = literal_includes()
    missing = [str(path) for path in included if not path.is_file()]
    assert not missing, "literalinclude of files that do not exist: %s" % missing
    examples = {path.resolve() for path in EXAMPLES.rglob("*") if path.is_file()}
    assert not examples - set(included), "examples no guide shows: %s" % sorted(map(str, examples - set(included)))
    listed = yaml.safe_load((DOCS / "docsite" / "extra-docs.yml").read_text(encoding="utf-8"))
    toctree = {entry for section in listed["sections"] for entry in section["toctree"]}
    assert toctree == {path.stem for path in RST.glob("*.rst")}


def test_region_lines_and_egress_match_the_region_table():
    from ansible_collections.selfhost.bitwarden.plugins.module_utils import _regions

    egress = yaml.safe_load((EXAMPLES / "firewall" / "egress.yml").read_text(encoding="utf-8"))
    for region, uris in _regions.REGIONS.items():
        lines = (EXAMPLES / "regions" / ("global.override.env." + region.lower())).read_text(encoding="utf-8").splitlines()
        assert lines == ["%s=true" % _regions.ENABLE] + ["%s=%s" % item for item in uris.items()]
        # The firewall guide's billing_sync egress is exactly what the cloud preflight (bitwarden_preflight) checks.
        hosts = {re.sub(r"^https://", "", uri) for uri in _regions.cloud_endpoints(region).values()}
        assert hosts == {re.sub(r"^https://", "", uris[key]) for key in (_regions.IDENTITY_URI, _regions.API_URI)}
        assert set(egress[region]["billing_sync"]) == hosts
        assert egress[region]["push_relay"] == [re.sub(r"^https://", "", uris[_regions.PUSH_RELAY])]


# -- quick start, regions, fleet: run against a simulated US + EU fleet -----------------------------------------

def test_quickstart_then_fleet_examples(sim_fleet, tmp_path, vault_password):
    fleet = sim_fleet([{"name": "bw-us"}, {"name": "bw-eu", "region": "EU"}, {"name": "bw-us-2"}],
                      restart_delay=0.2, warmup=0.1)
    work = tmp_path / "project"
    work.mkdir()
    write_inventory(fleet, work, vault_password)
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(vault_password)}
    shutil.copy(EXAMPLES / "quickstart" / "ansible.cfg", work / "ansible.cfg")

    quickstart = run(["bash", str(EXAMPLES / "quickstart" / "run.sh")], work, env)
    output = quickstart.stdout + quickstart.stderr
    assert quickstart.returncode == 0, output
    for name in fleet.names:
        assert_no_secrets(output, secrets_of(fleet, name))
        state = fleet.client.instance(name)
        assert state["settings"]["enableCloudCommunication"] is True
        assert ci_get(ci_get(state["connection"], "config"), "lastLicenseSync") is not None
        assert [call for call in fleet.client.bitwarden_sh_calls(name) if call["command"] == "restart"] != []
    # The region guide shows exactly the lines the role writes.
    for name, region in (("bw-us", "us"), ("bw-eu", "eu")):
        expected = (EXAMPLES / "regions" / ("global.override.env." + region)).read_text(encoding="utf-8").splitlines()
        assert set(expected) <= set(env_lines(fleet, name))
    report = json.loads((work / "billing-sync-report.json").read_text(encoding="utf-8"))
    assert sorted(row["host"] for row in report) == sorted(fleet.names)

    # Fleet guide: ansible.cfg next to the inventory, its script, the host_pinned playbook, the quick start's
    # site.yml. All on a converged fleet: nothing may change.
    shutil.copy(EXAMPLES / "fleet" / "ansible.cfg", work / "ansible.cfg")
    fleet_run = run(["bash", str(EXAMPLES / "fleet" / "run.sh")], work, env)
    assert fleet_run.returncode == 0, fleet_run.stdout + fleet_run.stderr
    assert fleet_run.stdout.count("changed=0") == len(fleet.names) + 1, fleet_run.stdout
    for playbook in (EXAMPLES / "fleet" / "rollout_pinned.yml", EXAMPLES / "quickstart" / "site.yml"):
        again = run_playbook(playbook, work / "inventory", env=env).assert_ok()
        assert again.changed_total() == 0, again.output


# -- AWX: credential type and injectors --------------------------------------------------------------------------

def test_awx_credential_type_injects_what_the_role_reads(sim_fleet, tmp_path):
    inputs = yaml.safe_load((EXAMPLES / "awx" / "credential_type_inputs.yml").read_text(encoding="utf-8"))
    injectors = yaml.safe_load((EXAMPLES / "awx" / "credential_type_injectors.yml").read_text(encoding="utf-8"))
    # The schema the controller accepts: fields with id/label/type, optional secret/help_text; required ids exist.
    assert set(inputs) == {"fields", "required"}
    ids = []
    for field in inputs["fields"]:
        assert set(field) <= {"id", "label", "type", "secret", "help_text", "multiline", "format", "choices"}
        assert {"id", "label", "type"} <= set(field) and field["type"] in ("string", "boolean")
        ids.append(field["id"])
    assert set(inputs["required"]) <= set(ids)
    secret_ids = {field["id"] for field in inputs["fields"] if field.get("secret")}
    assert {"client_secret", "billing_sync_token"} <= secret_ids
    assert set(injectors) == {"extra_vars"}
    assert set(injectors["extra_vars"]) == {"billing_sync_client_id", "billing_sync_client_secret", "billing_sync_token"}
    used = {name for template in injectors["extra_vars"].values()
            for name in jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(template))}
    assert used <= set(ids)

    # What the controller does: render the injectors with the credential's values, pass them as extra vars.
    fleet = sim_fleet([{"name": "bw-awx"}], restart_delay=0.2, warmup=0.1)
    host = fleet.host_vars("bw-awx")
    credential = {"client_id": host["billing_sync_client_id"], "client_secret": host["billing_sync_client_secret"],
                  "billing_sync_token": host["billing_sync_token"]}
    extra_vars = {key: jinja2.Environment().from_string(template).render(credential)
                  for key, template in injectors["extra_vars"].items()}
    document = yaml.safe_load(fleet.inventory.read_text(encoding="utf-8"))
    for group in document["all"]["children"]["bitwarden"]["children"].values():
        for values in (group.get("hosts") or {}).values():
            for key in ("billing_sync_client_id", "billing_sync_client_secret", "billing_sync_token"):
                values.pop(key)
    inventory = tmp_path / "awx-inventory.yml"
    inventory.write_text(yaml.safe_dump(document), encoding="utf-8")
    rollout = run_playbook(REPO / "playbooks" / "rollout.yml", inventory, extra_vars=extra_vars).assert_ok()
    assert_no_secrets(rollout.output, [credential["client_secret"], credential["billing_sync_token"]])
    status = run_playbook(REPO / "playbooks" / "status.yml", inventory,
                          extra_vars=dict(extra_vars, billing_sync_fail_on_drift=True,
                                          billing_sync_report_dir=str(tmp_path)))
    status.assert_ok()


# -- GitOps: systemd units and cron lines, parsed, then run with local substitutes --------------------------------

def unit(path):
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read_string(path.read_text(encoding="utf-8").replace("\\\n", " "))
    return parser


def split_flock(argv):
    """(flock options, lock file, command) of a `flock [options] FILE command...` line."""
    assert Path(argv[0]).name == "flock", argv
    index = 1
    options = []
    while argv[index].startswith("-"):
        options.append(argv[index])
        if argv[index] in ("-E", "--conflict-exit-code", "-w", "--wait", "--timeout"):
            index += 1
            options.append(argv[index])
        index += 1
    return options, argv[index], argv[index + 1:]


def pull_args(argv):
    """ansible-pull's own parser on the command line; returns its parsed options."""
    from ansible.cli.pull import PullCLI

    assert Path(argv[0]).name == "ansible-pull", argv
    # CLI.parse() would store the options in a process-wide singleton: parse and validate without it.
    cli = PullCLI(["ansible-pull"] + argv[1:])
    cli.init_parser()
    cli.post_process_args(cli.parser.parse_args(argv[1:]))  # validates (and would randomize --sleep)
    return vars(cli.parser.parse_args(argv[1:]))


GITOPS = EXAMPLES / "gitops"
SERVICES = ("bitwarden-billing-sync", "bitwarden-billing-sync-drift")


def service_command(name):
    service = unit(GITOPS / (name + ".service"))
    assert service["Unit"]["Description"]
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["User"] == "bitwarden"
    return shlex.split(service["Service"]["ExecStart"])


def test_gitops_units_and_crontab_agree():
    for name in SERVICES:
        timer = unit(GITOPS / (name + ".timer"))
        assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"
    cron_lines = [line.split(None, 6) for line in (GITOPS / "crontab").read_text(encoding="utf-8").splitlines()
                  if line.strip() and not line.startswith("#")]
    assert len(cron_lines) == len(SERVICES)
    for name, cron in zip(SERVICES, cron_lines):
        assert cron[5] == "bitwarden"
        service_flock, service_lock, service_pull = split_flock(service_command(name))
        cron_flock, cron_lock, cron_pull = split_flock(shlex.split(cron[6]))
        assert service_lock == cron_lock == "/var/lib/ansible-pull/bitwarden.lock"
        assert "--nonblock" in service_flock and "-n" in cron_flock
        service_args, cron_args = pull_args(service_pull), pull_args(cron_pull)
        assert service_args == cron_args
        if name == "bitwarden-billing-sync":
            assert service_args["ifchanged"] and int(service_args["sleep"]) == 300
            assert list(service_args["args"]) == ["local.yml"] and not service_args["check"]
        else:
            assert service_args["check"] and service_args["diff"] and not service_args["ifchanged"]
            assert "billing_sync_fail_on_drift=true" in service_args["extra_vars"]
            assert list(service_args["args"]) == ["drift.yml"]
    # Separate checkouts: a shared one would swallow the change the rollout's --only-if-changed waits for.
    assert len({pull_args(split_flock(service_command(name))[2])["dest"] for name in SERVICES}) == 2


def local_command(argv, repo, tmp_path):
    """The unit's command with local substitutes: this venv's tools, a file:// repository, paths in tmp_path."""
    flock_options, _lock, pull = split_flock(argv)
    out = [shutil.which("flock")] + flock_options + [str(tmp_path / "bitwarden.lock"), str(BIN / "ansible-pull")]
    skip = False
    for index, arg in enumerate(pull[1:], 1):
        if skip:
            skip = False
            continue
        previous = pull[index - 1]
        if previous == "--url":
            arg = repo.as_uri()
        elif previous == "--directory":
            arg = str(tmp_path / Path(arg).name)
        elif previous == "--vault-password-file":
            arg = str(tmp_path / "vault-pass")
        elif previous == "--sleep":
            arg = "1"
        elif arg.startswith("billing_sync_report_dir="):
            arg = "billing_sync_report_dir=%s" % tmp_path
        out.append(arg)
    return out


def test_gitops_pull_and_drift_check_run(sim_fleet, tmp_path, vault_password):
    fleet = sim_fleet([{"name": "bw-pull"}], restart_delay=0.2, warmup=0.1)
    repo = tmp_path / "gitops-repo"
    repo.mkdir()
    # ansible-pull limits the run to localhost and this machine's names: name the server's entry localhost.
    write_inventory(fleet, repo, vault_password, rename={"bw-pull": "localhost"})
    for name in ("local.yml", "drift.yml"):
        shutil.copy(GITOPS / name, repo / name)
    git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@example.com"]
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "."], git + ["commit", "-q", "-m", "fleet"]):
        subprocess.run(cmd, cwd=str(repo), check=True, capture_output=True)
    env = {"ANSIBLE_HOME": str(tmp_path / "ansible-home"), "HOME": str(tmp_path)}
    rollout_cmd = local_command(service_command("bitwarden-billing-sync"), repo, tmp_path)
    drift_cmd = local_command(service_command("bitwarden-billing-sync-drift"), repo, tmp_path)

    before = run(drift_cmd, tmp_path, env)
    assert before.returncode != 0 and "drifted" in before.stdout + before.stderr, before.stdout + before.stderr
    assert fleet.client.instance("bw-pull")["counters"]["writes"] == 0

    first = run(rollout_cmd, tmp_path, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert_no_secrets(first.stdout + first.stderr, secrets_of(fleet, "bw-pull"))
    assert fleet.client.instance("bw-pull")["settings"]["enableCloudCommunication"] is True

    unchanged = run(rollout_cmd, tmp_path, env)
    assert unchanged.returncode == 0 and "Repository has not changed" in unchanged.stdout, unchanged.stdout

    after = run(drift_cmd, tmp_path, env)
    assert after.returncode == 0, after.stdout + after.stderr

    # The lock: while another run holds it, a run exits 0 at once without doing anything.
    lock = str(tmp_path / "bitwarden.lock")
    holder = subprocess.Popen([shutil.which("flock"), lock, "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while not subprocess.run([shutil.which("flock"), "-n", lock, "true"], check=False).returncode:
            assert time.monotonic() < deadline, "the lock holder never took the lock"
            time.sleep(0.1)
        blocked = run(drift_cmd, tmp_path, env, timeout=20)
        assert blocked.returncode == 0 and "Starting Ansible Pull" not in blocked.stdout
    finally:
        holder.kill()
        holder.wait()


# -- module EXAMPLES -----------------------------------------------------------------------------------------------

def module_examples():
    found = {}
    for path in sorted((REPO / "plugins").glob("*/*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
                found["%s/%s" % (path.parent.name, path.stem)] = node.value.value
    return found


def test_every_plugin_has_examples_that_pass_syntax_check(tmp_path):
    examples = module_examples()
    modules = {"modules/" + path.stem for path in (REPO / "plugins" / "modules").glob("*.py")}
    assert modules <= set(examples), "modules without EXAMPLES: %s" % (modules - set(examples))
    for name, text in examples.items():
        tasks = yaml.safe_load(text)
        play = [{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks,
                 "handlers": [{"name": "Restart Bitwarden", "ansible.builtin.debug": {"msg": "restart"}}]}]
        playbook = tmp_path / (name.replace("/", "_") + ".yml")
        playbook.write_text(yaml.safe_dump(play, sort_keys=False), encoding="utf-8")
        proc = run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", str(playbook)], tmp_path)
        assert proc.returncode == 0, "%s EXAMPLES: %s" % (name, proc.stdout + proc.stderr)


# Placeholders of the module authors' EXAMPLES and what stands in for them against the simulator.
def module_example_substitutions(fleet, name, tmp_path):
    host = fleet.host_vars(name)
    install = str(fleet.install_dir(name))
    return {
        "https://bitwarden.example.com": host["billing_sync_server_url"],
        "2bd8b6d6-6f4a-4a5c-9a7e-0b3a2f6f1c11": host["billing_sync_organization_id"],
        "/home/bitwarden/bwdata": install + "/bwdata",
        "chdir: /home/bitwarden": "chdir: " + install,
        "install_dir: /home/bitwarden": "install_dir: " + install,
        "become_user: bitwarden": "become_user: " + host["billing_sync_user"],
        "install_user: bitwarden": "install_user: " + host["billing_sync_user"],
        "dest: /tmp/report.md": "dest: %s/report.md" % tmp_path,
        "/srv/bitwarden-lite": str(fleet.install_dir(name + "-lite")),
        "dest: /var/lib/node_exporter/textfile_collector/": "dest: %s/" % tmp_path,
        "path: /srv/reports/": "path: %s/" % tmp_path,
    }


# Run order: the lock, the checks, then cloud communication, the token before the license sync, the token removal last.
RUNNABLE = ("modules/bitwarden_lock", "modules/bitwarden_drift", "modules/bitwarden_preflight", "modules/bitwarden_restart_check",
            "modules/bitwarden_cloud_comm", "modules/bitwarden_wait_for_server", "modules/bitwarden_sync_info",
            "modules/bitwarden_license_sync", "modules/bitwarden_billing_sync_token", "filter/fleet_report", "filter/prometheus_metrics",
            "modules/print_text", "filter/unknown_variables", "filter/mask_secrets", "filter/fleet_merge")


def answer_root_prompt(task):
    """The examples run bitwarden.sh as the install user; here that user is root (the tests' user), and the script
    asks root to confirm on stdin (contract §7). Answer it the way the role does for a root-owned install."""
    command = task.get("ansible.builtin.command")
    if os.geteuid() != 0 or command is None or "bitwarden.sh restart" not in str(command):
        return task
    if isinstance(command, str):
        command = {"cmd": command}
    return dict(task, **{"ansible.builtin.command": dict(command, stdin="y")})


def test_module_examples_run_against_the_simulator(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-examples", "region": "EU"}, {"name": "bw-examples-lite", "region": "EU", "deployment": "lite"}],
                      restart_delay=0.2, warmup=0.1)
    name = "bw-examples"
    host = fleet.host_vars(name)
    examples = module_examples()
    assert set(examples) == set(RUNNABLE), "new EXAMPLES: add them to RUNNABLE (or say why they cannot run)"
    substitutions = module_example_substitutions(fleet, name, tmp_path)
    play_vars = {
        "bitwarden_owner_client_id": host["billing_sync_client_id"],
        "bitwarden_owner_client_secret": host["billing_sync_client_secret"],
        "bitwarden_billing_sync_token": host["billing_sync_token"],
        "rows": [{"host": name, "version": "2026.8.0", "region": "EU", "cloud_communication": True,
                  "billing_sync": "enabled", "last_license_sync": None, "drift": ["never synced"], "error": None}],
        # mask_secrets: a failed restart's stderr that quotes both secrets.
        "restart": {"stderr": "Error: invalid value %s / %s" % (host["billing_sync_client_secret"], host["billing_sync_token"])},
        "client_secret": host["billing_sync_client_secret"],
        "billing_sync_token": host["billing_sync_token"],
        # As root here; become to root works with su and no password.
        "ansible_become_method": "ansible.builtin.su",
    }
    defaults = {
        # The examples rely on the defaults (/opt/bitwarden/bwdata, the server's config.yml): point them here.
        "group/selfhost.bitwarden.bitwarden": {
            "bwdata_path": host["billing_sync_install_dir"] + "/bwdata",
            "server_url": host["billing_sync_server_url"],
        },
        "selfhost.bitwarden.bitwarden_cloud_comm": {"bwdata_path": host["billing_sync_install_dir"] + "/bwdata"},
        # The simulator's clouds stand in for the region's (the test-only endpoint override).
        "selfhost.bitwarden.bitwarden_preflight": {"endpoints": host["billing_sync_preflight_endpoints"][host["billing_sync_region"]],
                                                   "ca_path": host["billing_sync_preflight_ca_path"]},
    }
    if host.get("billing_sync_ca_path"):
        defaults["group/selfhost.bitwarden.bitwarden"]["ca_path"] = host["billing_sync_ca_path"]
    for module in RUNNABLE:
        text = examples[module]
        for placeholder, value in substitutions.items():
            text = text.replace(placeholder, value)
        tasks = [answer_root_prompt(task) for task in yaml.safe_load(text)]
        if module == "modules/bitwarden_license_sync":
            # Its examples need a billing sync connection: apply the token first.
            tasks.insert(0, {"name": "Apply the token first", "selfhost.bitwarden.bitwarden_billing_sync_token": {
                "client_id": "{{ bitwarden_owner_client_id }}", "client_secret": "{{ bitwarden_owner_client_secret }}",
                "billing_sync_token": "{{ bitwarden_billing_sync_token }}"}})
        # Examples without credentials (the token removal, max_age) get them from the environment variables.
        play = [{"name": module, "hosts": name, "gather_facts": False, "vars": play_vars, "module_defaults": defaults,
                 "environment": {"PATH": "%s:%s" % (fleet.dir / "bin", os.environ["PATH"]),  # the docker stand-in
                                 "BITWARDEN_CLIENT_ID": "{{ bitwarden_owner_client_id }}",
                                 "BITWARDEN_CLIENT_SECRET": "{{ bitwarden_owner_client_secret }}"},
                 "tasks": tasks,
                 "handlers": [answer_root_prompt({"name": "Restart Bitwarden", "ansible.builtin.command": {
                     "cmd": "./bitwarden.sh restart", "chdir": str(fleet.install_dir(name))}})]}]
        playbook = tmp_path / (module.replace("/", "_") + ".yml")
        playbook.write_text(yaml.safe_dump(play, sort_keys=False), encoding="utf-8")
        result = run_playbook(playbook, fleet.inventory)
        assert result.rc == 0, "%s EXAMPLES failed against the simulator:\n%s" % (module, result.output)
        assert_no_secrets(result.output, secrets_of(fleet, name))
    assert fleet.client.instance(name)["settings"]["cloudRegion"] == "EU"
    assert fleet.client.instance(name + "-lite")["settings"]["cloudRegion"] == "EU"  # the Bitwarden Lite example
    assert fleet.client.instance(name)["connection"] is None  # the last example removes it
    assert (tmp_path / "report.md").is_file()
    os.remove(tmp_path / "report.md")
    assert "selfhost_bitwarden_drift{" in (tmp_path / "selfhost_bitwarden.prom").read_text()
    os.remove(tmp_path / "selfhost_bitwarden.prom")
    assert [row["host"] for row in json.loads((tmp_path / "billing-sync-report.json").read_text())] == [name]  # fleet_merge


# -- troubleshooting covers every message ------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"%(?:\.\d+)?[sdrf]|\{\{.*?\}\}|\{%.*?%\}")


def _literal(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp):
        return _literal(node.left)
    if isinstance(node, ast.JoinedStr):
        return "".join(value.value if isinstance(value, ast.Constant) else "%s" for value in node.values)
    return None


def plugin_messages():
    """Texts passed to fail_json/fail/warn/BitwardenApiError/ValueError, returned by message helpers, or kept in
    upper-case message constants, in plugins/."""
    messages = []
    for path in sorted((REPO / "plugins").rglob("*.py")):
        if path.parent.name == "doc_fragments":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            texts = []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in ("fail_json", "fail", "warn", "BitwardenApiError", "ValueError"):
                    texts = [_literal(arg) for arg in node.args[:1] + [kw.value for kw in node.keywords if kw.arg == "msg"]]
            elif isinstance(node, ast.Return) and node.value is not None:
                texts = [_literal(node.value)]
            elif isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "").isupper():
                if node.targets[0].id not in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
                    texts = [_literal(node.value)]
            messages += ["%s: %s" % (path.name, text) for text in texts if text and len(text) > 30 and " " in text]
    return messages


def _tasks(items):
    for task in items or []:
        if isinstance(task, dict):
            yield task
            for key in ("block", "rescue", "always"):
                yield from _tasks(task.get(key))


def role_messages():
    """msg of fail tasks and fail_msg of assert tasks in the role (tasks and handlers) and the playbooks; the quoted strings inside their
    Jinja expressions count as messages of their own (the preflight check builds its message from them)."""
    messages = []
    for path in sorted(list((REPO / "roles").rglob("tasks/*.yml")) + list((REPO / "roles").rglob("handlers/*.yml")) + list((REPO / "playbooks").glob("*.yml"))):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        plays = [item for item in document if "hosts" in item] or [{"tasks": document}]
        for play in plays:
            for task in _tasks(play.get("tasks")):
                if "ansible.builtin.fail" in task:
                    text = (task["ansible.builtin.fail"] or {}).get("msg")
                elif "ansible.builtin.assert" in task:
                    text = task["ansible.builtin.assert"].get("fail_msg")
                else:
                    continue
                if not text:
                    continue
                for expression in re.findall(r"\{\{(.*?)\}\}", text, re.S):
                    messages += ["%s: %s" % (path.name, item) for item in re.findall(r"'([^']*)'", expression)
                                 if len(item) >= 30]
                messages.append("%s: %s" % (path.name, text))
    return messages


def signature(message):
    """The first placeholder-free stretch of at least four words (else the longest stretch)."""
    segments = [" ".join(part.split()) for part in PLACEHOLDER.split(message.split(": ", 1)[1])]
    segments = [segment.strip(" .,;:()") for segment in segments]
    found = next((segment for segment in segments if len(segment.split()) >= 4), max(segments, key=len))
    return " ".join(found.split()[:10])  # ten words: enough to be unique, short enough to quote


def test_troubleshooting_covers_every_message():
    guide = " ".join((RST / "troubleshooting.rst").read_text(encoding="utf-8").split())
    missing = []
    for message in plugin_messages() + role_messages():
        sig = signature(message)
        if len(sig) >= 12 and sig not in guide:
            missing.append("%s  [%s]" % (message[:140], sig))
    assert not missing, "messages the troubleshooting guide does not show:\n" + "\n".join(missing)


# -- license sync schedules: AWX as code, systemd timer for ansible-pull, cron on the controller ------------------

LICENSE_SYNC = EXAMPLES / "license_sync"


def test_license_sync_schedules_are_valid_and_run(sim_fleet, tmp_path):
    from dateutil.rrule import rrulestr

    # systemd: the units parse as systemd reads them (where systemd-analyze exists), then as the test reads them.
    units = [LICENSE_SYNC / "bitwarden-license-sync.timer", LICENSE_SYNC / "bitwarden-license-sync.service"]
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(["systemd-analyze", "verify"] + [str(path) for path in units], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    timer = unit(units[0])["Timer"]
    assert timer["OnCalendar"] == "daily" and timer["FixedRandomDelay"] == "true" and timer["RandomizedDelaySec"] == "24h"
    service = unit(units[1])["Service"]
    assert service["Type"] == "oneshot" and service["User"] == "bitwarden"
    flock_options, lock, pull = split_flock(shlex.split(service["ExecStart"]))
    assert lock == "/var/lib/ansible-pull/bitwarden.lock" and "--nonblock" in flock_options  # one lock with the rollout
    pulled = pull_args(pull)
    assert list(pulled["args"]) == ["license_sync.yml"] and not pulled["check"] and not pulled["ifchanged"]

    # cron: five time fields, the user, then the command with the same playbook.
    lines = [line for line in (LICENSE_SYNC / "crontab").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 6)
    assert fields[5] == "ansible"
    assert rrulestr("RRULE:FREQ=DAILY;BYHOUR=%s;BYMINUTE=%s" % (fields[1], fields[0]))
    cron_command = shlex.split(fields[6].split("&&", 1)[1])
    cron_flock, dummy, playbook_command = split_flock(cron_command)
    assert "-n" in cron_flock and Path(playbook_command[0]).name == "ansible-playbook"
    assert playbook_command[-1] == "selfhost.bitwarden.license_sync"

    # AWX: one slice (the budget is per job), the playbook, a daily schedule whose rrule parses.
    tasks = yaml.safe_load((LICENSE_SYNC / "awx.yml").read_text(encoding="utf-8"))[0]["tasks"]
    template, schedule = tasks[0]["awx.awx.job_template"], tasks[1]["awx.awx.schedule"]
    assert template["playbook"] == "license_sync.yml" and template["job_slice_count"] == 1
    assert schedule["unified_job_template"] == template["name"]
    assert "FREQ=DAILY" in schedule["rrule"] and rrulestr(schedule["rrule"].replace(" RRULE", "\nRRULE"))
    assert template["extra_vars"]["billing_sync_cloud_calls_per_minute"] < 10

    # Run them: the pull playbook and the cron command (local inventory and vault substitutes) on a simulated host.
    fleet = sim_fleet([{"name": "bw-daily"}], preconfigured=True)
    pulled_run = run_playbook(LICENSE_SYNC / "license_sync.yml", fleet.inventory, extra_vars={"billing_sync_license_sync_force": True})
    pulled_run.assert_ok()
    assert any("bw-daily: synced (forced)" in event["result"].get("msg", "") for event in pulled_run.events if event["event"] == "task")
    command = [str(BIN / "ansible-playbook") if arg == "ansible-playbook" else arg for arg in playbook_command]
    command = [arg for arg in command if arg not in ("--vault-password-file", "/etc/ansible/bitwarden-vault-pass")]
    command[command.index("-i") + 1] = str(fleet.inventory)
    proc = run(command, REPO)
    assert proc.returncode == 0 and "bw-daily: not due (last sync" in proc.stdout, proc.stdout + proc.stderr
    assert_no_secrets(proc.stdout + pulled_run.output, secrets_of(fleet, "bw-daily"))
