"""Section 7: do the routed experts specialise by domain, which router makes them, and how soon.

All on `ru-en-names` (Russian and US names, domain = language), split as training splits it
(seed 42), with I(domain; expert) in bits per MoE layer (`probes.domains`: 0 = the expert says
nothing about the language, 1 bit = it says all), always beside the same config untrained:

  routers    the preset trained N steps per router and seed, runs in parallel worker processes
             (1 torch thread each, as the quality section): MI on the first val names (as the
             Experts page routes them), val loss on the whole val split, load imbalance, seconds
  ablation   the shipped `ru-en-names` checkpoint: drop a domain's top-2 experts (by relative
             load) in one MoE layer or all of them, and compare the loss increase on that domain
             with the other's; the same with rerouting, which lets the router pick stand-ins
  page run   a run with the Train page's defaults, timed from Start (corpus split and model build
             included) to the first eval point where some layer's MI reaches 5x its untrained value
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from dsmini.checkpoint import checkpoint_validation_set, load_checkpoint
from dsmini.config import RECIPES, TrainConfig, preset
from dsmini.data import CharTokenizer, CorpusData, default_block_size, load_corpus, prepare_corpus
from dsmini.model import DSMini
from dsmini.probes import DOMAIN_PROBE_NAMES, live_domain_mi
from dsmini.probes.ablation import ablate, domain_top_experts
from dsmini.probes.specialisation import ExpertAnalysis, expert_analysis
from dsmini.training import Trainer, evaluate

from .common import Plan, Progress, map_jobs
from .machine import load_average

CORPUS = "ru-en-names"
SPLIT_SEED = 42
AUX_LOSS_COEF = 0.01  # the two softmax routers need a balancing loss; sigmoid_bias balances with its bias
ROUTERS = (("sigmoid_bias", 0.0), ("softmax_topk", AUX_LOSS_COEF), ("noisy_topk", AUX_LOSS_COEF))
TOP_N = 2  # experts per layer an ablation drops: a domain's top-2, as the Experts page's one click
ABLATION_KINDS = ("drop", "reroute")
SPECIALISED = 5.0  # "specialised": some layer's MI >= this many times its untrained value
TIME_TARGET_S = 90.0  # Start to specialised on this 2-core CPU
# the Train page's recipe (`config.RECIPES["page"]`): its steps and eval_every are in the Plan, and PAGE_TRAIN
# holds the rest the report names
PAGE = RECIPES["page"].train
PAGE_TRAIN = {key: getattr(PAGE, key) for key in ("lr", "batch_size", "optimizer", "sample_every", "warmup_steps")}
PAGE_EVAL_BATCHES = 4  # val names per evaluation / 256, as the section's numbers were measured (the page reads 1)


def run(plan: Plan) -> dict[str, Any]:
    load_start, start = load_average(), time.perf_counter()
    progress = Progress("specialise", 1 + len(ROUTERS) * len(plan.shootout_seeds) + 1)
    page = page_run(plan)  # first and alone: it is timed against a wall-clock target
    progress.step("Train page run")
    shootout = router_shootout(plan, progress)
    ablation = shipped_ablation(plan)
    progress.step("shipped checkpoint")
    progress.close()
    return {"corpus": CORPUS, "preset": plan.preset, "page_run": page, "routers": shootout, "ablation": ablation,
            "load_at_start": load_start, "load_at_end": load_average(), "seconds": time.perf_counter() - start}


def domain_data(name: str = CORPUS) -> CorpusData:
    """A labelled corpus split exactly as the Train page and `python -m dsmini train` split it."""
    corpus = load_corpus(name)
    return prepare_corpus(corpus.names, default_block_size(corpus.names), SPLIT_SEED, corpus_name=corpus.name,
                          domains=corpus.domains, builtin=corpus.builtin)


def per_layer(values: dict[int, float], layers: list[int]) -> list[float]:
    """A per-layer dict as a list in layer order (JSON keeps list order; dict keys become strings)."""
    return [values[layer] for layer in layers]


# ---------------------------------------------------------------------------------------------
# Router shoot-out


@dataclass(frozen=True)
class RouterJob:
    """One training run of the shoot-out; plain fields so it pickles into a worker process."""

    router: str
    aux_loss_coef: float
    seed: int
    preset: str
    steps: int
    batch_size: int
    val_names: int
    device: str = "cpu"


def router_shootout(plan: Plan, progress: Progress) -> dict[str, Any]:
    jobs = [RouterJob(router, aux, seed, plan.preset, plan.shootout_steps, plan.batch_size, plan.shootout_val_names,
                      plan.device) for router, aux in ROUTERS for seed in plan.shootout_seeds]
    runs = map_jobs(train_router, jobs, plan.workers, progress, lambda job: f"{job.router} seed {job.seed}")
    summaries = {router: summarise_router([r for r in runs if r["router"] == router]) for router, _ in ROUTERS}
    return {"steps": plan.shootout_steps, "seeds": list(plan.shootout_seeds), "workers": plan.workers,
            "batch_size": plan.batch_size, "runs": runs, "summary": summaries, "verdict": router_verdict(summaries)}


def train_router(job: RouterJob) -> dict[str, Any]:
    """Train one router from one seed; what its experts learned about the domains, and at what cost."""
    data = domain_data()
    cfg = preset(job.preset, vocab_size=data.tokenizer.vocab_size, block_size=data.block_size, router=job.router,
                 aux_loss_coef=job.aux_loss_coef)
    train_cfg = TrainConfig(steps=job.steps, batch_size=job.batch_size, warmup_steps=min(100, job.steps // 10),
                            eval_every=job.steps, sample_every=0, seed=job.seed, split_seed=SPLIT_SEED,
                            device=job.device)
    trainer = Trainer(cfg, train_cfg, data)
    seconds = sum(m.tokens / m.tokens_per_sec for m in trainer.run())  # the steps only, evaluation excluded
    analysis = expert_analysis(trainer.model, data.tokenizer, data.val.names, data.val.domains, job.val_names)
    report, layers = analysis.domains, analysis.domains.layers
    return {
        **asdict(job),
        "steps_done": trainer.step,
        "train_seconds": seconds,
        "val_loss": evaluate(trainer.model, data.val),  # the whole val split
        "n_train": len(data.train.names),
        "n_val": len(data.val.names),
        "routed_names": len(analysis.names),
        "domains": report.domains,
        "layers": layers,
        "mi": per_layer(report.mi, layers),
        "mi_initial": per_layer(report.mi_initial, layers),
        "mi_ceiling": report.mi_ceiling,
        "imbalance": imbalance(analysis),
    }


def imbalance(analysis: ExpertAnalysis) -> list[float]:
    """Max / mean expert load per MoE layer on the routed names (1 = perfectly even)."""
    load = analysis.letters.load
    return [max(load[layer]) * len(load[layer]) for layer in analysis.letters.layers]


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def summarise_router(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and min-max over seeds: MI per layer, best-layer MI, untrained MI, val loss, imbalance."""
    layers = runs[0]["layers"]
    best = [max(range(len(layers)), key=lambda i: r["mi"][i]) for r in runs]  # each run's best layer
    return {
        "aux_loss_coef": runs[0]["aux_loss_coef"],
        "layers": layers,
        "mi": [spread([r["mi"][i] for r in runs]) for i in range(len(layers))],
        "mi_initial": [spread([r["mi_initial"][i] for r in runs]) for i in range(len(layers))],
        "best_mi": spread([r["mi"][i] for r, i in zip(runs, best)]),
        "best_mi_initial": spread([r["mi_initial"][i] for r, i in zip(runs, best)]),
        "best_layers": [layers[i] for i in best],
        "val_loss": spread([r["val_loss"] for r in runs]),
        "max_imbalance": spread([max(r["imbalance"]) for r in runs]),
        "train_seconds": spread([r["train_seconds"] for r in runs]),
    }


def router_verdict(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The router whose best layer's MI is highest on average, and over which others that holds on
    every seed (`separated`: its lowest seed above that router's highest) rather than on average only."""
    ranked = sorted(summaries, key=lambda r: summaries[r]["best_mi"]["mean"], reverse=True)
    top = ranked[0]
    separated = {r: summaries[top]["best_mi"]["min"] > summaries[r]["best_mi"]["max"] for r in ranked[1:]}
    return {"ranked": ranked, "top": top, "separated": separated, "clear": all(separated.values())}


# ---------------------------------------------------------------------------------------------
# Ablation on the shipped checkpoint


def shipped_ablation(plan: Plan) -> dict[str, Any]:
    """Every (kind, domain, layer or all layers) ablation of the domain's top experts, or why none ran."""
    path = plan.checkpoints / CORPUS
    if not path.exists():
        return {"skipped": f"no checkpoint at {path}: the ablations need the shipped `{CORPUS}` model"}
    ckpt = load_checkpoint(path, device=plan.device)
    labelled = checkpoint_validation_set(ckpt.corpus, plan.shootout_val_names)
    analysis = expert_analysis(ckpt.model, ckpt.tokenizer, labelled.names, labelled.domains, plan.shootout_val_names)
    report = analysis.domains
    if report is None:
        return {"skipped": f"`{CORPUS}` checkpoint has no MoE layer or no domain labels"}
    choices = [[layer] for layer in report.layers] + ([report.layers] if len(report.layers) > 1 else [])
    rows = [ablation_row(ckpt.model, ckpt.tokenizer, analysis, domain, layers, kind)
            for kind in ABLATION_KINDS for domain in report.domains for layers in choices]
    return {"checkpoint": CORPUS, "router": ckpt.model_config.router, "steps": ckpt.step,
            "val_loss": ckpt.summary.get("val_loss"), "routed_names": len(analysis.names), "domains": report.domains,
            "layers": report.layers,
            "mi": per_layer(report.mi, report.layers), "mi_initial": per_layer(report.mi_initial, report.layers),
            "top_n": TOP_N, "rows": rows}


def ablation_row(model: DSMini, tokenizer: CharTokenizer, analysis: ExpertAnalysis, domain: str, layers: list[int],
                 kind: str) -> dict[str, Any]:
    spec = domain_top_experts(analysis.domains, domain, layers, TOP_N, kind=kind)
    result = ablate(model, tokenizer, analysis.names, analysis.routed, spec, analysis.name_domains)
    return {"kind": kind, "domain": domain, "layers": list(layers), "experts": [list(e) for e in spec.experts],
            "delta_domain": result.domains.delta_of(domain), "delta_other": result.others_delta(domain),
            "ratio": result.damage_ratio(domain), "mean_on": result.mean_on, "mean_off": result.mean_off}


# ---------------------------------------------------------------------------------------------
# A run with the Train page's defaults: how soon do the experts specialise?


def page_train_config(plan: Plan) -> TrainConfig:
    """The Train page's recipe with the plan's steps and evaluations, on the section's split."""
    return dataclasses.replace(PAGE, steps=plan.page_steps, eval_every=plan.page_eval_every,
                               eval_batches=PAGE_EVAL_BATCHES, split_seed=SPLIT_SEED, device=plan.device)


def page_run(plan: Plan) -> dict[str, Any]:
    """Wall clock from Start to the first eval point where some layer's I(domain; expert) >= SPECIALISED x
    its untrained value, both as the trainer measures them for the page's live curve
    (`StepMetrics.domain_mi` / `domain_mi_initial`; that routing is in the clock too)."""
    import torch._dynamo  # noqa: F401  the app imports it at startup (`jobs.prepare_for_training`), not on Start

    start = time.perf_counter()
    data = domain_data()
    cfg = preset(plan.preset, vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    trainer = Trainer(cfg, page_train_config(plan), data, domain_mi=live_domain_mi)
    built = time.perf_counter() - start
    curve, initial, reached = [], [], None
    for m in trainer.run():
        if m.domain_mi is None:  # eval points only, as the page's live curve
            continue
        curve.append({"step": m.step, "seconds": time.perf_counter() - start, "val": m.val_loss, "mi": m.domain_mi})
        initial = m.domain_mi_initial
        if any(mi >= SPECIALISED * mi0 for mi, mi0 in zip(m.domain_mi, initial)):
            reached = curve[-1]
            break
    return {"preset": plan.preset, "steps": plan.page_steps, "eval_every": plan.page_eval_every,
            "train_config": PAGE_TRAIN, "routed_names": min(DOMAIN_PROBE_NAMES, len(data.val.names)),
            "router": cfg.router, "layers": list(cfg.moe_layer_ids),
            "mi_initial": initial, "factor": SPECIALISED, "target_seconds": TIME_TARGET_S, "build_seconds": built,
            "curve": curve, "reached": reached}
