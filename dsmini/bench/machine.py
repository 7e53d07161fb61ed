"""What the numbers were measured on: CPU, cores, RAM, the device the models ran on, load,
versions, threads, command, commit."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any

import torch

from .common import REPO_ROOT


def _proc_field(path: str, key: str) -> str | None:
    """The first `key: value` line of a /proc file (Linux); None elsewhere."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load: high values mean others shared the CPU during the run."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def device_name(device: str, cpu: str) -> str:
    """What `device` is: the GPU's name on CUDA, the CPU's model on the CPU."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    if kind == "mps":
        return f"Apple MPS ({platform.machine()})"
    return cpu


def machine_info(argv: list[str], threads: int, device: str = "cpu") -> dict[str, Any]:
    """`device`: where the sections' models ran (resolved, as in the Plan)."""
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine()
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain")
    return {
        "command": "python -m dsmini.bench " + shlex.join(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,  # present, used or not
        "device": device,
        "device_name": device_name(device, cpu),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": threads,
        "platform": platform.platform(),
        "commit": f"{commit}{' (uncommitted changes)' if dirty else ''}" if commit else None,
        "load_at_start": load_average(),
    }
