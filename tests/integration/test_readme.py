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
