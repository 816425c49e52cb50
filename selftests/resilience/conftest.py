"""selftests/resilience drives the lab through controllers of its own (pytest
processes it starts and kills): in a session that also holds the lab (any other
lab test collected), those controllers would be refused by this session's own
lease. Such a session skips them, saying how to run them."""

import os

import pytest

from fixtures.reporter import LAB_FIXTURES

HERE = os.path.dirname(os.path.abspath(__file__))


def _ours(item):
    return str(item.fspath).startswith(HERE)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("LAGHIL_INNER") == "1":
        return
    mixed = [i for i in items if not _ours(i) and LAB_FIXTURES & set(getattr(i, "fixturenames", ()))]
    if not mixed:
        return
    skip = pytest.mark.skip(reason="runs in a pytest of its own (it starts and kills controllers "
                                   "of the lab, which this session holds): "
                                   "pytest selftests/resilience")
    for item in items:
        if _ours(item) and "/inner/" not in str(item.fspath):
            item.add_marker(skip)
