import os

import pytest
import torch

# No background warm-up of the pages (pages/_warmup.py) in the app processes the tests start: it
# would share the tests' two cores; tests/test_serve.py checks it on its own.
os.environ.setdefault("DSMINI_WARMUP", "0")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models run fastest on one thread, and CI has two cores shared with the app server."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
