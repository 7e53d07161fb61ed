"""Background training jobs: a run trained by a child process, so the UI can come and go around it.

Streamlit stops a running script at its next `st.*` call whenever the user clicks anything
(DESIGN §4), so a training loop inside the page would die on the first click. A `TrainingJob`
hands the run to a child process instead, followed by a daemon thread in the app's process;
the page polls `job.snapshot()` (an immutable copy taken under a lock) and calls `stop()`,
`resume()`, `save()` from callbacks. Nothing here imports streamlit.

    job = TrainingJob(model_cfg, train_cfg, data)
    job.start()                   # "queued" until a slot is free, then "running"
    snap = job.snapshot()         # state, step, history (every step, in order), samples, ...
    job.stop(); job.join()        # "stopped": finishes the current step, weights consistent
    job.resume(500)               # 500 more steps on the same model and optimizer
    job.save("checkpoints", "my-run")   # or job.download_bytes() when the disk refuses
    job.release()                 # stop, join, delete the private folder: the end of the job

States: created -> queued -> running -> completed | stopped | failed, with "stopping" between
a stop request and the end of the current step. `resume()` goes back to queued.

Why a process, not a thread: a Streamlit server is one Python process, and every page run of
every session holds its GIL while it builds widgets and charts. A training thread in that process
got a thin share of it: with 30 sessions browsing, a live run made ~1 step/s instead of ~10
(BENCHMARKS, load test). A child process trains on its own core. Between runs the job's
weights rest in a private checkpoint folder: each run resumes from it exactly (weights,
optimizer, RNGs) and writes its end state back, so save, download and resume read a complete
checkpoint, never a model mid-step.

Concurrency policy (measured on a 2-core box, torch 2.13 CPU): a lone 400K-parameter MoE run
did 38 steps/s with 2 torch threads vs 28 with 1, but under contention (another run, the
server) 2 threads each collapsed to a fraction of the 1-thread speed. So jobs train with 1 torch
thread and at most `max_concurrent_jobs()` = cpu_count // 2 jobs train at once; the rest wait,
first come first served, in "queued".

A run belongs to a browser tab, not to its websocket session: a reload (F5) ends the session and opens
a new one. `JobRegistry` keeps every job by run id (the page puts it in the URL); a session leaving
its run starts a grace period (`GRACE_S`) for a new session to claim it, after which the run stops and
its weights stay downloadable for `KEEP_S`; then the job is released and its folder deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import pickle
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, CheckpointExistsError, checkpoint_zip_bytes, copy_checkpoint, validate_name
from .config import ModelConfig, TrainConfig
from .data import CorpusData
from .limits import check_training
from .train import Trainer

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running", "stopping")  # a worker owns the run
FINISHED_STATES = ("stopped", "completed", "failed")  # weights at rest: save, download
RESUMABLE_STATES = ("stopped", "completed")  # a failed run's trainer may be mid-step or NaN-bound
MAX_JOBS_ENV = "DSMINI_MAX_JOBS"
GRACE_ENV = "DSMINI_RUN_GRACE_S"
_WEIGHTS_KEPT = "the trained weights are kept with the run and can be downloaded"
_POLL_S = 0.1  # how often the following thread checks for a stop request while the child trains
# A child killed mid-run (out of memory, a crash) loses only what it trained since its last periodic save:
# ~30 ms to write a small model every 30 s costs nothing, and a class never loses more than half a minute.
AUTOSAVE_EVERY_S = 30.0
GRACE_S = 120.0  # a reload reconnects in seconds; a closed laptop lid or a flaky classroom Wi-Fi may take a minute
KEEP_S = 3600.0  # an unclaimed run's weights stay saveable this long (a lesson), then its folder is deleted

# Children come from a fork server: a clean single-threaded process that imported dsmini, torch and
# torch._dynamo (which torch.optim imports on first use, 2.3 s) once, so a tiny run takes 0.3 s instead of
# ~5 s in a fresh interpreter, and nothing is forked from the threaded app server. Where there is no fork
# server (Windows), each run spawns a fresh interpreter. Either way the child re-imports the parent's
# `__main__` as `__mp_main__`, so that must be safe to import (app.py does nothing then).
if "forkserver" in multiprocessing.get_all_start_methods():
    _PROCESSES = multiprocessing.get_context("forkserver")
    _PROCESSES.set_forkserver_preload([__name__, "torch._dynamo"])
else:
    _PROCESSES = multiprocessing.get_context("spawn")


class JobError(RuntimeError):
    """An action that the job's current state does not allow (e.g. save while running)."""


# ---------------------------------------------------------------------------------------------
# Process-wide policy: torch threads and the cap on concurrent jobs


def configure_torch_threads(n: int = 1) -> None:
    """Set torch's intra-op thread count for the whole process; call once at app startup.

    `torch.set_num_threads` is process-wide, so the policy belongs to whoever knows what runs at
    once (the app, for its page computations; each job's child process sets its own). 1 is the
    right default under contention (see the module docstring).
    """
    if n < 1:
        raise ValueError(f"torch threads must be >= 1, got {n}")
    torch.set_num_threads(n)


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


class _Slots:
    """A first-come-first-served counting semaphore that can be cancelled and resized.

    Not a `threading.BoundedSemaphore`: a queued job must show its place in line and leave
    the line at once when stopped (no polling), and tests must change the cap safely while
    jobs hold slots. A job takes one slot per torch thread, at most the whole cap (so a big
    job still runs, alone). The capacity is read lazily, so a bad $DSMINI_MAX_JOBS fails the
    job with a message instead of breaking `import dsmini.jobs`.
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

    def acquire(self, ticket: object, weight: int, cancel: threading.Event) -> int:
        """Wait in arrival order for `weight` slots; return how many were taken (pass that to
        `release`), or 0 if `cancel` was set first (the canceller calls `wake`)."""
        with self._cond:
            self._line.append(ticket)
            try:
                while not cancel.is_set():
                    need = min(weight, self._cap())
                    if self._line[0] is ticket and self._used + need <= self._cap():
                        self._used += need
                        return need
                    self._cond.wait()
                return 0
            finally:
                self._line.remove(ticket)
                self._cond.notify_all()  # the next in line may now be first

    def release(self, taken: int) -> None:
        with self._cond:
            self._used -= taken
            self._cond.notify_all()

    def wake(self) -> None:
        """Make waiters re-check their cancel events."""
        with self._cond:
            self._cond.notify_all()

    def position(self, ticket: object) -> int | None:
        """1-based place in line, or None if not waiting."""
        with self._cond:
            return self._line.index(ticket) + 1 if ticket in self._line else None


_SLOTS = _Slots()


def set_max_concurrent_jobs(n: int | None) -> None:
    """Override the cap (slots: one per torch thread of a job) for this process, e.g. in
    tests; None restores `max_concurrent_jobs()`. Safe while jobs run: lowering it only
    makes new jobs wait longer.
    """
    if n is not None and n < 1:
        raise ValueError(f"max concurrent jobs must be >= 1, got {n}")
    _SLOTS.resize(n)


def prepare_for_training() -> None:
    """Pay training's one-time costs now, at app startup, not when a class presses Start together.

    Starts the fork server (it imports torch in its own process, off this one's GIL), and imports
    torch._dynamo here, which torch.optim imports when the first job builds its optimizer: 2.3 s
    alone, 15 s with 30 sessions busy (BENCHMARKS, load test).
    """
    import torch._dynamo  # noqa: F401

    if _PROCESSES.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


# ---------------------------------------------------------------------------------------------
# The job


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's progress, taken under its lock; changing it changes nothing.

    history: one dict per optimizer step (StepMetrics.to_dict()), every step in order; list
    values are stored as tuples so the copy stays cheap for long runs.
    """

    state: str
    step: int
    total_steps: int
    history: list[dict[str, Any]]
    last: dict[str, Any] | None  # the newest history entry
    samples: list[str] | None  # the newest sampled names
    val_losses: list[tuple[int, float]]  # (step, val_loss) on eval steps
    message: str | None  # why it ended: trainer.state.stop_reason or the exception
    elapsed: float  # seconds spent training, over all runs of this job (not queueing)
    queue_position: int | None  # 1 = next to start; None unless queued
    saved_path: Path | None  # the last successful save()
    saved: bool  # saved_path holds the current weights
    unattended: bool  # stopped because no browser tab claimed it within the grace period

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


def _frozen(metrics: dict[str, Any]) -> dict[str, Any]:
    """Lists to tuples (nested), so a snapshot can share the values and copy only the dicts."""

    def freeze(v: Any) -> Any:
        return tuple(freeze(x) for x in v) if isinstance(v, list) else v

    return {k: freeze(v) for k, v in metrics.items()}


def _outcome(reason: str | None) -> tuple[str, str]:
    """Map the Trainer's stop_reason to (job state, message).

    `Trainer.run()` ends in one of three ways: "completed", "stopped on request at step N",
    or a message naming the non-finite loss/gradient (the weights are kept from the last good
    step); the last is a failure the user must see.
    """
    if reason == "completed":
        return "completed", reason
    if reason and reason.startswith("stopped on request"):
        return "stopped", reason
    return "failed", reason or "training ended without giving a reason"


class TrainingJob:
    """One training run, trained by a child process; see the module docstring for the life cycle.

    The Trainer is built here, in the caller's thread, so a bad config raises at once in the
    page; its initial state goes to the job's private folder and each run resumes from there.

    threads: torch threads the child trains with; the job holds that many slots of the cap, so
    the cap bounds busy cores, not just jobs.
    snapshot_every: publish new metrics to snapshots at most every this many seconds (0 = every
    step), to batch the lock traffic of very fast runs. No metric is ever dropped: whatever
    is pending is published before the job reports how it ended.
    autosave_every: the child saves the run to the private folder at most this often (seconds; 0 =
    never), so a killed child leaves the weights of its last periodic save, not of the run's start.
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        data: CorpusData,
        *,
        threads: int = 1,
        snapshot_every: float = 0.0,
        autosave_every: float = AUTOSAVE_EVERY_S,
    ):
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if snapshot_every < 0:
            raise ValueError(f"snapshot_every must be >= 0 seconds, got {snapshot_every}")
        if autosave_every < 0:
            raise ValueError(f"autosave_every must be >= 0 seconds, got {autosave_every}")
        # the same documented limits as the CLI, before a model is built: a shared server must not run out of memory
        check_training(model_cfg, train_cfg, len(data.train.names))
        trainer = Trainer(model_cfg, train_cfg, data)
        self.model_cfg, self.train_cfg, self.data = model_cfg, train_cfg, data
        self.threads, self.snapshot_every, self.autosave_every = threads, snapshot_every, autosave_every
        self._folder = tempfile.TemporaryDirectory(prefix="dsmini-job-")  # removed with the job
        try:
            self._weights = trainer.save(self._folder.name, "run-0")  # where the weights rest between runs
        except CheckpointError as err:
            raise CheckpointError(f"cannot start a training run: {err}") from err
        self._runs = 0
        self._autosave: tuple[Path, int] | None = None  # the current run's last periodic save, and its step
        self._released = False
        self._control = threading.Lock()  # one of start/resume/save/download at a time
        self._lock = threading.Lock()  # everything below: shared by the worker and snapshot()
        self._state = "created"
        self._message: str | None = None
        self._history: list[dict[str, Any]] = []
        self._val_losses: list[tuple[int, float]] = []
        self._samples: tuple[str, ...] | None = None
        self._step = self._weights_step = trainer.step
        self._total = train_cfg.steps
        self._elapsed_before = 0.0  # training seconds of finished runs
        self._run_started: float | None = None  # monotonic start of the current run
        self._saved_path: Path | None = None
        self._saved_step: int | None = None
        self._unattended = False
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    # control ------------------------------------------------------------------------------
    def start(self) -> None:
        """Launch the worker; the job is "queued" until a slot of the cap is free."""
        with self._control, self._lock:
            self._require_open()
            if self._state != "created":
                raise JobError(f"the job has already started (it is {self._state}); use resume() to train more")
            self._launch()

    def resume(self, extra_steps: int) -> None:
        """Train `extra_steps` more steps on the same model, optimizer and RNGs (queued again).

        The step budget becomes step + extra_steps. The cosine LR schedule is computed from
        the budget, so after a completed run the LR jumps from its floor back up to where the
        longer schedule would be at this step (a warm restart: fine for exploring); resuming a
        stopped run with extra_steps = total_steps - step keeps its schedule unchanged.
        """
        if extra_steps < 1:
            raise ValueError(f"extra_steps must be >= 1, got {extra_steps}")
        with self._control, self._lock:
            self._require_open()
            if self._state not in RESUMABLE_STATES:
                raise JobError(f"only a stopped or completed job can be resumed; this one is {self._state}")
            self.train_cfg = dataclasses.replace(self.train_cfg, steps=self._weights_step + extra_steps)
            self._total, self._message = self.train_cfg.steps, None
            self._launch()

    def _launch(self) -> None:
        """Start a worker thread for one run (call with `_lock` held)."""
        self._state, self._unattended = "queued", False
        self._stop_event = threading.Event()  # fresh per run: the previous stop must not end this one
        self._thread = threading.Thread(target=self._work, args=(self._stop_event,), name="dsmini-train", daemon=True)
        self._thread.start()

    def stop(self, unattended: bool = False) -> None:
        """Ask the run to end after its current step, or to leave the queue; returns at once.

        The Trainer checks the flag between optimizer steps, so the weights are always those
        of a finished step. A no-op on a job that is not queued or running. unattended: the
        registry stops it because no tab came back for it (snapshots say so, for the page).
        """
        with self._lock:
            if self._state not in ("queued", "running"):
                return
            self._state, self._unattended = "stopping", unattended
            self._stop_event.set()
        _SLOTS.wake()  # a queued worker is waiting on the slots' condition, not on the event

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True if it has ended (or was never started)."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def release(self, timeout: float | None = 10.0) -> bool:
        """The end of the job: stop, join, and delete its private folder (save and download refuse
        from then on). True if the worker ended; if it did not within `timeout`, the folder stays, as
        the child may still be writing to it (the interpreter removes it at exit)."""
        self.stop()
        if not self.join(timeout):
            return False
        with self._control:
            self._released = True
            self._folder.cleanup()
        return True

    @property
    def folder(self) -> Path:
        """The private folder where the weights rest between runs (gone after release())."""
        return Path(self._folder.name)

    # reading ------------------------------------------------------------------------------
    def snapshot(self) -> JobSnapshot:
        """A consistent copy of the progress, cheap enough to poll every second."""
        position = _SLOTS.position(self)  # before taking our lock: never hold both
        with self._lock:
            running = time.monotonic() - self._run_started if self._run_started is not None else 0.0
            return JobSnapshot(
                state=self._state,
                step=self._step,
                total_steps=self._total,
                history=[dict(m) for m in self._history],
                last=dict(self._history[-1]) if self._history else None,
                samples=list(self._samples) if self._samples else None,
                val_losses=list(self._val_losses),
                message=self._message,
                elapsed=self._elapsed_before + running,
                queue_position=position if self._state == "queued" else None,
                saved_path=self._saved_path,
                saved=self._saved_path is not None and self._saved_step == self._weights_step,
                unattended=self._unattended,
            )

    # saving -------------------------------------------------------------------------------
    def save(self, root: str | os.PathLike[str], name: str, overwrite: bool = False) -> Path:
        """Publish the run as a resumable checkpoint `<root>/<name>/` (atomically); return its path.

        Only between runs. An existing `<name>` is replaced only with overwrite=True, a shipped one
        never: CheckpointExistsError, whose `free_name` the page can offer. Every other failure is
        a CheckpointError saying why; the weights stay with this job, so `download_bytes()` still
        works when the checkpoints folder is full or read-only.
        """
        name = validate_name(name)
        with self._control:
            self._require_finished("save")
            try:
                path = copy_checkpoint(self._weights, root, name, overwrite=overwrite)
            except CheckpointExistsError:
                raise  # nothing failed: the name is taken, and the error says which one is free
            except CheckpointError as err:
                raise CheckpointError(f"{err}; {_WEIGHTS_KEPT}") from err
            except OSError as err:  # copy_checkpoint wraps these already; in case one slips past it
                raise CheckpointError(f"could not write to {root}: {err.strerror or err}; {_WEIGHTS_KEPT}") from err
            with self._lock:
                self._saved_path, self._saved_step = path, self._weights_step
            return path

    def download_bytes(self, name: str = "dsmini-run") -> bytes:
        """The checkpoint (weights, optimizer, history) as zip bytes, for a download button.

        Packed through a private temporary directory, never the checkpoints folder, so it
        works when that folder cannot be written.
        """
        name = validate_name(name)
        with self._control:
            self._require_finished("download")
            try:
                with tempfile.TemporaryDirectory(prefix="dsmini-download-") as tmp:
                    return checkpoint_zip_bytes(copy_checkpoint(self._weights, tmp, name))
            except OSError as err:
                raise CheckpointError(
                    f"could not package the checkpoint in a temporary folder: {err.strerror or err}"
                ) from err

    def _require_open(self) -> None:
        if self._released:
            raise JobError("this run was released: its weights are deleted")

    def _require_finished(self, action: str) -> None:
        with self._lock:
            self._require_open()
            if self._state not in FINISHED_STATES:
                raise JobError(
                    f"cannot {action} while the job is {self._state}: "
                    "only a stopped, completed or failed run has weights at rest"
                )

    # the worker ---------------------------------------------------------------------------
    def _work(self, stop: threading.Event) -> None:
        """Thread body: wait for a slot, train, record how it ended. Never dies silently."""
        state, message = "failed", "the training thread ended unexpectedly"
        try:
            taken = _SLOTS.acquire(self, self.threads, stop)
            if taken:
                try:
                    self._mark_running()
                    state, message = self._train(stop)
                finally:
                    _SLOTS.release(taken)
            else:
                state, message = "stopped", f"stopped while queued, at step {self._weights_step}"
        except Exception as err:  # the page shows the message; the log keeps the traceback
            log.exception("training job failed")
            state, message = "failed", f"{type(err).__name__}: {err}"
        finally:
            self._finish(state, message)

    def _train(self, stop: threading.Event) -> tuple[str, str]:
        """One run in a child process: follow its metrics, pass on a stop request, adopt its end state."""
        self._runs += 1
        self._autosave = None
        end = self.folder / f"run-{self._runs}"
        receive, send = _PROCESSES.Pipe(duplex=False)
        child_stop = _PROCESSES.Event()
        # CorpusData pickled by value here: multiprocessing would move its tensors to shared memory,
        # changing the cached corpus that other sessions' jobs read.
        child = _PROCESSES.Process(
            target=_train_in_child, name="dsmini-train", daemon=True,
            args=(str(self._weights), str(end), self.train_cfg.steps, pickle.dumps(self.data), self.threads,
                  self.autosave_every, send, child_stop),
        )
        child.start()
        send.close()  # the child holds the only sending end now: its exit ends our recv() with EOFError
        try:
            outcome = self._follow(receive, stop, child_stop)
        finally:
            receive.close()
            child.join()
        if outcome is None:  # died mid-run: fall back to its last periodic save, else to where it started
            periodic = self._autosave is not None
            self._adopt(*(self._autosave or (self._weights, self._weights_step)))
            return "failed", (
                f"the training process ended unexpectedly (exit code {child.exitcode}); "
                f"the weights are kept from step {self._weights_step}" + (", the last periodic save" if periodic else "")
            )
        kind, text, step = outcome  # the child saved the weights of its last finished step at `end`
        self._adopt(end, step)
        return ("failed", text) if kind == "error" else _outcome(text)

    def _adopt(self, weights: Path, step: int) -> None:
        """Rest the job on `weights` and delete everything else in the folder: the previous run's
        weights, periodic saves, and whatever a killed child left half-written."""
        self._weights, self._weights_step = weights, step
        for entry in self.folder.iterdir():
            if entry != weights:
                shutil.rmtree(entry, ignore_errors=True)

    def _follow(self, receive, stop: threading.Event, child_stop) -> tuple[str, str, int] | None:
        """Publish the child's metrics until it reports how the run ended; None if it died first."""
        pending: list[dict[str, Any]] = []
        last_publish = time.monotonic()
        try:
            while True:
                if stop.is_set():
                    child_stop.set()
                if not receive.poll(_POLL_S):
                    continue
                try:
                    kind, value = receive.recv()
                except EOFError:
                    return None
                if kind == "saved":  # written completely: the weights to keep if the child dies
                    path, step = value
                    self._autosave = Path(path), step
                    continue
                if kind != "step":
                    return kind, *value
                pending.append(_frozen(value))
                if time.monotonic() - last_publish >= self.snapshot_every:
                    self._publish(pending)
                    pending, last_publish = [], time.monotonic()
        finally:  # also when the child died: the steps that did happen are shown
            self._publish(pending)

    def _mark_running(self) -> None:
        with self._lock:
            if self._state == "queued":  # "stopping" stays: run() will end before its first step
                self._state = "running"
            self._run_started = time.monotonic()

    def _publish(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        with self._lock:
            self._history.extend(entries)
            self._step = entries[-1]["step"]
            for m in entries:
                if m["val_loss"] is not None:
                    self._val_losses.append((m["step"], m["val_loss"]))
                if m["samples"]:
                    self._samples = m["samples"]

    def _finish(self, state: str, message: str) -> None:
        with self._lock:
            if self._run_started is not None:
                self._elapsed_before += time.monotonic() - self._run_started
                self._run_started = None
            self._state, self._message = state, message


# ---------------------------------------------------------------------------------------------
# The registry: runs by id, outliving the sessions that show them


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
    forgotten. The cap on concurrent training is the jobs' own (`_SLOTS`), untouched by this.
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


def _train_in_child(start: str, end: str, steps: int, data: bytes, threads: int, autosave_every: float,
                    send, stop) -> None:
    """The child process: resume the run at `start`, send ("step", metrics) per optimizer step and
    ("saved", (path, step)) after each periodic save (`<end>-at-<step>`, every `autosave_every` s),
    save the weights of its last finished step to `end`, then send how it ended: ("end", (stop_reason,
    step)) or ("error", (message, step)). If it dies instead, the parent sees the pipe close."""
    torch.set_num_threads(threads)
    trainer = Trainer.resume(start, pickle.loads(data), steps=steps)  # bytes the parent pickled, never a file
    end_path = Path(end)
    last_save = time.monotonic()
    try:
        for metrics in trainer.run(stop):
            send.send(("step", metrics.to_dict()))
            if autosave_every and time.monotonic() - last_save >= autosave_every:
                saved = trainer.save(end_path.parent, f"{end_path.name}-at-{trainer.step}")
                send.send(("saved", (str(saved), trainer.step)))
                last_save = time.monotonic()
        kind, text = "end", trainer.state.stop_reason
    except Exception as err:
        kind, text = "error", f"{type(err).__name__}: {err}"
    trainer.save(end_path.parent, end_path.name)
    send.send((kind, (text, trainer.step)))
    send.close()
