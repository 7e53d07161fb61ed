"""Section 5: greedy self-speculative decoding with the MTP head vs plain greedy decoding.

On each shipped checkpoint, for the first `mtp_prefixes` names of its own val split, the name's
first two characters are the prefix; both decoders finish the name greedily (batch 1, KV cache).
Greedy speculative decoding must return exactly plain greedy's tokens: checked for every prefix,
and a mismatch fails the section. Wall-clock is the whole set of names, the two decoders taking
turns, median over repeats (`time_decoding`, what the MTP page's speed button runs). Beside it: what
each kind of pass costs and the speed-up those costs allow (`ceiling`), and all names as one batch.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

from ..checkpoint import Checkpoint, load_checkpoint
from ..corpus_ref import checkpoint_validation_set
from ..data import BOUNDARY_ID
from ..generate import inference, prefill
from ..model import DSMini
from ..probes.mtp import greedy_matches, run_drafts, time_decoding
from ..speculative import speculative_generate
from .common import Plan, Progress, clock

CHECKPOINTS = ("en-names", "ru-names", "ru-en-names")
PREFIX_CHARS = 2


def run(plan: Plan) -> dict[str, Any]:
    progress = Progress("mtp", len(CHECKPOINTS))
    result = {}
    for name in CHECKPOINTS:
        path = plan.checkpoints / name
        result[name] = speculative_vs_greedy(load_checkpoint(path, device=plan.device), plan) if path.exists() else {
            "skipped": f"no checkpoint at {path}"}
        progress.step(name)
    progress.close()
    return {"prefix_chars": PREFIX_CHARS, "repeats": plan.spec_repeats, "checkpoints": result}


def speculative_vs_greedy(ckpt: Checkpoint, plan: Plan) -> dict[str, Any]:
    """The MTP page's probes (dsmini.probes.mtp) on the val names' first two characters."""
    if ckpt.model_config.mtp_depth < 1:
        return {"skipped": f"{ckpt.name} has no MTP module"}
    model, tokenizer = ckpt.model, ckpt.tokenizer
    prefixes = [name[:PREFIX_CHARS] for name in checkpoint_validation_set(ckpt.corpus, plan.mtp_prefixes).names]
    specs = run_drafts(model, tokenizer, prefixes)
    matches = greedy_matches(model, tokenizer, prefixes, specs)
    if matches != len(prefixes):
        raise AssertionError(f"{ckpt.name}: speculative decoding differs from greedy for "
                             f"{len(prefixes) - matches} of {len(prefixes)} prefixes")
    speed = time_decoding(model, tokenizer, prefixes, plan.spec_repeats)
    proposed = sum(s.drafts_proposed for s in specs)
    generated = sum(s.generated_tokens for s in specs)
    return {
        "prefixes": len(prefixes),
        "examples": [s.text for s in specs[:5]],
        "same_outputs": True,
        "drafts_proposed": proposed,
        "drafts_accepted": sum(s.drafts_accepted for s in specs),
        "acceptance_rate": sum(s.drafts_accepted for s in specs) / proposed if proposed else 0.0,
        "generated_tokens": generated,
        "main_forward_passes": sum(s.main_forward_passes for s in specs),
        "chars_per_forward": generated / sum(s.main_forward_passes for s in specs),
        "greedy_ms_per_name": 1000 * speed.plain_seconds / len(prefixes),
        "speculative_ms_per_name": 1000 * speed.speculative_seconds / len(prefixes),
        "speedup": speed.speedup,
        **ceiling(pass_costs(model, calls=5 if plan.quick else 200), len(prefixes), generated, sum(s.main_forward_passes for s in specs)),
        **batched_speed(model, tokenizer, prefixes, plan.spec_repeats),
    }


def _interleaved_ms(fns: dict[str, Callable[[], object]], calls: int, device, rounds: int = 5) -> dict[str, float]:
    """Median ms per call of each function, timed in turns (A B C A B C ...) so load hits all alike;
    the clock waits for `device` (a GPU queues its kernels)."""
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            start = clock(device)
            for _ in range(calls):
                fn()
            times[key].append((clock(device) - start) / calls)
    return {key: 1000 * statistics.median(t) for key, t in times.items()}


def pass_costs(model: DSMini, calls: int = 200) -> dict[str, float]:
    """ms of the passes decoding is made of, at batch 1: the prefill of `[B]` + 2 characters, a main
    decode pass with 1 new token (plain greedy) and with 2 (a verify: x_n and the draft), one MTP step."""
    tokens = torch.tensor([[BOUNDARY_ID, 1, 2, 3, 4]], device=model.head.weight.device)
    with inference(model):
        cache = model.new_cache(1, with_mtp=True)
        out = prefill(model, tokens[:, :3], cache, absorb=True)

        def main(s: int) -> None:
            cache.truncate(3)
            model(tokens[:, 3 : 3 + s], cache=cache, absorb=True)

        def mtp() -> None:
            cache.mtp.length = 2
            model.mtp_draft(out.hidden[:, -1:], tokens[:, 3:4], cache=cache, absorb=True)

        def fresh_prefill() -> None:
            prefill(model, tokens[:, :3], model.new_cache(1, with_mtp=True), absorb=True)

        return _interleaved_ms({"prefill_ms": fresh_prefill, "main_pass_1_ms": lambda: main(1),
                                "main_pass_2_ms": lambda: main(2), "mtp_step_ms": mtp}, calls, model.head.weight.device)


def ceiling(costs: dict[str, float], names: int, generated: int, passes: int) -> dict[str, Any]:
    """The best speed-up these pass costs allow with the measured drafts: plain greedy makes one pass
    per token after the prefill's; speculative one verify pass + one MTP step per round. `bound`: the
    same rounds if a verify pass cost a plain one and the MTP step nothing."""
    plain = names * costs["prefill_ms"] + (generated - names) * costs["main_pass_1_ms"]
    rounds = passes - names
    spec = names * costs["prefill_ms"] + rounds * (costs["main_pass_2_ms"] + costs["mtp_step_ms"])
    bound = names * costs["prefill_ms"] + rounds * costs["main_pass_1_ms"]
    return {"pass_costs": costs, "ceiling_speedup": plain / spec, "bound_speedup": plain / bound}


def batched_speed(model: DSMini, tokenizer, prefixes: list[str], repeats: int) -> dict[str, float]:
    """All prefixes as one batch: `speculative_generate` vs the same loop with drafting off (plain
    greedy of many prefixes), taking turns, median ms per name."""
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
