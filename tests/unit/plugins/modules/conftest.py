"""Module tests run as on a managed host, even in a worker that imported controller code before."""

import pytest

try:
    from ansible.module_utils import _internal
except ImportError:  # ansible-core < 2.19 has no controller switch
    _internal = None


@pytest.fixture(autouse=True)
def as_on_a_managed_host(monkeypatch):
    """From ansible-core 2.19 a module's warn() goes to the controller's Display (which drops repeated warnings) once
    any controller code was imported in the process, e.g. by the action plugin tests in the same xdist worker: keep it
    in the module result, where a host's module run puts it."""
    if _internal is not None and hasattr(_internal, "is_controller"):
        monkeypatch.setattr(_internal, "is_controller", False)
    yield
