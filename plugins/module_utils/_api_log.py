# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""The real cause of a failed license sync, from the api log on the Bitwarden host (contract 3.4).

The server answers every cloud-side failure with one generic 400 and writes the reason to
``bwdata/logs/api/Api/<yyyyMMdd>.txt``. Lines have the Serilog file default layout
``{Timestamp:o} {RequestId,13} [{Level:u3}] {Message} ({EventId:x8})`` followed by exception lines.
"""

from __future__ import annotations

import datetime
import os
import re

from urllib.parse import urlsplit

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _env_file, _regions
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import parse_timestamp

TAIL_BYTES = 512 * 1024
REGION_KEY = _regions.CLOUD_REGION
IDENTITY_KEY = _regions.IDENTITY_URI

_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+)\s+(?:(\S+)\s+)?\[([A-Z]{3})\]\s?(.*)$")
_EVENT_ID = re.compile(r"\s*\([0-9a-f]{8}\)\s*$")
_EVENT_ID_LINE = re.compile(r"^\([0-9a-f]{8}\)$")
_CLOUD_REQUEST = re.compile(r"Request to (\S+) is unsuccessful with status of ([^:]+?): (.*)$", re.S)
_TOKEN_REJECTED = re.compile(r"Unsuccessful token response from (\S+) for client (installation\.\S+) with status (\S+)")
SPONSORSHIP_JOB = "SelfHostedSponsorshipSyncJob"
_UNREACHABLE = ("Unable to authenticate with identity server", "Empty token response from", "Failed to send to")


def log_paths(bwdata_path, since, now=None):
    """The day files that can hold lines written from ``since`` to now (UTC and local dates), plus log.txt."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    days = set()
    for moment in (since, now):
        days.add(moment.astimezone(datetime.timezone.utc).strftime("%Y%m%d"))
        days.add(moment.astimezone().strftime("%Y%m%d"))
    directory = os.path.join(bwdata_path, "logs", "api", "Api")
    return [os.path.join(directory, "%s.txt" % day) for day in sorted(days)] + [os.path.join(directory, "log.txt")]


def _read_tail(path):
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - TAIL_BYTES))
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    if size > TAIL_BYTES:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return text


def parse_entries(text):
    """Log entries as dicts (time, level, message, detail); continuation lines join their entry."""
    entries = []
    for line in text.splitlines():
        match = _LINE.match(line)
        stamp = parse_timestamp(match.group(1)) if match else None
        if stamp is not None:
            entries.append({"time": stamp, "level": match.group(3), "message": match.group(4), "detail": []})
        elif entries and line.strip():
            entries[-1]["detail"].append(line.strip())
    for entry in entries:
        # A message that ends with a line break pushes "(eventid)" onto the next line.
        if entry["detail"] and _EVENT_ID_LINE.match(entry["detail"][0]):
            entry["detail"].pop(0)
        entry["message"] = _EVENT_ID.sub("", entry["message"]).strip()
    return entries


def read_entries_since(bwdata_path, since):
    """Entries written at or after ``since`` (aware datetime), oldest first; [] when no log is readable."""
    entries = []
    for path in log_paths(bwdata_path, since):
        try:
            text = _read_tail(path)
        except (IOError, OSError):
            continue
        entries.extend(entry for entry in parse_entries(text) if entry["time"] >= since)
    entries.sort(key=lambda entry: entry["time"])
    return entries


def read_env_settings(bwdata_path):
    """cloudRegion and identityUri from ``bwdata/env/global.override.env`` (None when the file is unreadable).

    Only these keys are taken: the file also holds the installation key and the database password.
    """
    try:
        with open(os.path.join(bwdata_path, "env", "global.override.env"), "r") as handle:
            text = handle.read()
    except (IOError, OSError):
        return None
    settings = {}
    for key in (REGION_KEY, IDENTITY_KEY):
        found = _env_file.values(text, key)
        settings[key] = found[-1] if found else None
    return settings


def region_of(identity_url):
    """The region whose identity server ``identity_url`` is, or None."""
    host = urlsplit(identity_url or "").hostname
    for region, settings in _regions.REGIONS.items():
        if host and urlsplit(settings[IDENTITY_KEY]).hostname == host:
            return region
    return None


def _region_mismatch(identity, settings):
    """A message when the installation's region (cloudRegion) and the identity server it is sent to differ."""
    if settings is None:
        return None
    installation_region = (settings.get(REGION_KEY) or "").upper() or None
    target_region = region_of(identity)
    if not installation_region or not target_region or installation_region == target_region:
        return None
    configured = settings.get(IDENTITY_KEY)
    return ("region mismatch: the installation belongs to the %s region (%s=%s in global.override.env, the region "
            "chosen when its id and key were retrieved) but the server sent it to the %s identity server %s "
            "(%s is %s). Set the %s URIs (selfhost.bitwarden.bitwarden_cloud_comm with region %s) and restart "
            "the server"
            % (installation_region, REGION_KEY, settings.get(REGION_KEY), target_region, identity, IDENTITY_KEY,
               configured if configured else "not set, so the default %s applies" % _regions.effective(IDENTITY_KEY, None),
               installation_region, installation_region))


def _cloud_message_cause(url, status, message):
    text = message.strip()
    lowered = text.lower()
    if "invalid billing sync key" in lowered:
        return ("the cloud rejected the billing sync token (Invalid Billing Sync Key): generate a new token in the "
                "cloud web vault (Admin Console > Billing > Subscription > Set up billing sync) and apply it with "
                "selfhost.bitwarden.bitwarden_billing_sync_token")
    if "invalid installation id" in lowered:
        return ("the cloud does not accept this server's installation id (Invalid installation id): it is unknown or "
                "disabled in that region; check globalSettings__installation__id/key against the installation you "
                "retrieved from bitwarden.com/host (or bitwarden.eu/host)")
    if status.startswith("NotFound") and "/licenses/organization/" in url.lower():
        # The cloud throws "Organization not found." but its exception filter sends "Resource not found." (contract 10).
        return ("the cloud has no organization with the license's id at %s (%s: %s): the license belongs to an "
                "organization of another region, or it was deleted" % (url, status, text))
    if "invalid license key" in lowered:
        return ("the cloud rejected the organization's license key (Invalid license key.): download the license of "
                "the cloud organization again and upload it to this server")
    if "no active subscription" in lowered:
        return "the cloud organization has no active subscription (No active subscription found.): renew it first"
    return "the cloud answered %s to %s: %s" % (status, url, text)


def sponsorship_job_runs(bwdata_path, since):
    """Runs of the sponsorship sync job logged since ``since``, oldest first, or None when the log is unreadable.

    JobListener writes "Starting job <name> at ..." / "Finished job <name> at ..." with the filter-bypassing event id,
    and the job logs "Sponsorship sync for organization <name> Failed" for an organization it could not sync
    (server src/Core/Jobs/JobListener.cs, src/Api/Jobs/SelfHostedSponsorshipSyncJob.cs).
    Each run is a dict: ``finished`` (datetime or None while it runs), ``failed`` (bool).
    """
    directory = os.path.join(bwdata_path, "logs", "api", "Api")
    if os.path.isdir(directory) and not os.access(directory, os.R_OK | os.X_OK):
        return None
    if any(os.path.exists(path) and not os.access(path, os.R_OK) for path in log_paths(bwdata_path, since)):
        return None
    runs = []
    for entry in read_entries_since(bwdata_path, since):
        message = entry["message"]
        if message.startswith("Starting job %s " % SPONSORSHIP_JOB):
            runs.append({"finished": None, "failed": False})
        elif runs and message.startswith("Sponsorship sync for organization ") and message.endswith(" Failed"):
            runs[-1]["failed"] = True
        elif runs and message.startswith("Finished job %s " % SPONSORSHIP_JOB):
            runs[-1]["finished"] = entry["time"]
    return runs


def explain_license_sync_failure(bwdata_path, since):
    """The newest cause of a failed license sync in the api log since ``since``, or None when none is found."""
    entries = read_entries_since(bwdata_path, since)
    for entry in reversed(entries):
        match = _CLOUD_REQUEST.search(entry["message"] + ("\n" + "\n".join(entry["detail"]) if entry["detail"] else ""))
        if match:
            url, status, message = match.groups()
            return _cloud_message_cause(url, status, message.split("\n")[0] if message.strip() else status)
    for entry in reversed(entries):
        match = _TOKEN_REJECTED.search(entry["message"])
        if match:
            identity, client, status = match.groups()
            mismatch = _region_mismatch(identity, read_env_settings(bwdata_path))
            if mismatch:
                return mismatch
            return ("the identity server %s rejected %s (%s): the installation id or key in global.override.env is "
                    "wrong, or the installation belongs to the other region (bitwarden.com is US, bitwarden.eu is EU)"
                    % (identity, client, status))
    for entry in reversed(entries):
        if entry["message"].startswith(_UNREACHABLE):
            reason = next((line for line in entry["detail"] if line), entry["message"])
            return ("the server cannot reach the Bitwarden cloud (%s): the api container needs outbound HTTPS to "
                    "identity.bitwarden.com and api.bitwarden.com (.eu for EU); check DNS, firewall and proxy"
                    % reason)
    return None
