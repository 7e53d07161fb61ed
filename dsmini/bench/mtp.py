"""Section 5: greedy self-speculative decoding with the MTP head vs plain greedy decoding.

On each shipped checkpoint, for the first `mtp_prefixes` names of its own val split, the name's
first two characters are the prefix; both decoders finish the name greedily (batch 1, KV cache).
Greedy speculative decoding must return exactly plain greedy's tokens: checked for every prefix,
and a mismatch fails the section. Wall-clock is the whole set of names, the two decoders taking
turns, median over repeats.
"""

from __future__ import annotations

from typing import Any

from ..checkpoint import Checkpoint, load_checkpoint
from ..generate import generate
from ..speculative import speculative_decode
from .common import Plan, Progress, checkpoint_val_names, interleaved, median, timed

CHECKPOINTS = ("en-names", "ru-names")
PREFIX_CHARS = 2


def run(plan: Plan) -> dict[str, Any]:
    progress = Progress("mtp", len(CHECKPOINTS))
    result = {}
    for name in CHECKPOINTS:
        path = plan.checkpoints / name
        result[name] = speculative_vs_greedy(load_checkpoint(path), plan) if path.exists() else {
            "skipped": f"no checkpoint at {path}"}
        progress.step(name)
    progress.close()
    return {"prefix_chars": PREFIX_CHARS, "repeats": plan.spec_repeats, "checkpoints": result}


def speculative_vs_greedy(ckpt: Checkpoint, plan: Plan) -> dict[str, Any]:
    if ckpt.model_config.mtp_depth < 1:
        return {"skipped": f"{ckpt.name} has no MTP module"}
    model, tokenizer = ckpt.model, ckpt.tokenizer
    prefixes = [name[:PREFIX_CHARS] for name in checkpoint_val_names(ckpt)[: plan.mtp_prefixes]]

    def greedy() -> list[list[int]]:
        return [generate(model, tokenizer, p, n=1, temperature=0)[0].ids for p in prefixes]

    def speculative():
        return [speculative_decode(model, tokenizer, p) for p in prefixes]

    specs = speculative()
    plain = greedy()
    mismatched = [p for p, s, g in zip(prefixes, specs, plain) if s.ids != g]
    if mismatched:
        raise AssertionError(f"{ckpt.name}: speculative decoding differs from greedy for prefixes {mismatched[:5]}")
    seconds = interleaved({"greedy_s": lambda: timed(greedy)[0], "speculative_s": lambda: timed(speculative)[0]},
                          plan.spec_repeats)
    proposed = sum(s.drafts_proposed for s in specs)
    generated = sum(s.generated_tokens for s in specs)
    greedy_s, spec_s = median(seconds["greedy_s"]), median(seconds["speculative_s"])
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
        "greedy_ms_per_name": 1000 * greedy_s / len(prefixes),
        "speculative_ms_per_name": 1000 * spec_s / len(prefixes),
        "speedup": greedy_s / spec_s,
        "seconds_rounds": seconds,
    }
