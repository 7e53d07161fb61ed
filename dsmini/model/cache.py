"""KV caches: the whole model's cache, its allocation, and its size by formula (DeepSeek-V2 Table 1).

What each attention type keeps per token and layer, its layer cache and the Table 1 formula, is
registered with the type in dsmini.model.attention_types. The whole model caches that times l
layers. `check_cache` weighs a real cache against the formula, so a bug in the layout shows up as a
disagreement rather than as a wrong number on a slide.

Caches are plain tensors pre-allocated per call (`new_model_cache`, or `DSMini.new_cache`) and
passed into `forward`; the modules hold no state, so one loaded model can serve many users at
once, each decoding through a cache of their own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from dsmini.config import ModelConfig

from .attention import LayerCache
from .attention_types import CacheDims, CachedValues, attention_spec

# ---------------------------------------------------------------------------------------------
# The whole model's cache


@dataclass
class StackCache:
    """The caches of one MTP module's blocks (`mtp_layers` of them), which always hold the same
    positions: `length` reads the first and sets them all, so forgetting rejected drafts is one line."""

    blocks: list[LayerCache]

    @property
    def length(self) -> int:
        return self.blocks[0].length

    @length.setter
    def length(self, value: int) -> None:
        for block in self.blocks:
            block.length = value


@dataclass
class ModelCache:
    """Per-call KV cache for the main layers, plus each MTP module's (its blocks') for drafting:
    `mtp_depths[k - 1]` is depth k's, so chained drafts keep one cache per module."""

    layers: list[LayerCache]
    mtp_depths: list[StackCache] = dataclasses.field(default_factory=list)

    @property
    def mtp(self) -> StackCache | None:
        """The depth-1 module's cache (None without MTP caches)."""
        return self.mtp_depths[0] if self.mtp_depths else None

    @property
    def length(self) -> int:
        return self.layers[0].length

    @property
    def max_len(self) -> int:
        """Positions allocated (T): the most this cache can hold."""
        return self.layers[0].tensors()[0].size(-2)

    @property
    def slots(self) -> int:
        """(sequence, position) pairs allocated: b * T, what "per token" divides by."""
        return self.layers[0].tensors()[0].size(0) * self.max_len

    def truncate(self, length: int) -> None:
        """Forget main-model positions >= length (rejected speculative drafts)."""
        for layer in self.layers:
            layer.length = min(layer.length, length)

    def numel(self) -> int:
        """Values allocated in the main model's cache (the DeepSeek-V2 Table 1 quantity)."""
        return sum(t.numel() for layer in self.layers for t in layer.tensors())

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for layer in self.layers for t in layer.tensors())

    def values_per_token(self) -> int:
        return self.numel() // self.slots


def new_layer_cache(cfg: ModelConfig, batch: int, max_len: int, device=None, dtype=torch.float32) -> LayerCache:
    """An empty cache for one attention layer of `cfg`'s type, for `max_len` positions."""
    return attention_spec(cfg.attn_type).cache.empty(cfg, batch, max_len, device, dtype)


def new_model_cache(
    cfg: ModelConfig, batch: int, max_len: int | None = None, device=None, dtype=torch.float32, with_mtp: bool = False
) -> ModelCache:
    """An empty cache for every main layer of a `cfg` model (max_len defaults to block_size); with
    `with_mtp`, also one for each block of every MTP module, which speculative decoding drafts with."""
    max_len = cfg.block_size if max_len is None else max_len
    if not 1 <= max_len <= cfg.block_size:
        raise ValueError(f"cache max_len must be in [1, block_size={cfg.block_size}], got {max_len}")
    layers = [new_layer_cache(cfg, batch, max_len, device, dtype) for _ in range(cfg.n_layers)]
    depths = cfg.mtp_depth if with_mtp else 0
    mtp = [StackCache([new_layer_cache(cfg, batch, max_len, device, dtype) for _ in range(cfg.mtp_layers)])
           for _ in range(depths)]
    return ModelCache(layers, mtp)


# ---------------------------------------------------------------------------------------------
# Table 1


# DeepSeek-V2 (§2.1, Table 1; 60 layers, 128 heads x 128, d_c 512, d_h^R 64) and V3 (61 layers).
# GQA with 8 groups is the common choice at this scale; V2 itself compares MLA to GQA with 2.25.
DEEPSEEK_V2 = CacheDims(n_layers=60, n_heads=128, head_dim=128, n_groups=8, kv_lora_rank=512, qk_rope_head_dim=64)
DEEPSEEK_V3 = dataclasses.replace(DEEPSEEK_V2, n_layers=61)


def cached_per_layer(attn_type: str, dims: CacheDims) -> CachedValues:
    """What one layer caches per token, tensor by tensor: (name, values), e.g. (("c_kv", 512), ("k_rope", 64))."""
    return attention_spec(attn_type).cached(dims)


def values_per_layer(attn_type: str, dims: CacheDims) -> int:
    """Values one layer caches per token (DeepSeek-V2 Table 1, and the sparse types on MLA)."""
    return sum(values for _, values in cached_per_layer(attn_type, dims))


def values_per_token(attn_type: str, dims: CacheDims) -> int:
    """Values the whole model caches per token: Table 1 per layer times l."""
    return values_per_layer(attn_type, dims) * dims.n_layers


def cache_values_per_token(cfg: ModelConfig) -> int:
    """KV-cache values per token for the whole main model of `cfg` (Table 1 at its own sizes; DSA
    adds its indexer keys)."""
    return values_per_token(cfg.attn_type, CacheDims.from_config(cfg))


@dataclass(frozen=True)
class CacheCheck:
    """A real cache weighed against Table 1, per token: per (sequence, position) slot allocated."""

    measured_values: float  # cache.numel() / slots
    formula_values: int  # Table 1 for the cache's config
    measured_bytes: float  # cache.nbytes() / slots
    formula_bytes: int  # formula_values x the cache's element size

    @property
    def equal(self) -> bool:
        return self.measured_values == self.formula_values and self.measured_bytes == self.formula_bytes


def check_cache(cache: ModelCache, cfg: ModelConfig) -> CacheCheck:
    """Weigh `cache` (allocated for a `cfg` model) against Table 1; the formula bytes use the
    element size the cache was allocated in (4 for float32, 2 for bfloat16)."""
    formula = cache_values_per_token(cfg)
    element = cache.layers[0].tensors()[0].element_size()
    return CacheCheck(
        measured_values=cache.numel() / cache.slots,
        formula_values=formula,
        measured_bytes=cache.nbytes() / cache.slots,
        formula_bytes=formula * element,
    )
