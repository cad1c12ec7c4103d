#!/usr/bin/env bash
# make demo: start a simulated fleet, report it, roll billing sync out, report again, stop the fleet.
set -euo pipefail
cd "$(dirname "$0")/.."
work=.cache/demo
scripts/bwsim down --dir "$work" >/dev/null 2>&1 || true
rm -rf "$work"
trap 'scripts/bwsim down --dir "$work" >/dev/null 2>&1 || true' EXIT
scripts/bwsim up --dir "$work" --fleet scripts/demo-fleet.yml
inventory="$work/inventory.yml"

echo; echo "== 1/3 status before the rollout (everything drifts)"
ansible-playbook -i "$inventory" playbooks/status.yml -e billing_sync_report_dir="$PWD/$work"

echo; echo "== 2/3 rollout: canary, then 10 %, then the rest"
ansible-playbook -i "$inventory" playbooks/rollout.yml

echo; echo "== 3/3 status after the rollout (all in sync)"
ansible-playbook -i "$inventory" playbooks/status.yml -e billing_sync_report_dir="$PWD/$work" -e billing_sync_fail_on_drift=true

echo; echo "== fleet report ($work/billing-sync-report.md, .json)"
cat "$work/billing-sync-report.md"
