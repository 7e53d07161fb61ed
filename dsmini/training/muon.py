"""Muon (Jordan et al. 2024; Moonshot's "Muon is Scalable", 2025): momentum SGD whose update for
each weight matrix is orthogonalised by a Newton-Schulz iteration.

Axes: B matrices orthogonalised together, m x n one matrix (m <= n after the transpose).

Why our own and not `torch.optim.Muon` (same update rule, same state and options, so its saved
states load here):
- torch's casts every matrix to bfloat16 for Newton-Schulz. On a GPU that is the point; on a CPU
  without bf16 instructions one iteration on a 64 x 192 matrix took 1.37 ms in bf16 against
  0.084 ms in float32. Here the iteration runs in float32 on a CPU and bf16 on CUDA (`ns_dtype`).
- torch's takes one 2-D matrix at a time. Here every matrix of one shape, and each expert of a
  stacked (E, h, d) expert weight (`moe.GroupedExperts`), is orthogonalised in one batched
  iteration: a small model's 100-odd matrices come down to a handful of `baddbmm` chains.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch import Tensor

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # Jordan's quintic, as torch.optim.Muon
NS_STEPS = 5
EPS = 1e-7


def ns_dtype(device: torch.device) -> torch.dtype:
    """bf16 where it is fast (CUDA, as in Jordan's Muon), float32 elsewhere (see the module docstring)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def orthogonalise(g: Tensor, coefficients=NS_COEFFICIENTS, steps: int = NS_STEPS, eps: float = EPS,
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """(B, m, n) -> each matrix pushed towards U V^T of its SVD (singular values ~ 0.7-1.2), in `dtype`.

    The quintic iteration X <- aX + (bA + cA^2)X with A = X X^T, on the wide orientation (A is the
    smaller Gram matrix), after scaling each matrix to Frobenius norm 1 so every singular value
    starts at most 1.
    """
    a, b, c = coefficients
    x = g.to(dtype)
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.mT  # (B, m, m)
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)  # b A + c A^2
        x = torch.baddbmm(x, poly, x, beta=a)  # a X + (b A + c A^2) X
    return x.mT if tall else x


def adjusted_lr(lr: float, adjust_lr_fn: str | None, rows: int, cols: int) -> float:
    """torch.optim.Muon's per-matrix learning rate: "match_rms_adamw" (Moonshot §2.2) scales the
    update to AdamW's RMS, 0.2 sqrt(max(m, n)), so one schedule serves both optimizers."""
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    if adjust_lr_fn in (None, "original"):
        return lr * math.sqrt(max(1.0, rows / cols))
    return lr


class Muon(torch.optim.Optimizer):
    """Muon for 2-D weight matrices and stacked (E, m, n) expert weights (one matrix per expert).

    Per parameter, as torch.optim.Muon: buf <- lerp(buf, g, 1 - momentum); update = Nesterov
    lerp(g, buf, momentum); p <- p (1 - lr wd) - adjusted_lr * orthogonalise(update).
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients=NS_COEFFICIENTS, eps: float = EPS,
                 ns_steps: int = NS_STEPS, adjust_lr_fn: str | None = None):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim not in (2, 3):
                    raise ValueError(
                        f"Muon takes matrices or stacks of them, got a parameter of shape {tuple(p.shape)}"
                    )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, params)
        return loss

    def _step_group(self, group: dict, params: list[Tensor]) -> None:
        grads = [p.grad for p in params]
        bufs = [self._momentum_buffer(p) for p in params]
        momentum = group["momentum"]
        torch._foreach_lerp_(bufs, grads, 1 - momentum)
        updates = torch._foreach_lerp(grads, bufs, momentum) if group["nesterov"] else bufs
        lr = group["lr"]
        torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
        by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, p in enumerate(params):
            by_shape[tuple(p.shape[-2:])].append(i)
        for (rows, cols), members in by_shape.items():
            stacked = torch.cat([updates[i].reshape(-1, rows, cols) for i in members])  # (B, m, n)
            ortho = orthogonalise(stacked, group["ns_coefficients"], group["ns_steps"], group["eps"],
                                  ns_dtype(stacked.device))
            step_size = adjusted_lr(lr, group["adjust_lr_fn"], rows, cols)
            pieces = ortho.split([params[i].numel() // (rows * cols) for i in members])
            for i, piece in zip(members, pieces):
                params[i].add_(piece.view_as(params[i]).to(params[i].dtype), alpha=-step_size)

    def _momentum_buffer(self, p: Tensor) -> Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)
        return state["momentum_buffer"]
