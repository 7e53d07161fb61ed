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
S_max^h comes from the training forward pass itself (`dsmini.model.attention.keep_max_logit`).
Axes: h heads, d rows of one head, i input features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dsmini.model import MHA, MLA


@dataclass(frozen=True)
class ClipReport:
    """One step's QK-clip: heads rescaled, of how many, the largest logit seen (before rescaling)
    and the smallest γ applied (1.0 when nothing was clipped)."""

    clipped: int
    heads: int
    max_logit: float
    min_gamma: float = 1.0


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """Every attention module of the model (main layers and MTP blocks)."""
    return [m for m in model.modules() if isinstance(m, (MHA, MLA))]


def track_max_logits(model: nn.Module, on: bool = True) -> None:
    """Have every attention module keep its per-head max logit while training (or stop)."""
    for module in attention_modules(model):
        module.track_max_logit, module.max_logit = on, None


def _heads(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(h * d, i) projection weight as a (h, d, i) view: rescaling it rescales the weight in place."""
    return weight.view(n_heads, -1, weight.size(-1))


def _rescale_mla(attn: MLA, gamma: torch.Tensor) -> None:
    root = gamma.sqrt()[:, None, None]
    q = _heads((attn.wq_b if hasattr(attn, "wq_b") else attn.wq).weight, attn.n_heads)  # (h, nope + rope, i)
    q[:, : attn.nope] *= root  # q^C
    q[:, attn.nope :] *= gamma[:, None, None]  # q^R: the rotary key it meets is shared, so γ, not √γ
    kv = _heads(attn.wkv_b.weight, attn.n_heads)  # (h, nope + v, c)
    kv[:, : attn.nope] *= root  # k^C; the value rows are not part of the logit


def _rescale_mha(attn: MHA, gamma: torch.Tensor) -> None:
    q = _heads(attn.wq.weight, attn.n_heads)
    if attn.n_kv == attn.n_heads:
        q *= gamma.sqrt()[:, None, None]
        _heads(attn.wk.weight, attn.n_kv).mul_(gamma.sqrt()[:, None, None])
    else:
        q *= gamma[:, None, None]


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
        gamma = torch.where(over, tau / seen, torch.ones_like(seen)).to(module.wo.weight.dtype)
        (_rescale_mla if isinstance(module, MLA) else _rescale_mha)(module, gamma)
        clipped += int(over.sum())
        min_gamma = min(min_gamma, float(gamma.min()))
    return ClipReport(clipped, heads, max_logit if heads else 0.0, min_gamma)
