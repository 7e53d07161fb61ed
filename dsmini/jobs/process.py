"""One run of a training job in a child process: starting it, following it from the app, and the child itself.

Why a process, not a thread: see `job.py`. Both ends of the pipe between them live here, so the
messages they exchange are defined in one place (`_train_in_child` lists them): the child sends its
metrics and how the run ended, the parent passes a stop request on through an event.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from pathlib import Path
from typing import Any, Callable

from dsmini.data import CorpusData
from dsmini.training import DomainMI, Trainer

from .slots import configure_torch_threads

_POLL_S = 0.1  # how often the following thread checks for a stop request while the child trains

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


def _frozen(metrics: dict[str, Any]) -> dict[str, Any]:
    """Lists to tuples (nested), so a snapshot can share the values and copy only the dicts."""

    def freeze(v: Any) -> Any:
        return tuple(freeze(x) for x in v) if isinstance(v, list) else v

    return {k: freeze(v) for k, v in metrics.items()}


class ChildRun:
    """One run of a job, trained by a child process from the checkpoint `start` and followed from the
    caller's thread; the child saves the weights of its last finished step at `end`.

    After `run()`: `autosave` is the run's last periodic save and its step (None if it made none) and
    `exitcode` the child's exit status, for a run whose child died before it said how it ended.
    """

    def __init__(self, start: Path, end: Path, steps: int, data: CorpusData, threads: int, autosave_every: float,
                 domain_mi: DomainMI | None = None):
        self.start, self.end, self.steps, self.data = start, end, steps, data
        self.threads, self.autosave_every, self.domain_mi = threads, autosave_every, domain_mi
        self.autosave: tuple[Path, int] | None = None
        self.exitcode: int | None = None

    def run(self, stop: threading.Event, publish: Callable[[list[dict[str, Any]]], None],
            publish_every: float) -> tuple[str, str, int] | None:
        """Train in a child until it ends, passing a set `stop` on and the metrics to `publish` (batched: at
        most every `publish_every` seconds, and all that is pending at the end). Returns how it ended,
        ("end", stop_reason, step) or ("error", message, step), or None if the child died first."""
        receive, send = _PROCESSES.Pipe(duplex=False)
        child_stop = _PROCESSES.Event()
        # CorpusData pickled by value here: multiprocessing would move its tensors to shared memory,
        # changing the cached corpus that other sessions' jobs read.
        child = _PROCESSES.Process(
            target=_train_in_child, name="dsmini-train", daemon=True,
            args=(str(self.start), str(self.end), self.steps, pickle.dumps(self.data), self.threads,
                  self.autosave_every, self.domain_mi, send, child_stop),
        )
        child.start()
        send.close()  # the child holds the only sending end now: its exit ends our recv() with EOFError
        try:
            return self._follow(receive, stop, child_stop, publish, publish_every)
        finally:
            receive.close()
            child.join()
            self.exitcode = child.exitcode

    def _follow(self, receive, stop: threading.Event, child_stop, publish: Callable[[list[dict[str, Any]]], None],
                publish_every: float) -> tuple[str, str, int] | None:
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
                    self.autosave = Path(path), step
                    continue
                if kind != "step":
                    return kind, *value
                pending.append(_frozen(value))
                if time.monotonic() - last_publish >= publish_every:
                    publish(pending)
                    pending, last_publish = [], time.monotonic()
        finally:  # also when the child died: the steps that did happen are shown
            publish(pending)


def _train_in_child(start: str, end: str, steps: int, data: bytes, threads: int, autosave_every: float,
                    domain_mi: DomainMI | None, send, stop) -> None:
    """The child process: resume the run at `start`, send ("step", metrics) per optimizer step and
    ("saved", (path, step)) after each periodic save (`<end>-at-<step>`, every `autosave_every` s),
    save the weights of its last finished step to `end`, then send how it ended: ("end", (stop_reason,
    step)) or ("error", (message, step)). If it dies instead, the parent sees the pipe close."""
    configure_torch_threads(threads, role="training")
    corpus = pickle.loads(data)  # bytes the parent pickled, never a file
    trainer = Trainer.resume(start, corpus, steps=steps, domain_mi=domain_mi)
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
