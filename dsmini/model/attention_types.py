"""The attention types, each registered once: its module, its layer cache and what that cache keeps
per token. Beside it, `dsmini.config.ATTENTION_KINDS` holds what the config knows of the same type
(its name, family and field checks): the config sits below the model, so it validates a type's
fields without importing a module. A new type is one entry there and one here; building a layer,
allocating its cache, Table 1, the run checks' parameter count and every menu read the two.

DeepSeek-V2 Table 1, values cached per token and layer (`AttentionSpec.cached`):
    MHA  2 · n_h · d_h        every head keeps its own key and value
    GQA  2 · n_g · d_h        n_g key/value groups shared by n_h / n_g query heads each
    MQA  2 · d_h              one key/value head for all query heads
    MLA  d_c + d_h^R          the joint latent c_kv and the decoupled RoPE key k_rope (V2 §2.1.2-2.1.3)
and the sparse types built on MLA (dsmini.model.sparse_attention):
    DSA        d_c + d_h^R + d^I   MLA's entries plus the lightning indexer's one key per token
                                   (DeepSeek-V3.2 §2.1: its `Indexer.k_cache` beside `kv_cache`/`pe_cache`)
    MoBA       d_c + d_h^R         MLA's entries; a block's gate key is the mean of its cached keys,
                                   recomputed from them (mean-pooling is linear: mean(W_UK c) = W_UK mean(c))
    loglinear  d_c + d_h^R         MLA's entries; each pooled Fenwick bucket is the mean of its cached
                                   positions, recomputed per query (at names' lengths that is cheaper to
                                   hold than O(log T) running sums per head)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dsmini.config import ModelConfig

from .attention import MHA, MLA, Attention, KVCache, LatentCache, LayerCache
from .sparse_attention import DSA, IndexedLatentCache, LogLinear, MoBA


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


CachedValues = tuple[tuple[str, int], ...]  # (tensor name, values per token), e.g. (("c_kv", 512), ("k_rope", 64))


@dataclass(frozen=True)
class AttentionSpec:
    """The model's half of one attention type."""

    module: type[Attention]  # built once per block: module(cfg)
    cache: type[LayerCache]  # its layer cache; `cache.empty(cfg, batch, max_len, ...)` allocates one
    cached: Callable[[CacheDims], CachedValues]  # what one layer caches per token, tensor by tensor


def _keys_values(per_token: int) -> CachedValues:
    return (("K", per_token), ("V", per_token))


def _latent(dims: CacheDims) -> CachedValues:
    return (("c_kv", dims.kv_lora_rank), ("k_rope", dims.qk_rope_head_dim))


ATTENTION: dict[str, AttentionSpec] = {  # in ATTENTION_KINDS' order
    "mha": AttentionSpec(MHA, KVCache, lambda dims: _keys_values(dims.n_heads * dims.head_dim)),
    "gqa": AttentionSpec(MHA, KVCache, lambda dims: _keys_values(dims.n_groups * dims.head_dim)),
    "mqa": AttentionSpec(MHA, KVCache, lambda dims: _keys_values(dims.head_dim)),
    "mla": AttentionSpec(MLA, LatentCache, _latent),
    "dsa": AttentionSpec(DSA, IndexedLatentCache, lambda dims: (*_latent(dims), ("k_index", dims.index_dim))),
    "moba": AttentionSpec(MoBA, LatentCache, _latent),
    "loglinear": AttentionSpec(LogLinear, LatentCache, _latent),
}
ATTN_ORDER = tuple(ATTENTION)  # Table 1's order, then the sparse types


def attention_spec(attn_type: str) -> AttentionSpec:
    if attn_type not in ATTENTION:
        raise ValueError(f"attn_type must be one of {ATTN_ORDER}, got {attn_type!r}")
    return ATTENTION[attn_type]


def build_attention(cfg: ModelConfig) -> Attention:
    """One attention layer of `cfg`'s type."""
    return attention_spec(cfg.attn_type).module(cfg)
