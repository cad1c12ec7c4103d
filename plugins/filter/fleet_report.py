# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that renders the fleet report of playbooks/status.yml as a text table or Markdown."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_report
short_description: Render billing sync status rows as a text table or Markdown
version_added: 0.1.0
description:
  - Turns the C(billing_sync_status) facts that the C(status) entry point of the C(selfhost.bitwarden.billing_sync)
    role sets into a fixed-width text table (for stdout) or a Markdown table (for files and wikis).
options:
  _input:
    description:
      - List of status rows (dicts with host, deployment (V(standard) or V(lite)), version, region, cloud_communication, billing_sync, last_license_sync,
        license_sync_stale, license_sync_age_hours, license_expiration, license_expiration_without_grace,
        license_days_left, license_expiring, license_error, sponsorship_sync, sponsorship_last_sync, drift, error).
      - A row whose error is set shows only that error (for example C(could not be read) and the cause).
      - In Markdown, C(|) is escaped and line breaks become C(<br>); in text they become C( / ).
    type: list
    elements: dict
    required: true
  fmt:
    description: Output format.
    type: str
    choices: [text, markdown]
    default: text
"""

EXAMPLES = r"""
- name: Print the fleet report
  ansible.builtin.debug:
    msg: "{{ rows | selfhost.bitwarden.fleet_report }}"

- name: Write it as Markdown
  ansible.builtin.copy:
    content: "{{ rows | selfhost.bitwarden.fleet_report('markdown') }}"
    dest: /tmp/report.md
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The table, one line per host sorted by host name, after a header line.
  type: str
"""

from ansible.errors import AnsibleFilterError

COLUMNS = (
    ("host", "host"),
    ("kind", "deployment"),
    ("version", "version"),
    ("region", "region"),
    ("cloud comm", "cloud_communication"),
    ("billing sync", "billing_sync"),
    ("last license sync", "last_license_sync"),
    ("license expires", "license_expiration_without_grace"),
    ("sponsorship sync", "sponsorship_sync"),
    ("drift", "drift"),
)


def _license_cell(row):
    if row.get("license_error"):
        return "error: %s" % row["license_error"]
    date = row.get("license_expiration_without_grace") or row.get("license_expiration")
    if not date:
        return "unknown"
    days = row.get("license_days_left")
    text = "%s (%s days)" % (date, days) if days is not None else str(date)
    return "EXPIRING " + text if row.get("license_expiring") else text


def _cell(row, key):
    error = row.get("error")
    if key == "host":
        return str(row.get("host", "?"))
    if key == "deployment":
        return str(row.get("deployment") or "standard")  # known from the inventory, also for a host not read
    if key == "drift":
        if error:
            return str(error)
        return "; ".join(row.get("drift") or []) or "in sync"
    if error:
        return "-"
    value = row.get(key)
    if key == "cloud_communication":
        return "on" if value else "off"
    if key == "license_expiration_without_grace":
        return _license_cell(row)
    if key == "last_license_sync" and value is not None and row.get("license_sync_stale"):
        return "STALE %s (%s h ago)" % (value, row.get("license_sync_age_hours"))
    if key == "sponsorship_sync" and value == "synced":
        return "synced %s" % row.get("sponsorship_last_sync")
    return "never" if value is None else str(value)


def _one_line(text, newline):
    """A cell on one line: a multi-line error must not break the table."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", newline)


def fleet_report(rows, fmt="text"):
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnsibleFilterError("fleet_report expects a list of billing_sync_status dicts")
    if fmt not in ("text", "markdown"):
        raise AnsibleFilterError("fleet_report: fmt must be 'text' or 'markdown', not %r" % (fmt,))
    header = [title for title, _key in COLUMNS]
    body = [[_cell(row, key) for _title, key in COLUMNS] for row in sorted(rows, key=lambda r: str(r.get("host", "")))]
    if fmt == "markdown":
        lines = ["| %s |" % " | ".join(header), "|%s|" % "|".join(["---"] * len(header))]
        lines += ["| %s |" % " | ".join(_one_line(cell.replace("|", "\\|"), "<br>") for cell in cells) for cells in body]
        return "\n".join(lines) + "\n"
    body = [[_one_line(cell, " / ") for cell in cells] for cells in body]
    widths = [max(len(cells[i]) for cells in [header] + body) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() for cells in [header] + body) + "\n"


class FilterModule:
    def filters(self):
        return {"fleet_report": fleet_report}
