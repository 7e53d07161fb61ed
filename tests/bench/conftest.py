from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    """A test that reads the quick benchmark run (test_bench.py's module fixture `bench`, minutes on two cores)
    is slow, whoever adds it."""
    for item in items:
        if item.path.is_relative_to(HERE) and "bench" in item.fixturenames:
            item.add_marker(pytest.mark.slow)
