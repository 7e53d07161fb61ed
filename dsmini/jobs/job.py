"""Background training jobs: a run trained by a child process, so the UI can come and go around it.

Streamlit stops a running script at its next `st.*` call whenever the user clicks anything,
so a training loop inside the page would die on the first click. A `TrainingJob` hands the run
to a child process instead, followed by a daemon thread in the app's process; the page polls
`job.snapshot()` (an immutable copy taken under a lock) and calls `stop()`, `resume()`, `save()`
from callbacks. Nothing here imports streamlit.

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

The pieces around the job: `slots.py` caps how many jobs train at once (the rest wait in
"queued"), `process.py` runs one run in its child, and `registry.py` keeps the jobs by run
id, so that a run outlives the browser session that started it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dsmini.checkpoint import (
    CheckpointError,
    CheckpointExistsError,
    checkpoint_zip_bytes,
    copy_checkpoint,
    load_checkpoint,
    validate_name,
)
from dsmini.config import ModelConfig, TrainConfig
from dsmini.data import CorpusData
from dsmini.export import export_zip_bytes
from dsmini.model import check_training
from dsmini.training import DomainMI, Trainer

from .process import ChildRun
from .slots import SLOTS

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running", "stopping")  # a worker owns the run
FINISHED_STATES = ("stopped", "completed", "failed")  # weights at rest: save, download
RESUMABLE_STATES = ("stopped", "completed")  # a failed run's trainer may be mid-step or NaN-bound
_WEIGHTS_KEPT = "the trained weights are kept with the run and can be downloaded"
# A child killed mid-run (out of memory, a crash) loses only what it trained since its last periodic save:
# ~30 ms to write a small model every 30 s costs nothing, and a class never loses more than half a minute.
AUTOSAVE_EVERY_S = 30.0


class JobError(RuntimeError):
    """An action that the job's current state does not allow (e.g. save while running)."""


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
    domain_mi: the live I(domain; expert) curve, measured in the child on eval steps (the Trainer's
    `domain_mi`, e.g. `probes.live_domain_mi`: a module-level function, so it pickles into the child).
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
        domain_mi: DomainMI | None = None,
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
        self.domain_mi = domain_mi
        self._folder = tempfile.TemporaryDirectory(prefix="dsmini-job-")  # removed with the job
        try:
            self._weights = trainer.save(self._folder.name, "run-0")  # where the weights rest between runs
        except CheckpointError as err:
            raise CheckpointError(f"cannot start a training run: {err}") from err
        self._runs = 0
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
        SLOTS.wake()  # a queued worker is waiting on the slots' condition, not on the event

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
        position = SLOTS.position(self)  # before taking our lock: never hold both
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
        """The checkpoint (weights, optimizer, history) as zip bytes, for a download button."""
        return self._packed(name, checkpoint_zip_bytes)

    def transformers_bytes(self, name: str = "dsmini-run") -> bytes:
        """The run as a zipped Hugging Face transformers folder (`dsmini.export`), for a download button;
        ExportRefused when transformers cannot express the model (`export.unsupported(self.model_cfg)`)."""
        return self._packed(name, lambda path: export_zip_bytes(load_checkpoint(path)))

    def _packed(self, name: str, pack: Callable[[Path], bytes]) -> bytes:
        """`pack` of the finished run saved as `name`, in a private temporary directory, never the
        checkpoints folder, so it works when that folder cannot be written."""
        name = validate_name(name)
        with self._control:
            self._require_finished("download")
            try:
                with tempfile.TemporaryDirectory(prefix="dsmini-download-") as tmp:
                    return pack(copy_checkpoint(self._weights, tmp, name))
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
            taken = SLOTS.acquire(self, self.threads, stop)
            if taken:
                try:
                    self._mark_running()
                    state, message = self._train(stop)
                finally:
                    SLOTS.release(taken)
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
        end = self.folder / f"run-{self._runs}"
        child = ChildRun(self._weights, end, self.train_cfg.steps, self.data, self.threads, self.autosave_every,
                         self.domain_mi)
        outcome = child.run(stop, self._publish, self.snapshot_every)
        if outcome is None:  # died mid-run: fall back to its last periodic save, else to where it started
            periodic = child.autosave is not None
            self._adopt(*(child.autosave or (self._weights, self._weights_step)))
            return "failed", (
                f"the training process ended unexpectedly (exit code {child.exitcode}); "
                f"the weights are kept from step {self._weights_step}"
                + (", the last periodic save" if periodic else "")
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
