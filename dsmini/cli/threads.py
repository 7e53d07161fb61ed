"""The command line's one thread policy (`train`, `eval`, `sample`, `info` take `--threads`; `warm` defaults to
the app server's threads instead)."""

from __future__ import annotations

import os

import torch

THREADS_HELP = "torch CPU threads, 1 to this machine's cores (default: its idle cores, at least 1)"


def idle_cores() -> int:
    """The cores the last minute left idle (cores - load average), at least 1. torch's own default takes
    every core, and a tiny model's many small operations then wait on busy ones: eval of 10,000 names took
    49.6 s that way on a shared 2-core machine, against 2.96 s on one thread."""
    cores = os.cpu_count() or 1
    return max(1, min(cores, cores - round(os.getloadavg()[0])))


def set_threads(threads: int | None) -> int:
    """torch's CPU threads for this process: `threads` (1 to the machine's cores), or `idle_cores()` when
    None; the number set. ValueError naming --threads otherwise."""
    cores = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cores:
        raise ValueError(f"--threads must be between 1 and {cores} (this machine's cores), got {threads}")
    chosen = idle_cores() if threads is None else threads
    torch.set_num_threads(chosen)
    return chosen
