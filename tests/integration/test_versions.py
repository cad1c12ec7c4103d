"""One version everywhere: galaxy.yml, the changelog's latest release and the versions the docs pin (quick start
tarball, EE image tag, docs/examples/awx/requirements.yml); `make release VERSION=x.y.z` gets them there.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.ansible_run import ansible_env

REPO = Path(__file__).resolve().parents[2]


def load_release(root):
    spec = importlib.util.spec_from_file_location("release_%d" % id(root), root / "scripts" / "release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_galaxy_changelog_and_docs_pins_agree():
    assert load_release(REPO).problems(REPO) == []


@pytest.fixture
def checkout(tmp_path):
    """A copy of this checkout's files (tracked and new, as git sees them) that a release may change."""
    root = tmp_path / "checkout"
    root.mkdir()
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=str(REPO), check=True,
                           capture_output=True).stdout
    subprocess.run(["tar", "--null", "-T", "-", "-cf", str(tmp_path / "files.tar")], cwd=str(REPO), input=files,
                   check=True, capture_output=True)
    subprocess.run(["tar", "-xf", str(tmp_path / "files.tar"), "-C", str(root)], check=True)
    os.symlink(REPO / ".venv", root / ".venv")
    return root


def make_release(root, version):
    env = ansible_env({"HOME": str(root.parent)})
    return subprocess.run(["make", "--no-print-directory", "-C", str(root), "release", "VERSION=%s" % version],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def test_release_step_makes_everything_agree_and_the_check_catches_a_stray_pin(checkout):
    release = load_release(checkout)
    # The work of the next release, as a contributor leaves it.
    (checkout / "changelogs" / "fragments" / "next-change.yml").write_text(
        "---\nminor_changes:\n  - \"billing_sync role - a change for the next release.\"\n", encoding="utf-8")
    fragments = sorted(path.name for path in (checkout / "changelogs" / "fragments").glob("*.yml"))

    proc = make_release(checkout, "9.8.7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "galaxy.yml, changelog and docs pins agree" in proc.stdout
    assert release.problems(checkout) == []
    assert yaml.safe_load((checkout / "galaxy.yml").read_text(encoding="utf-8"))["version"] == "9.8.7"
    changelog = yaml.safe_load((checkout / "changelogs" / "changelog.yaml").read_text(encoding="utf-8"))
    assert sorted(changelog["releases"]["9.8.7"]["fragments"]) == fragments
    assert not list((checkout / "changelogs" / "fragments").glob("*.yml"))
    requirements = yaml.safe_load((checkout / "docs/examples/awx/requirements.yml").read_text(encoding="utf-8"))
    assert requirements["collections"][0]["version"] == "9.8.7"
    assert "selfhost-bitwarden-9.8.7.tar.gz" in (checkout / "docs/docsite/rst/quickstart.rst").read_text("utf-8")

    # Each kind of disagreement is named.
    ee = checkout / "docs/examples/awx/execution-environment.yml"
    ee.write_text(ee.read_text(encoding="utf-8").replace("ee-bitwarden:9.8.7", "ee-bitwarden:9.8.6"), "utf-8")
    quickstart = checkout / "docs/docsite/rst/quickstart.rst"
    quickstart.write_text(quickstart.read_text(encoding="utf-8").replace("selfhost-bitwarden-9.8.7.tar.gz",
                                                                         "selfhost-bitwarden.tar.gz"), "utf-8")
    galaxy = checkout / "galaxy.yml"
    galaxy.write_text(galaxy.read_text(encoding="utf-8").replace("version: 9.8.7", "version: 9.8.8"), "utf-8")
    problems = release.problems(checkout)
    assert any("changelog's latest release is 9.8.7" in problem for problem in problems), problems
    assert any("CHANGELOG.rst has no section v9.8.8" in problem for problem in problems), problems
    assert any(problem.startswith("docs/examples/awx/execution-environment.yml pins EE image tag as 9.8.6")
               for problem in problems), problems
    assert "docs/docsite/rst/quickstart.rst no longer pins the release tarball" in problems
    check = subprocess.run([str(checkout / ".venv" / "bin" / "python"), "scripts/release.py", "check"],
                           cwd=str(checkout), capture_output=True, text=True, check=False)
    assert check.returncode == 1 and "9.8.6" in check.stderr, check.stdout + check.stderr


def test_release_refuses_a_malformed_version(checkout):
    proc = make_release(checkout, "1.0")
    assert proc.returncode != 0 and "usage: make release VERSION=x.y.z" in proc.stderr
    assert yaml.safe_load((checkout / "galaxy.yml").read_text(encoding="utf-8"))["version"] == \
        yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["version"]
