"""The process-wide policy of background training: torch threads, and the cap on jobs that train at once.

One cap for the whole app process (`SLOTS`), not one per session, because every session's runs
share the same cores: a `TrainingJob` takes its slots here before its child process starts.

Thread policy (`THREADS`), measured on a 2-core box, torch 2.13 CPU (libgomp), preset small,
en-names, batch 64: wall tokens/s at 2 torch threads vs 1, interleaved in one process, medians.

- other core idle (load avg 0.6): dense 1.45x, MLA 1.43x, MHA+MoE 1.27x, full 1.29x (before the
  trainer's fused AdamW and grouped experts: dense 1.34x, full 1.25x);
- one busy process on the other core: dense 0.44x, full 0.30x;
- the same with OMP_WAIT_POLICY=PASSIVE: dense 0.85x, full 0.74x; but passive waiting with the
  core free (load avg 1.2) gave dense 0.51x, full 0.36x.

So on an idle machine no architecture is slower with 2 threads, but 2 threads only pay while the
second core stays free for the whole run: every parallel region of a step (thousands) waits for
the thread that shares its core with anything else (a page computation, another job, the
Streamlit server), and the run falls to a third of its 1-thread speed. The app cannot promise a
free core, so both roles get 1 thread: the server for its page computations, each training child
for its run; at most `max_concurrent_jobs()` = cpu_count // 2 jobs train at once, the rest wait,
first come first served, in "queued". Whoever knows the machine is idle may still ask for more
(the CLI's --threads; a job's `threads`, which then holds that many slots).

Several server processes on one machine (`python -m dsmini serve --replicas N`) share its cores, so
the cap must count their runs together: with $DSMINI_JOB_SLOTS_DIR set (serve sets it for its
replicas), a slot is also a file `slot-<i>` in that folder, held by an exclusive `flock` on an open
file. The kernel drops the lock when its process dies, however it dies, so a killed replica never
keeps a slot; processes that share the folder must share the cap ($DSMINI_MAX_JOBS). Within a
process the line stays first come, first served; across processes whoever polls first after a slot
frees up gets it (the queue position a page shows is its place in its own process's line).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

try:
    import fcntl
except ImportError:  # Windows: no flock, so no slots shared between processes (serve is POSIX-only too)
    fcntl = None

MAX_JOBS_ENV = "DSMINI_MAX_JOBS"
SLOTS_DIR_ENV = "DSMINI_JOB_SLOTS_DIR"  # a folder shared by the processes whose runs one cap counts
# How often the first in line looks again while other processes hold every slot: their releases wake
# no one here, and a run waits at most this long after a slot frees up.
MACHINE_POLL_S = 0.25
# torch threads per role when nobody asks for more: see the measurements in the module docstring
THREADS = {"server": 1, "training": 1}


def configure_torch_threads(n: int | None = None, role: str = "server") -> int:
    """Set torch's intra-op thread count for the whole process; return it. Call once at startup:
    the app's server process as "server" (its page computations), a job's child as "training".

    `torch.set_num_threads` is process-wide, so the policy belongs to whoever knows what runs at
    once. `n` overrides the role's default `THREADS[role]` (1 for both: the module docstring says
    why).
    """
    if role not in THREADS:
        raise ValueError(f"role must be one of {sorted(THREADS)}, got {role!r}")
    n = THREADS[role] if n is None else n
    if n < 1:
        raise ValueError(f"torch threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    return n


def max_concurrent_jobs() -> int:
    """How many jobs may train at once: $DSMINI_MAX_JOBS, else max(1, cpu_count // 2).

    Half the cores, because each job runs torch on 1 thread and the Streamlit server, the
    page scripts and torch's own helper threads need the rest.
    """
    raw = os.environ.get(MAX_JOBS_ENV)
    if raw is None:
        return max(1, (os.cpu_count() or 1) // 2)
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{MAX_JOBS_ENV} must be a positive integer, got {raw!r}")
    return n


def slots_folder() -> Path | None:
    """The folder of slot files shared with other processes ($DSMINI_JOB_SLOTS_DIR), or None."""
    raw = os.environ.get(SLOTS_DIR_ENV)
    return Path(raw) if raw else None


def _take_slot_files(folder: Path, need: int, cap: int) -> list[int] | None:
    """Lock `need` of the files `slot-0` .. `slot-<cap-1>` in `folder`; their descriptors, or None (and
    nothing held) if other processes hold too many. Opened for writing: over NFS an exclusive flock
    is a POSIX write lock, which needs it."""
    folder.mkdir(parents=True, exist_ok=True)
    held: list[int] = []
    for index in range(cap):
        fd = os.open(folder / f"slot-{index}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process's run holds this one
            os.close(fd)
            continue
        held.append(fd)
        if len(held) == need:
            return held
    for fd in held:
        os.close(fd)
    return None


@dataclass
class Held:
    """What `acquire` took: `count` slots of this process (0: cancelled, falsy) and the slot files
    locked for them."""

    count: int
    files: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.count > 0


class _Slots:
    """A first-come-first-served counting semaphore that can be cancelled and resized.

    Not a `threading.BoundedSemaphore`: a queued job must show its place in line and leave
    the line at once when stopped (no polling), and tests must change the cap safely while
    jobs hold slots. A job takes one slot per torch thread, at most the whole cap (so a big
    job still runs, alone). The capacity is read lazily, so a bad $DSMINI_MAX_JOBS fails the
    job with a message instead of breaking `import dsmini.jobs.slots`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._capacity: int | None = None
        self._used = 0
        self._line: list[object] = []  # waiting tickets, oldest first

    def _cap(self) -> int:
        if self._capacity is None:
            self._capacity = max_concurrent_jobs()
        return self._capacity

    def resize(self, capacity: int | None) -> None:
        """New cap (None: back to `max_concurrent_jobs()`); holders above it finish normally."""
        with self._cond:
            self._capacity = capacity
            self._cond.notify_all()

    def acquire(self, ticket: object, weight: int, cancel: threading.Event) -> Held:
        """Wait in arrival order for `weight` slots, here and, with a shared folder, across processes;
        return what was taken (pass it to `release`), falsy if `cancel` was set first (the canceller
        calls `wake`). OSError if the shared folder cannot be used."""
        with self._cond:
            self._line.append(ticket)
            try:
                while not cancel.is_set():
                    need = min(weight, self._cap())
                    if self._line[0] is ticket and self._used + need <= self._cap():
                        folder = slots_folder()
                        files = [] if folder is None or fcntl is None else _take_slot_files(folder, need, self._cap())
                        if files is not None:
                            self._used += need
                            return Held(need, files)
                        self._cond.wait(MACHINE_POLL_S)  # other processes hold the slots: look again soon
                        continue
                    self._cond.wait()
                return Held(0)
            finally:
                self._line.remove(ticket)
                self._cond.notify_all()  # the next in line may now be first

    def release(self, taken: Held) -> None:
        with self._cond:
            self._used -= taken.count
            for fd in taken.files:
                os.close(fd)  # drops the flock: another process's run may take the slot
            taken.files.clear()
            self._cond.notify_all()

    def wake(self) -> None:
        """Make waiters re-check their cancel events."""
        with self._cond:
            self._cond.notify_all()

    def position(self, ticket: object) -> int | None:
        """1-based place in line, or None if not waiting."""
        with self._cond:
            return self._line.index(ticket) + 1 if ticket in self._line else None


# the process's one cap (shared with other processes through slots_folder()): every TrainingJob takes its slots here
SLOTS = _Slots()


def set_max_concurrent_jobs(n: int | None) -> None:
    """Override the cap (slots: one per torch thread of a job) for this process, e.g. in
    tests; None restores `max_concurrent_jobs()`. Safe while jobs run: lowering it only
    makes new jobs wait longer.
    """
    if n is not None and n < 1:
        raise ValueError(f"max concurrent jobs must be >= 1, got {n}")
    SLOTS.resize(n)

