"""Sparse attention on the MLA path: DeepSeek Sparse Attention (DSA), Mixture of Block Attention
(MoBA) and log-linear attention.

All three keep MLA whole (DeepSeek-V2 §2.1): the same query, latent `c_kv`, shared RoPE key,
naive and absorbed paths and the same cache; they only change *which* positions each query's
softmax may weigh, or at what resolution. Each computes the scaled scores of every (query, key)
pair, then a `Selection`: the `allowed` mask (probabilities are exactly 0 outside it, `softmax_last`
of -inf is 0) and, for log-linear, the pooling of old positions into Fenwick buckets. At names'
lengths the full score matrix is cheaper than gathering the selected keys; a long-context kernel
would compute only the selected scores (FlashMLA's sparse kernels for DSA, MoBA's varlen
FlashAttention), which is the same function.

Selections work on the scores, never on the keys, so one code path serves the naive and absorbed
forms: MoBA's gate `q · mean(k)` is the mean of `q · k` over the block, and a bucket's pooled key
scores the mean of its scores (both by linearity; the absorbed key `[c_kv; k_rope]` holds the same
dot products as the naive `[W_UK c_kv; k_rope]`).

Axes: b batch, h heads, s query time, t key time (cached + new), j indexer heads, i indexer dims,
n blocks, l Fenwick levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import nn

from dsmini.config import ModelConfig

from .attention import MLA, AttnTrace, LayerCache, append_positions, causal_mask, softmax_last
from .options import ForwardOptions
from .rope import apply_rope, rope_angles

NEG_INF = float("-inf")


@dataclass
class Selection:
    """What one sparse layer let each query see. allowed: (b, h or 1, s, t) bool, always within the
    causal mask; aux_loss: a loss that trains the selector itself (DSA's indexer), or None."""

    allowed: torch.Tensor
    levels: torch.Tensor | None = None  # log-linear: (s, t) Fenwick level of each pair, -1 later
    aux_loss: torch.Tensor | None = None

    def pool(self, scores: torch.Tensor) -> torch.Tensor:
        """Scores as the softmax weighs them, before masking (only log-linear pools)."""
        return scores

    def logits(self, scores: torch.Tensor) -> torch.Tensor:
        return self.pool(scores).masked_fill(~self.allowed, NEG_INF)


def top_positions(scores: torch.Tensor, k: int, eligible: torch.Tensor) -> torch.Tensor:
    """(..., t) bool: the k highest `scores` among `eligible` (fewer if fewer are eligible).

    A stable sort over the reversed axis breaks ties (ReLU makes exact zeros common) towards the
    latest position, the same way for a whole sequence and for one decoded step, so cached decoding
    picks what the full forward picks.
    """
    ranked = scores.masked_fill(~eligible, NEG_INF).flip(-1)
    order = ranked.argsort(dim=-1, descending=True, stable=True)[..., :k]
    picked = torch.zeros_like(eligible).scatter_(-1, order, True).flip(-1)
    return picked & eligible


class SparseMLA(MLA):
    """MLA whose softmax weighs only each query's `Selection` (written-out attention: the selection
    needs the scores). Subclasses define `_select`."""

    def _select(self, scores: torch.Tensor, x: torch.Tensor, start: int, cache) -> Selection:
        raise NotImplementedError

    def _attend(self, q, k, v, x, start, cache, opts: ForwardOptions, dropout_p: float):
        scores = einsum(q, k, "b h s d, b h t d -> b h s t") * self.scale
        selection = self._select(scores, x, start, cache)
        keep = self.logit_keeper()
        if keep is not None:  # the q·k logits the softmax may weigh (log-linear's log λ is not q·k)
            keep(scores.masked_fill(~selection.allowed, NEG_INF))
        probs = softmax_last(selection.logits(scores))
        out = (F.dropout(probs, dropout_p) if dropout_p else probs) @ v
        if selection.aux_loss is not None:
            out = WithAuxLoss.apply(out, selection.aux_loss)
        return out, (probs if opts.need_weights else None), selection

    def _trace(self, probs, parts, selection: Selection) -> AttnTrace:
        nope, pos = (selection.pool(p).masked_fill(~selection.allowed, float("nan")) for p in parts)
        return AttnTrace(probs, nope, pos, allowed=selection.allowed, levels=selection.levels)


class WithAuxLoss(torch.autograd.Function):
    """Identity on the activations whose backward also seeds the gradient of a side loss with 1, as
    DeepSeek-V2's released MoE code (`AddAuxiliaryLoss`) adds its balance loss: DSA's indexer loss
    trains the indexer through the ordinary `loss.backward()`, with no change to the training loop."""

    @staticmethod
    def forward(ctx, out: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        ctx.loss_meta = (loss.shape, loss.dtype, loss.device)
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        shape, dtype, device = ctx.loss_meta
        return grad_out, torch.ones(shape, dtype=dtype, device=device)


def _positions(start: int, s: int, t: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(start, start + s, device=device), torch.arange(t, device=device)


# ---------------------------------------------------------------------------------------------
# DSA


@dataclass
class IndexedLatentCache(LayerCache):
    """DSA cache: MLA's latent and RoPE key, plus the lightning indexer's key of every position
    (DeepSeek-V3.2 §2.1: its `Indexer.k_cache` beside `kv_cache`/`pe_cache`), which each new query
    scores to pick its top-k."""

    c_kv: torch.Tensor  # (b, T, c)
    k_rope: torch.Tensor  # (b, T, r)
    k_index: torch.Tensor  # (b, T, i)

    @classmethod
    def empty(cls, cfg: ModelConfig, batch: int, max_len: int, device=None, dtype=torch.float32) -> IndexedLatentCache:
        return cls(*(torch.zeros(batch, max_len, size, device=device, dtype=dtype)
                     for size in (cfg.kv_lora_rank, cfg.qk_rope_head_dim, cfg.dsa_index_dim)))


class LightningIndexer(nn.Module):
    """DeepSeek-V3.2's lightning indexer (§2.1, eq. 1): I_{t,s} = Σ_j w_{t,j} · ReLU(q_{t,j} · k_s).

    What it sees: queries q_{t,j} (H^I small heads) from the query token, from MLA's compressed
    query latent when queries are compressed (V3.2's `Indexer.wq_b(qr)`), else from the token's
    hidden state; one key k_s per position from that position's hidden state (LayerNorm, then RoPE
    on its first half, as `Indexer.wk`/`k_norm`); head weights w_{t,j} from the query token
    (`weights_proj`, times H^I^-1/2). Its inputs are detached: the language-model loss never
    reaches it, only its own KL loss does (§2.1.1, "sparse training stage").
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.dim = cfg.dsa_index_heads, cfg.dsa_index_dim
        self.wq = nn.Linear(cfg.q_lora_rank or cfg.d_model, self.n_heads * self.dim, bias=False)
        self.wk = nn.Linear(cfg.d_model, self.dim, bias=False)
        self.k_norm = nn.LayerNorm(self.dim)
        self.weights_proj = nn.Linear(cfg.d_model, self.n_heads, bias=False)
        rotations = rope_angles(self.dim // 2, cfg.block_size, cfg.rope_theta)
        self.register_buffer("rotations", rotations, persistent=False)

    def _rope(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """RoPE on the first half of the last axis for positions start.., the rest left as content."""
        half = self.dim // 2
        turned = apply_rope(x[..., :half], self.rotations[start : start + x.size(-2)])
        return torch.cat([turned, x[..., half:]], dim=-1)

    def keys(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """(b, s, d) hidden states -> (b, s, i) indexer keys, what the DSA cache keeps."""
        return self._rope(self.k_norm(self.wk(x.detach())), start)

    def scores(self, x: torch.Tensor, q_source: torch.Tensor, keys: torch.Tensor, start: int) -> torch.Tensor:
        """Index scores (b, s, t) of the s new queries over all t keys (eq. 1, scaled by d^I^-1/2
        as V3.2's `softmax_scale`)."""
        q = rearrange(self.wq(q_source.detach()), "b s (j i) -> b j s i", j=self.n_heads)
        q = self._rope(q, start)
        w = self.weights_proj(x.detach()) * self.n_heads**-0.5  # (b, s, j)
        dots = F.relu(einsum(q, keys, "b j s i, b t i -> b j s t"))
        return einsum(dots, w, "b j s t, b s j -> b s t") * self.dim**-0.5


def indexer_kl(scores: torch.Tensor, index_scores: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
    """V3.2 §2.1.1 eq. 3: Σ_t KL(p_t || Softmax(I_t)), averaged over queries, where p_t is the main
    attention (all heads summed, L1-normalised, detached) over every earlier position. We compute the
    dense scores anyway, so the indexer learns to imitate dense attention throughout (the warm-up's
    target) instead of only within its own picks; there is no separate frozen warm-up stage."""
    with torch.no_grad():
        p = softmax_last(scores.float().masked_fill(~causal, NEG_INF)).mean(dim=1)  # (b, s, t)
    # a finite fill keeps masked terms at 0 * finite = 0 (with -inf they would be NaN in backward)
    floor = torch.finfo(torch.float32).min / 2
    log_q = F.log_softmax(index_scores.float().masked_fill(~causal, floor), dim=-1)
    return (torch.xlogy(p, p) - p * log_q).sum(-1).mean()


class DSA(SparseMLA):
    """DeepSeek Sparse Attention (DeepSeek-V3.2 §2.1): the lightning indexer scores every earlier
    position, and each query's MLA attention sees only its top-k (eq. 2,
    u_t = Attn(h_t, {c_s | I_{t,s} ∈ Top-k(I_{t,:})})).

    How it sits on MLA: V3.2 instantiates DSA in MLA's MQA mode, where one latent entry c_s (with
    its RoPE key) is shared by all query heads, so the top-k is chosen once per query token and
    shared by every head; here the same mask covers all heads on the naive and absorbed paths.
    The cache keeps MLA's latent and RoPE key plus the indexer key of each position
    (`IndexedLatentCache`). With k >= the positions seen, DSA is exactly MLA.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.indexer = LightningIndexer(cfg)
        self.top_k = cfg.dsa_top_k

    @classmethod
    def param_count(cls, cfg: ModelConfig) -> int:
        d, i, j = cfg.d_model, cfg.dsa_index_dim, cfg.dsa_index_heads
        indexer = (cfg.q_lora_rank or d) * j * i + d * i + 2 * i + d * j  # wq, wk, k_norm, weights_proj
        return super().param_count(cfg) + indexer

    def _select(self, scores, x, start, cache) -> Selection:
        s, t = scores.size(-2), scores.size(-1)
        keys = self.indexer.keys(x, start)
        if cache is not None:
            keys = append_positions(cache.k_index, keys, start, time_dim=1)  # (b, t, i)
        q_source = self._query_latent(x) if self.q_lora_rank else x
        index_scores = self.indexer.scores(x, q_source, keys, start)  # (b, s, t)
        causal = causal_mask(s, t, scores.device)
        picked = top_positions(index_scores, self.top_k, causal.expand_as(index_scores))
        loss = indexer_kl(scores, index_scores, causal) if self.training and torch.is_grad_enabled() else None
        return Selection(allowed=picked[:, None], aux_loss=loss)


# ---------------------------------------------------------------------------------------------
# MoBA


class MoBA(SparseMLA):
    """Mixture of Block Attention (Lu et al. 2025, §2.2): the keys are split into blocks of
    `moba_block_size`; a parameter-free gate scores each earlier block for each query and head by
    the query's dot product with the block's mean-pooled key (s_i = <q, mean_pool(K[I_i])>, eq. 5);
    each query attends to its top `moba_top_blocks` earlier blocks and always to its own current
    block, causally within it (§2.2, "causality": no query is routed to a future block).

    On MLA the pooled key is the up-projected mean latent (mean-pooling commutes with W_UK), so the
    gate equals the block mean of the query's scores and the cache is MLA's own. Gates are per head,
    as MoBA gates each attention head. With top blocks >= the earlier blocks, MoBA is exactly MLA.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.block_size, self.top_blocks = cfg.moba_block_size, cfg.moba_top_blocks

    def _select(self, scores, x, start, cache) -> Selection:
        s, t = scores.size(-2), scores.size(-1)
        q_pos, k_pos = _positions(start, s, t, scores.device)
        q_block, k_block = q_pos // self.block_size, k_pos // self.block_size
        members = F.one_hot(k_block, int(k_block[-1]) + 1).to(scores.dtype)  # (t, n)
        gate = einsum(scores, members, "b h s t, t n -> b h s n") / members.sum(0)  # block means
        blocks = torch.arange(members.size(1), device=scores.device)
        earlier = (blocks[None, :] < q_block[:, None]).expand_as(gate)  # (b, h, s, n)
        chosen = top_positions(gate, self.top_blocks, earlier)
        own_block = (k_block[None, :] == q_block[:, None]) & causal_mask(s, t, scores.device)  # (s, t)
        return Selection(allowed=chosen[..., k_block] | own_block)


# ---------------------------------------------------------------------------------------------
# Log-linear


def fenwick_levels(q_pos: torch.Tensor, k_pos: torch.Tensor, n_levels: int) -> torch.Tensor:
    """(s, t) Fenwick level of key position k for query position q (Guo et al. 2025 §3.1, Fig. 2):
    0 for k = q, -1 for k > q, else the bit length of q XOR k. Level l >= 1 is the bucket of the
    2^(l-1) positions that agree with q above bit l-1 and differ at it: exactly the buckets q's
    Fenwick decomposition makes by stripping its lowest set bit, sizes 1, 2, 4, ... towards the start."""
    diff = q_pos[:, None] ^ k_pos[None, :]
    bits = (diff[..., None] >= 2 ** torch.arange(n_levels, device=diff.device)).sum(-1)  # bit length
    return torch.where(k_pos[None, :] > q_pos[:, None], -1, bits)


@dataclass
class FenwickSelection(Selection):
    """Log-linear's view: every earlier position is allowed, but those at levels >= `fine_levels`
    are pooled, each bucket scoring the mean of its scores; `bias` (b, h, s, t) adds log λ of each
    pair's level."""

    members: torch.Tensor | None = None  # (s, t, l) one-hot level of each pair (zero for later keys)
    fine_levels: int = 1
    bias: torch.Tensor | None = None

    def pool(self, scores: torch.Tensor) -> torch.Tensor:
        members = self.members.to(scores.dtype)
        means = einsum(scores, members, "b h s t, s t l -> b h s l") / members.sum(1).clamp(min=1)
        bucket = einsum(means, members, "b h s l, s t l -> b h s t")
        return torch.where(self.levels >= self.fine_levels, bucket, scores)

    def logits(self, scores: torch.Tensor) -> torch.Tensor:
        return super().logits(scores) + self.bias


class LogLinear(SparseMLA):
    """Log-linear attention (Guo et al. 2025), softmax variant on MLA.

    The paper (§3.1, eq. 3-4) splits each query's past Fenwick-style into O(log t) buckets B_t^(l) of
    sizes 1, 2, 4, ... (recent ones finest), keeps one state per bucket, and weights bucket l by a
    data-dependent λ_t^(l) >= 0: O = (QK^T ⊙ M^H) V with M^H_{t,s} = λ_t^{l(t,s)}, a hierarchical
    matrix. Its states are linear-attention sums; ours is the softmax analogue with one summary per
    bucket, so a query weighs O(log t) units, as the paper's O(log T) states:

    - levels 0 .. F-1 (F = `loglinear_fine_levels`: the query itself and the next finest buckets,
      up to 2^(F-1) positions) are seen token by token;
    - each coarser bucket is one pooled unit: its mean key and mean value, counted |B| times
      (logit q·mean(k) + log|B|), so a bucket of equal keys weighs what its tokens would;
    - every unit of level l gets log λ_t^(l) added to its logit, λ from a linear map of the query's
      hidden state (`level_weights`, one per head and level), M^H's role under a softmax.

    A pooled unit spread evenly over its |B| positions gives the same output (mean value) and the
    same normaliser, so it is computed as token-level attention in which every position of a pooled
    bucket carries the bucket's mean score: probabilities are then exactly equal across a bucket.
    Why this variant: it keeps the paper's partition and level weights, is exact softmax within the
    fine levels, and lets the Attention page show the buckets as a plain (query, key) map.
    The cache is MLA's; each bucket's mean is recomputed from the cached latents.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.n_levels, self.fine_levels = cfg.loglinear_levels, cfg.loglinear_fine_levels
        self.level_weights = nn.Linear(cfg.d_model, cfg.n_heads * self.n_levels, bias=False)  # log λ

    @classmethod
    def param_count(cls, cfg: ModelConfig) -> int:
        return super().param_count(cfg) + cfg.d_model * cfg.n_heads * cfg.loglinear_levels  # level_weights

    def _select(self, scores, x, start, cache) -> Selection:
        s, t = scores.size(-2), scores.size(-1)
        q_pos, k_pos = _positions(start, s, t, scores.device)
        levels = fenwick_levels(q_pos, k_pos, self.n_levels)
        members = F.one_hot(levels.clamp(min=0), self.n_levels) & (levels >= 0)[..., None]  # (s, t, l)
        log_lambda = rearrange(self.level_weights(x), "b s (h l) -> b h s l", l=self.n_levels)
        bias = einsum(log_lambda, members.to(log_lambda.dtype), "b h s l, s t l -> b h s t")
        return FenwickSelection(
            allowed=(levels >= 0)[None, None], levels=levels, members=members,
            fine_levels=self.fine_levels, bias=bias,
        )

