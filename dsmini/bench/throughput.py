"""Section 1: training throughput at matched active parameters, MoE layer cost, thread sweep.

Tokens/s counts real target tokens (padding excluded, `count_target_tokens`, as the trainer
reports them) over whole optimizer steps of the real training loop (`Trainer.run`: forward,
backward, clipping, AdamW, router-bias update). Every architecture trains on the same batches
(same seed) in the same process, and the architectures take turns in rounds.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Iterator

import torch

from dsmini.config import TrainConfig, preset
from dsmini.data import IGNORE_INDEX, CorpusData, default_block_size, get_batch, load_corpus, prepare_corpus
from dsmini.model import Expert, ForwardOptions, MoE
from dsmini.training import StepMetrics, Trainer

from .archs import ARCHS, BASELINE, active_ffn_dim, arch_config, describe
from .common import Plan, Progress, clock, interleaved, median, ratios_by_round, torch_threads

FULL_VS_DENSE_TARGET = 0.8  # full model tokens/s >= 0.8x the dense baseline's
MOE_OVERHEAD_TARGET = 1.3  # one MoE layer <= 1.3x a dense FFN of equal active size


def run(plan: Plan) -> dict[str, Any]:
    data = corpus_data(plan.data_corpus)
    extra = len([b for b in plan.other_batches if b != plan.batch_size])
    progress = Progress("throughput", (1 + extra) * ((plan.warmup_steps > 0) + 2 * plan.rounds) + plan.rounds)
    result = {
        "corpus": data.corpus_name,
        "batch_size": plan.batch_size,
        "block_size": data.block_size,
        "threads": torch.get_num_threads(),
        "targets": {"full_vs_dense": FULL_VS_DENSE_TARGET, "moe_overhead": MOE_OVERHEAD_TARGET},
        **training_throughput(plan, data, progress),
        "moe_layer": moe_layer_overhead(plan, data, progress),
        "other_batches": {str(b): at_batch(dataclasses.replace(plan, batch_size=b), data, progress)
                          for b in plan.other_batches if b != plan.batch_size},
        "thread_sweep": thread_sweep(plan, data, progress),
    }
    progress.close()
    return result


def corpus_data(name: str, seed: int = 42) -> CorpusData:
    """A corpus split exactly as training splits it (`python -m dsmini train` defaults)."""
    corpus = load_corpus(name)
    return prepare_corpus(corpus.names, default_block_size(corpus.names), seed, corpus_name=corpus.name)


def _training_loop(key: str, plan: Plan, data: CorpusData, **overrides: Any) -> tuple[Trainer, Iterator[StepMetrics]]:
    """A trainer for architecture `key` (ModelConfig `overrides` on top) and its running loop;
    every call draws the same batches."""
    cfg = arch_config(key, plan.preset, vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    cfg = dataclasses.replace(cfg, **overrides)
    steps = plan.warmup_steps + plan.rounds * plan.steps_per_round + 1
    # eval and sampling past the last step we take: the loop measured is pure training
    train_cfg = TrainConfig(steps=steps + 1, batch_size=plan.batch_size, eval_every=steps + 1, sample_every=0,
                            device=plan.device)
    trainer = Trainer(cfg, train_cfg, data)
    return trainer, trainer.run()


def _tokens_per_sec(loop: Iterator[StepMetrics], n_steps: int, device: str) -> float:
    """Wall-clock real target tokens/s over the next `n_steps` optimizer steps of a running loop."""
    start = clock(device)
    tokens = sum(next(loop).tokens for _ in range(n_steps))
    return tokens / (clock(device) - start)


def _ticking(measure, progress: Progress, note: str):
    def wrapped() -> float:
        value = measure()
        progress.step(note)
        return value

    return wrapped


WITHOUT_MTP = "full_without_mtp"  # the full model minus its MTP module: what MTP costs a step


def training_throughput(plan: Plan, data: CorpusData, progress: Progress) -> dict[str, Any]:
    """tokens/s of each architecture, and its ratio to the dense baseline round by round; also the
    full model without its MTP module, in the same rounds, for the MTP block's share of a step."""
    loops, archs = {}, {}
    for arch in ARCHS:
        trainer, loops[arch.key] = _training_loop(arch.key, plan, data)
        archs[arch.key] = {"label": arch.label, **describe(trainer.model_cfg, trainer.model)}
    loops[WITHOUT_MTP] = _training_loop("full", plan, data, mtp_depth=0)[1]
    for loop in loops.values():  # the first steps pay one-off costs (imports, allocator, caches)
        _tokens_per_sec(loop, plan.warmup_steps, plan.device)
    if plan.warmup_steps:
        progress.step("warm-up")
    variants = {key: partial(_tokens_per_sec, loop, plan.steps_per_round, plan.device) for key, loop in loops.items()}
    last = ARCHS[-1].key
    variants[last] = _ticking(variants[last], progress, "training steps")  # one tick per round
    per_round = interleaved(variants, plan.rounds)
    without_mtp = per_round.pop(WITHOUT_MTP)
    for key, values in per_round.items():
        ratios = ratios_by_round(values, per_round[BASELINE])
        archs[key].update(tokens_per_sec=median(values), tokens_per_sec_rounds=values,
                          ratio=median(ratios), ratio_rounds=ratios)
    # tokens/s is steps/s times the same tokens: 1 - full/without is the share of a full step MTP takes
    shares = [1 - f / w for f, w in zip(per_round["full"], without_mtp, strict=True)]
    mtp = {"tokens_per_sec_without_mtp": median(without_mtp), "share_of_full_step": median(shares),
           "share_rounds": shares}
    return {"archs": archs, "mtp_block": mtp}


def at_batch(plan: Plan, data: CorpusData, progress: Progress) -> dict[str, Any]:
    """The two ratios with a target, at `plan.batch_size`: full model vs dense, MoE layer vs dense FFN."""
    trained = training_throughput(plan, data, progress)
    layer = moe_layer_overhead(plan, data, progress)
    return {"full_vs_dense": trained["archs"]["full"]["ratio"], "full_rounds": trained["archs"]["full"]["ratio_rounds"],
            "mtp_share": trained["mtp_block"]["share_of_full_step"], "moe_layer": layer["ratio"],
            "moe_layer_all_rows": layer["ratio_all_rows"], "tokens_per_sec": {
                key: a["tokens_per_sec"] for key, a in trained["archs"].items()}}


def moe_layer_overhead(plan: Plan, data: CorpusData, progress: Progress) -> dict[str, Any]:
    """Forward + backward of one MoE layer vs one dense SwiGLU of equal active size, same input.

    The input is a training batch's worth of random states with that batch's padding mask, as the
    layers meet it in training: the dense FFN runs on every row, the MoE layer on the real tokens
    (padding is never read; `MoE._shared`). `moe_all_rows_ms` is the MoE layer without the mask.
    Also a forward-only breakdown of the MoE layer (router, shared expert, routed experts; of the
    routed part, the experts' own SwiGLUs on rows already sorted vs the bookkeeping around them)
    to show where any overhead goes.
    """
    cfg = preset(plan.preset)
    torch.manual_seed(0)
    moe = MoE(cfg, layer_id=cfg.n_dense_layers).to(plan.device).train()
    dense = Expert(cfg.d_model, active_ffn_dim(cfg)).to(plan.device).train()
    x = torch.randn(plan.batch_size, data.block_size, cfg.d_model, device=plan.device)  # (b, t, d) a batch's worth
    _, targets = get_batch(data.train.x, data.train.y, plan.batch_size, torch.Generator().manual_seed(0))
    real = ForwardOptions(valid=(targets != IGNORE_INDEX).to(plan.device))  # (b, t) as training masks it
    flat = x.flatten(0, 1)  # (n, d)
    rows, counts = _sorted_rows(moe, flat)

    def fwd_bwd(layer, returns_routing: bool, opts: ForwardOptions = ForwardOptions()) -> float:
        start = clock(plan.device)
        for _ in range(plan.layer_calls):
            xi = x.clone().requires_grad_()
            y = layer(xi, opts)[0] if returns_routing else layer(xi)
            y.square().mean().backward()
            layer.zero_grad(set_to_none=True)
        return 1000 * (clock(plan.device) - start) / plan.layer_calls

    @torch.no_grad()
    def forward_ms(fn) -> float:
        start = clock(plan.device)
        for _ in range(plan.layer_calls):
            fn()
        return 1000 * (clock(plan.device) - start) / plan.layer_calls

    variants = {
        "dense_ms": partial(fwd_bwd, dense, False),
        "moe_ms": _ticking(partial(fwd_bwd, moe, True, real), progress, "MoE layer vs dense FFN"),
        "moe_all_rows_ms": partial(fwd_bwd, moe, True),
        "moe_forward_ms": partial(forward_ms, lambda: moe(x)),
        "router_forward_ms": partial(forward_ms, lambda: moe.gate(flat)),
        "shared_forward_ms": partial(forward_ms, lambda: moe.shared_experts(flat)),
        "experts_forward_ms": partial(forward_ms, lambda: moe.experts(rows, counts)),
        "dense_forward_ms": partial(forward_ms, lambda: dense(x)),
    }
    for layer, returns_routing in ((moe, True), (dense, False)):  # warm-up
        fwd_bwd(layer, returns_routing)
    per_round = interleaved(variants, plan.rounds)
    ratios = ratios_by_round(per_round["moe_ms"], per_round["dense_ms"])
    all_rows = ratios_by_round(per_round["moe_all_rows_ms"], per_round["dense_ms"])
    result = {key: median(values) for key, values in per_round.items()}
    result["routed_forward_ms"] = result["moe_forward_ms"] - result["router_forward_ms"] - result["shared_forward_ms"]
    # sorting, gather, weighted scatter, loads and the Routing record: the routed part minus the experts' own work
    result["bookkeeping_forward_ms"] = result["routed_forward_ms"] - result["experts_forward_ms"]
    return {
        "tokens": flat.size(0), "d_model": cfg.d_model, "dense_hidden": active_ffn_dim(cfg),
        "n_routed_experts": cfg.n_routed_experts, "top_k": cfg.top_k, "n_shared_experts": cfg.n_shared_experts,
        "moe_inter_dim": cfg.moe_inter_dim, **result, "ratio": median(ratios), "ratio_rounds": ratios,
        "ratio_all_rows": median(all_rows), "real_tokens": int(real.valid.sum()), "batch_size": plan.batch_size,
        "rounds": per_round,
    }


@torch.no_grad()
def _sorted_rows(moe: MoE, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows sorted by expert, per-expert counts) as `MoE._dispatch` hands them to the experts."""
    indices = moe.gate(flat)[1].flatten()
    order = torch.argsort(indices, stable=True)
    return flat[order // moe.top_k], torch.bincount(indices, minlength=moe.n_experts)


def thread_sweep(plan: Plan, data: CorpusData, progress: Progress) -> dict[str, Any]:
    """Every architecture's training tokens/s at 1 thread vs all cores, alternating round by round
    (`threads` is the full model's, `by_arch` all four). The app's thread policy rests on it
    (dsmini/jobs/slots.py)."""
    threads = list(dict.fromkeys(plan.sweep_threads))
    loops = {(arch.key, n): _training_loop(arch.key, plan, data)[1] for arch in ARCHS for n in threads}

    def measure(key: tuple[str, int]) -> float:
        with torch_threads(key[1]):
            return _tokens_per_sec(loops[key], plan.steps_per_round, plan.device)

    for key in loops:
        with torch_threads(key[1]):
            _tokens_per_sec(loops[key], plan.warmup_steps, plan.device)
    variants = {key: partial(measure, key) for key in loops}
    last = next(reversed(variants))
    variants[last] = _ticking(variants[last], progress, "thread sweep")
    per_round = interleaved(variants, plan.rounds)

    def by_threads(arch: str) -> dict[str, Any]:
        base = per_round[(arch, threads[0])]
        return {
            str(n): {"tokens_per_sec": median(v), "rounds": v, "ratio": median(ratios_by_round(v, base))}
            for n, v in ((n, per_round[(arch, n)]) for n in threads)
        }

    by_arch = {arch.key: by_threads(arch.key) for arch in ARCHS}
    return {"arch": "full", "threads": by_arch["full"], "by_arch": by_arch}
