"""Helpers every section shares: the plan (sizes for full and quick runs), timing, worker
processes, progress.

A `Plan` holds every size a section uses, so `--quick` is one switch, not a flag per section,
and the report can print exactly what was run. `Plan.device` is where every model runs; the
clocks here wait for that device's queued work (CUDA runs kernels asynchronously).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch

from dsmini.config import RECIPES
from dsmini.training import synchronize

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run; `full_plan()` / `quick_plan()` are the two presets."""

    quick: bool
    preset: str  # model size of every architecture compared
    device: str = "cpu"  # where every section's models run: "cpu", "cuda", "cuda:1", "mps" (resolved, never "auto")
    data_corpus: str = "en-names"  # batches for throughput (real names, real padding)
    batch_size: int = 64
    other_batches: tuple[int, ...] = (32,)  # throughput: the two ratios with a target, also at these batch sizes
    # throughput
    rounds: int = 7  # interleaved rounds; medians are over rounds
    steps_per_round: int = 10
    warmup_steps: int = 5
    layer_calls: int = 20  # MoE-vs-dense calls per round
    sweep_threads: tuple[int, ...] = (1, os.cpu_count() or 1)
    # quality
    corpora: tuple[str, ...] = ("en-names", "ru-names")
    steps: int = 3000
    ru_steps: int = 1000
    eval_every: int = 100
    curve_val_limit: int = 2048  # names per curve point; the final number uses the whole val split
    workers: int = 2
    targets: dict[str, float] = field(default_factory=lambda: {"en-names": 2.1})
    # decoding
    prefix_lengths: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    decode_chars: int = 16  # generated characters per measurement
    repeats: int = 5
    batch_names: int = 1000
    # mtp / app
    mtp_prefixes: int = 100
    spec_repeats: int = 3
    app_repeats: int = 3
    app_checkpoints: tuple[str, ...] = ("en-names", "ru-names", "ru-en-names")
    app_pages: tuple[str, ...] | None = None  # None: every page
    checkpoints: Path = REPO_ROOT / "checkpoints"
    pages: Path = REPO_ROOT / "pages"
    memory_presets: tuple[str, ...] = ("small", "medium")
    # specialisation: the router shoot-out, the shipped model's ablations, the Train page's run
    shootout_steps: int = 1000
    shootout_seeds: tuple[int, ...] = (1337, 1338, 1339)
    shootout_val_names: int = 600  # names routed for I(domain; expert), as the Experts page routes
    page_steps: int = RECIPES["page"].train.steps  # the Train page's defaults
    page_eval_every: int = RECIPES["page"].train.eval_every
    # recipe: the default training recipe swept (dsmini/bench/recipe.py)
    recipe_corpora: tuple[str, ...] = ("en-names", "ru-names")
    recipe_steps: int = 3000  # the reference recipe's steps; the others' equal-time steps follow from their speed
    recipe_evals: int = 12  # val points along each run's schedule
    recipes: tuple[str, ...] | None = None  # None: every recipe
    # attention: MLA, DSA, MoBA, log-linear and MHA on full names (dsmini/bench/attention.py)
    attention_corpus: str = "ru-full-names"
    attention_steps: int = 600
    attention_eval_every: int = 50
    attention_workers: int = 5  # all five types at once: one group, the same load for every run
    attention_cue_names: int = 512  # val names whose decision query the gender cue reads
    # peer: time to quality against a plain GPT (dsmini/bench/peer.py)
    peer_corpus: str = "en-surnames"  # a built-in corpus of >= 30,000 names
    peer_steps: int = 3000  # the plain GPT's; its val after the last one is the target
    peer_dsmini_steps: int | None = None  # None: what `train` does by default

    def steps_for(self, corpus: str) -> int:
        return self.ru_steps if corpus == "ru-names" else self.steps

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def full_plan(**overrides: Any) -> Plan:
    return Plan(quick=False, preset="small", **overrides)


def quick_plan(**overrides: Any) -> Plan:
    """Tiny sizes, seconds in all (the test suite runs it): every section, but one thread in the
    sweep, one checkpoint and the light pages for the app section. The numbers mean nothing."""
    sizes = dict(
        batch_size=16, other_batches=(8,), rounds=2, steps_per_round=2, warmup_steps=1, layer_calls=3,
        corpora=("en-names",), steps=30, ru_steps=30, eval_every=10, curve_val_limit=128, workers=1,
        prefix_lengths=(8, 24), decode_chars=4, repeats=1, batch_names=50,
        mtp_prefixes=5, spec_repeats=1, app_repeats=1, memory_presets=("tiny",), sweep_threads=(1,),
        app_checkpoints=("en-names",), app_pages=("home", "generate", "train", "attention", "compare"),
        shootout_steps=20, shootout_val_names=100, page_steps=30, page_eval_every=10,
        recipe_corpora=("en-names",), recipe_steps=20, recipe_evals=2, recipes=("adamw", "muon_dense"),
        attention_steps=6, attention_eval_every=3, attention_workers=1, attention_cue_names=24,
        peer_steps=20, peer_dsmini_steps=20,
    )
    return Plan(quick=True, preset="tiny", **{**sizes, **overrides})


# ---------------------------------------------------------------------------------------------
# Timing


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def clock(device: str | torch.device = "cpu") -> float:
    """`time.perf_counter()` once `device` is idle (`dsmini.training.device.synchronize`): read it before and
    after the work timed."""
    synchronize(device)
    return time.perf_counter()


def timed(fn: Callable[[], Any], device: str | torch.device = "cpu") -> tuple[float, Any]:
    """(seconds, result) of one call, including the work it queued on `device`."""
    start = clock(device)
    result = fn()
    return clock(device) - start, result


def interleaved(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run each variant once per round, in order (A B C A B C ...); per variant, its values by round.

    Each callable measures itself and returns one number (seconds, tokens/s...), so drift in the
    machine's speed during the run hits every variant alike.
    """
    values: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, measure in variants.items():
            values[name].append(measure())
    return values


def ratios_by_round(values: list[float], baseline: list[float]) -> list[float]:
    """values[i] / baseline[i]: a ratio per round, both taken minutes apart at most."""
    return [v / b for v, b in zip(values, baseline, strict=True)]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """`torch.set_num_threads(n)` for a block, then the previous count back (it is process-wide)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------------------------
# Worker processes

Job = TypeVar("Job")


def _init_worker() -> None:
    torch.set_num_threads(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited torch threads
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)


def map_jobs(fn: Callable[[Job], dict[str, Any]], jobs: Sequence[Job], workers: int, progress: Progress,
             note: Callable[[Job], str] = str) -> list[dict[str, Any]]:
    """`fn(job)` for every job, results in job order: in this process, or in `workers` spawned
    processes at a time with 1 torch thread each (fn and jobs must pickle)."""
    if workers <= 1:
        results = []
        for job in jobs:
            results.append(fn(job))
            progress.step(note(job))
        return results
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    with _pool(workers) as pool:
        futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            progress.step(note(jobs[i]))
    return results


def map_job_groups(fn: Callable[[Job], dict[str, Any]], groups: Sequence[Sequence[Job]], workers: int,
                   progress: Progress, note: Callable[[Job], str] = str) -> list[dict[str, Any]]:
    """`fn(job)` for every job of every group, results in order. A group's jobs are handed to
    the worker processes together and the next group waits until the whole group has finished,
    so jobs of one group can meet at a `Rendezvous` (a group larger than `workers` never could)."""
    if workers <= 1:
        return map_jobs(fn, [job for group in groups for job in group], 1, progress, note)
    if max(map(len, groups), default=0) > workers:
        raise ValueError(f"a group of {max(map(len, groups))} jobs cannot run at once on {workers} workers")
    results = []
    with _pool(workers) as pool:
        for group in groups:
            futures = [pool.submit(fn, job) for job in group]
            for job, future in zip(group, futures):
                results.append(future.result())
                progress.step(note(job))
    return results


@dataclass(frozen=True)
class Rendezvous:
    """Runs in separate processes that start together and keep the machine equally loaded until
    the last of them has finished, so each one's seconds were measured under the same load.

    The signals are empty files in a shared folder (`<stage>.<member>`): plain fields pickle into
    a worker process and need no server. A member that never arrives (a crashed process) stops
    the wait after `timeout_s` instead of hanging the benchmark.
    """

    folder: str
    members: tuple[str, ...]
    me: str
    timeout_s: float = 3600.0

    def arrive(self, stage: str) -> None:
        (Path(self.folder) / f"{stage}.{self.me}").touch()

    def everyone(self, stage: str) -> bool:
        """Has every member arrived at `stage`?"""
        return all((Path(self.folder) / f"{stage}.{member}").exists() for member in self.members)

    def wait(self, stage: str, poll_s: float = 0.02) -> bool:
        """Arrive at `stage` and wait for every other member; False if they did not come in time."""
        self.arrive(stage)
        deadline = time.monotonic() + self.timeout_s
        while not self.everyone(stage):
            if time.monotonic() > deadline:
                return False
            time.sleep(poll_s)
        return True


# ---------------------------------------------------------------------------------------------
# Progress


class Progress:
    """A plain-text progress bar on stderr: redrawn in place on a terminal, a line per step in a log."""

    def __init__(self, label: str, total: int, width: int = 24):
        self.label, self.total, self.width, self.done = label, max(total, 1), width, 0
        self.live = sys.stderr.isatty()
        self.start = time.perf_counter()

    def step(self, note: str = "") -> None:
        self.done += 1
        filled = int(self.width * self.done / self.total)
        line = (
            f"{self.label:<11} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
            f"{time.perf_counter() - self.start:5.0f}s {note}"
        )
        print(f"\r{line:<100}" if self.live else line, end="" if self.live else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.live:
            print(file=sys.stderr, flush=True)
