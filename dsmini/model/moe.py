"""DeepSeekMoE: always-on shared experts plus fine-grained routed experts chosen per token.

Axes: n tokens (batch x time, flattened), d d_model, E n_routed_experts, k top_k.

Routers (`ModelConfig.router`):
- `sigmoid_bias` (DeepSeek-V3 §2.1.2, aux-loss-free): affinity s = sigmoid(x W_g); a per-expert
  bias is added *only to choose* the top-k; gate weights are the unbiased s of the chosen experts,
  normalised over the k (V3 eq. 13). The trainer calls `Gate.update_bias(load)` once per optimizer step.
- `softmax_topk` (DeepSeek-V2 §2.2): p = softmax(x W_g); gate weights are the top-k of p as they are,
  not renormalised (V2 eq. 22; they sum to less than 1).
- `noisy_topk` (Shazeer et al. 2017): H = x W_g + N(0, 1) * softplus(x W_noise) in training only;
  top-k of H, softmax over the kept k.

`ModelConfig.norm_topk_prob` overrides the renormalisation of the first two (None: as their paper);
checkpoints saved before the option existed renormalised both, and load that way.

Ablation (the explorer only, never training): `ExpertAblation` switches experts of one layer off in
one of three ways, because they answer different questions. *Reroute* (blocked experts cannot be
chosen, the router takes its next choice) asks "can the others stand in?" and hides redundancy;
*drop* (blocked experts are chosen as usual but their weighted outputs are removed and nothing
replaces them; the remaining weights are not renormalised) asks "what did they contribute?";
*mask top-r* (DeepSeekMoE §4.5: mask each token's r highest-scoring experts, choose top-k from the
rest) asks "how much does a token need its favourite experts?".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from dsmini.config import ModelConfig

from .options import ExpertAblation, ForwardOptions

# routed experts through grouped_mm where it fits (see GroupedExperts); tests switch it off to compare
GROUPED_EXPERTS = True


class Expert(nn.Module):
    """SwiGLU feed-forward: w2(silu(w1 x) * w3 x). Also the dense FFN of the baselines."""

    def __init__(self, d_model: int, inter_dim: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, inter_dim, bias=False)
        self.w2 = nn.Linear(inter_dim, d_model, bias=False)
        self.w3 = nn.Linear(d_model, inter_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class GroupedExperts(nn.Module):
    """The E routed experts of one MoE layer as stacked SwiGLU weights (torchtitan's GroupedExperts):
    w1, w3 (E, h, d) and w2 (E, d, h); expert e computes w2[e] (silu(w1[e] x) * w3[e] x), the
    `Expert` above with its three nn.Linear weights stacked on a leading expert axis.

    Stacked, one grouped call serves every expert (no per-forward `torch.stack` of E weights) and
    Muon orthogonalises a layer's experts as one batch (dsmini.training.muon). What it changes, as in every
    grouped-GEMM MoE (torchtitan, Megatron): an expert that got no rows in a step gets a *zero*
    gradient, where separate modules got None and were skipped by the optimizer. So an idle expert
    is still stepped: AdamW's moments decay (m <- beta1 m, v <- beta2 v) and it keeps moving along
    its past direction, less each idle step, while weight decay shrinks it by lr * wd per step;
    Muon's momentum decays likewise, but Newton-Schulz rescales whatever momentum is left to a full-
    size orthogonal update, so an idle expert keeps moving at full speed along its last direction
    until it is routed again (an expert that never got a row has no momentum and stays put).
    Checkpoints saved with one module per expert are stacked on load (`stack_expert_weights`).
    """

    def __init__(self, n_experts: int, d_model: int, inter_dim: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(n_experts, inter_dim, d_model))
        self.w2 = nn.Parameter(torch.empty(n_experts, d_model, inter_dim))
        self.w3 = nn.Parameter(torch.empty(n_experts, inter_dim, d_model))
        for w in self.per_expert():  # nn.Linear's own init, so a seed draws what it drew for E modules
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))

    def per_expert(self) -> list[torch.Tensor]:
        """Each expert's w1, w2, w3 as 2-D views, expert by expert: the order E separate `Expert`
        modules had, so initialising through it keeps a seed's random draws (and models) as before."""
        return [w[e] for e in range(self.w1.size(0)) for w in (self.w1, self.w2, self.w3)]

    def forward(self, rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """rows (a, d) sorted by expert, counts (E,) -> each expert's SwiGLU on its slice, (a, d).

        On CPU three `grouped_mm` calls run every expert at once (an expert without rows is an
        empty group). Elsewhere a Python loop over the experts, as DeepSeek-V3's MoE does: CUDA's
        grouped_mm wants bf16 on sm90+, and the loop works everywhere. Both give the same outputs
        and gradients (tests/model/test_model.py).
        """
        if not self._grouped_mm_fits(rows):
            segments = rows.split(counts.tolist())  # expert e's tokens, (count_e, d) each
            return torch.cat([self._expert(e, seg) for e, seg in enumerate(segments) if seg.numel()])
        ends = counts.cumsum(0, dtype=torch.int32)  # where each expert's rows end
        gate = F.grouped_mm(rows, self.w1.transpose(1, 2), offs=ends)  # (a, h)
        up = F.grouped_mm(rows, self.w3.transpose(1, 2), offs=ends)  # (a, h)
        return F.grouped_mm(F.silu(gate) * up, self.w2.transpose(1, 2), offs=ends)  # (a, d)

    def _expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.silu(F.linear(x, self.w1[e])) * F.linear(x, self.w3[e]), self.w2[e])

    def _grouped_mm_fits(self, rows: torch.Tensor) -> bool:
        """Whether the grouped path runs: CPU fp32 with 16-byte-aligned rows (grouped_mm's rule)."""
        row_floats = 16 // rows.element_size()
        return (
            GROUPED_EXPERTS and rows.device.type == "cpu" and rows.dtype == torch.float32
            and rows.size(1) % row_floats == 0 and self.w1.size(1) % row_floats == 0
        )


_PER_EXPERT_KEY = re.compile(r"^(?P<layer>.+\.experts)\.(?P<expert>\d+)\.(?P<weight>w[123])\.weight$")


def stack_expert_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict saved with one module per routed expert (`...experts.{e}.w1.weight`, dsmini
    before stacked experts) in today's layout (`...experts.w1`, (E, h, d)); others come back as
    they are. Only complete layers are stacked, so a damaged file still fails the shape check by name."""
    per_layer: dict[tuple[str, str], dict[int, torch.Tensor]] = {}
    converted = {}
    for key, tensor in state.items():
        match = _PER_EXPERT_KEY.match(key)
        if match is None:
            converted[key] = tensor
        else:
            per_layer.setdefault((match["layer"], match["weight"]), {})[int(match["expert"])] = tensor
    for (layer, weight), experts in per_layer.items():
        if sorted(experts) == list(range(len(experts))):
            converted[f"{layer}.{weight}"] = torch.stack([experts[e] for e in range(len(experts))])
        else:
            converted.update({f"{layer}.{e}.{weight}.weight": t for e, t in experts.items()})
    return converted


class Gate(nn.Module):
    """Scores experts for each token; returns (weights, indices, probs) like DeepSeek-V3's Gate."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.router, self.top_k, self.gamma = cfg.router, cfg.top_k, cfg.bias_update_speed
        self.norm_topk_prob = cfg.normalises_topk
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.d_model))
        nn.init.normal_(self.weight, std=0.02)
        if self.router == "noisy_topk":
            # learned per-expert noise scale; zero init as in Shazeer et al.
            self.w_noise = nn.Parameter(torch.zeros(cfg.n_routed_experts, cfg.d_model))
        if self.router == "sigmoid_bias":
            # a buffer, not a parameter: moved by update_bias, never by gradients; saved with the model
            self.register_buffer("bias", torch.zeros(cfg.n_routed_experts))

    def forward(self, x: torch.Tensor, ablation: ExpertAblation | None = None):
        """x: (n, d). `ablation` (explorer only): experts that may not be chosen.

        Returns weights (n, k) (summing to 1 when renormalised), indices (n, k), probs (n, E) over all experts.
        """
        logits = x @ self.weight.t()  # (n, E)
        if self.router == "sigmoid_bias":
            scores = logits.sigmoid()
            choice = scores + self.bias  # the bias steers the choice only
            indices = self._top_k(choice, ablation)
            weights = self._gate_weights(scores.gather(1, indices))
            probs = scores / scores.sum(dim=-1, keepdim=True)
        elif self.router == "softmax_topk":
            probs = logits.softmax(dim=-1)
            indices = self._top_k(probs, ablation)
            weights = self._gate_weights(probs.gather(1, indices))
        else:  # noisy_topk
            if self.training:
                logits = logits + torch.randn_like(logits) * F.softplus(x @ self.w_noise.t())
            probs = logits.softmax(dim=-1)
            indices = self._top_k(logits, ablation)
            weights = logits.gather(1, indices).softmax(dim=-1)
        return weights, indices, probs

    def _gate_weights(self, chosen: torch.Tensor) -> torch.Tensor:
        """(n, k) scores of the chosen experts -> gate weights: renormalised over the k, or as they are."""
        return chosen / chosen.sum(dim=-1, keepdim=True) if self.norm_topk_prob else chosen

    def _top_k(self, scores: torch.Tensor, ablation: ExpertAblation | None) -> torch.Tensor:
        """(n, E) selection scores -> (n, k) chosen experts, after the ablation's masks."""
        if ablation is not None:
            if ablation.mask_top:  # DeepSeekMoE §4.5: each token loses its r favourite experts
                favourites = scores.topk(ablation.mask_top, dim=-1).indices  # (n, r)
                scores = scores.scatter(-1, favourites, float("-inf"))
            blocked = ablation.choice_blocked()
            if blocked is not None:
                scores = scores.masked_fill(blocked.to(scores.device), float("-inf"))
        return scores.topk(self.top_k, dim=-1).indices

    @torch.no_grad()
    def update_bias(self, load: torch.Tensor) -> None:
        """Aux-loss-free balancing: overloaded experts' bias -gamma, underloaded +gamma."""
        if self.router != "sigmoid_bias":
            return
        load = load.to(self.bias.device, torch.float32)
        self.bias += self.gamma * torch.sign(load.mean() - load)


@dataclass(frozen=True)
class RoutedRows:
    """The router's decisions for the v tokens a layer routed (its real tokens), as `MoE._route`
    made them: no copy, no padding."""

    indices: torch.Tensor  # (v, k) chosen routed experts
    weights: torch.Tensor  # (v, k) gate weights; 0 where the assignment was dropped
    probs: torch.Tensor  # (v, E) router probabilities over all routed experts
    dropped: torch.Tensor | None  # (v, k) bool: over capacity; None when nothing can be (no capacity count)


@dataclass
class Routing:
    """One MoE layer's decisions for a (b, t) batch. Training reads `load`, `n_dropped` and
    `aux_loss`; the per-token record the explorer shows per character (`indices`, `weights`,
    `probs`, `dropped`, `valid`, each (b, t, ...)) is laid out from the routed rows when first
    read, so a training step allocates nothing for it."""

    layer: int  # block index; MTP blocks come after the main layers
    load: torch.Tensor  # (E,) assignments each expert processed (after dropping)
    n_dropped: int
    aux_loss: torch.Tensor  # scalar, already scaled by aux_loss_coef
    rows: RoutedRows
    shape: tuple[int, int]  # (b, t) of the batch
    mask: torch.Tensor | None = None  # (b, t) bool real tokens as `ForwardOptions.valid` gave them; None: all

    @cached_property
    def indices(self) -> torch.Tensor:
        """(b, t, k) chosen routed experts (0 at padding)."""
        return self._per_token(self.rows.indices)

    @cached_property
    def weights(self) -> torch.Tensor:
        """(b, t, k) gate weights; 0 where the assignment was dropped, and at padding."""
        return self._per_token(self.rows.weights)

    @cached_property
    def probs(self) -> torch.Tensor:
        """(b, t, E) router probabilities over all routed experts (0 at padding)."""
        return self._per_token(self.rows.probs)

    @cached_property
    def dropped(self) -> torch.Tensor:
        """(b, t, k) bool: over capacity, the residual passed through."""
        dropped = self.rows.dropped
        return self._per_token(torch.zeros_like(self.rows.indices, dtype=torch.bool) if dropped is None else dropped)

    @cached_property
    def valid(self) -> torch.Tensor:
        """(b, t) bool: real tokens (padding is not routed)."""
        if self.mask is not None:
            return self.mask
        return torch.ones(self.shape, dtype=torch.bool, device=self.rows.indices.device)

    @cached_property
    def _real(self) -> torch.Tensor:
        """(v,) where the routed tokens sit in the flattened (b t) batch."""
        return self.mask.flatten().nonzero().squeeze(1)

    def _per_token(self, rows: torch.Tensor) -> torch.Tensor:
        """(v, n) per routed token -> (b, t, n), zeros at padding."""
        if self.mask is not None:
            rows = rows.new_zeros((self.mask.numel(), *rows.shape[1:])).index_copy(0, self._real, rows)
        return rows.view(*self.shape, -1)


def over_capacity(
    indices: torch.Tensor, weights: torch.Tensor, keep: torch.Tensor, capacity: int, n_experts: int
) -> torch.Tensor:
    """(n, k) bool: assignments beyond `capacity` per expert; each expert keeps its highest weights.

    Vectorised as in Switch Transformer: sort assignments by weight, then a cumulative count of
    each expert's one-hot gives every assignment its rank within its expert.
    """
    flat_e, flat_keep = indices.flatten(), keep.flatten()
    priority = torch.where(flat_keep, weights.flatten().detach(), torch.full_like(weights.flatten(), -1.0))
    order = torch.argsort(priority, descending=True, stable=True)
    onehot = F.one_hot(flat_e[order], n_experts) * flat_keep[order, None]  # (n*k, E)
    rank_sorted = (onehot.cumsum(dim=0) * onehot).sum(dim=-1) - 1  # rank within its expert
    rank = torch.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return (flat_keep & (rank >= capacity)).view_as(keep)


class MoE(nn.Module):
    """Shared experts (always on) + routed experts (top-k of E per token), optional capacity."""

    def __init__(self, cfg: ModelConfig, layer_id: int):
        super().__init__()
        self.layer_id = layer_id
        self.n_experts, self.top_k = cfg.n_routed_experts, cfg.top_k
        self.capacity_factor, self.aux_coef = cfg.capacity_factor, cfg.aux_loss_coef
        self.gate = Gate(cfg)
        self.experts = GroupedExperts(cfg.n_routed_experts, cfg.d_model, cfg.moe_inter_dim)
        # n_shared experts fused into one wider SwiGLU, as DeepSeek-V3 does
        inter = cfg.n_shared_experts * cfg.moe_inter_dim
        self.shared_experts = Expert(cfg.d_model, inter) if inter else None

    def forward(self, x: torch.Tensor, opts: ForwardOptions = ForwardOptions()):
        """x: (b, t, d) -> (y, Routing). `opts.valid` (b, t) bool: False = padding, not routed.

        `opts.ablation[layer_id]` (explorer only) switches experts off; see `ExpertAblation`.
        Padding never reaches the layer: the real tokens are gathered once, routed and run through
        the experts, and scattered back, so a padding position's FFN output is zero (the residual
        passes through). Padding sits after a name's end: its targets are ignored and causal
        attention never lets a real position read it, so nothing sees that zero; a training batch of
        names is ~40% padding. What nobody asked for costs nothing: no mask without an ablation, no
        capacity count without a capacity factor, no aux-loss indexing at aux_loss_coef 0, and no
        per-token routing record until the explorer reads one (`Routing`).
        """
        b, t, _ = x.shape
        flat = rearrange(x, "b t d -> (b t) d")
        ablation = opts.ablation.get(self.layer_id)
        if ablation is not None:
            ablation.check(self.n_experts, self.top_k)
        if opts.valid is None:
            y, rows, load, n_dropped, aux = self._route(flat, ablation)
        else:
            real = opts.valid.flatten().nonzero().squeeze(1)  # (v,) real tokens
            y_real, rows, load, n_dropped, aux = self._route(flat[real], ablation)
            y = flat.new_zeros(flat.shape).index_copy(0, real, y_real)
        routing = Routing(self.layer_id, load, n_dropped, aux, rows, shape=(b, t), mask=opts.valid)
        return rearrange(y, "(b t) d -> b t d", b=b), routing

    def _route(self, rows: torch.Tensor, ablation: ExpertAblation | None):
        """rows (v, d) of real tokens -> (y (v, d), RoutedRows, load (E,), n_dropped, aux_loss)."""
        weights, indices, probs = self.gate(rows, ablation)  # (v, k), (v, k), (v, E)
        keep = self._kept(indices, ablation)  # (v, k) bool, or None: every assignment kept
        dropped, n_dropped = None, 0
        if self.capacity_factor is not None and self.training:  # DeepSeek drops no tokens at inference
            keep = torch.ones_like(indices, dtype=torch.bool) if keep is None else keep
            capacity = math.ceil(self.capacity_factor * rows.size(0) * self.top_k / self.n_experts)
            dropped = over_capacity(indices, weights, keep, capacity, self.n_experts)
            keep, n_dropped = keep & ~dropped, int(dropped.sum())
        if keep is not None:
            weights = weights * keep
        shared_on = self.shared_experts is not None and not (ablation is not None and ablation.shared_off)
        # the routed outputs are added straight into the shared experts' output: no zeros, no extra add
        base = self.shared_experts(rows) if shared_on else torch.zeros_like(rows)
        y, load = self._dispatch(rows, indices, weights, keep, base)
        return y, RoutedRows(indices, weights, probs, dropped), load, n_dropped, self._aux_loss(indices, probs)

    def _kept(self, indices, ablation: ExpertAblation | None) -> torch.Tensor | None:
        """(v, k) bool: assignments that run (not silenced by a drop ablation); None when all of them do."""
        silenced = None if ablation is None else ablation.output_blocked()
        if silenced is None:
            return None
        return ~silenced.to(indices.device)[indices]  # drop: chosen as usual, output removed, others' weights kept

    def _dispatch(self, flat, indices, weights, keep, base) -> tuple[torch.Tensor, torch.Tensor]:
        """(base + routed outputs (n, d), load (E,)): each expert runs once, on one contiguous
        slice of its tokens; `base` (n, d) is added to in place.

        Kept assignments are sorted by expert, so one gather lays every expert's tokens side by
        side; the experts run on their slices (`GroupedExperts`); one scatter adds each output row,
        scaled by its gate weight, back to its token. The per-expert counts that cut the slices are
        the layer's load. (A padded (E, C, d) bmm was tried: it wastes E x the work whenever
        routing is skewed, as at init.)
        """
        flat_expert = indices.flatten()  # (n*k,) assignment a = token * k + slot
        if keep is None:
            assignment = torch.argsort(flat_expert, stable=True)
        else:
            assignment = keep.flatten().nonzero().squeeze(1)  # (a,) kept assignments
            assignment = assignment[torch.argsort(flat_expert[assignment], stable=True)]
        load = torch.bincount(flat_expert[assignment], minlength=self.n_experts)
        if assignment.numel() == 0:  # every assignment dropped (an ablation, or a batch of padding)
            return base, load
        token = assignment // self.top_k
        out = self.experts(flat[token], load)  # (a, d), rows in expert order
        # under bf16 autocast (CUDA) the experts' outputs are bf16 and `base` may be fp32: one dtype for index_add_
        return base.index_add_(0, token, (out * weights.flatten()[assignment, None]).to(base.dtype)), load

    def _aux_loss(self, indices: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """alpha * E * sum_i f_i * P_i over the routed (real) tokens; f_i = share of the n*k choices
        that picked expert i, P_i = mean router probability of i. Equals alpha exactly when routing
        is uniform."""
        if self.aux_coef == 0 or indices.numel() == 0:
            return probs.new_zeros(())
        f = torch.bincount(indices.flatten(), minlength=self.n_experts).float() / indices.numel()
        p = probs.mean(dim=0)
        return self.aux_coef * self.n_experts * (f * p).sum()
