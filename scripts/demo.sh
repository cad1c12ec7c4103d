#!/usr/bin/env bash
# make demo: in about a minute, what the collection does to a mixed fleet (standard US and EU, Bitwarden Lite):
# the rollout, the re-run with nothing to do, the fleet report, and where its files are. DEMO_DIR moves the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${DEMO_DIR:-.cache/demo}"
scripts/bwsim down --dir "$work" >/dev/null 2>&1 || true
rm -rf "$work"
trap 'scripts/bwsim down --dir "$work" >/dev/null 2>&1 || true' EXIT
mkdir -p "$work"
work="$(cd "$work" && pwd)"
inventory="$work/inventory.yml"
reports="$work/report"
# The rollouts show only what ran: no "skipping" lines, no empty banner for a handler flush that restarts nothing.
quiet=(env ANSIBLE_DISPLAY_SKIPPED_HOSTS=false)

echo "== a simulated fleet: two US servers (one behind TLS, one on 2025.12.0), one EU server, one Bitwarden Lite"
scripts/bwsim up --dir "$work" --fleet scripts/demo-fleet.yml
scripts/bwsim status --dir "$work"

echo; echo "== 1/3 rollout (ansible-playbook selfhost.bitwarden.rollout): canary, then 10 %, then the rest"
"${quiet[@]}" ansible-playbook -i "$inventory" selfhost.bitwarden.rollout

echo; echo "== 2/3 the same rollout again: every host is in sync, so nothing changes and nothing restarts"
before="$(scripts/bwsim status --dir "$work" | awk 'NR > 1 {sum += $NF} END {print sum}')"
"${quiet[@]}" ansible-playbook -i "$inventory" selfhost.bitwarden.rollout | tee "$work/rerun.log" | sed -n '/PLAY RECAP/,$p'
after="$(scripts/bwsim status --dir "$work" | awk 'NR > 1 {sum += $NF} END {print sum}')"
changed="$(awk '/PLAY RECAP/ {recap = 1} recap && /changed=/ {split($0, a, "changed="); split(a[2], b, " "); sum += b[1]} END {print sum + 0}' "$work/rerun.log")"
echo "re-run: changed=$changed on all hosts, $((after - before)) restarts"
scripts/bwsim status --dir "$work"

echo; echo "== 3/3 fleet report (ansible-playbook selfhost.bitwarden.status, read-only)"
mkdir -p "$reports/node_exporter"
ansible-playbook -i "$inventory" selfhost.bitwarden.status -e billing_sync_fail_on_drift=true \
  -e billing_sync_report_dir="$reports" -e "billing_sync_metrics_path=$reports/node_exporter/{{ inventory_hostname }}.prom" \
  | sed -n '/TASK \[Print the report\]/,/^ok:/p' | sed '1d;$d'

echo; echo "== files"
echo "fleet report:        $reports/billing-sync-report.md (Markdown), $reports/billing-sync-report.json"
echo "Prometheus metrics:  $reports/billing-sync-fleet.prom (the whole fleet, for node_exporter's textfile collector)"
echo "                     $reports/node_exporter/<host>.prom (what each host writes for its own node_exporter)"
echo "inventory:           $inventory (the simulated servers stop when the demo ends)"
