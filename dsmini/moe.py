"""DeepSeekMoE: always-on shared experts plus fine-grained routed experts chosen per token.

Axes: n tokens (batch x time, flattened), d d_model, E n_routed_experts, k top_k.

Routers (`ModelConfig.router`):
- `sigmoid_bias` (DeepSeek-V3 §2.1.2, aux-loss-free): affinity s = sigmoid(x W_g); a per-expert
  bias is added *only to choose* the top-k; gate weights are the unbiased s of the chosen experts,
  normalised over the k. The trainer calls `Gate.update_bias(load)` once per optimizer step.
- `softmax_topk` (DeepSeek-V2): p = softmax(x W_g); top-k of p, renormalised over the k.
- `noisy_topk` (Shazeer et al. 2017): H = x W_g + N(0, 1) * softplus(x W_noise) in training only;
  top-k of H, softmax over the kept k.

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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .config import ModelConfig
from .options import ForwardOptions

ABLATION_MODES = ("reroute", "drop")


@dataclass(frozen=True)
class ExpertAblation:
    """What the explorer switches off in one MoE layer (see the module docstring)."""

    blocked: torch.Tensor | None = None  # (E,) bool: routed experts switched off
    mode: str = "reroute"  # how `blocked` acts: "reroute" (never chosen) or "drop" (output removed)
    mask_top: int = 0  # r: mask each token's r highest-scoring experts, choose top-k from the rest
    shared_off: bool = False  # the shared experts' output removed too

    def check(self, n_experts: int, top_k: int) -> None:
        """ValueError unless every token still has k experts to choose from."""
        if self.mode not in ABLATION_MODES:
            raise ValueError(f"ablation mode must be one of {ABLATION_MODES}, got {self.mode!r}")
        if self.blocked is not None and tuple(self.blocked.shape) != (n_experts,):
            raise ValueError(f"blocked must be an ({n_experts},) bool mask, got shape {tuple(self.blocked.shape)}")
        unavailable = self.mask_top + (self.n_blocked if self.mode == "reroute" else 0)
        if self.mask_top < 0 or unavailable > n_experts - top_k:
            raise ValueError(
                f"cannot take {unavailable} of {n_experts} experts out of the choice: each token still needs "
                f"top_k={top_k} (masked top-r={self.mask_top}, rerouted around {self.n_blocked if self.mode == 'reroute' else 0})"
            )

    @property
    def n_blocked(self) -> int:
        return 0 if self.blocked is None else int(self.blocked.sum())

    def choice_blocked(self) -> torch.Tensor | None:
        """(E,) experts the router may not choose: the blocked ones when rerouting."""
        return self.blocked if self.mode == "reroute" else None

    def output_blocked(self) -> torch.Tensor | None:
        """(E,) experts that are chosen but whose output is removed: the blocked ones when dropping."""
        return self.blocked if self.mode == "drop" else None


class Expert(nn.Module):
    """SwiGLU feed-forward: w2(silu(w1 x) * w3 x). Also the dense FFN of the baselines."""

    def __init__(self, d_model: int, inter_dim: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, inter_dim, bias=False)
        self.w2 = nn.Linear(inter_dim, d_model, bias=False)
        self.w3 = nn.Linear(d_model, inter_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Gate(nn.Module):
    """Scores experts for each token; returns (weights, indices, probs) like DeepSeek-V3's Gate."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.router, self.top_k, self.gamma = cfg.router, cfg.top_k, cfg.bias_update_speed
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

        Returns weights (n, k) summing to 1, indices (n, k), probs (n, E) over all experts.
        """
        logits = x @ self.weight.t()  # (n, E)
        if self.router == "sigmoid_bias":
            scores = logits.sigmoid()
            choice = scores + self.bias  # the bias steers the choice only
            indices = self._top_k(choice, ablation)
            chosen = scores.gather(1, indices)
            weights = chosen / chosen.sum(dim=-1, keepdim=True)
            probs = scores / scores.sum(dim=-1, keepdim=True)
        elif self.router == "softmax_topk":
            probs = logits.softmax(dim=-1)
            indices = self._top_k(probs, ablation)
            chosen = probs.gather(1, indices)
            weights = chosen / chosen.sum(dim=-1, keepdim=True)
        else:  # noisy_topk
            if self.training:
                logits = logits + torch.randn_like(logits) * F.softplus(x @ self.w_noise.t())
            probs = logits.softmax(dim=-1)
            indices = self._top_k(logits, ablation)
            weights = logits.gather(1, indices).softmax(dim=-1)
        return weights, indices, probs

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


@dataclass
class Routing:
    """One MoE layer's decisions for a (b, t) batch; what the explorer shows per character."""

    layer: int  # block index; MTP blocks come after the main layers
    indices: torch.Tensor  # (b, t, k) chosen routed experts
    weights: torch.Tensor  # (b, t, k) gate weights; 0 where the assignment was dropped
    probs: torch.Tensor  # (b, t, E) router probabilities over all routed experts
    dropped: torch.Tensor  # (b, t, k) bool: over capacity, the residual passed through
    valid: torch.Tensor  # (b, t) bool: real tokens (padding is not routed)
    load: torch.Tensor  # (E,) assignments each expert processed (after dropping)
    n_dropped: int
    aux_loss: torch.Tensor  # scalar, already scaled by aux_loss_coef


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
        self.experts = nn.ModuleList(Expert(cfg.d_model, cfg.moe_inter_dim) for _ in range(cfg.n_routed_experts))
        # n_shared experts fused into one wider SwiGLU, as DeepSeek-V3 does
        inter = cfg.n_shared_experts * cfg.moe_inter_dim
        self.shared_experts = Expert(cfg.d_model, inter) if inter else None

    def forward(self, x: torch.Tensor, opts: ForwardOptions = ForwardOptions()):
        """x: (b, t, d) -> (y, Routing). `opts.valid` (b, t) bool: False = padding, not routed.

        `opts.ablation[layer_id]` (explorer only) switches experts off; see `ExpertAblation`.
        """
        b, t, _ = x.shape
        flat = rearrange(x, "b t d -> (b t) d")
        valid_flat = torch.ones(b * t, dtype=torch.bool, device=x.device) if opts.valid is None else opts.valid.flatten()
        ablation = opts.ablation.get(self.layer_id)
        if ablation is not None:
            ablation.check(self.n_experts, self.top_k)
        weights, indices, probs = self.gate(flat, ablation)  # (n, k), (n, k), (n, E)
        keep = valid_flat[:, None].expand_as(indices)
        silenced = None if ablation is None else ablation.output_blocked()
        if silenced is not None:  # drop: chosen as usual, output removed, the other weights left as they are
            keep = keep & ~silenced.to(indices.device)[indices]
        dropped = torch.zeros_like(keep)
        if self.capacity_factor is not None and self.training:  # DeepSeek drops no tokens at inference
            n_valid = int(valid_flat.sum())
            capacity = math.ceil(self.capacity_factor * n_valid * self.top_k / self.n_experts)
            dropped = over_capacity(indices, weights, keep, capacity, self.n_experts)
            keep = keep & ~dropped
        weights = weights * keep
        y = self._dispatch(flat, indices, weights, keep)
        if self.shared_experts is not None and not (ablation is not None and ablation.shared_off):
            y = y + self.shared_experts(flat)
        load = torch.bincount(indices[keep], minlength=self.n_experts)
        routing = Routing(
            layer=self.layer_id,
            indices=indices.view(b, t, -1),
            weights=weights.view(b, t, -1),
            probs=probs.view(b, t, -1),
            dropped=dropped.view(b, t, -1),
            valid=valid_flat.view(b, t),
            load=load,
            n_dropped=int(dropped.sum()),
            aux_loss=self._aux_loss(indices[valid_flat], probs[valid_flat]),
        )
        return rearrange(y, "(b t) d -> b t d", b=b), routing

    def _dispatch(self, flat, indices, weights, keep) -> torch.Tensor:
        """Each expert runs once, on one contiguous slice: no Python loop over tokens.

        Kept assignments are sorted by expert, so one gather lays every expert's tokens side by
        side; each expert runs on its slice (a loop over E experts, as DeepSeek-V3's MoE does);
        one scatter adds each output row, scaled by its gate weight, back to its token. (A padded
        (E, C, d) bmm was tried: it wastes E x the work whenever routing is skewed, as at init.)
        """
        token, slot = torch.nonzero(keep, as_tuple=True)  # (a,) kept assignments
        if token.numel() == 0:  # every assignment dropped (an ablation, or a batch of padding)
            return torch.zeros_like(flat)
        expert = indices[token, slot]
        order = torch.argsort(expert, stable=True)
        token, slot = token[order], slot[order]
        counts = torch.bincount(expert, minlength=self.n_experts).tolist()
        segments = flat[token].split(counts)  # expert e's tokens, (count_e, d) each
        out = torch.cat([self.experts[e](seg) for e, seg in enumerate(segments) if counts[e]])  # (a, d)
        return torch.zeros_like(flat).index_add_(0, token, out * weights[token, slot, None])

    def _aux_loss(self, indices: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """alpha * E * sum_i f_i * P_i; f_i = share of the n*k choices that picked expert i,
        P_i = mean router probability of i. Equals alpha exactly when routing is uniform."""
        if self.aux_coef == 0 or indices.numel() == 0:
            return probs.new_zeros(())
        f = torch.bincount(indices.flatten(), minlength=self.n_experts).float() / indices.numel()
        p = probs.mean(dim=0)
        return self.aux_coef * self.n_experts * (f * p).sum()
