"""Rotary position embedding (RoPE), applied to adjacent pairs of dimensions.

In MLA only the decoupled `qk_rope_head_dim` slice rotates (DeepSeek-V2 §2.1.3): RoPE on the
compressed keys would make the key up-projection position-dependent and block weight
absorption, so position lives in a small separate key shared by all heads.

Axes: b batch, h heads, t time, d rotated dims (even), p pairs (= d / 2).
"""

from __future__ import annotations

import torch
from einops import rearrange


def rope_angles(dim: int, max_len: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of shape (max_len, dim // 2)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (p,)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # (t, p)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x0, x1) of the last axis by its angle.

    x: (..., t, d); cos/sin: (t, d/2) for the positions of x's time axis.
    """
    pairs = rearrange(x.float(), "... t (p two) -> ... t p two", two=2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return rearrange(rotated, "... t p two -> ... t (p two)").type_as(x)
