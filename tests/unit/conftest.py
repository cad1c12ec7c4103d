"""Unit test isolation across ansible-core versions."""

import pytest
from ansible.module_utils.common import warnings


@pytest.fixture(autouse=True)
def no_leftover_module_warnings():
    """ansible-core collects module warnings process-wide (< 2.19 in lists every later exit_json returns, from 2.19 in
    dicts that drop a repeated warning): start each test with them empty, as each module run on a host does."""
    for name in ("_global_warnings", "_global_deprecations"):
        if isinstance(getattr(warnings, name, None), (list, dict)):
            getattr(warnings, name).clear()
    yield
