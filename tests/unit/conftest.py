"""Unit test isolation across ansible-core versions."""

import pytest
from ansible.module_utils.common import warnings


@pytest.fixture(autouse=True)
def no_leftover_module_warnings():
    """ansible-core < 2.19 collects module warnings in process-wide lists that every later exit_json returns:
    start each test with them empty, as each module run on a host does."""
    for name in ("_global_warnings", "_global_deprecations"):
        if isinstance(getattr(warnings, name, None), list):
            del getattr(warnings, name)[:]
    yield
