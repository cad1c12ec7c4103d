# -*- coding: utf-8 -*-
# Copyright: selfhost.bitwarden contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE and for internal collection use only: its interface may change at any time.
"""The real cause of a failed license sync, from the api log on the Bitwarden host (contract 3.4 and 11).

The server answers every cloud-side failure with one generic 400 and writes the reason to its Serilog file log under
``/etc/bitwarden/logs`` (``bwdata/logs/api`` on a standard host). File names and line layouts by server version
(server src/Libraries/SerilogFileLogging/LoggerFactoryExtensions.cs, formerly src/Core/Utilities/):

* since 2025.12.0: ``Api/<yyyyMMdd>.txt`` (``Api/log-<yyyyMMdd>.txt`` with logRollBySizeLimit, ``_001``... when a
  file cannot be opened), lines ``{Timestamp:o} {RequestId,13} [{Level:u3}] {Message} ({EventId:x8})``;
* before: the same dated names (RollingFile, ``{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} [{Level}] {Message}``), or with
  logRollBySizeLimit ``Api/log.txt``, ``log_001.txt``... (Serilog.Sinks.File, ``[{Level:u3}] {Message:lj}``).

``{Message}`` writes string values in double quotes (``\\"`` inside), ``{Message:lj}`` bare; a value that ends with a
line break (the cloud's ErrorResponse) pushes the closing quote and the event id onto the next line.
"""

from __future__ import annotations

import collections
import datetime
import os
import re

from urllib.parse import urlsplit

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _env_file, _regions
from ansible_collections.selfhost.bitwarden.plugins.module_utils._bitwarden_api import parse_timestamp

TAIL_BYTES = 512 * 1024
REGION_KEY = _regions.CLOUD_REGION
IDENTITY_KEY = _regions.IDENTITY_URI
SPONSORSHIP_JOB = "SelfHostedSponsorshipSyncJob"

# {Timestamp:o} {RequestId,13} [{Level:u3}] ... | {Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} [{Level}] ...
_HEADER = re.compile(r"^(?:(\d{4}-\d\d-\d\dT\S+) +(?:(\S+) +)?|(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [+-]\d\d:\d\d) )"
                     r"\[([A-Za-z]+)\] ?(.*)$")
_EVENT_ID = re.compile(r" ?\(([0-9a-f]{8})\)$")
_LEVELS = {"Verbose": "VRB", "Debug": "DBG", "Information": "INF", "Warning": "WRN", "Error": "ERR", "Fatal": "FTL"}
# A rendered value: a Serilog quoted string (group 1, escaped) or, under :lj, the bare text (group 2).
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_CLOUD_REQUEST = re.compile(r"^Request to (?:%s|(\S+)) is unsuccessful with status of (\w+)-(?:%s|([^:\n]*))(?:: (.*))?$"
                            % (_QUOTED, _QUOTED), re.S)
_TOKEN_REJECTED = re.compile(r"^Unsuccessful token response from (\S+) for client (?:%s|(\S+)) with status (\w+)-(?:%s|(.*))$"
                             % (_QUOTED, _QUOTED), re.S)
_JOB = re.compile(r'^(Starting|Finished) job (?:"%s"|%s) at ' % (SPONSORSHIP_JOB, SPONSORSHIP_JOB))
_SPONSORSHIP_FAILED = re.compile(r"^Sponsorship sync for organization (?:%s|(.*)) Failed$" % _QUOTED, re.S)
_NO_SPONSORSHIPS = re.compile(r"^No existing sponsorships to sync for organization ([0-9a-fA-F-]{36})$")
# Public: bitwarden_license_sync tells a rate-limited sync (waited out and retried) from every other cause by it.
RATE_LIMITING = "the cloud is rate limiting this server's address"
_RATE_LIMITED = (RATE_LIMITING + " (%s answered %s): the cloud allows few requests "
                 "per client IP (token requests: 10 a minute). Wait a minute or more and retry; do not sync many "
                 "servers behind one address at once")
_UNREACHABLE = ("Unable to authenticate with identity server", "Empty token response from", "Failed to send to")
# Api/<yyyyMMdd>.txt, Api/log-<yyyyMMdd>.txt, Api/log.txt and their _NNN rolls; Lite: api-<yyyyMMdd>.log, api.log, ...
_FILE = re.compile(r"^(?:(log|api)[-_]?)?(\d{8})?(?:_(\d{3,}))?\.(?:txt|log)$")


def unquote(value):
    """A Serilog-quoted string's text."""
    return re.sub(r'\\(.)', r"\1", value)


def _pick(quoted, bare):
    return unquote(quoted) if quoted is not None else (bare or "")


def log_directory(bwdata_path):
    """The directory the api writes under on a standard host (its /etc/bitwarden/logs)."""
    return os.path.join(bwdata_path, "logs", "api")


# directory: where the api's /etc/bitwarden/logs is on this host (None: not found); where: what to tell the user;
# problem: why it cannot be read (None: readable).
# env_file: the server's env file (cloudRegion, identityUri).
Location = collections.namedtuple("Location", "directory where problem env_file")
BECOME = "run the module on the Bitwarden host as root (become: true)"
_COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def argument_spec():
    """Options of the ``selfhost.bitwarden.api_log`` doc fragment."""
    return dict(deployment=dict(type="str", choices=["standard", "lite"]), compose_dir=dict(type="path"),
                docker_command=dict(type="str", default="docker"))


def _problem(directory):
    if not os.path.isdir(directory):
        return "%s does not exist on this host: run the module on the Bitwarden host with bwdata_path set" % directory
    if not os.access(directory, os.R_OK | os.X_OK):
        return "%s is not readable by this user: %s" % (directory, BECOME)
    return None


def compose_project(compose_dir, compose_file):
    """docker compose's project name: the file's top-level ``name``, COMPOSE_PROJECT_NAME in ``.env``, or the
    directory's name, lower-cased without the characters compose drops."""
    try:
        with open(compose_file) as handle:
            found = re.search(r"^name:\s*[\"']?([^\"'#\s]+)", handle.read(), re.M)
    except (IOError, OSError):
        found = None
    name = found.group(1) if found else None
    if not name:
        try:
            with open(os.path.join(compose_dir, ".env")) as handle:
                values = _env_file.values(handle.read(), "COMPOSE_PROJECT_NAME")
            name = values[-1] if values else None
        except (IOError, OSError):
            name = None
    name = name or os.path.basename(os.path.normpath(compose_dir))
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


def _lite_location(module, compose_dir, compose_file):
    volume = "%s_bitwarden" % compose_project(compose_dir, compose_file)
    where = "/etc/bitwarden/logs/api-<yyyyMMdd>.log in the docker volume %s" % volume
    docker = module.params["docker_command"]
    try:
        rc, out, err = module.run_command([docker, "volume", "inspect", "--format", "{{ .Mountpoint }}", volume],
                                          cwd=compose_dir, handle_exceptions=False)
    except (IOError, OSError) as exc:
        rc, out, err = 127, "", str(exc)
    mountpoint = out.strip()
    env_file = os.path.join(compose_dir, "settings.env")
    if rc != 0 or not mountpoint:
        return Location(None, where, "`%s volume inspect %s` failed (%s): %s" % (docker, volume, (err or out).strip(), BECOME),
                        env_file)
    directory = os.path.join(mountpoint, "logs")
    return Location(directory, "%s/api-<yyyyMMdd>.log (%s)" % (directory, where), _problem(directory), env_file)


def locate(module):
    """Where the server's api log is on this host (standard: bwdata; Lite: its ``bitwarden`` volume)."""
    params = module.params
    bwdata = params["bwdata_path"]
    compose_dir = params.get("compose_dir") or os.path.dirname(os.path.normpath(bwdata))
    compose_file = next((os.path.join(compose_dir, name) for name in _COMPOSE_FILES
                         if os.path.isfile(os.path.join(compose_dir, name))), None)
    deployment = params.get("deployment")
    if deployment is None:
        deployment = "lite" if compose_file and not os.path.isfile(os.path.join(bwdata, "config.yml")) else "standard"
    if deployment == "lite":
        if compose_file is None:
            return Location(None, "the Bitwarden Lite volume's /etc/bitwarden/logs",
                            "%s holds no docker-compose.yml: set compose_dir to Bitwarden Lite's directory" % compose_dir,
                            None)
        return _lite_location(module, compose_dir, compose_file)
    directory = log_directory(bwdata)
    return Location(directory, "%s/Api/<yyyyMMdd>.txt or log-<yyyyMMdd>.txt" % directory, _problem(directory),
                    os.path.join(bwdata, "env", "global.override.env"))


def log_files(directory, since, now=None):
    """The api's log files that can hold lines written from ``since`` to now, oldest first: the day files of those
    UTC and local dates (the container clock may be either) and the undated size-rolled files, each with its
    ``_NNN`` continuations."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    days, moment = set(), since
    while True:
        days.add(moment.astimezone(datetime.timezone.utc).strftime("%Y%m%d"))
        days.add(moment.astimezone().strftime("%Y%m%d"))
        if moment >= now:
            break
        moment = min(now, moment + datetime.timedelta(hours=12))
    found = []
    for folder in (os.path.join(directory, "Api"), directory):
        try:
            names = os.listdir(folder)
        except (IOError, OSError):
            continue
        for name in names:
            match = _FILE.match(name)
            prefix, day, sequence = match.groups() if match else (None, None, None)
            if not match or (day and day not in days) or (prefix == "api") != (folder == directory):
                continue
            found.append((day or "", int(sequence or 0), os.path.join(folder, name)))
    return [path for dummy, dummy2, path in sorted(found)]


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


def _new_entry(match):
    layout_o = match.group(1) is not None
    stamp = parse_timestamp(match.group(1) if layout_o else match.group(3).replace(" ", "T", 1).replace(" ", ""))
    if stamp is None:
        return None
    level = match.group(4)
    return {"time": stamp, "level": _LEVELS.get(level, level.upper()[:3]), "lines": [match.group(5)],
            "event_id": layout_o}


def _finish(entry):
    """Split an entry's lines into the message (up to the ``(eventid)`` that ends it) and the exception lines."""
    lines = entry.pop("lines")
    message_lines = 1
    if entry.pop("event_id"):
        for index, line in enumerate(lines):
            if _EVENT_ID.search(line):
                message_lines = index + 1
                break
    text = "\n".join(lines[:message_lines])
    entry["message"] = _EVENT_ID.sub("", text) if message_lines > 1 or _EVENT_ID.search(text) else text
    entry["detail"] = [line.strip() for line in lines[message_lines:] if line.strip()]
    entry["text"] = "\n".join([entry["message"]] + lines[message_lines:]).rstrip()
    return entry


def parse_entries(text):
    """Log entries as dicts: time, level (u3), message (the rendered message, line breaks inside values kept),
    detail (exception lines) and text (message and detail as written)."""
    entries = []
    for line in text.splitlines():
        match = _HEADER.match(line)
        entry = _new_entry(match) if match else None
        if entry is not None:
            entries.append(entry)
        elif entries:
            entries[-1]["lines"].append(line)
    return [_finish(entry) for entry in entries]


def read_entries_since(directory, since):
    """Entries written at or after ``since`` (aware datetime), oldest first; [] when no log is readable."""
    entries = []
    for path in log_files(directory, since):
        try:
            text = _read_tail(path)
        except (IOError, OSError):
            continue
        entries.extend(entry for entry in parse_entries(text) if entry["time"] >= since)
    entries.sort(key=lambda entry: entry["time"])
    return entries


def read_env_settings(env_file):
    """cloudRegion and identityUri from the server's env file (``bwdata/env/global.override.env``, Lite's
    ``settings.env``); None when the file is unreadable.

    Only these keys are taken: the file also holds the installation key and the database password.
    """
    try:
        with open(env_file, "r") as handle:
            text = handle.read()
    except (IOError, OSError):
        return None
    settings = {"file": os.path.basename(env_file)}
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
    return ("region mismatch: the installation belongs to the %s region (%s=%s in %s, the region "
            "chosen when its id and key were retrieved) but the server sent it to the %s identity server %s "
            "(%s is %s). Set the %s URIs (selfhost.bitwarden.bitwarden_cloud_comm with region %s) and restart "
            "the server"
            % (installation_region, REGION_KEY, settings.get(REGION_KEY), settings["file"], target_region, identity, IDENTITY_KEY,
               configured if configured else "not set, so the default %s applies" % _regions.effective(IDENTITY_KEY, None),
               installation_region, installation_region))


def _cloud_message_cause(url, status, reason, message):
    """What the cloud's answer ``status``-``reason`` with ``message`` (None before server 2026.6.0, which logs no
    message) means."""
    text = (message or "").strip()
    lowered = text.lower()
    answer = "%s-%s" % (status, reason)
    if status == "TooManyRequests":
        return _RATE_LIMITED % (url, answer)
    if "invalid billing sync key" in lowered:
        return ("the cloud rejected the billing sync token (Invalid Billing Sync Key): generate a new token in the "
                "cloud web vault (Admin Console > Billing > Subscription > Set up billing sync) and apply it with "
                "selfhost.bitwarden.bitwarden_billing_sync_token")
    if "invalid installation id" in lowered:
        return ("the cloud does not accept this server's installation id (Invalid installation id): it is unknown or "
                "disabled in that region; check globalSettings__installation__id/key against the installation you "
                "retrieved from bitwarden.com/host (or bitwarden.eu/host)")
    if status == "NotFound" and "/licenses/organization/" in url.lower():
        # The cloud throws "Organization not found." but its exception filter sends "Resource not found." (contract 10).
        return ("the cloud has no organization with the license's id at %s (%s: %s): the license belongs to an "
                "organization of another region, or it was deleted" % (url, answer, text or "no message logged"))
    if "invalid license key" in lowered:
        return ("the cloud rejected the organization's license key (Invalid license key.): download the license of "
                "the cloud organization again and upload it to this server")
    if "no active subscription" in lowered:
        return ("the cloud organization has no active subscription (No active subscription found.): renew or "
                "reactivate it in the cloud web vault (Admin Console > Billing > Subscription), then sync again")
    if "payment issue" in lowered:
        return ("the cloud will not issue a license while the subscription is unpaid (%s): update the billing "
                "information in the cloud web vault (Admin Console > Billing > Payment method) or contact Bitwarden "
                "support, then sync again" % text)
    if "invalid organization" in lowered:
        return ("the cloud has no organization with the billing sync connection's cloud organization id (Invalid "
                "organization, %s): apply the billing sync token of the cloud organization this server's license "
                "belongs to (selfhost.bitwarden.bitwarden_billing_sync_token)" % url)
    if status == "InternalServerError" and "/licenses/organization/" in url.lower():
        # ValidateBillingSyncKeyCommand dereferences the organization's BillingSync key, which is missing until an owner
        # generates one: a null reference, answered as a 500 (ExceptionHandlerFilterAttribute).
        return ("the cloud failed with an internal error at %s (%s: %s). It answers this when the cloud organization "
                "never generated a billing sync token: generate one in the cloud web vault (Admin Console > Billing > "
                "Subscription > Set up billing sync), apply it with selfhost.bitwarden.bitwarden_billing_sync_token "
                "and sync again" % (url, answer, text or "no message logged"))
    if message is None:
        return ("the cloud refused the request to %s (%s); this server version does not log the cloud's reason (it "
                "does since 2026.6.0). The usual causes: a wrong billing sync token (generate a new one in the cloud "
                "web vault and apply it with selfhost.bitwarden.bitwarden_billing_sync_token), a license of another "
                "organization or region, an installation id unknown in that region, or no active subscription"
                % (url, answer))
    return "the cloud answered %s to %s: %s" % (answer, url, text)


def _quoted_message(rest):
    """The cloud's ErrorResponse text from what follows ``: `` (quoted under {Message}, bare under {Message:lj})."""
    if rest is None:
        return None
    match = re.match(_QUOTED, rest, re.S)
    text = unquote(match.group(1)) if match else rest
    return text.split("\n")[0]


def sponsorship_job_runs(directory, since):
    """Runs of the sponsorship sync job logged since ``since``, oldest first, or None when the log is unreadable.

    JobListener writes "Starting job <name> at ..." / "Finished job <name> at ..." (with the filter-bypassing event
    id), the job "Sponsorship sync for organization <name> Failed" with the exception for an organization it could
    not sync, and the sync command "No existing sponsorships to sync for organization <guid>" (server
    src/Core/Jobs/JobListener.cs, src/Api/Jobs/SelfHostedSponsorshipSyncJob.cs, SelfHostedSyncSponsorshipsCommand.cs).
    Each run is a dict: ``started``, ``finished`` (None while it runs), ``failed`` (bool), ``message`` (the first
    exception line of a failure), ``no_sponsorships`` (bool).
    """
    folder = os.path.join(directory, "Api")
    for path in (directory, folder):
        if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
            return None
    if any(not os.access(path, os.R_OK) for path in log_files(directory, since)):
        return None
    runs, seen = [], []
    for entry in read_entries_since(directory, since):
        message = entry["message"]
        job = _JOB.match(message)
        if job and job.group(1) == "Starting":
            runs.append({"started": entry["time"], "finished": None, "failed": False, "message": None,
                         "no_sponsorships": False})
            seen = []
        elif not runs:
            continue
        elif job:
            runs[-1]["finished"] = entry["time"]
        elif _SPONSORSHIP_FAILED.match(message):
            # The job's exception says only "Organization sync failed" when the cloud call failed: the lines of that
            # call say why.
            runs[-1]["failed"] = True
            runs[-1]["message"] = _decode(seen) or (entry["detail"][0] if entry["detail"] else message)
            seen = []
        elif _NO_SPONSORSHIPS.match(message):
            runs[-1]["no_sponsorships"] = True
        else:
            seen.append(entry)
    return runs


def sponsorship_job_outcome(directory, since):
    """The last finished run of the sponsorship sync job since ``since``: a dict with ``outcome`` ``ok``, ``failed``
    (``message`` holds the server's exception line) or ``no_sponsorships``, and ``finished``; ``outcome`` ``not_seen``
    when no run finished; None when the log cannot be read."""
    runs = sponsorship_job_runs(directory, since)
    if runs is None:
        return None
    finished = [run for run in runs if run["finished"]]
    if not finished:
        return {"outcome": "not_seen", "finished": None, "message": None}
    last = finished[-1]
    outcome = "failed" if last["failed"] else ("no_sponsorships" if last["no_sponsorships"] else "ok")
    return {"outcome": outcome, "finished": last["finished"], "message": last["message"]}


def _cloud_refusal(entry):
    match = _CLOUD_REQUEST.match(entry["message"])
    if not match:
        return None
    url = _pick(match.group(1), match.group(2))
    return _cloud_message_cause(url, match.group(3), _pick(match.group(4), match.group(5)), _quoted_message(match.group(6)))


def _token_refusal(entry, settings):
    match = _TOKEN_REJECTED.match(entry["message"])
    if not match:
        return None
    identity, client, status = match.group(1), _pick(match.group(2), match.group(3)), match.group(4)
    answer = "%s-%s" % (status, _pick(match.group(5), match.group(6)))
    if status == "TooManyRequests":
        return _RATE_LIMITED % (identity, answer)
    return _region_mismatch(identity, settings) or (
        "the identity server %s rejected %s (%s): the installation id or key is wrong, or the installation belongs to "
        "the other region (bitwarden.com is US, bitwarden.eu is EU)" % (identity, client, answer))


def _unreachable(entry):
    if not entry["message"].startswith(_UNREACHABLE):
        return None
    reason = next((line for line in entry["detail"] if line), entry["message"])
    if "HttpClient.Timeout" in reason or reason.startswith("System.Threading.Tasks.TaskCanceledException"):
        # dropped packets: no error, only the HttpClient's own timeout (100 s by default)
        reason = "timed out: %s" % reason.split(": ", 1)[-1]
    return ("the server cannot reach the Bitwarden cloud (%s): the api container needs outbound HTTPS to "
            "identity.bitwarden.com and api.bitwarden.com (.eu for EU); check DNS, firewall and proxy" % reason)


def _decode(entries, settings=None):
    """The newest cause among ``entries``: a cloud refusal first, then a refused token, then an unreachable cloud."""
    # an unreachable cloud: the entry with the exception (its first line is the cause) before the "Empty token
    # response" without one that follows it (sorted is stable: time order within each)
    with_detail_last = sorted(entries, key=lambda entry: bool(entry["detail"]))
    for decoder, ordered in ((_cloud_refusal, entries), (lambda entry: _token_refusal(entry, settings), entries),
                             (_unreachable, with_detail_last)):
        for entry in reversed(ordered):
            cause = decoder(entry)
            if cause:
                return cause
    return None


def explain_license_sync_failure(directory, since, settings=None):
    """The newest cause of a failed license sync in the api log under ``directory`` since ``since``, or None when
    none is found; ``settings`` (read_env_settings) tells a region mismatch from a wrong key."""
    return _decode(read_entries_since(directory, since), settings)
