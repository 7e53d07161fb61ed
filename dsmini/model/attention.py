"""Attention: Multi-head Latent Attention (MLA) and the MHA / GQA / MQA baselines; the sparse
types built on MLA (DSA, MoBA, log-linear) extend `MLA` in dsmini.model.sparse_attention.

Axes: b batch, h query heads, g key/value heads, s query time, t key time (cached + new),
d head dims, c kv_lora_rank (latent), r qk_rope_head_dim.

Each `forward` appends its new keys and values (MLA: only the normalised latent `c_kv` (b, t, c)
and the shared RoPE key `k_rope` (b, t, r)) to the caller's cache, if one is given; the caches
and why they live outside the modules are in dsmini.model.cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import einsum, rearrange, repeat
from torch import nn

from dsmini.config import SPARSE_ATTN_TYPES, ModelConfig

from .cache import KVCache, LatentCache, append_positions
from .options import ForwardOptions
from .rope import apply_rope


def causal_mask(s: int, t: int, device=None) -> torch.Tensor:
    """(s, t) bool, True = may attend. The s queries are the last s of the t positions."""
    q_pos = torch.arange(t - s, t, device=device)[:, None]
    return torch.arange(t, device=device)[None, :] <= q_pos


@dataclass
class AttnTrace:
    """What one attention layer did, for the explorer (only built when asked)."""

    probs: torch.Tensor  # (b, h, s, t) attention probabilities
    scores_nope: torch.Tensor | None = None  # MLA: content part of each scaled score; NaN where masked
    scores_rope: torch.Tensor | None = None  # MLA: position (decoupled RoPE) part; NaN where masked
    # sparse types: what each query was allowed to see, (b, h or 1, s, t) bool (None: every earlier
    # position, the causal mask); probs are exactly 0 where it is False
    allowed: torch.Tensor | None = None
    # loglinear: the Fenwick level of each (query, key) pair, (s, t) int, -1 for a later key
    levels: torch.Tensor | None = None


def softmax_last(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, written out. On a CPU torch's softmax kernel is slow for short
    rows: 3,072 rows of 12 keys (a batch of names) take ~0.52 ms, against ~0.16 ms for these three
    ops; a causal row always keeps its own position, so no row is all -inf."""
    e = (scores - scores.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


def keep_max_logit(module: nn.Module, logits: torch.Tensor) -> None:
    """QK-clip (Kimi K2 §2.1): keep, per head, the largest pre-softmax logit the module has produced
    since the trainer last read `module.max_logit` (h,). logits: (b, h, s, t), -inf where masked.
    Read from the forward pass's own scores: no second pass."""
    head_max = logits.detach().amax(dim=(0, 2, 3)).float()
    seen = module.max_logit
    module.max_logit = head_max if seen is None else torch.maximum(seen, head_max)


def logit_keeper(module: nn.Module):
    """What `attend` calls with its scores: `keep_max_logit` while the trainer tracks this module's
    logits in training (`track_max_logit`, set by dsmini.training.qk_clip), else None (the fused path stays)."""
    if module.track_max_logit and module.training:
        return lambda logits: keep_max_logit(module, logits)
    return None


def _has_fused_kernel(q: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether scaled_dot_product_attention runs a fused kernel here. On a CPU it has one only when
    queries/keys and values share a head size; MLA's differ (qk_nope + qk_rope vs v_head_dim), and
    its fallback then runs the slow softmax kernel that `softmax_last` avoids, plus extra copies."""
    return q.device.type != "cpu" or q.size(-1) == v.size(-1)


def attend(q, k, v, scale: float, need_weights: bool, dropout_p: float = 0.0, on_logits=None,
           mask: torch.Tensor | None = None):
    """Causal softmax attention. q: (b, h, s, d), k: (b, h, t, d), v: (b, h, t, e) -> (b, h, s, e).

    Uses fused scaled_dot_product_attention when it has a fused kernel and neither the probabilities
    nor the logits (`on_logits`, called with the masked scores (b, h, s, t)) are asked for; else the
    scores are written out (the explorer gets the probabilities back). `mask`: the (s, t) causal
    mask when the caller already built it (`ForwardOptions.causal`), else it is built here.
    """
    s, t = q.size(-2), k.size(-2)
    fused = not need_weights and on_logits is None and _has_fused_kernel(q, v)
    if fused and s == 1:  # one new query sees every cached position
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale), None
    if fused and s == t:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True, scale=scale), None
    if s > 1 and mask is None:
        mask = causal_mask(s, t, q.device)
    if fused:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale), None
    scores = einsum(q, k, "b h s d, b h t d -> b h s t") * scale
    if s > 1:  # a single new query sees every cached position: nothing to mask
        scores = torch.where(mask, scores, float("-inf"))
    if on_logits is not None:
        on_logits(scores)
    probs = softmax_last(scores)
    out = F.dropout(probs, dropout_p) @ v if dropout_p else probs @ v
    return out, (probs if need_weights else None)


class MHA(nn.Module):
    """Multi-head attention with g key/value heads: g = h (MHA), 1 < g < h (GQA), g = 1 (MQA)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.mha_head_dim
        self.dropout = cfg.dropout
        self.wq = nn.Linear(cfg.d_model, self.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(cfg.d_model, self.n_kv * self.head_dim, bias=False)
        self.wv = nn.Linear(cfg.d_model, self.n_kv * self.head_dim, bias=False)
        self.wo = nn.Linear(self.n_heads * self.head_dim, cfg.d_model, bias=False)
        self.track_max_logit, self.max_logit = False, None  # QK-clip's per-head max logit (dsmini.training.qk_clip)

    def forward(self, x, rope, cache: KVCache | None = None, opts: ForwardOptions = ForwardOptions()):
        """x: (b, s, d_model) -> (b, s, d_model) and the AttnTrace when `opts.need_weights`; no
        absorbed path (MHA has no latent), so `opts.absorb` changes nothing here."""
        q = rearrange(self.wq(x), "b s (h d) -> b h s d", h=self.n_heads)
        k = rearrange(self.wk(x), "b s (g d) -> b g s d", g=self.n_kv)
        v = rearrange(self.wv(x), "b s (g d) -> b g s d", g=self.n_kv)
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        if cache is not None:
            k = append_positions(cache.k, k, cache.length, time_dim=2)  # (b, g, t, d)
            v = append_positions(cache.v, v, cache.length, time_dim=2)
            cache.length = k.size(2)
        # each group of h / g query heads shares one key/value head
        k = repeat(k, "b g t d -> b (g r) t d", r=self.n_heads // self.n_kv)
        v = repeat(v, "b g t d -> b (g r) t d", r=self.n_heads // self.n_kv)
        dropout_p = self.dropout if self.training else 0.0
        out, probs = attend(q, k, v, self.head_dim**-0.5, opts.need_weights, dropout_p, logit_keeper(self), opts.causal)
        y = self.wo(rearrange(out, "b h s d -> b s (h d)"))
        return y, (AttnTrace(probs) if opts.need_weights else None)


class MLA(nn.Module):
    """Multi-head Latent Attention (DeepSeek-V2 §2.1), naive and weight-absorbed paths.

    Keys and values are up-projected from one cached latent `c_kv = RMSNorm(W_DKV x)`; a small
    RoPE key `k_rope`, shared by all heads, carries position. In the absorbed path (DeepSeek-V3
    `inference/model.py`, attn_impl="absorb") the key up-projection is folded into the query and
    the value up-projection into the output, so attention runs over the cached latent directly.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.nope, self.rope, self.v_dim = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        self.kv_lora_rank = cfg.kv_lora_rank
        self.dropout = cfg.dropout
        self.scale = cfg.qk_head_dim**-0.5
        q_out = cfg.n_heads * cfg.qk_head_dim
        if cfg.q_lora_rank:
            self.wq_a = nn.Linear(cfg.d_model, cfg.q_lora_rank, bias=False)
            self.q_norm = nn.RMSNorm(cfg.q_lora_rank, eps=cfg.norm_eps)
            self.wq_b = nn.Linear(cfg.q_lora_rank, q_out, bias=False)
        else:
            self.wq = nn.Linear(cfg.d_model, q_out, bias=False)
        self.wkv_a = nn.Linear(cfg.d_model, cfg.kv_lora_rank + cfg.qk_rope_head_dim, bias=False)
        self.kv_norm = nn.RMSNorm(cfg.kv_lora_rank, eps=cfg.norm_eps)
        self.wkv_b = nn.Linear(cfg.kv_lora_rank, cfg.n_heads * (cfg.qk_nope_head_dim + cfg.v_head_dim), bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.v_head_dim, cfg.d_model, bias=False)
        self.track_max_logit, self.max_logit = False, None  # QK-clip's per-head max logit (dsmini.training.qk_clip)

    def _queries(self, x: torch.Tensor) -> torch.Tensor:
        q = self.wq_b(self.q_norm(self.wq_a(x))) if hasattr(self, "wq_a") else self.wq(x)
        return rearrange(q, "b s (h d) -> b h s d", h=self.n_heads)

    def _up_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """wkv_b split per head into W_UK (h, nope, c) and W_UV (h, v, c)."""
        w = rearrange(self.wkv_b.weight, "(h k) c -> h k c", h=self.n_heads)
        return w[:, : self.nope], w[:, self.nope :]

    def forward(self, x, rope, cache: LatentCache | None = None, opts: ForwardOptions = ForwardOptions()):
        start = cache.length if cache is not None else 0  # position of x's first token
        q_nope, q_rope = self._queries(x).split([self.nope, self.rope], dim=-1)  # (b, h, s, nope|r)
        q_rope = apply_rope(q_rope, rope)
        c_kv, k_rope = self.wkv_a(x).split([self.kv_lora_rank, self.rope], dim=-1)  # (b, s, c), (b, s, r)
        c_kv = self.kv_norm(c_kv)
        k_rope = apply_rope(k_rope, rope)  # one RoPE key per position, shared by all heads
        if cache is not None:
            c_kv = append_positions(cache.c_kv, c_kv, start, time_dim=1)  # (b, t, c)
            k_rope = append_positions(cache.k_rope, k_rope, start, time_dim=1)  # (b, t, r)
            cache.length = c_kv.size(1)
        w_uk, w_uv = self._up_weights()
        dropout_p = self.dropout if self.training else 0.0
        h = self.n_heads
        if opts.absorb:
            # q_nope . (W_UK c) == (q_nope W_UK) . c: the query moves into latent space.
            q_latent = einsum(q_nope, w_uk, "b h s d, h d c -> b h s c")
            # Absorbed MLA is MQA over the latent: one key [c_kv; k_rope] and one value c_kv for all heads.
            q = torch.cat([q_latent, q_rope], dim=-1)  # (b, h, s, c + r)
            k = repeat(torch.cat([c_kv, k_rope], dim=-1), "b t e -> b h t e", h=h)
            v = repeat(c_kv, "b t c -> b h t c", h=h)
        else:
            # Naive: up-project the latent into per-head keys and values, then ordinary attention.
            kv = rearrange(self.wkv_b(c_kv), "b t (h k) -> b h t k", h=h)
            k_nope, v = kv.split([self.nope, self.v_dim], dim=-1)
            k = torch.cat([k_nope, repeat(k_rope, "b t r -> b h t r", h=h)], dim=-1)
            q = torch.cat([q_nope, q_rope], dim=-1)
        out, probs, selection = self._attend(q, k, v, x, start, cache, opts, dropout_p)  # (b, h, s, c | v)
        if opts.absorb:
            out = einsum(out, w_uv, "b h s c, h d c -> b h s d")  # W_UV applied after attention
        y = self.wo(rearrange(out, "b h s d -> b s (h d)"))
        if not opts.need_weights:
            return y, None
        return y, self._trace(probs, self._score_parts(q_nope, w_uk, c_kv, q_rope, k_rope), selection)

    def _attend(self, q, k, v, x, start, cache, opts: ForwardOptions, dropout_p: float):
        """Causal softmax attention over every earlier position -> (out, probs, selection). The
        sparse types override this with their selection (x, start and cache are for them)."""
        out, probs = attend(q, k, v, self.scale, opts.need_weights, dropout_p, logit_keeper(self), opts.causal)
        return out, probs, None

    def _score_parts(self, q_nope, w_uk, c_kv, q_rope, k_rope) -> tuple[torch.Tensor, torch.Tensor]:
        """Each scaled pre-softmax score split into its content and position parts, (b, h, s, t) each."""
        q_latent = einsum(q_nope, w_uk, "b h s d, h d c -> b h s c")
        nope = einsum(q_latent, c_kv, "b h s c, b t c -> b h s t") * self.scale
        pos = einsum(q_rope, k_rope, "b h s r, b t r -> b h s t") * self.scale
        return nope, pos

    def _trace(self, probs, parts: tuple[torch.Tensor, torch.Tensor], selection) -> AttnTrace:
        """The content and position parts of each score (they sum to it), NaN where masked."""
        nope, pos = parts
        hidden = ~causal_mask(nope.size(2), nope.size(3), nope.device)
        return AttnTrace(probs, nope.masked_fill(hidden, float("nan")), pos.masked_fill(hidden, float("nan")))


def build_attention(cfg: ModelConfig) -> nn.Module:
    if cfg.attn_type in SPARSE_ATTN_TYPES:
        from .sparse_attention import SPARSE_ATTENTION

        return SPARSE_ATTENTION[cfg.attn_type](cfg)
    return MLA(cfg) if cfg.attn_type == "mla" else MHA(cfg)
