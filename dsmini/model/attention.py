"""Attention: the `Attention` contract every type keeps, Multi-head Latent Attention (MLA) and the
MHA / GQA / MQA baselines, and the layer caches they write; the sparse types built on MLA (DSA,
MoBA, log-linear) extend `MLA` in dsmini.model.sparse_attention, and every type is registered in
dsmini.model.attention_types.

Axes: b batch, h query heads, g key/value heads, s query time, t key time (cached + new),
d head dims, c kv_lora_rank (latent), r qk_rope_head_dim, T allocated positions.

Each `forward` appends its new keys and values (MLA: only the normalised latent `c_kv` (b, t, c)
and the shared RoPE key `k_rope` (b, t, r)) to the caller's cache, if one is given; why the caches
live outside the modules is in dsmini.model.cache.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import einsum, rearrange, repeat
from torch import nn

from dsmini.config import ModelConfig

from .options import ForwardOptions
from .rope import apply_rope

# ---------------------------------------------------------------------------------------------
# The layer caches


@dataclass
class LayerCache:
    """One attention layer's cache: its type's tensors, allocated for T positions (`empty`), of which
    the first `length` are filled. Each type's record lists its tensors as fields."""

    length: int = dataclasses.field(default=0, kw_only=True)  # positions filled so far

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "length")


@dataclass
class KVCache(LayerCache):
    """MHA / GQA / MQA cache: keys and values for each key/value head."""

    k: torch.Tensor  # (b, g, T, d)
    v: torch.Tensor  # (b, g, T, d)

    @classmethod
    def empty(cls, cfg: ModelConfig, batch: int, max_len: int, device=None, dtype=torch.float32) -> KVCache:
        shape = (batch, cfg.kv_heads, max_len, cfg.mha_head_dim)
        return cls(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))


@dataclass
class LatentCache(LayerCache):
    """MLA cache: the compressed joint key/value latent and the decoupled RoPE key, nothing else."""

    c_kv: torch.Tensor  # (b, T, c)
    k_rope: torch.Tensor  # (b, T, r)

    @classmethod
    def empty(cls, cfg: ModelConfig, batch: int, max_len: int, device=None, dtype=torch.float32) -> LatentCache:
        return cls(*(torch.zeros(batch, max_len, size, device=device, dtype=dtype)
                     for size in (cfg.kv_lora_rank, cfg.qk_rope_head_dim)))


def append_positions(cache_tensor: torch.Tensor, new: torch.Tensor, start: int, time_dim: int) -> torch.Tensor:
    """Write `new` at positions [start, start + s) and return the filled prefix [0, start + s)."""
    s = new.size(time_dim)
    if start + s > cache_tensor.size(time_dim):
        raise ValueError(f"KV cache full: {start + s} positions needed, {cache_tensor.size(time_dim)} allocated")
    cache_tensor.narrow(time_dim, start, s).copy_(new)
    return cache_tensor.narrow(time_dim, 0, start + s)


# ---------------------------------------------------------------------------------------------
# Attention


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


def _heads(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(h * d, i) projection weight as a (h, d, i) view: rescaling it rescales the weight in place."""
    return weight.view(n_heads, -1, weight.size(-1))


class Attention(nn.Module):
    """What every attention type keeps to, and all the model, the explorer's traces and MuonClip rely on:

    - `forward(x, rope, cache, opts)`: x (b, s, d_model) -> (y (b, s, d_model), the `AttnTrace` of its
      h heads when `opts.need_weights`, else None), appending its new positions to `cache` (its type's
      `LayerCache`) when one is given;
    - QK-clip's two halves (Kimi K2 §2.1, applied by dsmini.training.qk_clip): while `track_max_logit`
      is on in training, `max_logit` (h,) keeps each head's largest pre-softmax logit until the trainer
      takes it; `scale_logits(gamma)` multiplies every logit of head h by gamma_h through the query and
      key weights alone;
    - `param_count(cfg)`: its parameters in closed form, for the run checks (dsmini.model.limits).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.track_max_logit = False
        self.max_logit: torch.Tensor | None = None  # (h,) since the trainer last took it

    @classmethod
    def param_count(cls, cfg: ModelConfig) -> int:
        raise NotImplementedError

    def scale_logits(self, gamma: torch.Tensor) -> None:
        raise NotImplementedError

    def keep_max_logit(self, logits: torch.Tensor) -> None:
        """Keep, per head, the largest logit since `max_logit` was last taken. logits: (b, h, s, t),
        -inf where masked: read from the forward pass's own scores, no second pass."""
        head_max = logits.detach().amax(dim=(0, 2, 3)).float()
        self.max_logit = head_max if self.max_logit is None else torch.maximum(self.max_logit, head_max)

    def logit_keeper(self):
        """What `attend` calls with its scores: `keep_max_logit` while the trainer tracks the logits in
        training, else None (the fused path stays)."""
        return self.keep_max_logit if self.track_max_logit and self.training else None


class MHA(Attention):
    """Multi-head attention with g key/value heads: g = h (MHA), 1 < g < h (GQA), g = 1 (MQA)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.n_kv, self.head_dim = cfg.kv_heads, cfg.mha_head_dim
        self.wq = nn.Linear(cfg.d_model, self.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(cfg.d_model, self.n_kv * self.head_dim, bias=False)
        self.wv = nn.Linear(cfg.d_model, self.n_kv * self.head_dim, bias=False)
        self.wo = nn.Linear(self.n_heads * self.head_dim, cfg.d_model, bias=False)

    @classmethod
    def param_count(cls, cfg: ModelConfig) -> int:
        d, h, hd = cfg.d_model, cfg.n_heads, cfg.mha_head_dim
        return 2 * d * h * hd + 2 * d * cfg.kv_heads * hd  # wq, wo; wk, wv

    @torch.no_grad()
    def scale_logits(self, gamma: torch.Tensor) -> None:
        """MHA: W_q^h and W_k^h each by √γ_h. GQA / MQA: a key head serves several query heads, so
        only W_q^h, by γ_h (as MLA leaves its shared RoPE key alone)."""
        gamma = gamma.to(self.wo.weight.dtype)[:, None, None]
        q = _heads(self.wq.weight, self.n_heads)
        if self.n_kv == self.n_heads:
            q *= gamma.sqrt()
            _heads(self.wk.weight, self.n_kv).mul_(gamma.sqrt())
        else:
            q *= gamma

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
        scale = self.head_dim**-0.5
        out, probs = attend(q, k, v, scale, opts.need_weights, dropout_p, self.logit_keeper(), opts.causal)
        y = self.wo(rearrange(out, "b h s d -> b s (h d)"))
        return y, (AttnTrace(probs) if opts.need_weights else None)


class MLA(Attention):
    """Multi-head Latent Attention (DeepSeek-V2 §2.1), naive and weight-absorbed paths.

    Keys and values are up-projected from one cached latent `c_kv = RMSNorm(W_DKV x)`; a small
    RoPE key `k_rope`, shared by all heads, carries position. In the absorbed path (DeepSeek-V3
    `inference/model.py`, attn_impl="absorb") the key up-projection is folded into the query and
    the value up-projection into the output, so attention runs over the cached latent directly.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.nope, self.rope, self.v_dim = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        self.kv_lora_rank, self.q_lora_rank = cfg.kv_lora_rank, cfg.q_lora_rank
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

    @classmethod
    def param_count(cls, cfg: ModelConfig) -> int:
        d, h, q_rank = cfg.d_model, cfg.n_heads, cfg.q_lora_rank
        q_out = h * cfg.qk_head_dim
        q = d * q_rank + q_rank + q_rank * q_out if q_rank else d * q_out  # wq_a, q_norm, wq_b | wq
        kv = d * (cfg.kv_lora_rank + cfg.qk_rope_head_dim) + cfg.kv_lora_rank  # wkv_a, kv_norm
        kv += cfg.kv_lora_rank * h * (cfg.qk_nope_head_dim + cfg.v_head_dim)  # wkv_b
        return q + kv + h * cfg.v_head_dim * d  # wo

    def _query_weight(self) -> torch.Tensor:
        """The weight whose rows are each head's query, (h * (nope + r), i): wq_b, or wq uncompressed."""
        return (self.wq_b if self.q_lora_rank else self.wq).weight

    def _query_latent(self, x: torch.Tensor) -> torch.Tensor:
        """(b, s, q_lora_rank) normalised compressed query latent (DeepSeek-V2 §2.1.2, eq. 12)."""
        return self.q_norm(self.wq_a(x))

    def _queries(self, x: torch.Tensor) -> torch.Tensor:
        q = self.wq_b(self._query_latent(x)) if self.q_lora_rank else self.wq(x)
        return rearrange(q, "b s (h d) -> b h s d", h=self.n_heads)

    @torch.no_grad()
    def scale_logits(self, gamma: torch.Tensor) -> None:
        """K2's MLA recipe: the head-specific content parts q^C (q_nope rows) and k^C (k_nope rows of
        wkv_b) by √γ_h each, the rotary query q^R by γ_h; the shared rotary key k^R (wkv_a's RoPE rows)
        is left alone, since rescaling it would touch every head. The value rows are not in the logit."""
        gamma = gamma.to(self.wo.weight.dtype)[:, None, None]
        q = _heads(self._query_weight(), self.n_heads)  # (h, nope + rope, i)
        q[:, : self.nope] *= gamma.sqrt()  # q^C
        q[:, self.nope :] *= gamma  # q^R: the rotary key it meets is shared, so γ, not √γ
        kv = _heads(self.wkv_b.weight, self.n_heads)  # (h, nope + v, c)
        kv[:, : self.nope] *= gamma.sqrt()  # k^C

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
        out, probs = attend(q, k, v, self.scale, opts.need_weights, dropout_p, self.logit_keeper(), opts.causal)
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

