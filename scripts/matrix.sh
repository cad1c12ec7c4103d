#!/usr/bin/env bash
# One entry of the version matrix: `scripts/matrix.sh CORE PYTHON` (make matrix runs each entry of MATRIX).
# ansible-core CORE on pyenv Python PYTHON (x.y), in its own venv under .cache/matrix, runs ansible-test sanity,
# the unit tests and the role's converge/idempotent re-run against the simulator.
set -euo pipefail
core=$1 py=$2
root=$(cd "$(dirname "$0")/.." && pwd)
pyenv_root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
base=""
for candidate in "$pyenv_root"/versions/"$py".*/bin/python3; do  # several patch releases: the last in glob order
  [ -x "$candidate" ] && base=$candidate
done
[ -x "$base" ] || { echo "matrix: no Python $py under $pyenv_root/versions" >&2; exit 1; }
name=core-$core-py$py
venv=$root/.cache/matrix/$name
log() { echo "== matrix $name: $*"; }

# The venv: this ansible-core, and the test tools at requirements-dev.txt's pins.
if [ ! -f "$venv/.installed" ] || [ "$root/requirements-dev.txt" -nt "$venv/.installed" ]; then
  log "venv with $base"
  rm -rf "$venv"
  "$base" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -U pip 2>&1 | grep -v '^WARNING: Location' || true
  { echo "ansible-core==$core"
    grep -E '^(pytest|pytest-xdist|pytest-mock|hypothesis|requests|Jinja2|cryptography|prometheus-client)==' "$root/requirements-dev.txt"
  } > "$venv/requirements.txt"
  "$venv/bin/python" -m pip install -q -r "$venv/requirements.txt" 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/python" -m pip check
  touch "$venv/.installed"
fi
base_bin=$(dirname "$base")
export PATH="$venv/bin:$base_bin:$PATH" ANSIBLE_PYTHON_INTERPRETER="$venv/bin/python"
installed=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("ansible-core"))')
[ "$installed" = "$core" ] || { echo "matrix: $venv has ansible-core $installed, not $core" >&2; exit 1; }

# Sanity in a tree of its own (ansible-test needs one outside any git checkout), with the offline get-pip shim
# under the name this ansible-test asks for (get_pip_<its pip version>.py).
tree=${TMPDIR:-/tmp}/selfhost-bitwarden-matrix-$(id -u)-$(printf %s "$root" | cksum | cut -d' ' -f1)-$name
home=$root/.cache/matrix/$name-home
log "ansible-test sanity"
rm -rf "$tree" && mkdir -p "$tree/ansible_collections/selfhost/bitwarden" "$home/.ansible/test/cache"
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) \
  | tar -xf - -C "$tree/ansible_collections/selfhost/bitwarden"
pip_version=$(python -c 'import re, ansible_test._internal.python_requirements as r, inspect
print(re.search(r"pip=.([0-9.]+).", inspect.getsource(r.get_venv_packages)).group(1))')
cp "$root/scripts/ansible_test_get_pip.py" "$home/.ansible/test/cache/get_pip_${pip_version//./_}.py"
(cd "$tree/ansible_collections/selfhost/bitwarden" && HOME=$home ansible-test sanity --local --python "$py" --color no)
rm -rf "$tree"

cd "$root"
log "unit tests"
pytest -q -n 2 tests/unit
log "converge and idempotent re-run"
pytest -q -p no:xdist tests/integration/test_role.py -k test_converge_then_idempotent_rerun
log "passed"
