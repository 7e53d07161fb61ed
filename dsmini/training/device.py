"""Device choice: CUDA, then Apple MPS, then CPU; bf16 autocast on CUDA only; waiting for a device."""

from __future__ import annotations

import contextlib

import torch

KINDS = ("cpu", "cuda", "mps")


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' picks the fastest available; an explicit name that is not available is an error
    (ValueError, with a message meant for the person who asked for it)."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):  # torch's own message lists every backend it knows: too many
        device = None
    if device is None or device.type not in KINDS:
        raise ValueError(f"unknown device {requested!r}; use auto, cpu, cuda or mps")
    if device.type == "cuda":
        _check_cuda(requested, device)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {requested!r} was requested but Apple MPS is not available; use 'auto' or 'cpu'")
    return device


def _check_cuda(requested: str, device: torch.device) -> None:
    if not torch.cuda.is_available():
        why = (f"this torch ({torch.__version__}) was built without CUDA" if torch.version.cuda is None
               else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
        raise ValueError(f"device {requested!r} was requested but no CUDA GPU is available: {why}; use 'auto' or 'cpu'")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device {requested!r} was requested but only {count} CUDA GPU(s) are visible "
                         f"(cuda:0 to cuda:{count - 1})")


def autocast(device: torch.device):
    """bf16 autocast on CUDA; elsewhere full fp32 (CPU bf16 is slower for models this small)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: str | torch.device) -> None:
    """Block until `device` has run all its queued work. CUDA and MPS return from a kernel launch
    before the kernel ran, so a clock read without this times the launches, not the work."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
