"""Rotary position embedding (RoPE), applied to adjacent pairs of dimensions.

In MLA only the decoupled `qk_rope_head_dim` slice rotates (DeepSeek-V2 §2.1.3): RoPE on the
compressed keys would make the key up-projection position-dependent and block weight
absorption, so position lives in a small separate key shared by all heads.

Each pair (x0, x1) is read as the complex number x0 + i·x1 and multiplied by e^{i·t·θ_p}, as
DeepSeek-V3's reference code does (`precompute_freqs_cis`, `apply_rotary_emb`). One complex
multiply is one kernel forward and one backward, against six element-wise kernels and a
stack for the written-out rotation: 2.5–4x faster at this size (BENCHMARKS.md, "Speed work").
The rotations are kept as real (cos, sin) pairs so that `Module.to(dtype)` casts them like
any other float buffer (it would drop a complex tensor's imaginary part).

Axes: b batch, h heads, t time, d rotated dims (even), p pairs (= d / 2).
"""

from __future__ import annotations

import torch


def rope_angles(dim: int, max_len: int, theta: float = 10000.0) -> torch.Tensor:
    """The rotation of every position and pair as (cos, sin): shape (max_len, dim // 2, 2)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (p,)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # (t, p)
    return torch.stack((angles.cos(), angles.sin()), dim=-1)


def apply_rope(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x0, x1) of the last axis by its angle.

    x: (..., t, d); rotations: (t, d/2, 2), the `rope_angles` rows of x's positions.
    """
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())  # (..., t, p) complex
    turned = pairs * torch.view_as_complex(rotations.float().contiguous())  # (t, p) broadcasts
    return torch.view_as_real(turned).flatten(-2).type_as(x)
