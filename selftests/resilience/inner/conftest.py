"""Tests that the resilience suite runs as a separate controller process (a
pytest it starts, kills, and starts again). Run on their own they do nothing:
each is skipped unless ``LAGHIL_INNER=1`` (set by selftests/resilience)."""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("LAGHIL_INNER") == "1":
        return
    skip = pytest.mark.skip(reason="a process of selftests/resilience (LAGHIL_INNER=1), "
                                   "not a test on its own")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(skip)
