"""The api container's Serilog file log, bwdata/logs/api/Api/<yyyyMMdd>.txt (contract 3.4)."""

import datetime
import os
import secrets
import threading

CONN_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
EVENT_AUTH_FAILED = 12339
EVENT_SEND_FAILED = 12334


def timestamp(now=None):
    """DateTimeOffset 'o' format: 7 fraction digits and the offset (containers run UTC)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def new_connection_id():
    """Kestrel connection ids look like 0HN8ABCDEF1GH."""
    return "0H" + "".join(secrets.choice(CONN_ID_CHARS) for dummy in range(11))


class ApiLog:
    """Appends Serilog lines: `{Timestamp:o} {RequestId,13} [{Level:u3}] {Message} ({EventId:x8})`."""

    def __init__(self, directory):
        self.directory = directory
        self._lock = threading.Lock()

    def path(self, now=None):
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return os.path.join(self.directory, now.strftime("%Y%m%d") + ".txt")

    def write(self, level, message, request_id="", event_id=0, exception=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        line = f"{timestamp(now)} {request_id:>13} [{level}] {message} ({event_id:08x})\n"
        if exception:
            line += exception.rstrip("\n") + "\n"
        with self._lock:
            os.makedirs(self.directory, exist_ok=True)
            with open(self.path(now), "a", encoding="utf-8") as handle:
                handle.write(line)

    def error(self, message, request_id="", event_id=0, exception=None):
        self.write("ERR", message, request_id, event_id, exception)

    def info(self, message, request_id=""):
        self.write("INF", message, request_id)
