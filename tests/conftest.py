"""Shared pytest fixtures."""

import pytest

from helpers.sim import start_fleet


@pytest.fixture
def sim_fleet(tmp_path):
    """Factory: `sim_fleet(instances=[{"name": ...}, ...], **defaults)` starts a fleet under tmp_path.

    `instances` may also be a count, or a whole fleet document ({"defaults": ..., "instances": ...});
    `name` picks the sub-directory when a test needs several fleets. Every fleet is stopped at teardown.
    """
    fleets = []

    def factory(instances=None, name="fleet", **defaults):
        if isinstance(instances, dict):
            defaults = {**instances.get("defaults", {}), **defaults}
            instances = instances["instances"]
        fleet = start_fleet(tmp_path / name, instances=instances, defaults=defaults)
        fleets.append(fleet)
        return fleet

    yield factory
    for fleet in fleets:
        fleet.stop()
