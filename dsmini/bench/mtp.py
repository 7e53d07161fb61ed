"""Section 5: greedy self-speculative decoding with the MTP modules vs plain greedy decoding.

On each shipped checkpoint, for the first `mtp_prefixes` names of its own val split, the name's
first two characters are the prefix; plain greedy and greedy speculative decoding at every chain
depth 1..mtp_depth (up to k drafts a round, module k drafting the k-th character past the newest)
finish the name (batch 1, KV cache). Speculative decoding must return exactly plain greedy's tokens:
checked for every prefix and depth, and a mismatch fails the section. Wall-clock is the whole set of
names, the decoders taking turns name by name, median over repeats (`time_decoding`, what the MTP
page's speed button runs). Beside it: what each kind of pass costs and the speed-up those costs
allow at each depth (`ceiling`), and all names as one batch.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from dsmini.checkpoint import Checkpoint, checkpoint_validation_set, load_checkpoint
from dsmini.decoding import speculative_generate
from dsmini.probes.mtp import acceptance_stats, ceiling, greedy_matches, pass_costs, run_drafts, time_decoding

from .common import Plan, Progress

CHECKPOINTS = ("en-names", "ru-names", "ru-en-names", "ru-names-mtp2")
PREFIX_CHARS = 2


def run(plan: Plan) -> dict[str, Any]:
    progress = Progress("mtp", len(CHECKPOINTS))
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # the timings below share the machine with this load
    result = {}
    for name in CHECKPOINTS:
        path = plan.checkpoints / name
        result[name] = speculative_vs_greedy(load_checkpoint(path, device=plan.device), plan) if path.exists() else {
            "skipped": f"no checkpoint at {path}"}
        progress.step(name)
    progress.close()
    return {"prefix_chars": PREFIX_CHARS, "repeats": plan.spec_repeats, "cost_calls": _cost_calls(plan),
            "checkpoints": result, "load_average": [load_at_start, [round(x, 2) for x in os.getloadavg()]]}


def _cost_calls(plan: Plan) -> int:
    return 5 if plan.quick else 200


def speculative_vs_greedy(ckpt: Checkpoint, plan: Plan) -> dict[str, Any]:
    """The MTP page's probes (dsmini.probes.mtp) on the val names' first two characters. The
    top-level acceptance, characters per pass and speed-up are the full chain's (every module);
    `chains` holds each chain depth."""
    depth = ckpt.model_config.mtp_depth
    if depth < 1:
        return {"skipped": f"{ckpt.name} has no MTP module"}
    model, tokenizer = ckpt.model, ckpt.tokenizer
    prefixes = [name[:PREFIX_CHARS] for name in checkpoint_validation_set(ckpt.corpus, plan.mtp_prefixes).names]
    speed = time_decoding(model, tokenizer, prefixes, plan.spec_repeats)
    costs = pass_costs(model, calls=_cost_calls(plan))
    chains = [_chain(model, tokenizer, prefixes, k, costs, speed, ckpt.name) for k in range(1, depth + 1)]
    return {
        "prefixes": len(prefixes),
        "mtp_depth": depth,
        "examples": chains[-1].pop("examples"),
        "same_outputs": True,
        **{key: value for key, value in chains[-1].items() if key != "depth"},
        "chains": chains,
        "greedy_ms_per_name": 1000 * speed.plain_seconds / len(prefixes),
        "pass_costs": costs,
        **batched_speed(model, tokenizer, prefixes, plan.spec_repeats),
    }


def _chain(model, tokenizer, prefixes: list[str], depth: int, costs, speed, name: str) -> dict[str, Any]:
    """One chain depth: its drafts (asserted equal to plain greedy), acceptance per draft depth,
    characters per pass, measured speed-up and ceiling."""
    specs = run_drafts(model, tokenizer, prefixes, depth=depth)
    matches = greedy_matches(model, tokenizer, prefixes, specs)
    if matches != len(prefixes):
        raise AssertionError(f"{name}: speculative decoding (depth {depth}) differs from greedy for "
                             f"{len(prefixes) - matches} of {len(prefixes)} prefixes")
    stats = acceptance_stats(specs)
    limit = ceiling(costs, depth, len(specs), stats.generated_tokens, stats.forward_passes)
    return {
        "depth": depth,
        "examples": [s.text for s in specs[:5]],
        "drafts_proposed": stats.overall.proposed,
        "drafts_accepted": stats.overall.accepted,
        "acceptance_rate": stats.overall.rate,
        "acceptance_by_depth": {str(k): {"accepted": t.accepted, "proposed": t.proposed, "rate": t.rate}
                                for k, t in stats.by_depth.items()},
        "generated_tokens": stats.generated_tokens,
        "main_forward_passes": stats.forward_passes,
        "chars_per_forward": stats.chars_per_forward,
        "speculative_ms_per_name": 1000 * speed.chain_seconds[depth - 1] / len(prefixes),
        "speedup": speed.speedup_at(depth),
        "ceiling_speedup": limit.ceiling,
        "bound_speedup": limit.bound,
    }


def batched_speed(model, tokenizer, prefixes: list[str], repeats: int) -> dict[str, float]:
    """All prefixes as one batch: `speculative_generate` (full chain) vs the same loop with drafting
    off (plain greedy of many prefixes), taking turns, median ms per name."""
    spec, plain = [], []
    speculative_generate(model, tokenizer, prefixes[:2])
    for _ in range(repeats):
        for times, draft in ((spec, True), (plain, False)):
            start = time.perf_counter()
            speculative_generate(model, tokenizer, prefixes, draft=draft)
            times.append(time.perf_counter() - start)
    spec_s, plain_s = statistics.median(spec), statistics.median(plain)
    return {"batched_greedy_ms_per_name": 1000 * plain_s / len(prefixes),
            "batched_speculative_ms_per_name": 1000 * spec_s / len(prefixes), "batched_speedup": plain_s / spec_s}
