"""Release version bookkeeping: galaxy.yml, the changelog's latest release and every version the docs pin.

    python scripts/release.py bump X.Y.Z   # galaxy.yml and every docs pin to X.Y.Z (`make release` runs it)
    python scripts/release.py check        # exit 1, listing each disagreement, unless all of them say the same version

The docs pin the version in three forms: the release tarball name (quick start), the EE image tag (AWX guide and
the EE example) and the collection version in docs/examples/awx/requirements.yml. The check also requires each
form to be present, so a guide that drops or renames one is noticed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
SEMVER = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?"

# Pin forms: name -> pattern whose group "version" is the pinned version.
PIN_FORMS = {
    "release tarball": re.compile(r"selfhost-bitwarden-(?P<version>%s)\.tar\.gz" % SEMVER),
    "EE image tag": re.compile(r"ee-bitwarden:(?P<version>%s)\b" % SEMVER),
    "requirements.yml": re.compile(r"- name: selfhost\.bitwarden\n\s+version: [\"']?(?P<version>%s)" % SEMVER),
}
# Where each form must appear at least once.
REQUIRED = {
    ("docs/docsite/rst/quickstart.rst", "release tarball"),
    ("docs/docsite/rst/awx.rst", "EE image tag"),
    ("docs/examples/awx/execution-environment.yml", "EE image tag"),
    ("docs/examples/awx/requirements.yml", "requirements.yml"),
}


def pinned_files(root):
    """The user-facing text that may pin a version: READMEs, guides and examples."""
    paths = [root / "README.md", *sorted((root / "roles").glob("*/README.md"))]
    for folder in ("docs/docsite", "docs/examples"):
        paths += sorted(path for path in (root / folder).rglob("*") if path.is_file())
    return [path for path in paths if path.is_file()]


def pins(root):
    """Every pin found: (relative path, form, version)."""
    found = []
    for path in pinned_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        for form, pattern in PIN_FORMS.items():
            found += [(path.relative_to(root).as_posix(), form, match.group("version"))
                      for match in pattern.finditer(text)]
    return found


def galaxy_version(root):
    return yaml.safe_load((root / "galaxy.yml").read_text(encoding="utf-8"))["version"]


def latest_release(root):
    releases = yaml.safe_load((root / "changelogs" / "changelog.yaml").read_text(encoding="utf-8"))["releases"]
    return max(releases, key=Version) if releases else None


def problems(root=ROOT):
    """Each disagreement between galaxy.yml, the changelog and the docs pins, as a sentence."""
    version = galaxy_version(root)
    found = []
    latest = latest_release(root)
    if latest != version:
        found.append("galaxy.yml says %s, the changelog's latest release is %s (make release VERSION=%s)"
                     % (version, latest, version))
    if "v%s\n" % version not in (root / "CHANGELOG.rst").read_text(encoding="utf-8"):
        found.append("CHANGELOG.rst has no section v%s (make release VERSION=%s)" % (version, version))
    all_pins = pins(root)
    found += ["%s pins %s as %s, galaxy.yml says %s" % (path, form, pinned, version)
              for path, form, pinned in all_pins if pinned != version]
    present = {(path, form) for path, form, _pinned in all_pins}
    found += ["%s no longer pins the %s" % (path, form) for path, form in sorted(REQUIRED - present)]
    return found


def bump(root, version):
    """Set galaxy.yml's version and every docs pin to `version`; returns the files changed."""
    if not re.fullmatch(SEMVER, version):
        raise ValueError("%s is not a semantic version (x.y.z)" % version)

    def repin(match):
        start, end = match.span("version")
        return match.string[match.start():start] + version + match.string[end:match.end()]

    changed = []
    for path in [root / "galaxy.yml"] + pinned_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path == root / "galaxy.yml":
            updated = re.sub(r"(?m)^version: .*$", "version: %s" % version, text, count=1)
        else:
            updated = text
            for pattern in PIN_FORMS.values():
                updated = pattern.sub(repin, updated)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            changed.append(path.relative_to(root).as_posix())
    return changed


def main(argv):
    if argv[:1] == ["check"] and len(argv) == 1:
        found = problems(ROOT)
        for problem in found:
            print(problem, file=sys.stderr)
        if not found:
            print("version %s: galaxy.yml, changelog and docs pins agree" % galaxy_version(ROOT))
        return 1 if found else 0
    if argv[:1] == ["bump"] and len(argv) == 2:
        for path in bump(ROOT, argv[1]):
            print("bumped %s" % path)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
