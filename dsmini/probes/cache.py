"""KV-cache sizes per attention type, measured from real caches against DeepSeek-V2 Table 1 (the
formula and the check are in dsmini.model.cache), and the time MLA's absorbed decode saves.

Measured sizes come from the caches of real greedy generations, so a bug in the cache layout
shows up as a disagreement with the formula rather than as a wrong number on a slide.

Axes: b batch (1 here), t positions, l layers.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass

import torch

from dsmini.checkpoint import Checkpoint
from dsmini.data import BOUNDARY_ID, CharTokenizer
from dsmini.decoding import decode_one_token, inference, prefill
from dsmini.model import (
    ATTN_ORDER,
    DEEPSEEK_V2,
    DEEPSEEK_V3,
    CacheDims,
    DSMini,
    ModelCache,
    cached_per_layer,
    check_cache,
    new_model_cache,
    values_per_layer,
    values_per_token,
)

from .attention import sample_name

BF16_BYTES = torch.finfo(torch.bfloat16).bits // 8
GB = 10**9  # decimal gigabytes, as memory is sold


# ---------------------------------------------------------------------------------------------
# Measured from real caches


def attention_variants(model: DSMini, seed: int = 0) -> tuple[dict[str, DSMini], dict[str, str]]:
    """The loaded model plus a random-init twin for every other attention type, in ATTN_ORDER,
    and {attn_type: reason} for twins the config cannot build (e.g. GQA's groups must divide
    the heads; the MHA family needs d_model divisible by n_heads).

    A cache's size depends on the config, never on the weights, so untrained twins measure it
    as well as trained ones would. Their init runs under a forked RNG: the global one is untouched.
    """
    variants, skipped = {}, {}
    for attn_type in ATTN_ORDER:
        if attn_type == model.cfg.attn_type:
            variants[attn_type] = model
            continue
        try:
            cfg = dataclasses.replace(model.cfg, attn_type=attn_type)
        except ValueError as err:
            skipped[attn_type] = str(err)
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            twin = DSMini(cfg)
        variants[attn_type] = twin.to(model.head.weight.device).eval()
    return variants, skipped


def greedy_through_cache(
    model: DSMini,
    start: list[int],
    cache: ModelCache,
    absorb: bool = True,
    follow: list[int] | None = None,
    step_seconds: list[float] | None = None,
) -> tuple[list[int], torch.Tensor]:
    """Greedy decoding from `start` ([B] prefix ids) through `cache` until [B] or a full cache.

    Returns the framed ids and the logits of every decoding step (n, V). With `follow` (ids as
    returned by an earlier call) those tokens are fed instead of the argmax, so two attention
    paths can be compared step by step on the same sequence. `step_seconds`, if given, gets the
    wall time of each forward pass (prefill, then one per fed token): one generated token each.
    """
    device = model.head.weight.device
    capacity = cache.max_len
    ids = list(start)
    steps = []
    with inference(model):
        begin = time.perf_counter()
        logits = prefill(model, torch.tensor([ids], device=device), cache, absorb).logits[:, -1]  # (1, V)
        while True:
            if step_seconds is not None:
                step_seconds.append(time.perf_counter() - begin)
            steps.append(logits[0])
            token = follow[len(ids)] if follow is not None else int(logits.argmax())
            ids.append(token)
            done = len(ids) >= len(follow) if follow is not None else token == BOUNDARY_ID
            if done or len(ids) > capacity:  # the last token needs no forward: nothing follows it
                break
            begin = time.perf_counter()
            logits = decode_one_token(model, torch.tensor([[token]], device=device), cache, absorb).logits[:, -1]
    return ids, torch.stack(steps)


@dataclass(frozen=True)
class CacheMeasurement:
    """One attention type's cache per token, by formula and by the tensors of a real generation."""

    attn_type: str
    loaded: bool  # the checkpoint's own type (the others are random-init twins)
    analytic: int  # values per token, Table 1
    measured: int  # cache.numel() / (batch * max_len): whole when the layout is right (`matches` says)
    bytes_fp32: float  # cache.nbytes() / (batch * max_len), the float32 cache the model decoded with
    bytes_bf16: float  # the same cache allocated in bfloat16
    positions_used: int  # positions the generated name filled
    matches: bool  # values and bytes per token both equal Table 1's (`dsmini.model.cache.check_cache`)
    # what one layer caches per token, tensor by tensor: (("c_kv", 16), ("k_rope", 4)); DSA adds
    # ("k_index", d^I), its lightning indexer's keys; MoBA and log-linear cache exactly MLA's
    contents: tuple[tuple[str, int], ...] = ()


def measure_caches(model: DSMini, variants: dict[str, DSMini] | None = None) -> list[CacheMeasurement]:
    """Greedily generate one name with the loaded model, decode the same name with each attention
    type through a fresh full-length cache, then weigh the caches.

    The twins replay the loaded model's name (an untrained twin would babble up to block_size),
    so every type caches the same sequence and the run stays short.
    """
    variants = variants or attention_variants(model)[0]
    name, _ = greedy_through_cache(model, [BOUNDARY_ID], model.new_cache(batch=1))
    rows = []
    for attn_type, m in variants.items():
        cache = m.new_cache(batch=1)
        greedy_through_cache(m, [BOUNDARY_ID], cache, follow=name)
        fp32 = check_cache(cache, m.cfg)
        bf16 = check_cache(new_model_cache(m.cfg, 1, dtype=torch.bfloat16), m.cfg)
        rows.append(CacheMeasurement(
            attn_type=attn_type,
            loaded=m is model,
            analytic=fp32.formula_values,
            measured=int(fp32.measured_values),
            bytes_fp32=fp32.measured_bytes,
            bytes_bf16=bf16.measured_bytes,
            positions_used=cache.length,
            matches=fp32.equal and bf16.equal,
            contents=cached_per_layer(attn_type, CacheDims.from_config(m.cfg)),
        ))
    return rows


@dataclass(frozen=True)
class CacheGrowth:
    """Cache bytes of one attention type by sequence length: real up to `measured_upto`, then
    extrapolated (the cache is linear in length)."""

    attn_type: str
    lengths: list[int]
    n_bytes: list[float]
    measured_upto: int


def cache_growth(variants: dict[str, DSMini], max_length: int = 1024) -> list[CacheGrowth]:
    """Bytes of an allocated float32 cache for lengths 1..block_size (real tensors), extended to
    `max_length` with the measured bytes per token."""
    series = []
    for attn_type, m in variants.items():
        block = m.cfg.block_size
        measured = [float(m.new_cache(batch=1, max_len=n).nbytes()) for n in range(1, block + 1)]
        per_token = measured[-1] / block
        beyond = _doubling(block, max_length)
        series.append(CacheGrowth(
            attn_type=attn_type,
            lengths=list(range(1, block + 1)) + beyond,
            n_bytes=measured + [per_token * n for n in beyond],
            measured_upto=block,
        ))
    return series


def _doubling(start: int, stop: int) -> list[int]:
    """Powers of two above `start` up to `stop`, and `stop` itself: enough points for a log axis."""
    points = [2**i for i in range(1, stop.bit_length() + 1) if start < 2**i < stop]
    return points + [stop] if stop > start else points


# ---------------------------------------------------------------------------------------------
# At DeepSeek's dimensions


@dataclass(frozen=True)
class ScaleRow:
    """One attention type at a big model's dimensions, cached in `bytes_per_value` precision."""

    attn_type: str
    per_layer: int  # values per token and layer
    per_token: int  # values per token, all layers
    bytes_per_token: int
    gb_per_1k: float  # 1,024 tokens
    gb_per_128k: float  # 131,072 tokens
    times_mha: float  # fraction of MHA's cache


def scale_rows(dims: CacheDims, bytes_per_value: int = BF16_BYTES) -> list[ScaleRow]:
    """Table 1 at `dims` (e.g. DEEPSEEK_V2) for every attention type, in bytes and GB."""
    mha = values_per_token("mha", dims)
    rows = []
    for attn_type in ATTN_ORDER:
        per_token = values_per_token(attn_type, dims)
        b = per_token * bytes_per_value
        rows.append(ScaleRow(
            attn_type=attn_type,
            per_layer=values_per_layer(attn_type, dims),
            per_token=per_token,
            bytes_per_token=b,
            gb_per_1k=b * 1024 / GB,
            gb_per_128k=b * 128 * 1024 / GB,
            times_mha=per_token / mha,
        ))
    return rows


# ---------------------------------------------------------------------------------------------
# Naive vs absorbed MLA decoding


@dataclass(frozen=True)
class DecodeTiming:
    """Greedy decoding time per generated character (the median forward pass: one per character),
    naive vs absorbed MLA, and whether the two paths gave the same logits at every step."""

    naive_ms_per_char: float
    absorbed_ms_per_char: float
    chars: int  # tokens generated per run (all prefixes)
    repeats: int  # timed runs of each path
    max_abs_diff: float  # largest |naive - absorbed| logit over every step
    same_logits: bool  # torch.allclose at atol 1e-4, rtol 1e-4

    @property
    def speedup(self) -> float:
        return self.naive_ms_per_char / self.absorbed_ms_per_char


def time_absorbed_decode(
    model: DSMini,
    tokenizer: CharTokenizer,
    prefixes: tuple[str, ...] = ("",),
    repeats: int = 5,
    budget_s: float = 1.0,
) -> DecodeTiming:
    """Greedily decode a name from each prefix with both paths, up to `repeats` runs each; the
    time per character is the median forward pass over all runs. Repeating stops early once
    `budget_s` is spent (one run each at least).

    The median over single steps shrugs off the spikes of a shared CPU that would swamp a mean,
    and the runs alternate naive and absorbed, so a busy moment hurts both alike.
    The logit check runs first and doubles as the warm-up; it feeds the naive path the absorbed
    path's tokens, so the two are compared on the same sequence even if a near-tie flipped.
    """
    if model.cfg.attn_type != "mla":
        raise ValueError(f"absorbed decoding is an MLA path; this model uses {model.cfg.attn_type.upper()}")
    starts = [tokenizer.frame(p) for p in prefixes]
    max_abs_diff, same = 0.0, True
    chars = 0
    for start in starts:
        ids, absorbed = greedy_through_cache(model, start, model.new_cache(1), absorb=True)
        _, naive = greedy_through_cache(model, start, model.new_cache(1), absorb=False, follow=ids)
        max_abs_diff = max(max_abs_diff, float((naive - absorbed).abs().max()))
        same = same and torch.allclose(naive, absorbed, atol=1e-4, rtol=1e-4)
        chars += len(ids) - len(start)
    times: dict[bool, list[float]] = {False: [], True: []}
    runs, deadline = 0, time.perf_counter() + budget_s
    while runs < repeats and (not runs or time.perf_counter() < deadline):
        for absorb in (False, True):
            for start in starts:
                greedy_through_cache(model, start, model.new_cache(1), absorb=absorb, step_seconds=times[absorb])
        runs += 1
    ms = {absorb: statistics.median(ts) * 1000 for absorb, ts in times.items()}
    return DecodeTiming(ms[False], ms[True], chars, runs, max_abs_diff, same)


# ---------------------------------------------------------------------------------------------
# The KV-cache page

EXTRAPOLATE_TO = 1024  # characters: well past block_size, where a cache starts to matter
DEEPSEEK_SIZES = (("v2", DEEPSEEK_V2), ("v3", DEEPSEEK_V3))  # the page's "at DeepSeek size" tables


@dataclass(frozen=True)
class KVCacheView:
    """The page's tables and curves for one checkpoint.

    rows: every attention type's cache, formula vs real tensors (the loaded type and random-init
    twins); skipped: {attn_type: why no twin}; scale: (label, dims, rows) at DeepSeek's sizes;
    timing: naive vs absorbed decoding over `timing_prefixes` (MLA only, else None).
    """

    dims: CacheDims
    rows: list[CacheMeasurement]
    growth: list[CacheGrowth]
    skipped: dict[str, str]
    scale: tuple[tuple[str, CacheDims, list[ScaleRow]], ...]
    timing: DecodeTiming | None
    timing_prefixes: tuple[str, ...]


def absorb_prefixes(tokenizer: CharTokenizer, block_size: int) -> tuple[str, ...]:
    """A few different greedy names: the sample name's first zero, one and two characters."""
    sample = sample_name(tokenizer, block_size)
    return tuple(dict.fromkeys(sample[:i] for i in range(3)))


def kv_cache_view(ckpt: Checkpoint) -> KVCacheView:
    model, cfg = ckpt.model, ckpt.model_config
    variants, skipped = attention_variants(model)
    mla = cfg.attn_type == "mla"
    prefixes = absorb_prefixes(ckpt.tokenizer, cfg.block_size) if mla else ()
    return KVCacheView(
        dims=CacheDims.from_config(cfg),
        rows=measure_caches(model, variants),
        growth=cache_growth(variants, EXTRAPOLATE_TO),
        skipped=skipped,
        scale=tuple((label, dims, scale_rows(dims)) for label, dims in DEEPSEEK_SIZES),
        timing=time_absorbed_decode(model, ckpt.tokenizer, prefixes) if mla else None,
        timing_prefixes=prefixes,
    )
