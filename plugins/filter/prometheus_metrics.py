# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that renders billing sync status rows as node_exporter textfile metrics (Prometheus text format 0.0.4)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: prometheus_metrics
short_description: Render billing sync status rows as Prometheus metrics for the node_exporter textfile collector
version_added: 0.3.0
description:
  - Turns the C(billing_sync_status) facts that the C(status) entry point of the C(selfhost.bitwarden.billing_sync)
    role sets into the Prometheus text exposition format, one series per host and metric.
  - Every series carries the labels C(host) (inventory name), C(region) (the wanted region) and C(organization)
    (the self-hosted organization id). No secret and no token fingerprint is ever a label or a value.
  - Timestamps are Unix seconds; V(0) means never (no license sync, no sponsorship sync yet). A license expiry
    that could not be read has no series. The license has two expiry series, named for what they carry -
    C(license_expiry_without_grace_timestamp_seconds) (end of the paid period, the fleet report's C(license expires))
    and C(license_expiry_with_grace_timestamp_seconds) (when the license stops working, 60 days later for most).
  - C(sponsorship_sync_state) has one series per state with V(1) for the current one; V(unknown) when the api log
    cannot be read and the server reports no sync.
options:
  _input:
    description: List of status rows (dicts as set by the C(status) entry point).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Write the metrics of status rows for node_exporter
  ansible.builtin.copy:
    content: "{{ rows | selfhost.bitwarden.prometheus_metrics }}"
    dest: /var/lib/node_exporter/textfile_collector/selfhost_bitwarden.prom
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The metrics, C(# HELP) and C(# TYPE) lines before each family, ending with a newline.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import parse_timestamp

PREFIX = "selfhost_bitwarden_"
SPONSORSHIP_STATES = ("synced", "pending", "no_sponsorships", "failed", "off", "not_configured", "unknown")


def _epoch(text):
    moment = parse_timestamp(text) if text else None
    return None if moment is None else moment.timestamp()


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels):
    return "{%s}" % ",".join('%s="%s"' % (key, _escape(value)) for key, value in labels)


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def readable(row):
    return not row.get("error")


def _hours_as_seconds(value):
    return None if value in (None, "") else float(value) * 3600


def _families():
    """(name, help, value of a row); a value of None writes no sample."""
    return (
        ("read_error", "1 when the last status run could not read this host (the fleet report says why).",
         lambda row: bool(row.get("error"))),
        ("status_timestamp_seconds", "When a status run last tried to read this host (also when it could not).",
         lambda row: row.get("read_at")),
        ("cloud_communication_enabled", "1 when the running server has cloud communication enabled.",
         lambda row: bool(row.get("cloud_communication")) if readable(row) else None),
        ("billing_sync_enabled", "1 when the organization has an enabled billing sync connection.",
         lambda row: row.get("billing_sync") == "enabled" if readable(row) else None),
        ("license_last_sync_timestamp_seconds", "Time of the last license sync (0: never).",
         lambda row: (_epoch(row.get("last_license_sync")) or 0) if readable(row) else None),
        ("license_sync_stale_after_seconds",
         "Age after which the last license sync is stale: billing_sync_license_sync_max_age_hours plus billing_sync_stale_sync_hours.",
         lambda row: _hours_as_seconds(row.get("license_sync_stale_after_hours")) if readable(row) else None),
        ("license_expiry_without_grace_timestamp_seconds",
         "End of the license's paid period, without the grace period (the fleet report's 'license expires').",
         lambda row: _epoch(row.get("license_expiration_without_grace")) if readable(row) else None),
        ("license_expiry_with_grace_timestamp_seconds",
         "When the license stops working: the end of the paid period plus the grace period.",
         lambda row: _epoch(row.get("license_expiration_with_grace")) if readable(row) else None),
        ("sponsorship_last_sync_timestamp_seconds",
         "Latest LastSyncDate of the organization's Families sponsorships (sync-status route; 0: none).",
         lambda row: (_epoch(row.get("sponsorship_last_sync")) or 0) if readable(row) else None),
        ("sponsorship_sync_last_seen_timestamp_seconds",
         "Newest sign that the sponsorship sync job ran for the organization (its last sync or its last run in the api log; 0: none).",
         lambda row: (_epoch(row.get("sponsorship_last_seen")) or 0) if readable(row) else None),
        ("drift", "Number of differences from the wanted state, as the rollout compares them (0: in sync).",
         lambda row: len(row.get("drift") or []) if readable(row) else None),
    )


def prometheus_metrics(rows):
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnsibleFilterError("prometheus_metrics expects a list of billing_sync_status dicts")
    rows = sorted(rows, key=lambda r: str(r.get("host", "")))
    base = [(row, [("host", row.get("host", "")), ("region", row.get("wanted_region") or ""),
                   ("organization", row.get("organization") or "")]) for row in rows]
    lines = ["# HELP %sinfo Server version, the cloud region the server reports and the kind of installation." % PREFIX,
             "# TYPE %sinfo gauge" % PREFIX]
    for row, labels in base:
        if not row.get("error"):
            info = [("version", row.get("version") or ""), ("cloud_region", row.get("region") or ""),
                    ("deployment", row.get("deployment") or "standard")]
            lines.append("%sinfo%s 1" % (PREFIX, _labels(labels + info)))
    for name, text, value_of in _families():
        samples = [(labels, value_of(row)) for row, labels in base]
        samples = [(labels, value) for labels, value in samples if value is not None]
        lines += ["# HELP %s%s %s" % (PREFIX, name, text), "# TYPE %s%s gauge" % (PREFIX, name)]
        lines += ["%s%s%s %s" % (PREFIX, name, _labels(labels), _number(value)) for labels, value in samples]
    lines += ["# HELP %ssponsorship_sync_state State of the Families sponsorship sync (1 for the current state)." % PREFIX,
              "# TYPE %ssponsorship_sync_state gauge" % PREFIX]
    for row, labels in base:
        if row.get("error"):
            continue
        current = row.get("sponsorship_sync") or "unknown"
        lines += ["%ssponsorship_sync_state%s %d" % (PREFIX, _labels(labels + [("state", state)]), state == current)
                  for state in SPONSORSHIP_STATES]
    return "\n".join(lines) + "\n"


class FilterModule:
    def filters(self):
        return {"prometheus_metrics": prometheus_metrics}
