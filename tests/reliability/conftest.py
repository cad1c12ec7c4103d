"""The reliability suite: the case runner as a fixture and the session's figures ("N cases, N held")."""

import pytest

from reliability import matrix

_seen = set()
_held = set()
_lost = set()


@pytest.fixture
def run_case(sim_fleet, tmp_path):
    """run_case(case): run one matrix.Case and assert everything it must hold (see matrix.py)."""
    return lambda case: matrix.run_case(case, sim_fleet, tmp_path)


def _is_case(nodeid):
    return nodeid.replace("\\", "/").startswith("tests/reliability/")


def pytest_runtest_logreport(report):
    """Runs in the controller with xdist too (workers send their reports): a case held when every phase passed."""
    if not _is_case(report.nodeid):
        return
    _seen.add(report.nodeid)
    if report.failed or report.skipped:
        _lost.add(report.nodeid)
    elif report.when == "call":
        _held.add(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    if not _seen:
        return
    held = _held - _lost
    terminalreporter.section("reliability matrix")
    for nodeid in sorted(_seen - held):
        terminalreporter.write_line("not held: %s" % nodeid)
    terminalreporter.write_line("%d cases, %d held" % (len(_seen), len(held)))
