"""Section 2: validation loss after the same number of steps and after the same wall-clock time.

Each (corpus, architecture) run trains with the shipped checkpoints' recipe (AdamW, lr 3e-3,
batch 64, cosine schedule; dropout 0.1 on en-names, which overfits without it) on the corpus split
exactly as training splits it (`prepare_corpus(names, default_block_size(names), seed=42)`).
Every `eval_every` steps the run records its training seconds so far (evaluation excluded) and
its val loss on a fixed subset of the val split (the whole split when it is small); the number
after the last step is on the whole val split (`dsmini.train.evaluate`).

Runs may go two at a time in worker processes (one torch thread each): every run then shares the
machine with exactly one other, so times compare fairly, but they are slower than a lone run's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..config import TrainConfig
from ..train import Trainer, evaluate
from .archs import ARCHS, BASELINE, arch_config, describe
from .common import Plan, Progress, map_jobs
from .throughput import corpus_data

DROPOUT = {"en-names": 0.1}  # as the shipped en-names checkpoint; every other corpus trains without
TARGET_MARGIN = 1.05  # default time-to-target threshold: the dense baseline's final val loss + 5%
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
    seed: int = 1337


def run(plan: Plan) -> dict[str, Any]:
    jobs = [
        QualityJob(corpus, arch.key, plan.preset, plan.steps_for(corpus), plan.eval_every, plan.curve_val_limit,
                   plan.batch_size, DROPOUT.get(corpus, 0.0), plan.device)
        for corpus in plan.corpora
        for arch in ARCHS
    ]
    progress = Progress("quality", len(jobs))
    runs = map_jobs(train_one, jobs, plan.workers, progress, lambda job: f"{job.corpus} {job.arch}")
    progress.close()
    corpora = {}
    for corpus in plan.corpora:
        by_arch = {r["arch"]: r for r in runs if r["corpus"] == corpus}
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
    data = corpus_data(job.corpus)
    cfg = arch_config(job.arch, job.preset, vocab_size=data.tokenizer.vocab_size, block_size=data.block_size,
                      dropout=job.dropout)
    train_cfg = TrainConfig(
        steps=job.steps, batch_size=job.batch_size, warmup_steps=min(100, job.steps // 10),
        eval_every=job.steps, sample_every=0, seed=job.seed, device=job.device,
    )
    trainer = Trainer(cfg, train_cfg, data)
    seconds, tokens, curve = 0.0, 0, []
    for m in trainer.run():
        seconds += m.tokens / m.tokens_per_sec  # the step itself: evaluation time is not counted
        tokens += m.tokens
        if m.step % job.eval_every == 0 or m.step == job.steps:
            val = evaluate(trainer.model, data.val, limit=job.curve_val_limit)
            curve.append({"step": m.step, "seconds": seconds, "val": val})
    return {
        **asdict(job),
        **describe(cfg, trainer.model),
        "steps_done": trainer.step,
        "stop_reason": trainer.state.stop_reason,
        "train_seconds": seconds,
        "tokens_per_sec": tokens / seconds if seconds else 0.0,
        "n_train": len(data.train.names),
        "n_val": len(data.val.names),
        "curve_val_names": min(job.curve_val_limit, len(data.val.names)),
        "final_val": evaluate(trainer.model, data.val),  # the whole val split
        "curve": curve,
    }


def val_at(curve: list[dict[str, float]], seconds: float) -> float | None:
    """The val loss a run had reached within `seconds` of training: its last point at or before it."""
    reached = [p["val"] for p in curve if p["seconds"] <= seconds * (1 + 1e-9)]
    return reached[-1] if reached else None


def time_to_target(curve: list[dict[str, float]], target: float) -> dict[str, float] | None:
    """Training seconds and step at which val loss first went under `target`; None if never."""
    for point in curve:
        if point["val"] < target:
            return {"seconds": point["seconds"], "step": point["step"]}
    return None


def summarise(runs: dict[str, dict[str, Any]], target: float | None) -> dict[str, Any]:
    """Per corpus: the equal-time budget (the fastest run's total), the target, and per run its
    val at that budget, its best curve point and its time to target."""
    budget = min(r["train_seconds"] for r in runs.values())
    if target is None:
        target = runs[BASELINE]["final_val"] * TARGET_MARGIN if BASELINE in runs else None
    for r in runs.values():
        r["val_at_budget"] = val_at(r["curve"], budget)
        r["best_curve_val"] = min(p["val"] for p in r["curve"])
        r["time_to_target"] = time_to_target(r["curve"], target) if target is not None else None
    return {"budget_seconds": budget, "target": target, "runs": runs}
