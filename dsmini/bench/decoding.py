"""Section 3: decoding speed. KV cache vs recomputing the prefix, MLA naive vs absorbed, batches.

The per-character curves use a random-initialised model of each architecture with room for a
256-character prefix (speed does not depend on the weights). One generated character costs:
  - with the cache: one `decode_one_token` call reading the cached prefix (prefill not counted:
    it runs once per name, before the first character);
  - without: one forward over the whole sequence, naive attention, exactly the step
    `greedy_without_cache` repeats; run here for a fixed number of characters instead of stopping
    at the end-of-name token a random model may emit at any point.
Batched names/s is `generate(n=...)` on the shipped ru-names checkpoint. Everything runs on
`plan.device` in fp32 (the models are tiny: nothing to gain from bf16 at batch 1), and every clock
read waits for that device's queued work (`common.clock`).

Axes: b batch (1 here), s new positions.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from dsmini.checkpoint import load_checkpoint
from dsmini.decoding import decode_one_token, generate, inference, prefill
from dsmini.model import DSMini

from .archs import ARCHS, arch_config
from .common import Plan, Progress, clock, interleaved, median

VOCAB = 40  # a names-sized alphabet + the boundary token


def run(plan: Plan) -> dict[str, Any]:
    progress = Progress("decoding", len(ARCHS) * len(plan.prefix_lengths) + 1)
    curves = {arch.key: prefix_curve(arch.key, plan, progress) for arch in ARCHS}
    batched = batched_names(plan)
    progress.step("batched names")
    progress.close()
    return {"device": plan.device, "decode_chars": plan.decode_chars, "repeats": plan.repeats,
            "prefix_lengths": list(plan.prefix_lengths),
            "block_size": _block_size(plan), "archs": curves, "batched": batched}


def _block_size(plan: Plan) -> int:
    """Room for [B] + the longest prefix + the characters generated after it."""
    return max(plan.prefix_lengths) + 1 + plan.decode_chars


def random_model(key: str, plan: Plan) -> DSMini:
    torch.manual_seed(0)  # built on the CPU, then moved: the same weights on every device
    return DSMini(arch_config(key, plan.preset, vocab_size=VOCAB, block_size=_block_size(plan))).to(plan.device).eval()


def _prefix(length: int) -> list[int]:
    """[B] + `length` random character ids, the same for every architecture."""
    g = torch.Generator().manual_seed(length)
    return [0, *torch.randint(1, VOCAB, (length,), generator=g).tolist()]


def cached_ms_per_char(model: DSMini, ids: list[int], n_chars: int, absorb: bool = True) -> float:
    """ms per greedy character with the KV cache, after a prefill of `ids`."""
    device = model.head.weight.device
    with inference(model):
        cache = model.new_cache(1, max_len=len(ids) + n_chars)
        logits = prefill(model, torch.tensor([ids], device=device), cache, absorb).logits[:, -1]  # (1, V)
        start = clock(device)  # after the prefill's kernels: they are not counted
        for _ in range(n_chars):
            token = logits.argmax(dim=-1, keepdim=True)  # (1, 1)
            logits = decode_one_token(model, token, cache, absorb).logits[:, -1]
        return 1000 * (clock(device) - start) / n_chars


def uncached_ms_per_char(model: DSMini, ids: list[int], n_chars: int) -> float:
    """ms per greedy character re-running the whole sequence each step (`greedy_without_cache`'s step)."""
    seq, device = list(ids), model.head.weight.device
    with inference(model):
        start = clock(device)
        for _ in range(n_chars):
            logits = model(torch.tensor([seq], device=device)).logits  # (1, s, V) the whole sequence
            seq.append(int(logits[0, -1].argmax()))
        return 1000 * (clock(device) - start) / n_chars


def prefix_curve(key: str, plan: Plan, progress: Progress) -> dict[str, Any]:
    """ms/char per prefix length: cached, uncached and (MLA) cached with the naive attention path."""
    model = random_model(key, plan)
    is_mla = model.cfg.attn_type == "mla"
    curve: dict[str, list[float]] = {"cached_ms": [], "uncached_ms": []}
    if is_mla:
        curve["naive_cached_ms"] = []
    cached_ms_per_char(model, _prefix(8), 2)  # warm-up
    for length in plan.prefix_lengths:
        ids = _prefix(length)
        variants = {
            "cached_ms": partial(cached_ms_per_char, model, ids, plan.decode_chars),
            "uncached_ms": partial(uncached_ms_per_char, model, ids, plan.decode_chars),
        }
        if is_mla:
            variants["naive_cached_ms"] = partial(cached_ms_per_char, model, ids, plan.decode_chars, absorb=False)
        for name, values in interleaved(variants, plan.repeats).items():
            curve[name].append(median(values))
        progress.step(f"{key} prefix {length}")
    return {"attn_type": model.cfg.attn_type, "ffn_type": model.cfg.ffn_type, **curve}


def batched_names(plan: Plan) -> dict[str, Any]:
    """names/s for one `generate(n=...)` batch on the shipped ru-names checkpoint (sampling, T=1)."""
    path = plan.checkpoints / "ru-names"
    if not path.exists():
        return {"skipped": f"no checkpoint at {path}"}
    ckpt = load_checkpoint(path, device=plan.device)
    generate(ckpt.model, ckpt.tokenizer, n=8, seed=0)  # warm-up
    seconds, chars = [], []
    for repeat in range(plan.repeats):
        start = clock(plan.device)
        names = generate(ckpt.model, ckpt.tokenizer, n=plan.batch_names, seed=repeat)
        seconds.append(clock(plan.device) - start)
        chars.append(sum(len(g.text) for g in names))
    t = median(seconds)
    return {"checkpoint": "ru-names", "n": plan.batch_names, "seconds": t, "seconds_rounds": seconds,
            "names_per_sec": plan.batch_names / t, "chars_per_sec": median(chars) / t}
