"""The collection reads the api log as the real server writes it: every vector of tests/vectors/api_log.yml (the same
file the simulator's writer is tested on)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
import yaml

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _api_log

VECTORS = yaml.safe_load((Path(__file__).resolve().parents[3] / "vectors" / "api_log.yml").read_text(encoding="utf-8"))
LINES = VECTORS["lines"]


def rendered(vector):
    """The message the vector's line carries: everything up to the event id, or the first line without one."""
    text = vector["written"]
    if vector.get("exception"):
        text = text[:-len(vector["exception"].rstrip("\n") + "\n")]
    text = text.rstrip("\n").split("] ", 1)[1]
    if vector["layout"] == "extensions-file":
        text = text[:-len(" (xxxxxxxx)")]
    return text


@pytest.mark.parametrize("vector", LINES, ids=[vector["name"] for vector in LINES])
def test_line(vector, tmp_path):
    entries = _api_log.parse_entries(vector["written"])
    assert len(entries) == 1
    entry = entries[0]
    moment = datetime.datetime.fromisoformat(vector["time"])
    if vector["layout"] != "extensions-file":  # milliseconds only
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert entry["time"] == moment
    assert entry["level"] == vector["level"]
    assert entry["message"] == rendered(vector)
    assert entry["detail"] == ([line.strip() for line in vector["exception"].strip().split("\n")] if vector.get("exception") else [])
    if "decoded" in vector:
        (tmp_path / "Api").mkdir()
        (tmp_path / "Api" / "log.txt").write_text(vector["written"], encoding="utf-8")
        since = entry["time"] - datetime.timedelta(seconds=1)
        cause = _api_log.explain_license_sync_failure(str(tmp_path), since)
        assert cause is not None and vector["decoded"] in cause


@pytest.mark.parametrize("vector", VECTORS["files"], ids=[vector["name"] for vector in VECTORS["files"]])
def test_file_is_found(vector, tmp_path):
    path = tmp_path / vector["file"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    since = datetime.datetime(2026, 12, 6, 5, 0, tzinfo=datetime.timezone.utc)
    now = datetime.datetime(2026, 12, 6, 7, 0, tzinfo=datetime.timezone.utc)
    assert _api_log.log_files(str(tmp_path), since, now) == [str(path)]


def test_size_rolls_are_read_in_order(tmp_path):
    """RollingFile's `_001`... of a day (and Serilog.Sinks.File's of an undated file) follow their first file."""
    for name in ("Api/log-20261206_002.txt", "Api/log-20261206.txt", "Api/log-20261206_001.txt", "Api/log-20261205.txt",
                 "Api/log.txt", "Api/log_001.txt", "Api/20261206.txt", "api-20261206.log", "identity-20261206.log"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
    since = datetime.datetime(2026, 12, 6, 5, 0, tzinfo=datetime.timezone.utc)
    now = datetime.datetime(2026, 12, 6, 7, 0, tzinfo=datetime.timezone.utc)
    found = [os.path.relpath(path, tmp_path) for path in _api_log.log_files(str(tmp_path), since, now)]
    assert found.index("Api/log-20261206.txt") < found.index("Api/log-20261206_001.txt") < found.index("Api/log-20261206_002.txt")
    assert found.index("Api/log.txt") < found.index("Api/log_001.txt")
    assert "Api/log-20261205.txt" not in found and "identity-20261206.log" not in found
    assert "api-20261206.log" in found and "Api/20261206.txt" in found
