import os

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.helpers import app_test

# No background warm-up of the pages (pages/_warmup.py) in the app processes the tests start: it
# would share the tests' two cores; tests/app/test_warmup.py and tests/system/test_server_console.py check it.
os.environ.setdefault("DSMINI_WARMUP", "0")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models run fastest on one thread, and CI has two cores shared with the app server."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def at() -> AppTest:
    """The app under AppTest (tests/helpers.py app_test), not yet run."""
    return app_test()
