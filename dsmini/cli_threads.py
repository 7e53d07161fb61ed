"""The command line's one thread policy (`train`, `eval`, `sample`, `info`, `warm` take `--threads`)."""

from __future__ import annotations

import os

import torch


def set_threads(threads: int | None) -> None:
    """torch's CPU threads for this process: `threads` (1 to the machine's cores), or torch's choice when
    None. ValueError naming --threads otherwise."""
    if threads is None:
        return
    cores = os.cpu_count() or 1
    if not 1 <= threads <= cores:
        raise ValueError(f"--threads must be between 1 and {cores} (this machine's cores), got {threads}")
    torch.set_num_threads(threads)
