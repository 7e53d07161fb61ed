"""Results computed once per process and shared by every thread, each computed by one thread at a time.

The explorer's server computes a page's view for a whole class: when 30 sessions open the same page on
a fresh server, the first one computes it and the other 29 wait for that result instead of computing it
29 more times on the same cores (the "single flight" of Go's groupcache). Plain Python, no Streamlit: the
server's warm-up thread fills the same store outside any script run.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Hashable


class SharedResults:
    """key -> value, at most `max_entries` of them (the least recently used go first).

    `get(key, compute)` returns the kept value, or waits while another thread computes it, or computes it.
    A computation that raises keeps nothing: the error goes to its caller, and each waiting caller then
    tries for itself (a bad input fails for each; a page run stopped midway leaves the work to the next).
    """

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._done: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._running: dict[Hashable, threading.Event] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        while True:
            with self._lock:
                if key in self._done:
                    self._done.move_to_end(key)
                    return self._done[key]
                running = self._running.get(key)
                if running is None:
                    running = self._running[key] = threading.Event()
                    break
            running.wait()  # then look again: kept, or failed (try ourselves)
        try:
            value = compute()
        except BaseException:
            self._finish(key, running)
            raise
        self._finish(key, running, (value,))
        return value

    def _finish(self, key: Hashable, running: threading.Event, result: tuple = ()) -> None:
        with self._lock:
            del self._running[key]
            if result:
                self._done[key] = result[0]
                while len(self._done) > self.max_entries:
                    self._done.popitem(last=False)
        running.set()

    def __len__(self) -> int:
        return len(self._done)
