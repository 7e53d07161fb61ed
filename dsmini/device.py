"""Device choice: CUDA, then Apple MPS, then CPU; bf16 autocast on CUDA only."""

from __future__ import annotations

import contextlib

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' picks the fastest available; an explicit name that is not available is an error."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was requested but Apple MPS is not available")
    if requested not in ("cpu", "mps") and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}; use auto, cpu, cuda or mps")
    return torch.device(requested)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; elsewhere full fp32 (CPU bf16 is slower for models this small)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
