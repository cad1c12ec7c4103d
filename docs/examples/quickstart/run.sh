#!/usr/bin/env bash
# Quick start: preview, roll out, report. Run it in the directory that holds inventory/.
# The vault password comes from ANSIBLE_VAULT_PASSWORD_FILE; or add --ask-vault-pass to each command.
set -euo pipefail

# 1. Preview: what would change on each server (secrets masked). Writes nothing, restarts nothing.
ansible-playbook -i inventory selfhost.bitwarden.rollout --check --diff

# 2. Roll out: one canary server, then 10 % of the rest, then all others.
ansible-playbook -i inventory selfhost.bitwarden.rollout

# 3. Report: one line per server, also written to billing-sync-report.md and .json in this directory.
#    Exits non-zero when a server could not be read or drifted from the wanted state.
ansible-playbook -i inventory selfhost.bitwarden.status -e billing_sync_report_dir="$PWD" -e billing_sync_fail_on_drift=true
