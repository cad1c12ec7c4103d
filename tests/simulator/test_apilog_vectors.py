"""The simulator writes the api log as the real server does: every vector of tests/vectors/api_log.yml (the same
file the collection's reader is tested on), and every template the simulator logs has a vector."""

import datetime
from pathlib import Path

import pytest
import yaml

from bwsim import apilog
from bwsim.fleet import parse_version

VECTORS = yaml.safe_load((Path(__file__).resolve().parents[1] / "vectors" / "api_log.yml").read_text(encoding="utf-8"))
LINES = VECTORS["lines"]


def argument(spec):
    (kind, value), = spec.items()
    if kind == "string":
        return value
    if kind == "error_response":
        return apilog.error_response(*value) if isinstance(value, list) else apilog.error_response(value)
    if kind == "date":
        return apilog.dotnet_date(datetime.datetime.fromisoformat(value))
    assert kind in ("uri", "enum", "guid"), kind
    return apilog.Bare(value)


@pytest.mark.parametrize("vector", LINES, ids=[vector["name"] for vector in LINES])
def test_line(vector):
    text = apilog.format_entry(vector["layout"], datetime.datetime.fromisoformat(vector["time"]), vector["level"],
                               vector["template"], [argument(spec) for spec in vector["args"]],
                               vector.get("request_id", ""), vector.get("exception"))
    assert text == vector["written"]


def test_every_template_the_simulator_logs_has_a_vector():
    templates = {value for name, value in vars(apilog).items()
                 if name.isupper() and isinstance(value, str) and name != "CONN_ID_CHARS"}
    assert apilog.REQUEST_UNSUCCESSFUL in templates and apilog.AUTH_FAILED in templates
    covered = {vector["template"] for vector in LINES}
    assert templates - covered == set()


@pytest.mark.parametrize("vector", VECTORS["files"], ids=[vector["name"] for vector in VECTORS["files"]])
def test_file_name(vector, tmp_path):
    log = apilog.ApiLog(str(tmp_path), parse_version(vector["version"]), vector["env"])
    moment = datetime.datetime(2026, 12, 6, 6, 0, tzinfo=datetime.timezone.utc)
    assert Path(log.path(moment)).relative_to(tmp_path).as_posix() == vector["file"]
    log.error(apilog.AUTH_FAILED)
    assert [path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file()] \
        == [Path(log.path()).relative_to(tmp_path).as_posix()]
