"""DSMini: a decoder-only, DeepSeek-style character model, readable top to bottom.

    idx -> embed -> [RMSNorm -> attention -> +, RMSNorm -> FFN (MoE | dense) -> +] x L
        -> RMSNorm -> head -> next-character logits
    (attention: MLA, its sparse types or the MHA family, dsmini.model.attention_types)
    MTP depth k (DeepSeek-V3 §2.2): [hnorm(h^{k-1}_i); enorm(embed(t_{i+k}))] -> eh_proj -> Block
        -> norm -> the same head -> logits for t_{i+k+1}

Axes: b batch, s new positions, t all positions, d d_model, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dsmini.config import ModelConfig

from .attention import AttnTrace, LayerCache, causal_mask
from .attention_types import build_attention
from .cache import ModelCache, StackCache, new_model_cache
from .moe import Expert, ExpertAblation, GroupedExperts, MoE, Routing
from .options import ForwardOptions
from .rope import rope_angles

IGNORE_INDEX = -1  # the target at padded positions (dsmini.data pads with it): cross_entropy ignores it


class Block(nn.Module):
    """Pre-norm transformer block: attention then FFN, each added to the residual stream."""

    def __init__(self, cfg: ModelConfig, layer_id: int):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = build_attention(cfg)
        self.ffn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.ffn = MoE(cfg, layer_id) if cfg.is_moe_layer(layer_id) else Expert(cfg.d_model, cfg.d_ff)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, rope, cache: LayerCache | None = None, opts: ForwardOptions = ForwardOptions()):
        a, trace = self.attn(self.attn_norm(x), rope, cache, opts)
        x = x + self.drop(a)
        routing = None
        if isinstance(self.ffn, MoE):
            f, routing = self.ffn(self.ffn_norm(x), opts)
        else:
            f = self.ffn(self.ffn_norm(x))
        return x + self.drop(f), routing, trace


class MTP(nn.Module):
    """One Multi-Token Prediction module (DeepSeek-V3 §2.2); embedding and head are the main model's.

    V3 gives each module one transformer block; `mtp_layers` > 1 stacks more (the seed nanoGPT uses
    two). The first block keeps the name `block` so checkpoints saved before stacks existed load
    unchanged; the others are `more_blocks` (none when mtp_layers = 1).
    """

    def __init__(self, cfg: ModelConfig, depth: int):
        super().__init__()
        self.enorm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.hnorm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.eh_proj = nn.Linear(2 * cfg.d_model, cfg.d_model, bias=False)
        self.block = Block(cfg, layer_id=cfg.mtp_block_id(depth, 0))
        self.more_blocks = nn.ModuleList(Block(cfg, cfg.mtp_block_id(depth, j)) for j in range(1, cfg.mtp_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)  # before the shared head (V3's shared_head.norm)

    @property
    def blocks(self) -> list[Block]:
        return [self.block, *self.more_blocks]

    def forward(
        self, h_prev, emb_next, rope, cache: StackCache | None = None, opts: ForwardOptions = ForwardOptions()
    ) -> tuple[torch.Tensor, list[Routing]]:
        """h_prev: (b, s, d) depth k-1 states at i; emb_next: (b, s, d) embeddings of t_{i+k}.
        Returns the module's states (b, s, d) and the routing of each of its MoE blocks."""
        x = self.eh_proj(torch.cat([self.hnorm(h_prev), self.enorm(emb_next)], dim=-1))  # (b, s, 2d) -> (b, s, d)
        routings = []
        for j, block in enumerate(self.blocks):
            x, routing, _ = block(x, rope, cache.blocks[j] if cache is not None else None, opts)
            if routing is not None:
                routings.append(routing)
        return x, routings


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (b, s, V) next-character logits
    loss: torch.Tensor | None = None  # main + mtp_lambda / D * sum(mtp) + aux
    main_loss: torch.Tensor | None = None
    mtp_losses: list[torch.Tensor] = field(default_factory=list)  # CE per depth k = 1..D
    aux_loss: torch.Tensor | None = None
    routing: list[Routing] = field(default_factory=list)  # every MoE layer, main then MTP
    mtp_logits: list[torch.Tensor] = field(default_factory=list)  # depth k: (b, s - k, V) for t_{i+k+1}
    hidden: torch.Tensor | None = None  # (b, s, d) last block's output (input to MTP depth 1)
    attn: list[AttnTrace] = field(default_factory=list)  # per main layer, when need_weights


class DSMini(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.mtp = nn.ModuleList(MTP(cfg, k) for k in range(1, cfg.mtp_depth + 1))
        rope_dim = cfg.qk_rope_head_dim if cfg.latent_attention else cfg.mha_head_dim
        self.register_buffer("rope_rotations", rope_angles(rope_dim, cfg.block_size, cfg.rope_theta), persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith(("wo.weight", "w2.weight")):
                nn.init.normal_(p, std=0.02 / (2 * cfg.n_layers) ** 0.5)
            elif name.endswith("experts.w2"):  # expert by expert, in the order separate modules were drawn
                for w in p.unbind(0):
                    nn.init.normal_(w, std=0.02 / (2 * cfg.n_layers) ** 0.5)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, GroupedExperts):
            for w in module.per_expert():
                nn.init.normal_(w, std=0.02)

    @property
    def has_mtp(self) -> bool:
        """Whether an MTP module exists to train with and to draft with (mtp_depth >= 1)."""
        return len(self.mtp) > 0

    # caches -----------------------------------------------------------------------------
    def new_cache(self, batch: int, max_len: int | None = None, with_mtp: bool = False) -> ModelCache:
        """`new_model_cache` on this model's device and dtype (see dsmini.model.cache)."""
        weight = self.head.weight
        return new_model_cache(self.cfg, batch, max_len, weight.device, weight.dtype, with_mtp)

    def _rope(self, start: int, length: int) -> torch.Tensor:
        if start + length > self.cfg.block_size:
            raise ValueError(
                f"sequence of {start + length} positions is longer than block_size {self.cfg.block_size}"
            )
        return self.rope_rotations[start : start + length]

    # forward ----------------------------------------------------------------------------
    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: ModelCache | None = None,
        need_weights: bool = False,
        absorb: bool = False,
        ablation: dict[int, ExpertAblation] | None = None,
    ) -> ModelOutput:
        """idx: (b, s) token ids, continuing `cache` if given. targets: (b, s), -1 = ignore.

        need_weights, absorb, ablation: the explorer's and the decoder's switches, handed to every
        block as one `ForwardOptions` (see dsmini.model.options) together with the non-padding mask.
        MTP logits and losses are computed when targets are given (training and evaluation).
        """
        b, s = idx.shape
        start = cache.length if cache is not None else 0
        rope = self._rope(start, s)
        valid = targets != IGNORE_INDEX if targets is not None else None
        # a verify pass (s > 1 new positions over a cache): one causal mask for all layers
        causal = causal_mask(s, start + s, idx.device) if start and s > 1 else None
        opts = ForwardOptions(
            need_weights=need_weights, absorb=absorb, ablation=ablation or {}, valid=valid, causal=causal
        )
        x = self.drop(self.embed(idx))  # (b, s, d)
        out = ModelOutput(logits=x.new_empty(0))
        for i, layer in enumerate(self.layers):
            layer_cache = cache.layers[i] if cache is not None else None
            x, routing, trace = layer(x, rope, layer_cache, opts)
            if routing is not None:
                out.routing.append(routing)
            if trace is not None:
                out.attn.append(trace)
        out.hidden = x
        out.logits = self.head(self.norm(x))  # (b, s, V)
        if targets is not None:
            self._losses(out, idx, targets, rope, opts)
        return out

    def _losses(self, out, idx, targets, rope, opts: ForwardOptions) -> None:
        out.main_loss = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        h = out.hidden
        s = idx.size(1)
        for k, mtp in enumerate(self.mtp, start=1):
            if s - k < 1:
                break
            # position i combines h^{k-1}_i with embed(t_{i+k}) and predicts t_{i+k+1} = targets[i+k]
            h, routings = mtp(
                h[:, : s - k], self.embed(idx[:, k:]), rope[: s - k], opts=opts.for_mtp_depth(k)
            )
            out.routing.extend(routings)
            logits = self.head(mtp.norm(h))  # (b, s - k, V)
            out.mtp_logits.append(logits)
            out.mtp_losses.append(
                F.cross_entropy(logits.flatten(0, 1), targets[:, k:].flatten(), ignore_index=IGNORE_INDEX)
            )
        out.aux_loss = sum((r.aux_loss for r in out.routing), out.main_loss.new_zeros(()))
        out.loss = out.main_loss + out.aux_loss
        if out.mtp_losses:
            out.loss = out.loss + self.cfg.mtp_lambda / len(out.mtp_losses) * sum(out.mtp_losses)

    def mtp_draft(
        self, hidden: torch.Tensor, next_idx: torch.Tensor, cache: ModelCache | None = None, absorb: bool = False
    ) -> torch.Tensor:
        """Depth-1 MTP logits for the token after next: hidden (b, s, d) main states at i,
        next_idx (b, s) tokens t_{i+1} -> (b, s, V) logits for t_{i+2}. Uses `cache.mtp`."""
        if not self.has_mtp:
            raise ValueError("this model has no MTP module (mtp_depth = 0)")
        return self.mtp_step(1, hidden, next_idx, cache, absorb)[1]

    def mtp_step(
        self, depth: int, h_prev: torch.Tensor, next_idx: torch.Tensor, cache: ModelCache | None = None,
        absorb: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One MTP module on its own, as chained drafting runs them: h_prev (b, s, d) depth-1 states
        at i (the main model's for depth 1), next_idx (b, s) tokens t_{i+depth} -> the module's states
        (b, s, d), which depth + 1 reads, and logits (b, s, V) for t_{i+depth+1}. Uses
        `cache.mtp_depths[depth - 1]`."""
        mtp = self.mtp[depth - 1]
        mtp_cache = cache.mtp_depths[depth - 1] if cache is not None else None
        rope = self._rope(mtp_cache.length if mtp_cache is not None else 0, next_idx.size(1))
        h, _ = mtp(h_prev, self.embed(next_idx), rope, mtp_cache, ForwardOptions(absorb=absorb))
        return h, self.head(mtp.norm(h))

    # bookkeeping --------------------------------------------------------------------------
    def moe_layers(self) -> list[MoE]:
        """Every MoE layer in the order of `ModelOutput.routing`: main layers, then MTP blocks."""
        blocks = list(self.layers) + [block for m in self.mtp for block in m.blocks]
        return [blk.ffn for blk in blocks if isinstance(blk.ffn, MoE)]

    def update_router_biases(self, loads: list[torch.Tensor]) -> None:
        """Aux-loss-free balancing; the trainer calls this once per optimizer step with that
        step's per-layer expert load (summed over micro-batches)."""
        for moe, load in zip(self.moe_layers(), loads, strict=True):
            moe.gate.update_bias(load)

    def param_counts(self) -> dict[str, dict[str, int]]:
        """Parameters by component, total and active per token (routed experts count k of E).

        `main` is the model used to generate; `all` adds the MTP modules used in training/drafting.
        """
        cfg = self.cfg
        totals: dict[str, int] = {}
        routed: dict[str, int] = {}
        for name, p in self.named_parameters():
            component = _component(name)
            totals[component] = totals.get(component, 0) + p.numel()
            if ".experts." in name:
                routed[component] = routed.get(component, 0) + p.numel()
        counts = {}
        for component, total in totals.items():
            r = routed.get(component, 0)
            counts[component] = {"total": total, "active": total - r + r * cfg.top_k // cfg.n_routed_experts}
        main = [c for c in counts if c != "mtp"]
        counts["main"] = {key: sum(counts[c][key] for c in main) for key in ("total", "active")}
        counts["all"] = {key: sum(counts[c][key] for c in counts if c != "main") for key in ("total", "active")}
        return counts


def _component(param_name: str) -> str:
    if param_name.startswith("mtp."):
        return "mtp"
    for marker, component in (
        ("embed.", "embedding"), ("head.", "head"), (".attn.", "attention"), (".experts.", "routed_experts"),
        (".shared_experts.", "shared_experts"), (".gate.", "router"), (".ffn.", "dense_ffn"),
    ):
        if param_name.startswith(marker) or marker in param_name:
            return component
    return "norms"
