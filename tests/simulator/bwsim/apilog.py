"""The api's Serilog file log, rendered as the real server writes it (contract 3.4 and 11).

Where and how, by version (server src/Libraries/SerilogFileLogging/LoggerFactoryExtensions.cs, formerly
src/Core/Utilities/LoggerFactoryExtensions.cs), under globalSettings__logDirectory (/etc/bitwarden/logs: bwdata/logs/api
on a standard host, the `bitwarden` volume's logs/ on Lite):

* since 2025.12.0, Serilog.Extensions.Logging.File 3.0.0 (RollingFile sink, `{Date}` appended when the name has none):
  `{Timestamp:o} {RequestId,13} [{Level:u3}] {Message} ({EventId:x8})`, EventId = a hash of the message template;
  files `Api/<yyyyMMdd>.txt`, with logRollBySizeLimit `Api/log-<yyyyMMdd>.txt`; without logDirectoryByProject
  `api_<yyyyMMdd>.log` / `api-<yyyyMMdd>.log` (Lite sets both, bitwarden-lite/Dockerfile).
* before: Serilog.Sinks.RollingFile 3.3.0 `{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} [{Level}] {Message}` to the dated
  files, or, with logRollBySizeLimit, Serilog.Sinks.File 5.0.0 `... [{Level:u3}] {Message:lj}` (strings NOT quoted) to
  `Api/log.txt` / `api.log` (`_001`... past the size limit).

`{Message}` quotes string values (inner `"` as `\\"`); Uri, enum, Guid, number and date values are bare (`Bare`).
"""

import datetime
import os
import secrets
import threading

CONN_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
NEW_LAYOUT_SINCE = (2025, 12, 0)  # server fdfec0ac4d "Remove deprecated logging methods"
CLOUD_MESSAGE_SINCE = (2026, 6, 0)  # server 750b2219b5: the cloud's ErrorResponse joins "Request to ..." lines
LEVELS = {"VRB": "Verbose", "DBG": "Debug", "INF": "Information", "WRN": "Warning", "ERR": "Error", "FTL": "Fatal"}

# The templates the simulator logs, verbatim from upstream (file named in tests/vectors/api_log.yml).
TOKEN_UNSUCCESSFUL = "Unsuccessful token response from {identity} for client {clientId} with status {code}-{reason}"
TOKEN_EMPTY = "Empty token response from {identity} for client {clientId}"
AUTH_FAILED = "Unable to authenticate with identity server."
NO_TOKEN = "Unable to send {Method} request to {RequestUri} because an access token was unable to be obtained"
REQUEST_UNSUCCESSFUL = "Request to {Url} is unsuccessful with status of {Code}-{Reason}: {Message}"
# before 2026.6.0
NO_TOKEN_OLD = "Unable to send {method} request to {requestUri} because an access token was unable to be obtained"
REQUEST_UNSUCCESSFUL_OLD = "Request to {url} is unsuccessful with status of {code}-{reason}"
SEND_FAILED = "Failed to send to {0}."
JOB_STARTING = "Starting job {0} at {1}."
JOB_FINISHED = "Finished job {0} at {1}."
SPONSORSHIP_FAILED = "Sponsorship sync for organization {OrganizationName} Failed"
NO_SPONSORSHIPS = "No existing sponsorships to sync for organization {organizationId}"


class Bare(str):
    """A value Serilog renders without quotes: Uri, enum (HttpStatusCode), Guid, number."""


def error_response(message, validation_errors=None):
    """BaseIdentityClientService.ErrorResponse.ToString(): AppendLine after the message, so it ends with a line break."""
    text = (message or "Unknown error") + "\n"
    if validation_errors:
        text += "Validation Errors:\n" + "".join(f"{key}: {', '.join(values)}\n" for key, values in validation_errors.items())
    return text


def dotnet_date(moment):
    """A DateTime property under the invariant culture (the containers set no LANG): MM/dd/yyyy HH:mm:ss."""
    return Bare(moment.strftime("%m/%d/%Y %H:%M:%S"))


def event_id(template):
    """Serilog.Formatting.Compact EventIdHash.Compute: Jenkins one-at-a-time over the template's UTF-16 units."""
    value = 0
    data = template.encode("utf-16-le")
    for index in range(0, len(data), 2):
        value = (value + (data[index] | data[index + 1] << 8)) & 0xFFFFFFFF
        value = (value + (value << 10)) & 0xFFFFFFFF
        value ^= value >> 6
    value = (value + (value << 3)) & 0xFFFFFFFF
    value ^= value >> 11
    return (value + (value << 15)) & 0xFFFFFFFF


def _value(value, literal):
    if isinstance(value, Bare) or not isinstance(value, str) or literal:
        return str(value)
    return '"' + value.replace('"', '\\"') + '"'


def render(template, args, literal=False):
    """The message of ``template`` with its holes ({Name} in order, {0} by index) filled as `{Message}` does
    (``literal``: as `{Message:lj}` does, strings bare)."""
    out, position, index = [], 0, 0
    while True:
        start = template.find("{", position)
        if start < 0:
            out.append(template[position:])
            return "".join(out)
        end = template.index("}", start)
        name = template[start + 1:end]
        slot = int(name) if name.isdigit() else index
        index += 0 if name.isdigit() else 1
        out.append(template[position:start] + _value(args[slot], literal))
        position = end + 1


def format_entry(layout, now, level, template, args, request_id="", exception=None):
    """One entry as ``layout`` (file_layout) writes it."""
    if layout == "extensions-file":
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"
        text = f"{stamp} {request_id:>13} [{level}] {render(template, args)} ({event_id(template):08x})\n"
    else:
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d} +00:00"
        shown = LEVELS[level] if layout == "rollingfile" else level
        text = f"{stamp} [{shown}] {render(template, args, literal=layout == 'file')}\n"
    if exception:
        text += exception.rstrip("\n") + "\n"
    return text


def new_connection_id():
    """Kestrel connection ids look like 0HN8ABCDEF1GH."""
    return "0H" + "".join(secrets.choice(CONN_ID_CHARS) for dummy in range(11))


def _setting(env, name):
    """A globalSettings value from the container environment (configuration keys are case-insensitive)."""
    found = None
    for key, value in env.items():
        if key.replace("__", ":").lower() == f"globalsettings:{name.lower()}":
            found = value
    return found


def file_layout(version, env, project="Api"):
    """(file name pattern relative to the log directory, layout) for a server ``version`` with container ``env``."""
    by_project = (_setting(env, "logDirectoryByProject") or "true").strip().lower() != "false"
    roll_by_size = bool((_setting(env, "logRollBySizeLimit") or "").strip())
    if tuple(version) >= NEW_LAYOUT_SINCE:
        if by_project:
            name = os.path.join(project, "log-{date}.txt" if roll_by_size else "{date}.txt")
        else:
            name = project.lower() + ("-{date}.log" if roll_by_size else "_{date}.log")
        return name, "extensions-file"
    if roll_by_size:
        return (os.path.join(project, "log.txt") if by_project else project.lower() + ".log"), "file"
    return (os.path.join(project, "{date}.txt") if by_project else project.lower() + "_{date}.log"), "rollingfile"


class ApiLog:
    """Appends entries to the api's log under ``root`` (the directory mounted at /etc/bitwarden/logs)."""

    def __init__(self, root, version, env=None):
        self.root = root
        self.version = tuple(version)
        self._lock = threading.Lock()
        self.configure(env or {})

    def configure(self, env):
        """At api start: where and how this version with this environment logs."""
        with self._lock:
            self.pattern, self.layout = file_layout(self.version, env)

    def path(self, now=None):
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return os.path.join(self.root, self.pattern.format(date=now.strftime("%Y%m%d")))

    def write(self, level, template, args=(), request_id="", exception=None, bypass=False):
        """One entry; before 2025.12.0 the Api's filter let only errors (ApiLogLevelSettings.Default) and the
        JobListener's lines (``bypass``: Constants.BypassFiltersEventId) through."""
        if self.layout != "extensions-file" and level in ("VRB", "DBG", "INF", "WRN") and not bypass:
            return
        now = datetime.datetime.now(datetime.timezone.utc)
        with self._lock:
            text = format_entry(self.layout, now, level, template, args, request_id, exception)
            path = self.path(now)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text)

    def error(self, template, args=(), request_id="", exception=None):
        self.write("ERR", template, args, request_id, exception)

    def info(self, template, args=(), request_id="", bypass=False):
        self.write("INF", template, args, request_id, bypass=bypass)

    # BaseIdentityClientService.SendAsync's two failure lines changed in 2026.6.0.
    def no_token(self, method, url, request_id):
        template = NO_TOKEN if self.version >= CLOUD_MESSAGE_SINCE else NO_TOKEN_OLD
        self.error(template, (method, url), request_id)

    def request_unsuccessful(self, url, status_name, reason, message, request_id):
        if self.version >= CLOUD_MESSAGE_SINCE:
            self.error(REQUEST_UNSUCCESSFUL, (url, Bare(status_name), reason, error_response(message)), request_id)
        else:
            self.error(REQUEST_UNSUCCESSFUL_OLD, (url, Bare(status_name), reason), request_id)
