"""QK-clip, the "Clip" of MuonClip (Kimi K2 technical report, 2025, §2.1, Algorithm 1).

Muon lets attention logits grow without bound ("MaxLogit explosion", K2 §2.1). After each optimizer
step, every attention head h whose largest pre-softmax logit S_max^h in that step exceeded τ has its
query and key weights rescaled by γ_h = τ / S_max^h, so the same inputs would give logits at most τ:

- MHA: W_q^h and W_k^h each by √γ_h;
- GQA / MQA: a key head is shared by several query heads, so (as for MLA's shared RoPE key) only
  W_q^h is rescaled, by γ_h;
- MLA and the sparse types on it (K2's MLA recipe): the head-specific content parts q^C (q_nope,
  rows of wq / wq_b) and k^C (k_nope, rows of wkv_b) by √γ_h each, the head-specific rotary query
  q^R (q_rope) by γ_h; the shared rotary key k^R (wkv_a's RoPE rows) is left alone, since rescaling
  it would touch every head.

Every part of the logit is linear in the rescaled rows, so each logit is multiplied by exactly γ_h.
Each attention type knows its own rows (`Attention.scale_logits`) and keeps S_max^h from the training
forward pass itself (`Attention.keep_max_logit`); this module decides when and by how much.
Axes: h heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dsmini.model import Attention


@dataclass(frozen=True)
class ClipReport:
    """One step's QK-clip: heads rescaled, of how many, the largest logit seen (before rescaling)
    and the smallest γ applied (1.0 when nothing was clipped)."""

    clipped: int
    heads: int
    max_logit: float
    min_gamma: float = 1.0


def attention_modules(model: nn.Module) -> list[Attention]:
    """Every attention module of the model (main layers and MTP blocks)."""
    return [m for m in model.modules() if isinstance(m, Attention)]


def track_max_logits(model: nn.Module, on: bool = True) -> None:
    """Have every attention module keep its per-head max logit while training (or stop)."""
    for module in attention_modules(model):
        module.track_max_logit, module.max_logit = on, None


@torch.no_grad()
def qk_clip(model: nn.Module, tau: float) -> ClipReport:
    """Rescale every head whose max logit since the last call exceeded `tau`; forget the maxima."""
    clipped, heads, max_logit, min_gamma = 0, 0, float("-inf"), 1.0
    for module in attention_modules(model):
        seen, module.max_logit = module.max_logit, None
        if seen is None:
            continue
        heads += seen.numel()
        max_logit = max(max_logit, float(seen.max()))
        over = seen > tau
        if not over.any():
            continue
        gamma = torch.where(over, tau / seen, torch.ones_like(seen))
        module.scale_logits(gamma)
        clipped += int(over.sum())
        min_gamma = min(min_gamma, float(gamma.min()))
    return ClipReport(clipped, heads, max_logit if heads else 0.0, min_gamma)
