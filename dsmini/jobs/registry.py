"""The runs of the app process by id, so that a training run outlives the browser session that shows it.

A run belongs to a browser tab, not to its websocket session: a reload (F5) ends the session and opens
a new one. `JobRegistry` keeps every job by run id (the page puts it in the URL); a session leaving
its run starts a grace period (`GRACE_S`) for a new session to claim it, after which the run stops and
its weights stay downloadable for `KEEP_S`; then the job is released and its folder deleted.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass

from .job import TrainingJob

GRACE_ENV = "DSMINI_RUN_GRACE_S"
GRACE_S = 120.0  # a reload reconnects in seconds; a closed laptop lid or a flaky classroom Wi-Fi may take a minute
KEEP_S = 3600.0  # an unclaimed run's weights stay saveable this long (a lesson), then its folder is deleted


def run_grace_s() -> float:
    """How long a run nobody shows keeps training: $DSMINI_RUN_GRACE_S, else `GRACE_S`. 0 stops it with its
    session at once, for a load test that measures the server going idle after its sessions close."""
    raw = os.environ.get(GRACE_ENV)
    if raw is None:
        return GRACE_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= KEEP_S:
        raise ValueError(f"{GRACE_ENV} must be a number of seconds from 0 to {KEEP_S:g}, got {raw!r}")
    return seconds


@dataclass
class _Entry:
    job: TrainingJob
    holders: set[str]  # the sessions showing the run
    left_at: float | None = None  # monotonic time the last holder left; None while held


class JobRegistry:
    """Every job of the process by run id, so that a run outlives the websocket session that started it.

    A holder (one browser session) holds at most one run. When the last holder of a run leaves, it
    has `grace_s` to be claimed again (a reload claims it within seconds); unclaimed, it is stopped
    (weights kept, still saveable by a tab that brings its id), and after `keep_s` it is released and
    forgotten. The cap on concurrent training is the jobs' own (`slots.SLOTS`), untouched by this.
    """

    def __init__(self, grace_s: float = GRACE_S, keep_s: float = KEEP_S):
        if not 0 <= grace_s <= keep_s:
            raise ValueError(f"need 0 <= grace_s <= keep_s, got {grace_s} and {keep_s}")
        self.grace_s, self.keep_s = grace_s, keep_s
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def add(self, job: TrainingJob, holder: str) -> str:
        """Register `job` as `holder`'s run (it leaves any other); return the new run id."""
        run_id = secrets.token_urlsafe(9)  # unguessable: a URL is the only key to someone's run
        with self._lock:
            left = self._drop_holder(holder)
            self._entries[run_id] = _Entry(job, {holder})
        self.sweep()
        if left:
            self._schedule_sweeps()
        return run_id

    def claim(self, run_id: str, holder: str) -> TrainingJob | None:
        """`holder` shows run `run_id` from now on; None if there is no such run (any more)."""
        self.sweep()
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None:
                return None
            left = holder not in entry.holders and self._drop_holder(holder)
            entry.holders.add(holder)
            entry.left_at = None
        if left:
            self._schedule_sweeps()
        return entry.job

    def leave(self, holder: str) -> None:
        """`holder` (a session that ended) shows nothing any more: its run's grace period may start."""
        with self._lock:
            left = self._drop_holder(holder)
        if left:
            self._schedule_sweeps()

    def _drop_holder(self, holder: str) -> bool:
        """Take `holder` off its run (call with `_lock` held); True if that run is unheld now."""
        for entry in self._entries.values():
            if holder in entry.holders:
                entry.holders.discard(holder)
                if not entry.holders:
                    entry.left_at = time.monotonic()
                    return True
        return False

    def _schedule_sweeps(self) -> None:
        """A run was just left: sweep when its grace period and its keep time end, as no one may visit
        the app again to trigger a sweep."""
        for delay in (self.grace_s, self.keep_s):
            timer = threading.Timer(delay + 0.05, self.sweep)
            timer.daemon = True
            timer.start()

    def sweep(self) -> None:
        """Stop the runs unclaimed for `grace_s`; release and forget those unclaimed for `keep_s`."""
        now = time.monotonic()
        with self._lock:
            idle = {run_id: e for run_id, e in self._entries.items() if e.left_at is not None}
            expired = [self._entries.pop(run_id).job for run_id, e in idle.items() if now - e.left_at >= self.keep_s]
            overdue = [e.job for e in idle.values() if self.grace_s <= now - e.left_at < self.keep_s]
        for job in overdue:  # outside the lock: a job's own locks are never taken under ours
            job.stop(unattended=True)
        for job in expired:
            job.release()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
