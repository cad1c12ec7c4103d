#!/usr/bin/env bash
# Fleet rollout with the playbook the collection ships. Run it in the directory that holds inventory/.
set -euo pipefail

# Canary, then 5 servers, then a quarter of the fleet per batch; stop at the first failed batch.
# Up to 25 servers in parallel; at most 5 of them call the Bitwarden cloud at once.
ansible-playbook -i inventory selfhost.bitwarden.rollout --forks 25 \
  -e '{"billing_sync_serial": [1, 5, "25%"], "billing_sync_max_fail_percentage": 0}' \
  -e billing_sync_cloud_throttle=5

# Only the EU servers.
ansible-playbook -i inventory selfhost.bitwarden.rollout -e billing_sync_hosts=bitwarden_eu
