# selfhost.bitwarden: every developer and CI task starts here.
# `make demo` and `make test` work on a fresh clone: they bootstrap .venv and the system tools themselves.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
CACHE := $(ROOT)/.cache

# Newest Python that takes the newest ansible-core (pyenv 3.13/3.12 -> core 2.21); else the default python3 (core 2.19).
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
BASE_PYTHON ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13.*/bin/python3) $(wildcard $(PYENV_ROOT)/versions/3.12.*/bin/python3) $(shell command -v python3))
PY := $(VENV)/bin/python

# Keep every tool's state inside the checkout: nothing in $HOME that a later run could pick up by accident.
COLLECTIONS := $(CACHE)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/selfhost/bitwarden
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_HOME := $(CACHE)/ansible-home
export ANSIBLE_LOCAL_TEMP := $(CACHE)/ansible-home/tmp
export ANSIBLE_SSH_CONTROL_PATH_DIR := $(CACHE)/ansible-home/cp
export ANSIBLE_PYTHON_INTERPRETER := $(PY)
export ANSIBLE_NOCOWS := 1
export ANSIBLE_FORCE_COLOR := 0
export XDG_CACHE_HOME := $(CACHE)/xdg
export MPLCONFIGDIR := $(CACHE)/matplotlib
export MOLECULE_GLOB := molecule/*/molecule.yml
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Real interpreter directories instead of pyenv shims: ansible's interpreter discovery and ansible-test break on the shims.
export PATH := $(VENV)/bin:$(dir $(BASE_PYTHON)):$(subst $(PYENV_ROOT)/shims:,,$(PATH))

STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(CACHE)/.system-packages

.PHONY: env sanity-locked help venv system-packages collection test test-suites matrix lint sanity units simulator integration reliability reliability-kill9 molecule docs build release demo bench real-server real-server-apply clean

help:
	@echo "make demo    start a simulated fleet, roll billing sync out to it, print the fleet report"
	@echo "make test    everything CI runs: lint, the version matrix (sanity, units, converge per ansible-core),"
	@echo "             simulator, integration, reliability, molecule, docs, build"
	@echo "make lint | sanity | units | matrix | simulator | integration | reliability | reliability-kill9 | molecule | docs | build | bench | real-server"
	@echo "make release VERSION=x.y.z"

$(STAMP): requirements-dev.txt
	@echo "== creating .venv with $(BASE_PYTHON)"
	@test -x "$(BASE_PYTHON)" || { echo "no usable python3 found" >&2; exit 1; }
	rm -rf $(VENV)
	$(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip 2>&1 | grep -v '^WARNING: Location' || true
	@if $(PY) -c 'import sys; sys.exit(sys.version_info >= (3, 12))'; then \
	  echo "== Python < 3.12: ansible-core 2.19 instead of 2.21"; \
	  sed 's/^ansible-core==.*/ansible-core==2.19.14/' requirements-dev.txt > $(VENV)/requirements.txt; \
	else cp requirements-dev.txt $(VENV)/requirements.txt; fi
	$(PY) -m pip install -q -r $(VENV)/requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -m pip check
	touch $@

venv: $(STAMP)

# sshd for the molecule SSH scenario, shellcheck for ansible-test sanity, promtool and prometheus (Debian's prometheus
# package) for the example alert rules' tests and the monitoring end-to-end test, which also runs Debian's
# prometheus-node-exporter; the Event-Driven Ansible end-to-end test adds prometheus-alertmanager and Java 17 or later for
# ansible-rulebook's rule engine (Drools). Installed only when missing.
$(SYSTEM_STAMP):
	@mkdir -p $(CACHE)
	@missing=""; \
	  command -v shellcheck >/dev/null || missing="$$missing shellcheck"; \
	  test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	  command -v promtool >/dev/null && command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	  command -v prometheus-node-exporter >/dev/null || missing="$$missing prometheus-node-exporter"; \
	  command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	  java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || missing="$$missing openjdk-17-jre-headless"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then echo "please install:$$missing (needs root)" >&2; exit 1; fi; \
	    echo "== apt-get install$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi
	touch $@

system-packages: $(SYSTEM_STAMP)

# The collection must sit at ansible_collections/selfhost/bitwarden; a link into the cache keeps edits live.
$(COLLECTION_LINK):
	mkdir -p $(dir $@) $(ANSIBLE_HOME)/tmp
	ln -sfn $(ROOT) $@

collection: $(STAMP) $(COLLECTION_LINK)

# The version matrix (sanity and units on each entry) runs beside the other suites: the two overlap their waits.
# The suites go on after a failure (-k), so one CI run lists every failing suite.
test: collection system-packages
	$(MAKE) --no-print-directory -j 2 --output-sync=recurse matrix test-suites
	@echo "== make test: all suites passed"

test-suites:
	$(MAKE) --no-print-directory -k -j 1 lint simulator integration reliability molecule docs build

# Version matrix: the oldest and the newest supported ansible-core (CORE/PYTHON, Python from pyenv), each in its own
# venv under .cache/matrix: ansible-test sanity, the unit tests and the role's converge and idempotent re-run
# (scripts/matrix.sh). The README's "Tested with" table lists exactly these (tests/integration/test_versions.py).
MATRIX := 2.17.14/3.12 2.21.5/3.13
matrix: collection system-packages
	@for entry in $(MATRIX); do PYENV_ROOT=$(PYENV_ROOT) scripts/matrix.sh $${entry%/*} $${entry#*/}; done

lint: collection
	yamllint -s .
	ansible-lint

# ansible-test needs a real (not symlinked) ansible_collections/selfhost/bitwarden tree outside any git checkout
# (inside one it lists only that checkout's tracked files) and an offline get-pip.
# One tree per checkout (several worktrees may run sanity at once).
SANITY_TREE := $(or $(TMPDIR),/tmp)/selfhost-bitwarden-sanity-$(shell id -u)-$(shell printf %s '$(ROOT)' | cksum | cut -d' ' -f1)/ansible_collections/selfhost/bitwarden
SANITY_HOME := $(CACHE)/sanity-home
sanity: collection system-packages
	flock $(CACHE)/sanity.lock $(MAKE) --no-print-directory sanity-locked

sanity-locked:
	rm -rf $(SANITY_TREE) && mkdir -p $(SANITY_TREE) $(SANITY_HOME)/.ansible/test/cache
	git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C $(SANITY_TREE)
	for v in 24_2 25_2; do cp scripts/ansible_test_get_pip.py $(SANITY_HOME)/.ansible/test/cache/get_pip_$$v.py; done
	cd $(SANITY_TREE) && HOME=$(SANITY_HOME) ansible-test sanity --local --python $$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') --color no

PYTEST_ARGS ?=
units: collection
	pytest -n 2 tests/unit $(PYTEST_ARGS)

simulator: collection
	pytest -n 2 tests/simulator $(PYTEST_ARGS)

integration: collection system-packages
	pytest -n 2 tests/integration $(PYTEST_ARGS)

# The fault and bad-input matrix (issue 12); ends with "N cases, N held".
reliability: collection
	pytest -n 2 tests/reliability $(PYTEST_ARGS)

# The kill -9 matrix in full: 10 runs per moment (make reliability runs 3).
reliability-kill9: collection
	BW_KILL9_REPS=10 pytest -n 2 tests/reliability/test_reliability_lock.py -k kill9 $(PYTEST_ARGS)

# `eval "$$(make -s env)"` gives a shell the same environment the targets use.
env:
	@echo "export PATH='$(PATH)' ANSIBLE_COLLECTIONS_PATH='$(ANSIBLE_COLLECTIONS_PATH)' ANSIBLE_HOME='$(ANSIBLE_HOME)'"
	@echo "export ANSIBLE_LOCAL_TEMP='$(ANSIBLE_LOCAL_TEMP)' ANSIBLE_SSH_CONTROL_PATH_DIR='$(ANSIBLE_SSH_CONTROL_PATH_DIR)' ANSIBLE_PYTHON_INTERPRETER='$(ANSIBLE_PYTHON_INTERPRETER)'"
	@echo "export XDG_CACHE_HOME='$(XDG_CACHE_HOME)' MPLCONFIGDIR='$(MPLCONFIGDIR)' MOLECULE_GLOB='$(MOLECULE_GLOB)' ANSIBLE_NOCOWS=1"

# The ssh scenario binds fixed loopback addresses: one molecule run per machine at a time.
molecule: collection system-packages
	flock $(or $(TMPDIR),/tmp)/selfhost-bitwarden-molecule.lock molecule test --all

# Docs, offline, everything under .cache/docs: changelog lint, docs lint (modules, filter, role specs, guides),
# then the HTML site (antsibull-docs + Sphinx, intersphinx off) in .cache/docs/site/html.
# antsibull-docs logs to ~/antsibull.log: its HOME is a directory in the cache.
DOCS_DIR := $(CACHE)/docs
DOCS_SITE := $(DOCS_DIR)/site
DOCS_ENV := HOME=$(DOCS_DIR)/home
docs: collection
	antsibull-changelog lint
	mkdir -p $(DOCS_DIR)/home
	$(DOCS_ENV) antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs \
	  --validate-collection-refs all .
	rm -rf $(DOCS_SITE) && mkdir -p $(DOCS_SITE) && chmod 700 $(DOCS_SITE)
	$(DOCS_ENV) antsibull-docs sphinx-init --use-current --squash-hierarchy --dest-dir $(DOCS_SITE) \
	  --sphinx-theme alabaster --fail-on-error --no-add-antsibull-docs-version \
	  --project selfhost.bitwarden --copyright "selfhost.bitwarden contributors" --title selfhost.bitwarden \
	  selfhost.bitwarden >/dev/null
	printf '\n# Offline build: no inventories fetched from the network.\nintersphinx_mapping = {}\n' >> $(DOCS_SITE)/conf.py
	mkdir -p -m 700 $(DOCS_SITE)/rst
	$(DOCS_ENV) antsibull-docs --config-file $(DOCS_SITE)/antsibull-docs.cfg collection --use-current \
	  --squash-hierarchy --fail-on-error --cleanup everything --dest-dir $(DOCS_SITE)/rst selfhost.bitwarden
	# The guides include docs/examples/ as ../../examples/ and the rulebooks as ../../../extensions/: the same relative
	# paths as in the source tree.
	cp -r docs/examples $(DOCS_SITE)/examples
	rm -rf $(DOCS_DIR)/extensions && cp -r extensions $(DOCS_DIR)/extensions
	cp -r docs/images $(DOCS_SITE)/images
	cp docs/docsite/offline-refs.rst $(DOCS_SITE)/rst/
	$(DOCS_ENV) sphinx-build -q -W --keep-going -b html -d $(DOCS_DIR)/doctrees -c $(DOCS_SITE) \
	  $(DOCS_SITE)/rst $(DOCS_SITE)/html
	@echo "== docs: $(DOCS_SITE)/html/index.html"

# The collection tarball users install: .cache/build/selfhost-bitwarden-<version>.tar.gz (galaxy.yml build_ignore
# keeps tests, simulator, benchmarks and tooling out; tests/integration/test_release.py checks the content).
BUILD_DIR := $(CACHE)/build
build: collection
	mkdir -p $(BUILD_DIR)
	ansible-galaxy collection build --force --output-path $(BUILD_DIR) .
	@ls -1 $(BUILD_DIR)/selfhost-bitwarden-*.tar.gz

# `make release VERSION=x.y.z`: galaxy.yml and the docs pins to x.y.z, then the changelog release from the fragments;
# the last step fails unless galaxy.yml, the changelog and every docs pin agree (tests/integration/test_versions.py).
release:
	@[[ "$(VERSION)" =~ ^[0-9]+\.[0-9]+\.[0-9]+$$ ]] || { echo "usage: make release VERSION=x.y.z" >&2; exit 2; }
	$(PY) scripts/release.py bump $(VERSION)
	antsibull-changelog release --version $(VERSION)
	$(PY) scripts/release.py check

demo: collection
	scripts/demo.sh

bench: collection
	$(PY) benchmarks/run.py

# Runs the same playbooks against a real server; see docs/testing.md for the variables it needs.
real-server: collection
	pytest -p no:xdist tests/real_server -k "not converges" $(PYTEST_ARGS)

real-server-apply: collection
	pytest -p no:xdist tests/real_server $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(CACHE) tests/output .pytest_cache collections
