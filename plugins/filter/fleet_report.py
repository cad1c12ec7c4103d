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
  - The text table fits 120 columns for host names of up to about 16 characters. Ages are relative (C(5 h ago),
    C(3 d ago)), dates are C(YYYY-MM-DD), a value the server did not report is C(-). The last column says
    C(in sync), C(drift) or C(error) (could not be read); the drift or the error follows on the next line, indented and wrapped at
    120 columns. A legend of the states ends both formats.
  - Print the text with M(selfhost.bitwarden.print_text), which shows it line by line;
    M(ansible.builtin.debug) would show it JSON-quoted, with C(\n) escapes.
options:
  _input:
    description:
      - List of status rows (dicts with host, deployment (V(standard) or V(lite)), version, region, cloud_communication, billing_sync, last_license_sync,
        license_sync_stale, license_sync_age_hours, license_expiration_with_grace, license_expiration_without_grace,
        license_days_left, license_expiring, license_error, sponsorship_sync, sponsorship_last_sync, drift, error).
      - A row whose error is set shows only that error (for example C(could not be read) and the cause).
      - In Markdown, C(|) is escaped and line breaks become C(<br>); in text they become C( / ).
      - Relative ages are counted from the row's C(read_at) (seconds since the epoch), or from now without it.
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
  selfhost.bitwarden.print_text:
    text: "{{ rows | selfhost.bitwarden.fleet_report }}"

- name: Write it as Markdown
  ansible.builtin.copy:
    content: "{{ rows | selfhost.bitwarden.fleet_report('markdown') }}"
    dest: /tmp/report.md
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The table, one line per host sorted by host name (plus its drift or error line), after a header line, then the legend.
  type: str
"""

import datetime
import re
import textwrap
import time

from ansible.errors import AnsibleFilterError

WIDTH = 120
# (title, key); the text table shows the drift or error of a host on the line below it, wrapped at WIDTH.
COLUMNS = (
    ("host", "host"),
    ("kind", "deployment"),
    ("version", "version"),
    ("region", "region"),
    ("cloud", "cloud_communication"),
    ("billing", "billing_sync"),
    ("last sync", "last_license_sync"),
    ("license expires", "license_expiration_without_grace"),
    ("sponsorships", "sponsorship_sync"),
)
# Shorter words for the text table (the rows keep the long ones).
_SHORT = {"billing_sync": {"not configured": "not set"}, "sponsorship_sync": {"no_sponsorships": "none"}}
LEGEND = (
    "Legend: cloud: cloud communication of the running server. billing: the billing sync connection (not set = no "
    "token applied). last sync: the last license sync (STALE: older than "
    "billing_sync_stale_sync_hours). license expires: end of the paid period, before the 60 days of grace (EXPIRING: "
    "within billing_sync_license_warn_days). sponsorships: the server's daily sponsorship sync job; pending = it has "
    "not run since the server started (it runs 0-23 h after a start), none = it ran with nothing to sync, failed = its last run "
    "logged a failure (see the api log), off = cloud communication off. state: in sync, drift or error (could not be "
    "read; the line below says what). -: not reported."
)
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?)?")


def _timestamp(value):
    """Seconds since the epoch of an ISO 8601 date or time (.NET's 7 fraction digits too), or None."""
    match = _ISO.match(str(value or ""))
    if not match:
        return None
    day, hour, minute, second, zone = match.groups()
    moment = datetime.datetime.strptime(day, "%Y-%m-%d").replace(
        hour=int(hour or 0), minute=int(minute or 0), second=int(second or 0), tzinfo=datetime.timezone.utc)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        moment -= sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment.timestamp()


def _date(value):
    """One date format in every cell: YYYY-MM-DD."""
    match = _ISO.match(str(value or ""))
    return match.group(1) if match else str(value)


def _ago(hours):
    if hours is None:
        return "never"
    hours = max(float(hours), 0.0)
    if hours < 1:
        return "%d min ago" % (hours * 60)
    if hours < 48:
        return "%d h ago" % hours
    return "%d d ago" % (hours // 24)


def _license_cell(row):
    if row.get("license_error"):
        return "error: %s" % row["license_error"]
    date = row.get("license_expiration_without_grace") or row.get("license_expiration_with_grace")
    if not date:
        return "unknown"
    days = row.get("license_days_left")
    if days is None:
        return _date(date)
    if int(days) < 0:
        return "EXPIRED %s" % _date(date)
    text = "%s (%s d)" % (_date(date), days)
    return "EXPIRING " + text if row.get("license_expiring") else text


def _cell(row, key, now):
    if key == "host":
        return str(row.get("host", "?"))
    if key == "deployment":
        return str(row.get("deployment") or "standard")  # known from the inventory, also for a host not read
    if row.get("error"):
        return "-"
    value = row.get(key)
    if key == "cloud_communication":
        return "-" if value is None else ("on" if value else "off")
    if key == "license_expiration_without_grace":
        return _license_cell(row)
    if key == "last_license_sync":
        if value is None:
            return "never"
        hours = row.get("license_sync_age_hours")
        if hours is None:
            moment = _timestamp(value)
            hours = None if moment is None else (now - moment) / 3600
        text = _ago(hours) if hours is not None else _date(value)
        return "STALE " + text if row.get("license_sync_stale") else text
    if key == "sponsorship_sync" and value == "synced":
        moment = _timestamp(row.get("sponsorship_last_sync"))
        return "synced %s" % (_ago((now - moment) / 3600) if moment is not None else "")
    return "-" if value is None else _SHORT.get(key, {}).get(value, str(value))


def _detail(row):
    """What a host's state column points at: its error, else its drift; empty when in sync."""
    if row.get("error"):
        return str(row["error"])
    drift = [str(item) for item in row.get("drift") or []]
    return ("drift: " + "; ".join(drift)) if drift else ""


def _one_line(text, newline):
    """A cell on one line: a multi-line error must not break the table."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", newline)


def _wrap(text, indent):
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)


def fleet_report(rows, fmt="text"):
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnsibleFilterError("fleet_report expects a list of billing_sync_status dicts")
    if fmt not in ("text", "markdown"):
        raise AnsibleFilterError("fleet_report: fmt must be 'text' or 'markdown', not %r" % (fmt,))
    rows = sorted(rows, key=lambda r: str(r.get("host", "")))
    body = []
    for row in rows:
        now = float(row.get("read_at") or time.time())
        body.append([_one_line(_cell(row, key, now), " / ") for _title, key in COLUMNS])
    if fmt == "markdown":
        header = [title for title, _key in COLUMNS] + ["drift"]
        lines = ["| %s |" % " | ".join(header), "|%s|" % "|".join(["---"] * len(header))]
        for cells, row in zip(body, rows):
            detail = _detail(row)
            detail = detail[len("drift: "):] if detail.startswith("drift: ") else (detail or "in sync")
            cells = cells + [detail]
            lines.append("| %s |" % " | ".join(_one_line(cell.replace("|", "\\|"), "<br>") for cell in cells))
        return "\n".join(lines) + "\n\n" + LEGEND.replace("; the line below says what", "") + "\n"
    header = [title for title, _key in COLUMNS] + ["state"]
    states = ["error" if row.get("error") else ("drift" if row.get("drift") else "in sync") for row in rows]
    table = [header] + [cells + [state] for cells, state in zip(body, states)]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(table[0], widths)).rstrip()]
    for cells, row in zip(table[1:], rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip())
        lines += _wrap(_one_line(_detail(row), " / "), "    ")
    return "\n".join(lines + [""] + _wrap(LEGEND, "")) + "\n"


class FilterModule:
    def filters(self):
        return {"fleet_report": fleet_report}
