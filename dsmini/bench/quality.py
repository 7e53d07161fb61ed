"""Section 2: validation loss after the same number of steps and after the same wall-clock time.

Each (corpus, architecture) run trains with the shipped checkpoints' recipe (AdamW, lr 3e-3,
batch 64, cosine schedule; dropout 0.1 on en-names, which overfits without it) on the corpus split
exactly as training splits it (`prepare_corpus(names, default_block_size(names), seed=42)`).
Every `eval_every` steps the run records its training seconds so far (evaluation excluded) and
its val loss on a fixed subset of the val split (the whole split when it is small); the number
after the last step is on the whole val split (`dsmini.training.trainer.evaluate`).

Runs go `workers` at a time in worker processes (one torch thread each), in groups per corpus,
the dense baseline and the full model always in the first group: a group's runs start together
(after each has built its model) and each keeps training, unrecorded, until the last of the group
has finished (`Rendezvous`), so every run shared the machine with the same runs from its first
step to its last. Times then compare fairly, but are slower than a lone run's. With one worker the
runs go one at a time, each alone. `dense_vs_full` compares the two at equal wall-clock and says
which load they had, checked from each run's clock times.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch

from dsmini.config import ModelConfig, TrainConfig
from dsmini.data import CorpusData
from dsmini.model import DSMini
from dsmini.training import Trainer, evaluate, synchronize

from .archs import ARCHS, BASELINE, arch_config, describe
from .common import Plan, Progress, Rendezvous, map_job_groups
from .throughput import corpus_data

DROPOUT = {"en-names": 0.1}  # as the shipped en-names checkpoint; every other corpus trains without
TARGET_MARGIN = 1.05  # default time-to-target threshold: the dense baseline's final val loss + 5%
COMPARED = "full"  # the model compared with the dense baseline at equal wall-clock
# dense and full first: they share the first group of every corpus whenever two runs go at once
ORDER = (BASELINE, COMPARED, *(a.key for a in ARCHS if a.key not in (BASELINE, COMPARED)))
START_SLACK_S = 1.0  # runs of a group start within polling time of each other; allow this much
Job = TypeVar("Job")
REFERENCE = {  # karpathy/makemore's transformer, ~200K parameters, on its names.txt (US first names)
    "corpus": "en-names",
    "steps": 3000,
    "val_at_steps": 2.05,
    "best_val": 1.92,
    "source": "makemore transformer (~200K params) on names.txt, 32K US first names from SSA records",
}


@dataclass(frozen=True)
class QualityJob:
    """One training run; plain fields so it pickles into a worker process."""

    corpus: str  # built-in name or .txt path
    arch: str
    preset: str
    steps: int
    eval_every: int
    curve_val_limit: int
    batch_size: int
    dropout: float
    device: str = "cpu"
    meet: Rendezvous | None = None  # the other runs of its group, None when it runs alone
    seed: int = 1337


def job_groups(plan: Plan, folder: Path) -> list[list[QualityJob]]:
    """Per corpus, its runs in ORDER cut into groups of `plan.workers` (one group never spans two
    corpora); a group of two or more meets in its own subfolder of `folder`."""
    groups = []
    for c, corpus in enumerate(plan.corpora):
        jobs = [QualityJob(corpus, key, plan.preset, plan.steps_for(corpus), plan.eval_every, plan.curve_val_limit,
                           plan.batch_size, DROPOUT.get(corpus, 0.0), plan.device) for key in ORDER]
        groups += meeting_groups(jobs, plan.workers, folder, str(c))
    return groups


def meeting_groups(jobs: list[Job], workers: int, folder: Path, tag: str) -> list[list[Job]]:
    """`jobs` (dataclasses with `arch` and `meet` fields) cut into groups of `workers`; the jobs of
    a group of two or more get one `Rendezvous` in their own subfolder `<tag>-<g>` of `folder`."""
    groups = []
    size = max(1, workers)
    for g in range(0, len(jobs), size):
        group = jobs[g : g + size]
        if len(group) > 1:
            (folder / f"{tag}-{g}").mkdir()
            members = tuple(job.arch for job in group)
            group = [dataclasses.replace(job, meet=Rendezvous(str(folder / f"{tag}-{g}"), members, job.arch))
                     for job in group]
        groups.append(group)
    return groups


def run(plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dsmini-bench-quality-") as folder:
        groups = job_groups(plan, Path(folder))
        progress = Progress("quality", sum(map(len, groups)))
        runs = map_job_groups(train_one, groups, plan.workers, progress, lambda job: f"{job.corpus} {job.arch}")
    progress.close()
    corpora = {}
    for corpus in plan.corpora:
        mine = {r["arch"]: r for r in runs if r["corpus"] == corpus}
        by_arch = {a.key: mine[a.key] for a in ARCHS}  # the tables' order, not the order they ran in
        corpora[corpus] = summarise(by_arch, plan.targets.get(corpus))
    return {
        "workers": plan.workers,
        "threads_per_run": 1 if plan.workers > 1 else torch.get_num_threads(),
        "eval_every": plan.eval_every,
        "curve_val_limit": plan.curve_val_limit,
        "batch_size": plan.batch_size,
        "preset": plan.preset,
        "device": plan.device,
        "reference": REFERENCE,
        "corpora": corpora,
    }


def train_one(job: QualityJob) -> dict[str, Any]:
    """Train one architecture on one corpus; its val curve against training seconds and steps."""
    with releasing(job.meet):
        return _train(job)


@contextmanager
def releasing(meet: Rendezvous | None) -> Iterator[None]:
    """Arrive at every stage of `meet` on the way out, also when the run failed: the others of its
    group must not wait for it."""
    try:
        yield
    finally:
        if meet is not None:
            meet.arrive("ready")
            meet.arrive("done")


def _train(job: QualityJob) -> dict[str, Any]:
    data = corpus_data(job.corpus)
    cfg = arch_config(job.arch, job.preset, vocab_size=data.tokenizer.vocab_size, block_size=data.block_size,
                      dropout=job.dropout)
    return train_measured(job, cfg, data)


def train_measured(job: QualityJob, cfg: ModelConfig, data: CorpusData,
                   probe: Callable[[DSMini], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train `cfg` on `data` as `job` says (steps, batch, seed, its group's rendezvous): the row of
    one run. `probe(model)` adds what else is measured on the trained model (after training, so it
    is not timed); another section's job passes as long as it has QualityJob's fields."""
    train_cfg = TrainConfig(
        steps=job.steps, batch_size=job.batch_size, warmup_steps=min(100, job.steps // 10),
        eval_every=job.steps, sample_every=0, seed=job.seed, device=job.device,
    )
    trainer = Trainer(cfg, train_cfg, data)
    together = job.meet is None or job.meet.wait("ready")
    started = time.time()  # wall clock, comparable between processes
    seconds, tokens, curve = _curve(trainer, job, data)
    trained = time.time()
    final_val = evaluate(trainer.model, data.val)  # the whole val split
    probed = probe(trainer.model) if probe is not None else {}
    ballast_steps = keep_loaded(job.meet, cfg, train_cfg, data)
    return {
        **{k: v for k, v in asdict(job).items() if k != "meet"},  # its group is in "load"
        **describe(cfg, trainer.model),
        "steps_done": trainer.step,
        "stop_reason": trainer.state.stop_reason,
        "train_seconds": seconds,
        "tokens_per_sec": tokens / seconds if seconds else 0.0,
        "n_train": len(data.train.names),
        "n_val": len(data.val.names),
        "curve_val_names": min(job.curve_val_limit, len(data.val.names)),
        "final_val": final_val,
        "curve": curve,
        "load": {"group": list(job.meet.members) if job.meet else [job.arch], "started_together": together,
                 "train_start": started, "train_end": trained, "loaded_until": time.time(),
                 "ballast_steps": ballast_steps},
        **probed,
    }


def _curve(trainer: Trainer, job: QualityJob, data: CorpusData) -> tuple[float, int, list[dict[str, float]]]:
    """Train to the end: (training seconds, target tokens, a val point every eval_every steps)."""
    seconds, tokens, curve = 0.0, 0, []
    for m in trainer.run():
        seconds += m.tokens / m.tokens_per_sec  # the step itself: evaluation time is not counted
        tokens += m.tokens
        if m.step % job.eval_every == 0 or m.step == job.steps:
            # on CUDA the trainer reads its clock with the step's last kernels still queued; a later
            # step's clock waits for them, but here evaluation would, so they are counted now
            waited = time.perf_counter()
            synchronize(trainer.device)
            seconds += time.perf_counter() - waited
            val = evaluate(trainer.model, data.val, limit=job.curve_val_limit)
            curve.append({"step": m.step, "seconds": seconds, "val": val})
    return seconds, tokens, curve


def keep_loaded(meet: Rendezvous | None, cfg: ModelConfig, train_cfg: TrainConfig, data: CorpusData) -> int:
    """Train a throwaway copy, unrecorded, until every run of the group has finished (or the group's
    timeout), so the runs still training keep the load they started with; the steps taken."""
    if meet is None:
        return 0
    meet.arrive("done")
    deadline = time.monotonic() + meet.timeout_s
    steps = 0
    if not meet.everyone("done"):
        endless = dataclasses.replace(train_cfg, steps=10**9, eval_every=10**9)
        for _ in Trainer(cfg, endless, data).run():
            steps += 1
            if meet.everyone("done") or time.monotonic() > deadline:
                break
    return steps


def point_at(curve: list[dict[str, float]], seconds: float) -> dict[str, float] | None:
    """The curve point a run had reached within `seconds` of training: its last at or before it."""
    reached = [p for p in curve if p["seconds"] <= seconds * (1 + 1e-9)]
    return reached[-1] if reached else None


def val_at(curve: list[dict[str, float]], seconds: float) -> float | None:
    """The val loss a run had reached within `seconds` of training: its last point at or before it."""
    point = point_at(curve, seconds)
    return point["val"] if point else None


def time_to_target(curve: list[dict[str, float]], target: float, inclusive: bool = False) -> dict[str, float] | None:
    """Training seconds and step at which val loss first went under `target` (or reached it, with
    `inclusive`); None if never."""
    for point in curve:
        if point["val"] < target or (inclusive and point["val"] == target):
            return {"seconds": point["seconds"], "step": point["step"]}
    return None


def summarise(runs: dict[str, dict[str, Any]], target: float | None) -> dict[str, Any]:
    """Per corpus: the equal-time budget (the fastest run's total), the target, and per run its
    val at that budget, its best curve point and its time to target; and dense vs full."""
    budget = min(r["train_seconds"] for r in runs.values())
    if target is None:
        target = runs[BASELINE]["final_val"] * TARGET_MARGIN if BASELINE in runs else None
    for r in runs.values():
        r["val_at_budget"] = val_at(r["curve"], budget)
        r["best_curve_val"] = min(p["val"] for p in r["curve"])
        r["time_to_target"] = time_to_target(r["curve"], target) if target is not None else None
    compared = dense_vs_full(runs[BASELINE], runs[COMPARED]) if BASELINE in runs and COMPARED in runs else None
    return {"budget_seconds": budget, "target": target, "runs": runs, "dense_vs_full": compared}


def dense_vs_full(dense: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """The issue's comparison: both runs' val at the same training seconds (the shorter run's total),
    and the seconds each took to reach the dense baseline's final val loss, read on the same val
    names as every curve point (its last point), so the two curves are compared on equal terms."""
    seconds = min(dense["train_seconds"], full["train_seconds"])
    target = dense["curve"][-1]["val"]
    reach = {key: time_to_target(r["curve"], target, inclusive=True) for key, r in (("dense", dense), ("full", full))}
    return {
        "seconds": seconds,
        "at_equal_time": {"dense": point_at(dense["curve"], seconds), "full": point_at(full["curve"], seconds)},
        "target": target,
        "target_names": dense["curve_val_names"],
        "time_to_dense_final": reach,
        "full_first": reach["full"] is not None and reach["full"]["seconds"] < reach["dense"]["seconds"],
        "load": same_load(dense, full),
    }


def same_load(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Did two runs train under the same load? "alone": each ran with nothing else of ours (one run
    at a time); "concurrent": one group, started together, and each one's training lies within the
    span the other kept the machine loaded (clock times from their processes); else "unequal"."""
    la, lb = a["load"], b["load"]
    if la["group"] == [a["arch"]] and lb["group"] == [b["arch"]]:
        return {"kind": "alone", "group": []}

    def within(x: dict[str, Any], y: dict[str, Any]) -> bool:
        return x["train_start"] >= y["train_start"] - START_SLACK_S and x["train_end"] <= y["loaded_until"]

    same = la["group"] == lb["group"] and la["started_together"] and lb["started_together"]
    concurrent = same and within(la, lb) and within(lb, la)
    return {"kind": "concurrent" if concurrent else "unequal", "group": la["group"],
            "start_gap_s": abs(la["train_start"] - lb["train_start"])}
