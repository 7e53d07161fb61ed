"""Section 4: KV-cache bytes per token, measured from the cache tensors and from the formula.

Measured: `model.new_cache(batch, max_len)` allocates the real tensors; `dsmini.model.cache.check_cache`
weighs them per token against DeepSeek-V2 Table 1 times the element size. The two must agree
exactly; `equal` records it and the report shows any row where they do not.
"""

from __future__ import annotations

from typing import Any

from dsmini.config import ATTN_TYPES, preset
from dsmini.model import DSMini, check_cache

from .common import Plan

BATCH, MAX_LEN = 2, 32
# DeepSeek-V2's own numbers, per layer and token: d_c 512 + d_rope 64 vs MHA 2 x 128 heads x 128
V2_REFERENCE = {"mla_values": 576, "mha_values": 2 * 128 * 128}


def run(plan: Plan) -> dict[str, Any]:
    presets = {name: cache_sizes(name) for name in plan.memory_presets}
    return {"batch": BATCH, "max_len": MAX_LEN, "presets": presets, "v2_reference": V2_REFERENCE}


def cache_sizes(preset_name: str) -> dict[str, Any]:
    """Per attention type: measured and formula values/bytes per token, and the ratio to MHA."""
    rows = {attn: measure(preset_name, attn) for attn in ATTN_TYPES}
    for row in rows.values():
        row["vs_mha"] = row["bytes_per_token"] / rows["mha"]["bytes_per_token"]
    return rows


def measure(preset_name: str, attn_type: str) -> dict[str, Any]:
    cfg = preset(preset_name, attn_type=attn_type, block_size=MAX_LEN)
    cache = DSMini(cfg).new_cache(BATCH, max_len=MAX_LEN)
    check = check_cache(cache, cfg)
    return {
        "n_layers": cfg.n_layers,
        "values_per_token": check.measured_values,
        "formula_values_per_token": check.formula_values,
        "bytes_per_token": check.measured_bytes,
        "formula_bytes_per_token": check.formula_bytes,
        "equal": check.equal,
        "shapes": [[list(t.shape) for t in layer.tensors()] for layer in cache.layers[:1]],  # layer 0
    }
