"""KV caches: what each attention type keeps per token, its allocation, and its size by formula.

DeepSeek-V2 Table 1, values cached per token and layer:
    MHA  2 · n_h · d_h        every head keeps its own key and value
    GQA  2 · n_g · d_h        n_g key/value groups shared by n_h / n_g query heads each
    MQA  2 · d_h              one key/value head for all query heads
    MLA  d_c + d_h^R          the joint latent c_kv and the decoupled RoPE key k_rope (V2 §2.1.2-2.1.3)
and the sparse types built on MLA (dsmini/sparse_attention.py):
    DSA        d_c + d_h^R + d^I   MLA's entries plus the lightning indexer's one key per token
                                   (DeepSeek-V3.2 §2.1: its `Indexer.k_cache` beside `kv_cache`/`pe_cache`)
    MoBA       d_c + d_h^R         MLA's entries; a block's gate key is the mean of its cached keys,
                                   recomputed from them (mean-pooling is linear: mean(W_UK c) = W_UK mean(c))
    loglinear  d_c + d_h^R         MLA's entries; each pooled Fenwick bucket is the mean of its cached
                                   positions, recomputed per query (at names' lengths that is cheaper to
                                   hold than O(log T) running sums per head)
The whole model caches that times l layers. `check_cache` weighs a real cache against the formula,
so a bug in the layout shows up as a disagreement rather than as a wrong number on a slide.

Axes: b batch, g key/value heads, T allocated positions, d head dims, c kv_lora_rank (latent),
r qk_rope_head_dim, i dsa_index_dim.

Caches are plain tensors pre-allocated per call (`new_model_cache`, or `DSMini.new_cache`) and
passed into `forward`; the modules hold no state, so one loaded model can serve many users at
once, each decoding through a cache of their own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from dsmini.config import ModelConfig

ATTN_ORDER = ("mha", "gqa", "mqa", "mla", "dsa", "moba", "loglinear")  # Table 1's order, then the sparse types


# ---------------------------------------------------------------------------------------------
# The cache tensors


@dataclass
class KVCache:
    """MHA / GQA / MQA cache: keys and values for each key/value head."""

    k: torch.Tensor  # (b, g, T, d)
    v: torch.Tensor  # (b, g, T, d)
    length: int = 0  # positions filled so far

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.k, self.v)


@dataclass
class LatentCache:
    """MLA cache: the compressed joint key/value latent and the decoupled RoPE key, nothing else."""

    c_kv: torch.Tensor  # (b, T, c)
    k_rope: torch.Tensor  # (b, T, r)
    length: int = 0

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.c_kv, self.k_rope)


@dataclass
class IndexedLatentCache:
    """DSA cache: MLA's latent and RoPE key, plus the lightning indexer's key of every position
    (DeepSeek-V3.2 §2.1), which each new query scores to pick its top-k."""

    c_kv: torch.Tensor  # (b, T, c)
    k_rope: torch.Tensor  # (b, T, r)
    k_index: torch.Tensor  # (b, T, i)
    length: int = 0

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.c_kv, self.k_rope, self.k_index)


LayerCache = KVCache | LatentCache | IndexedLatentCache


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
    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, device=device, dtype=dtype)

    if cfg.attn_type == "dsa":
        return IndexedLatentCache(
            zeros(batch, max_len, cfg.kv_lora_rank), zeros(batch, max_len, cfg.qk_rope_head_dim),
            zeros(batch, max_len, cfg.dsa_index_dim),
        )
    if cfg.latent_attention:
        return LatentCache(zeros(batch, max_len, cfg.kv_lora_rank), zeros(batch, max_len, cfg.qk_rope_head_dim))
    g, d = cfg.kv_heads, cfg.mha_head_dim
    return KVCache(zeros(batch, g, max_len, d), zeros(batch, g, max_len, d))


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


def append_positions(cache_tensor: torch.Tensor, new: torch.Tensor, start: int, time_dim: int) -> torch.Tensor:
    """Write `new` at positions [start, start + s) and return the filled prefix [0, start + s)."""
    s = new.size(time_dim)
    if start + s > cache_tensor.size(time_dim):
        raise ValueError(f"KV cache full: {start + s} positions needed, {cache_tensor.size(time_dim)} allocated")
    cache_tensor.narrow(time_dim, start, s).copy_(new)
    return cache_tensor.narrow(time_dim, 0, start + s)


# ---------------------------------------------------------------------------------------------
# Table 1


@dataclass(frozen=True)
class CacheDims:
    """The sizes Table 1 needs. The MHA family and MLA share n_layers and n_heads; d_h and n_g
    only matter for the MHA family, d_c and d_h^R only for MLA."""

    n_layers: int
    n_heads: int
    head_dim: int  # d_h of the MHA family
    n_groups: int  # n_g of GQA
    kv_lora_rank: int  # d_c
    qk_rope_head_dim: int  # d_h^R
    index_dim: int = 128  # d^I of DSA's lightning indexer (DeepSeek-V3.2: index_head_dim 128)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> CacheDims:
        """An MLA config's MHA twin uses d_h = d_model / n_heads (unless head_dim is set) and the
        config's n_kv_heads groups, exactly what `dataclasses.replace(cfg, attn_type=...)` builds."""
        return cls(
            cfg.n_layers, cfg.n_heads, cfg.mha_head_dim, cfg.n_kv_heads, cfg.kv_lora_rank, cfg.qk_rope_head_dim,
            cfg.dsa_index_dim,
        )


# DeepSeek-V2 (§2.1, Table 1; 60 layers, 128 heads x 128, d_c 512, d_h^R 64) and V3 (61 layers).
# GQA with 8 groups is the common choice at this scale; V2 itself compares MLA to GQA with 2.25.
DEEPSEEK_V2 = CacheDims(n_layers=60, n_heads=128, head_dim=128, n_groups=8, kv_lora_rank=512, qk_rope_head_dim=64)
DEEPSEEK_V3 = dataclasses.replace(DEEPSEEK_V2, n_layers=61)


def cached_per_layer(attn_type: str, dims: CacheDims) -> tuple[tuple[str, int], ...]:
    """What one layer caches per token, tensor by tensor: (name, values), e.g. (("c_kv", 512), ("k_rope", 64))."""
    latent = (("c_kv", dims.kv_lora_rank), ("k_rope", dims.qk_rope_head_dim))
    contents = {
        "mha": (("K", dims.n_heads * dims.head_dim), ("V", dims.n_heads * dims.head_dim)),
        "gqa": (("K", dims.n_groups * dims.head_dim), ("V", dims.n_groups * dims.head_dim)),
        "mqa": (("K", dims.head_dim), ("V", dims.head_dim)),
        "mla": latent,
        "dsa": (*latent, ("k_index", dims.index_dim)),
        "moba": latent,
        "loglinear": latent,
    }
    if attn_type not in contents:
        raise ValueError(f"attn_type must be one of {ATTN_ORDER}, got {attn_type!r}")
    return contents[attn_type]


def values_per_layer(attn_type: str, dims: CacheDims) -> int:
    """Values one layer caches per token (DeepSeek-V2 Table 1, and the sparse types above)."""
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
