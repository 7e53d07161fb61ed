"""dsmini.single_flight: a result is computed once while every other thread asking for it waits."""

import threading
import time

import pytest

from dsmini.single_flight import SharedResults


def test_thirty_threads_asking_at_once_compute_once():
    shared, calls = SharedResults(max_entries=4), []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return object()

    got = []
    threads = [threading.Thread(target=lambda: got.append(shared.get("view", slow))) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(got) == 30 and all(g is got[0] for g in got)


def test_a_failure_is_not_kept_and_the_oldest_entry_goes_first():
    shared = SharedResults(max_entries=2)
    with pytest.raises(ValueError):
        shared.get("bad", lambda: (_ for _ in ()).throw(ValueError("bad input")))
    assert shared.get("bad", lambda: "fixed") == "fixed"
    shared.get("a", lambda: 1)
    shared.get("b", lambda: 2)
    assert len(shared) == 2 and shared.get("bad", lambda: "again") == "again"  # evicted, computed again
