"""Section 8: the training recipe, swept. Which settings give the `small` preset its best val loss?

Every run trains the full model (preset `small`: MLA + MoE + MTP) on a corpus split exactly as
`python -m dsmini train` splits it, and evaluates on the whole val split every `eval_every`
steps (`dsmini.train.evaluate`). A row's *best* is the lowest of those points (what a best-val
checkpoint keeps), *final* the last one. `shipped` is the recipe the shipped checkpoints were
trained with; each other row changes one thing from it (dropout, weight decay, learning rate and
schedule length, batch size, optimizer), and `combined` puts the single changes that helped
together. Runs go `workers` at a time in worker processes with one torch thread each: losses do
not depend on the load, the seconds do (the report notes it).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import TrainConfig, preset
from ..train import Trainer, evaluate
from .common import Plan, Progress, map_jobs
from .throughput import corpus_data

SHIPPED_DROPOUT = {"en-names": 0.1}  # the shipped checkpoints: en-names 0.1, ru-names none


@dataclass(frozen=True)
class Recipe:
    key: str
    label: str
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields changed from shipped
    dropout: float | None = None  # None: the shipped one for the corpus


RECIPES: tuple[Recipe, ...] = (
    Recipe("shipped", "shipped: AdamW lr 3e-3, wd 0.01, batch 64, cosine over 3,000 steps"),
    Recipe("dropout_0.2", "dropout 0.2", dropout=0.2),
    Recipe("dropout_0.3", "dropout 0.3", dropout=0.3),
    Recipe("wd_0.1", "weight decay 0.1", train={"weight_decay": 0.1}),
    Recipe("lr_1.5e-3", "lr 1.5e-3", train={"lr": 1.5e-3}),
    Recipe("steps_6000", "cosine over 6,000 steps", train={"steps": 6000}),
    Recipe("batch_128", "batch 128", train={"batch_size": 128}),
    Recipe("muon", "Muon (2-D hidden weights) + AdamW", train={"optimizer": "muon"}),
    Recipe("combined", "dropout 0.2, wd 0.1, cosine over 6,000 steps", train={"weight_decay": 0.1, "steps": 6000},
           dropout=0.2),
)


@dataclass(frozen=True)
class RecipeJob:
    corpus: str
    recipe: Recipe
    steps: int  # the shipped recipe's steps; a recipe may change it
    eval_every: int
    preset: str
    device: str = "cpu"

    def train_config(self) -> TrainConfig:
        settings = {"steps": self.steps, **self.recipe.train}
        return TrainConfig(warmup_steps=min(100, settings["steps"] // 10), eval_every=settings["steps"] + 1,
                           sample_every=0, device=self.device, **settings)

    def dropout(self) -> float:
        return SHIPPED_DROPOUT.get(self.corpus, 0.0) if self.recipe.dropout is None else self.recipe.dropout


def jobs(plan: Plan) -> list[RecipeJob]:
    recipes = [r for r in RECIPES if plan.recipes is None or r.key in plan.recipes]
    return [RecipeJob(corpus, r, plan.recipe_steps, plan.recipe_eval_every, plan.preset, plan.device)
            for corpus in plan.recipe_corpora for r in recipes]


def run(plan: Plan) -> dict[str, Any]:
    todo = jobs(plan)
    progress = Progress("recipe", len(todo))
    runs = map_jobs(train_recipe, todo, plan.workers, progress, lambda j: f"{j.corpus} {j.recipe.key}")
    progress.close()
    corpora = {}
    for corpus in plan.recipe_corpora:
        rows = {r["recipe"]: r for r in runs if r["corpus"] == corpus}
        shipped = rows.get("shipped")
        for row in rows.values():
            row["best_vs_shipped"] = row["best_val"] - shipped["best_val"] if shipped else None
        corpora[corpus] = {"runs": rows, "winner": min(rows.values(), key=lambda r: r["best_val"])["recipe"]}
    return {"preset": plan.preset, "workers": plan.workers, "eval_every": plan.recipe_eval_every,
            "corpora": corpora}


def train_recipe(job: RecipeJob) -> dict[str, Any]:
    """One run: its val curve on the whole val split, best and final points, training seconds."""
    data = corpus_data(job.corpus)
    train_cfg = job.train_config()
    cfg = preset(job.preset, vocab_size=data.tokenizer.vocab_size, block_size=data.block_size,
                 dropout=job.dropout())
    trainer = Trainer(cfg, train_cfg, data)
    curve, seconds = [], 0.0
    for m in trainer.run():
        seconds += m.tokens / m.tokens_per_sec  # the step itself, evaluation not counted
        if m.step % job.eval_every == 0 or m.step == train_cfg.steps:
            curve.append({"step": m.step, "seconds": seconds, "val": evaluate(trainer.model, data.val)})
    best = min(curve, key=lambda p: p["val"])
    return {
        "corpus": job.corpus, "recipe": job.recipe.key, "label": job.recipe.label,
        "train": dataclasses.asdict(train_cfg), "dropout": job.dropout(),
        "n_train": len(data.train.names), "n_val": len(data.val.names),
        "best_val": best["val"], "best_step": best["step"], "final_val": curve[-1]["val"],
        "train_seconds": seconds, "finished": time.time(), "curve": curve,
    }
