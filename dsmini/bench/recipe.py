"""Section 8: the training recipe, judged by the clock. Which recipe gives the `small` preset the best
val loss in the same *seconds*, and which in the same *steps*?

Every run trains the full model (preset `small`: MLA + MoE + MTP) on a corpus split exactly as
`python -m dsmini train` splits it, with `train`'s dropout rule (`config.RECIPES["cli"]`), and
evaluates on the whole val split `evals` times along its schedule. A row's *best* is the lowest of
those points (what a best-val checkpoint keeps), *final* the last one.

The clock. First, in this process, every recipe's training step is timed side by side
(`calibrate`: interleaved rounds of real `Trainer` steps, one torch thread), and so is the share
of each step its optimizers take (their `step()`, from optimizer hooks). The reference recipe
(`adamw`, the shipped checkpoints') gets `plan.recipe_steps` steps; every other recipe gets the
steps that cost the same seconds at its measured speed, with its cosine schedule fitted to them, so
each run ends its schedule when the budget ends: that is *equal wall-clock*. Each recipe also
trains the reference's step count: *equal steps*. Losses do not depend on the load; the budget's
seconds come from the side-by-side timing, not from the runs, which go `workers` at a time in
worker processes with one torch thread each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from dsmini import config
from dsmini.config import TrainConfig
from dsmini.data import load_corpus
from dsmini.training import Trainer, evaluate

from .common import Plan, Progress, interleaved, map_jobs, median
from .throughput import corpus_data

REFERENCE = "adamw"
EQUAL_TIME, EQUAL_STEPS = "time", "steps"


@dataclass(frozen=True)
class Recipe:
    key: str
    label: str
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields set on top of TrainConfig()


RECIPES: tuple[Recipe, ...] = (
    Recipe(REFERENCE, "AdamW, lr 3e-3, batch 64 (the shipped checkpoints')", {"optimizer": "adamw"}),
    Recipe("muon", "Muon on every hidden matrix, routed experts included, + AdamW", {"optimizer": "muon"}),
    Recipe("muon_dense", "Muon on the hidden matrices but the routed experts (AdamW for them)",
           {"optimizer": "muon", "muon_params": "dense"}),
    Recipe("adamw_batch_128", "AdamW, batch 128", {"optimizer": "adamw", "batch_size": 128}),
)


@dataclass(frozen=True)
class RecipeJob:
    corpus: str
    recipe: Recipe
    steps: int
    budget: str  # EQUAL_TIME or EQUAL_STEPS
    evals: int  # val points along the schedule
    preset: str
    device: str = "cpu"

    def train_config(self) -> TrainConfig:
        """The recipe with its schedule (warm-up, cosine) fitted to this run's steps."""
        return recipe_config(self.recipe, self.device, self.steps, warmup_steps=min(100, self.steps // 10))


def recipe_config(recipe: Recipe, device: str, steps: int, **more: Any) -> TrainConfig:
    """`recipe` on top of TrainConfig(); evaluation and samples left to the caller."""
    return TrainConfig(**{**recipe.train, "steps": steps, "eval_every": steps + 1, "sample_every": 0,
                          "device": device, **more})


def _recipes(plan: Plan) -> list[Recipe]:
    return [r for r in RECIPES if plan.recipes is None or r.key in plan.recipes]


def run(plan: Plan) -> dict[str, Any]:
    recipes = _recipes(plan)
    progress = Progress("recipe", len(plan.recipe_corpora) * (2 * len(recipes) - 1) + len(plan.recipe_corpora))
    speeds, todo = {}, []
    for corpus in plan.recipe_corpora:
        speeds[corpus] = calibrate(corpus, recipes, plan)
        progress.step(f"{corpus} timed")
        todo += jobs(corpus, recipes, speeds[corpus], plan)
    runs = map_jobs(train_recipe, todo, plan.workers, progress, lambda j: f"{j.corpus} {j.recipe.key} {j.budget}")
    progress.close()
    corpora = {}
    for corpus in plan.recipe_corpora:
        rows = {r.key: {"label": r.label, "train": r.train, **speeds[corpus][r.key]} for r in recipes}
        for run_ in (x for x in runs if x["corpus"] == corpus):
            rows[run_["recipe"]][run_["budget"]] = run_
            if run_["recipe"] == REFERENCE:  # its equal-time run is its equal-steps run
                rows[REFERENCE][EQUAL_STEPS if run_["budget"] == EQUAL_TIME else EQUAL_TIME] = run_
        corpora[corpus] = {"rows": rows, "budget_seconds": plan.recipe_steps * speeds[corpus][REFERENCE]["step_s"],
                           **{f"winner_{b}": min(rows, key=lambda k: rows[k][b]["best_val"])
                              for b in (EQUAL_TIME, EQUAL_STEPS)}}
    return {"preset": plan.preset, "workers": plan.workers, "reference_steps": plan.recipe_steps,
            "evals": plan.recipe_evals, "corpora": corpora}


def jobs(corpus: str, recipes: list[Recipe], speeds: dict[str, dict[str, float]], plan: Plan) -> list[RecipeJob]:
    """The reference once, every other recipe at equal steps and at the steps its speed buys in the
    reference's seconds."""
    budget = plan.recipe_steps * speeds[REFERENCE]["step_s"]
    todo = []
    for r in recipes:
        todo.append(RecipeJob(corpus, r, max(1, round(budget / speeds[r.key]["step_s"])), EQUAL_TIME, plan.recipe_evals,
                              plan.preset, plan.device))
        if r.key != REFERENCE:
            todo.append(RecipeJob(corpus, r, plan.recipe_steps, EQUAL_STEPS, plan.recipe_evals, plan.preset,
                                  plan.device))
    return todo


def _trainer(corpus: str, train_cfg: TrainConfig, preset_name: str) -> Trainer:
    """The full model of `preset_name` as `train` builds it for `corpus` (its dropout rule), on `train_cfg`."""
    data = corpus_data(corpus)
    cfg = config.RECIPES["cli"].model(len(load_corpus(corpus).names), preset_name,
                                      vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    return Trainer(cfg, train_cfg, data)


def calibrate(corpus: str, recipes: list[Recipe], plan: Plan) -> dict[str, dict[str, float]]:
    """Per recipe: seconds per optimizer step and the share of it in the optimizers' `step()`,
    interleaved in rounds in this process (the machine's drift hits every recipe alike)."""
    loops, optimizer_seconds = {}, {}
    for r in recipes:
        trainer = _trainer(corpus, recipe_config(r, plan.device, 10**9), plan.preset)
        optimizer_seconds[r.key] = _time_optimizers(trainer)
        loops[r.key] = trainer.run()
        for _ in range(plan.warmup_steps):
            next(loops[r.key])

    def seconds_per_step(key: str) -> float:
        optimizer_seconds[key][0] = 0.0
        start = time.perf_counter()
        for _ in range(plan.steps_per_round):
            next(loops[key])
        elapsed = time.perf_counter() - start
        return elapsed / plan.steps_per_round, optimizer_seconds[key][0] / elapsed

    per_round = interleaved({r.key: partial(seconds_per_step, r.key) for r in recipes}, plan.rounds)
    return {key: {"step_s": median([s for s, _ in v]), "optimizer_share": median([o for _, o in v]),
                  "step_s_rounds": [s for s, _ in v]} for key, v in per_round.items()}


def _time_optimizers(trainer: Trainer) -> list[float]:
    """A one-item list the trainer's optimizers add their `step()` seconds to (optimizer hooks)."""
    total = [0.0]
    started = {}
    for name, opt in trainer.optimizers.items():
        opt.register_step_pre_hook(lambda *_, name=name: started.__setitem__(name, time.perf_counter()))
        opt.register_step_post_hook(
            lambda *_, name=name: total.__setitem__(0, total[0] + time.perf_counter() - started[name]))
    return total


def train_recipe(job: RecipeJob) -> dict[str, Any]:
    """One run: its val curve on the whole val split, best and final points."""
    train_cfg = job.train_config()
    trainer = _trainer(job.corpus, train_cfg, job.preset)
    data, every = trainer.data, max(1, job.steps // job.evals)
    curve = []
    for m in trainer.run():
        if m.step % every == 0 or m.step == train_cfg.steps:
            curve.append({"step": m.step, "val": evaluate(trainer.model, data.val)})
    best = min(curve, key=lambda p: p["val"])
    return {
        "corpus": job.corpus, "recipe": job.recipe.key, "budget": job.budget, "steps": job.steps,
        "dropout": trainer.model_cfg.dropout, "n_train": len(data.train.names), "n_val": len(data.val.names),
        "best_val": best["val"], "best_step": best["step"], "final_val": curve[-1]["val"], "curve": curve,
        "finished": time.time(),
    }
