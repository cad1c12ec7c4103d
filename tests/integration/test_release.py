"""What users install: the collection tarball, installed into a clean path, runs the fleet playbooks by FQCN;
the same through ansible-navigator (ansible-runner, as AWX runs jobs); the execution environment definition
turns into a build context (no container engine needed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from helpers.ansible_run import ansible_env, assert_no_secrets, run_playbook

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out),
                           str(REPO)], capture_output=True, text=True, env=ansible_env(), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    path = out / ("selfhost-bitwarden-%s.tar.gz" % version)
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory):
    """A collections path that holds only the installed tarball (never the source tree)."""
    path = tmp_path_factory.mktemp("installed")
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "-p", str(path), str(tarball)],
                          capture_output=True, text=True, env=ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(path)}),
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


def test_galaxy_importer_accepts_the_tarball_without_a_warning(tarball, tmp_path):
    """What Galaxy runs on an upload (ansible-doc, content loading, ansible-lint production, changelog), offline."""
    env = ansible_env({"GALAXY_IMPORTER_CONFIG": str(REPO / "tests" / "galaxy-importer.cfg"),
                       "GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP": str(tmp_path / "ansible-tmp"),
                       "GALAXY_IMPORTER_TMP_ROOT_DIR": str(tmp_path), "HOME": str(tmp_path)})
    proc = subprocess.run([sys.executable, "-m", "galaxy_importer.main", str(tarball)], cwd=str(tmp_path),
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Importer processing completed successfully" in output, output
    assert "Linting collection via ansible-lint" in output, output
    # The importer logs problems as "WARNING: ..." / "ERROR: ..." and still exits 0 on warnings.
    problems = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR", "CRITICAL"))]
    assert problems == [], output
    result = json.loads((tmp_path / "importer_result.json").read_text(encoding="utf-8"))
    contents = {(item["content_type"], item["name"]) for item in result["contents"]}
    assert {("role", "billing_sync"), ("module", "bitwarden_cloud_comm"), ("playbook", "status.yml")} <= contents


def test_role_readme_documents_every_entry_point_and_variable():
    """Galaxy shows the role's README (the importer rejects a role without one): it must match the role's spec."""
    readme = (REPO / "roles" / "billing_sync" / "README.md").read_text(encoding="utf-8")
    specs = yaml.safe_load((REPO / "roles" / "billing_sync" / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((REPO / "roles" / "billing_sync" / "defaults" / "main.yml").read_text(encoding="utf-8"))
    rows = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 2:
            rows[cells[0].strip("`")] = cells[1:]
    for entry_point, spec in specs["argument_specs"].items():
        assert entry_point in rows, "entry point %s missing from the role README" % entry_point
        for option, option_spec in spec["options"].items():
            assert option in rows, "variable %s missing from the role README" % option
            if option_spec.get("required"):
                continue  # an entry point that needs it (rotate_token, status): the README shows the role's default
            default = option_spec.get("default")
            shown = json.dumps(default) if isinstance(default, (bool, str)) and not default else str(default)
            assert rows[option][0] == "`%s`" % (shown if default not in (True, False) else str(default).lower()), option
            assert defaults[option] == default, option
    documented = {name for name in rows if name.startswith("billing_sync_")}
    assert documented == set(specs["argument_specs"]["main"]["options"]), "README lists variables the role lacks"


def test_installed_collection_documents_itself(installed):
    """A smoke ansible-doc from the installed tarball: every module's docs render with their fragments."""
    env = ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(installed)})
    listing = subprocess.run([str(BIN / "ansible-doc"), "--list", "selfhost.bitwarden", "--json"],
                             capture_output=True, text=True, env=env, check=False)
    assert listing.returncode == 0, listing.stderr
    modules = sorted(json.loads(listing.stdout))
    assert modules == sorted("selfhost.bitwarden." + path.stem for path in (REPO / "plugins" / "modules").glob("*.py"))
    proc = subprocess.run([str(BIN / "ansible-doc"), "--json"] + modules, capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    docs = {name: entry["doc"] for name, entry in json.loads(proc.stdout).items()}
    assert all(doc["short_description"] and doc["options"] for doc in docs.values())
    # bitwarden_cloud_comm writes through atomic_move: it declares it.
    cloud_comm = docs["selfhost.bitwarden.bitwarden_cloud_comm"]["attributes"]
    assert cloud_comm["safe_file_operations"]["support"] == "full"
    assert cloud_comm["safe_file_operations"]["description"]
    role = subprocess.run([str(BIN / "ansible-doc"), "-t", "role", "--json", "selfhost.bitwarden.billing_sync"],
                          capture_output=True, text=True, env=env, check=False)
    assert role.returncode == 0, role.stderr
    assert set(json.loads(role.stdout)["selfhost.bitwarden.billing_sync"]["entry_points"]) == {
        "main", "rotate_token", "status", "license_sync"}


def test_tarball_holds_what_users_need_and_nothing_else(tarball):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    tops = {name.split("/")[0] for name in names}
    # .ansible-lint: Galaxy lints the tarball with it (the AWX example's mock modules)
    assert tops <= {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "CHANGELOG.rst", "CODE_OF_CONDUCT.md",
                    "changelogs", "docs", "meta", "playbooks", "plugins", "roles", "extensions", ".ansible-lint"}, sorted(tops)
    for needed in ("plugins/modules/bitwarden_cloud_comm.py", "plugins/module_utils/_bitwarden_api.py",
                   "plugins/filter/fleet_report.py", "roles/billing_sync/meta/argument_specs.yml",
                   "roles/billing_sync/tasks/main.yml", "playbooks/rollout.yml", "playbooks/status.yml",
                   "meta/runtime.yml", "meta/execution-environment.yml", "meta/ee-requirements.txt",
                   "docs/docsite/extra-docs.yml", "docs/docsite/rst/quickstart.rst", "docs/examples/quickstart/run.sh",
                   "extensions/eda/rulebooks/self_heal.yml"):
        assert needed in names, needed
    for name in names:
        parts = name.split("/")
        assert not {"tests", ".cache", "simulator", "bwsim", "benchmarks", "molecule", "scripts", ".venv", ".git",
                    "__pycache__", ".hypothesis", "collections", "fragments", "dev"} & set(parts), name
        assert not name.endswith((".pyc", ".tar.gz", ".log")), name


def test_installed_collection_runs_the_fleet_playbooks(installed, sim_fleet, tmp_path):
    env = {"ANSIBLE_COLLECTIONS_PATH": str(installed)}
    listing = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "list", "selfhost.bitwarden", "--format", "json"],
                             capture_output=True, text=True, env=ansible_env(env), check=False)
    assert listing.returncode == 0, listing.stderr
    assert list(json.loads(listing.stdout)) == [str(installed / "ansible_collections")]

    fleet = sim_fleet([{"name": "bw-rel-us"}, {"name": "bw-rel-eu", "region": "EU"}],
                      restart_delay=0.2, warmup=0.1)
    # The playbooks by FQCN, from a directory without any collection in it.
    for name in ("rollout", "status"):
        playbook = tmp_path / ("%s.yml" % name)
        playbook.write_text(yaml.safe_dump([{"name": name, "ansible.builtin.import_playbook":
                                             "selfhost.bitwarden.%s" % name}]), encoding="utf-8")
    rollout = run_playbook(tmp_path / "rollout.yml", fleet.inventory, env=env).assert_ok()
    for name in fleet.names:
        assert fleet.client.instance(name)["settings"]["enableCloudCommunication"] is True
        assert_no_secrets(rollout.output, [fleet.host_vars(name)["billing_sync_client_secret"],
                                           fleet.host_vars(name)["billing_sync_token"]])
    run_playbook(tmp_path / "status.yml", fleet.inventory, env=env,
                 extra_vars={"billing_sync_fail_on_drift": True, "billing_sync_report_dir": str(tmp_path)}).assert_ok()
    rows = json.loads((tmp_path / "billing-sync-report.json").read_text(encoding="utf-8"))
    assert sorted(row["host"] for row in rows) == sorted(fleet.names)
    assert all(row["drift"] == [] for row in rows), rows


def test_navigator_runs_the_rollout_without_an_engine(installed, sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "bw-nav"}], restart_delay=0.2, warmup=0.1)
    # navigator keeps state in ~/.cache/ansible-navigator and its log file: both go to tmp_path.
    env = ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(installed), "HOME": str(tmp_path / "home"),
                       "XDG_CACHE_HOME": str(tmp_path / "xdg"), "TERM": "dumb"})
    for key in ("ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_PLUGINS"):  # the test recorder: not what AWX runs
        env.pop(key)
    (tmp_path / "home").mkdir()
    cmd = [str(BIN / "ansible-navigator"), "run", "selfhost.bitwarden.rollout", "-i", str(fleet.inventory),
           "--ee", "false", "-m", "stdout", "--pae", "false", "--lf", str(tmp_path / "navigator.log")]
    proc = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bw-nav" in proc.stdout and "failed=0" in proc.stdout, proc.stdout
    assert fleet.client.instance("bw-nav")["settings"]["enableCloudCommunication"] is True
    assert_no_secrets(proc.stdout + proc.stderr, [fleet.host_vars("bw-nav")["billing_sync_client_secret"],
                                                  fleet.host_vars("bw-nav")["billing_sync_token"]])


def test_execution_environment_build_context(installed, tmp_path):
    # The collection's own metadata: read by ansible-builder inside the image build; declares no requirements.
    from ansible_builder._target_scripts.introspect import CollectionDefinition, process_collection

    collection = installed / "ansible_collections" / "selfhost" / "bitwarden"
    definition = CollectionDefinition(str(collection))
    assert definition.get_dependency("python") == "meta/ee-requirements.txt"
    assert definition.get_dependency("system") == "meta/ee-bindep.txt"
    assert process_collection(str(collection)) == ([], [])

    # The definition the AWX guide shows: a complete build context without a container engine.
    context = tmp_path / "context"
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "-f",
                           str(REPO / "docs" / "examples" / "awx" / "execution-environment.yml"), "-c", str(context)],
                          capture_output=True, text=True, env=ansible_env(), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    assert "ansible-galaxy" in containerfile or "assemble" in containerfile
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    assert [item["name"] for item in requirements["collections"]] == ["selfhost.bitwarden"]
    # The image's Python is the one the definition installs and names: the Dockerfile runs pip with it.
    assert 'ARG PYCMD="%s"' % EE_PYTHON_PATH in containerfile, containerfile


# The Python of a base image when the definition installs none: UBI 9's python3 is 3.9.
BASE_IMAGE_PYTHON = {"registry.access.redhat.com/ubi9/ubi": "3.9", "docker.io/redhat/ubi9": "3.9"}
EE_PYTHON_PATH = "/usr/bin/python3.12"


def test_execution_environment_python_satisfies_ansible_core():
    """The EE pins the ansible-core CI runs (its Requires-Python read from this venv) and a Python that meets it."""
    from importlib.metadata import metadata, version

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    definition = yaml.safe_load((REPO / "docs" / "examples" / "awx" / "execution-environment.yml").read_text("utf-8"))
    dependencies = definition["dependencies"]
    assert dependencies["ansible_core"]["package_pip"] == "ansible-core==%s" % version("ansible-core")
    assert dependencies["ansible_runner"]["package_pip"] == "ansible-runner==%s" % version("ansible-runner")
    interpreter = dependencies.get("python_interpreter")
    if interpreter:
        python_path = interpreter["python_path"]
        python = python_path.rsplit("python", 1)[1]
        assert python_path == EE_PYTHON_PATH
        assert interpreter["package_system"] == "python" + python  # the package that provides that path
    else:
        python = BASE_IMAGE_PYTHON[definition["images"]["base_image"]["name"].rsplit(":", 1)[0]]
    requires = SpecifierSet(metadata("ansible-core")["Requires-Python"])
    assert Version(python) in requires, "ansible-core %s needs Python %s, the EE has %s" % (
        version("ansible-core"), requires, python)
