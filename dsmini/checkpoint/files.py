"""The files of a checkpoint folder: their names, their bytes, and reading them without trusting them.

Nothing here ever unpickles (no `torch.load`): tensors are safetensors, read by
`safetensors.torch.load` from bytes, and a pickle, `.pt` or zip file where a checkpoint folder was
expected is refused by its suffix or its first four bytes, never opened as anything else. A data
file is read once, its sha256 is checked against checkpoint.json, and those same bytes are parsed,
so a file swapped between the check and the read cannot slip through; sizes are checked first,
from a stat, so listing a folder of checkpoints stays cheap. Each failure is a CheckpointError
naming the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

import safetensors.torch
import torch
from safetensors import SafetensorError

from dsmini.data import file_kind

from .errors import CheckpointError

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
# The weights of the run's best validation loss, beside the last ones (model.safetensors) and published in
# the same atomic save; absent when the run saved none (no evaluation yet, or older checkpoints)
BEST_FILE = "best.safetensors"
META_FILE = "checkpoint.json"

# Pickle protocol 2+ starts with 0x80 then the protocol byte; torch.save writes a zip of pickles.
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".zip")
_ZIP_MAGIC = b"PK\x03\x04"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": sha256(data), "bytes": len(data)}


def model_bytes(model: torch.nn.Module) -> bytes:
    """state_dict (persistent buffers included, rope tables are not) as float32 safetensors."""
    return state_bytes(model.state_dict())


def state_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """A state_dict as float32 safetensors. Cloned so tensors that share storage do not trip
    safetensors' shared-memory check."""
    return safetensors.torch.save({
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone(
            memory_format=torch.contiguous_format
        )
        for k, v in state.items()
    })


def _refuse_file(path: Path) -> None:
    """A file where a checkpoint directory was expected: say what it is, never unpickle it."""
    kind = file_kind(path)
    if kind is not None:  # a FIFO would block the open below
        raise CheckpointError(f"{path} is {kind}, not a checkpoint directory")
    with open(path, "rb") as f:
        head = f.read(4)
    is_pickle = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if path.suffix.lower() in _PICKLE_SUFFIXES or is_pickle or head == _ZIP_MAGIC:
        raise CheckpointError(
            f"{path} is a pickle/torch/zip file; pickle files are not loaded: they can run code. "
            f"A dsmini checkpoint is a directory with {META_FILE} and {MODEL_FILE} "
            "(unzip a downloaded checkpoint zip first)"
        )
    raise CheckpointError(f"{path} is a file, not a checkpoint directory")


MAX_META_BYTES = 256 * 1024 * 1024  # checkpoint.json: the shipped ones are ~1 MB; a device never ends


def read_small(path: Path) -> bytes:
    """The bytes of a small regular file; CheckpointError naming what it is otherwise (never blocks on a
    FIFO, never reads a device's endless bytes)."""
    kind = file_kind(path)
    if kind is not None:
        raise CheckpointError(f"{path} is {kind}")
    if path.stat().st_size > MAX_META_BYTES:
        raise CheckpointError(f"{path} is {path.stat().st_size:,} bytes: too big for a checkpoint's {META_FILE}")
    try:
        return path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"could not read {path}: {err.strerror or err}") from None


def checkpoint_dir(path: Path) -> Path:
    """The checkpoint directory for `path` (which may also name its checkpoint.json)."""
    if path.name == META_FILE and path.is_file():
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the path does not exist")
    if not path.is_dir():
        _refuse_file(path)
    kind = file_kind(path / META_FILE)
    if kind == "missing":
        raise CheckpointError(f"{path} is not a dsmini checkpoint: {META_FILE} is missing")
    if kind is not None:
        raise CheckpointError(f"{path / META_FILE} is {kind}")
    return path


def check_size(file_path: Path, expected: int) -> None:
    kind = file_kind(file_path)
    if kind is not None:
        raise CheckpointError(f"{file_path} is {kind}")
    size = file_path.stat().st_size
    if size != expected:
        raise CheckpointError(f"{file_path} is truncated or corrupt: {size} bytes, expected {expected}")


def read_tensors(file_path: Path, entry: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Read once, hash what was read, then parse those same bytes (no check-then-reread race)."""
    try:
        data = file_path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"could not read {file_path}: {err.strerror or err}") from None
    digest = sha256(data)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"{file_path} is corrupt or truncated: sha256 {digest[:12]}..., expected {entry['sha256'][:12]}..."
        )
    try:
        return safetensors.torch.load(data)
    except SafetensorError as err:
        raise CheckpointError(f"{file_path} is not a readable safetensors file: {err}") from None


def check_state(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], file_path: Path
) -> None:
    """Names and shapes must match the config exactly; list the first few offenders."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [k for k in expected if k in found and found[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    if unexpected:
        problems.append("unexpected " + ", ".join(unexpected[:5]) + (" ..." if len(unexpected) > 5 else ""))
    if mismatched:
        shapes = [f"{k} (expected {tuple(expected[k].shape)}, found {tuple(found[k].shape)})" for k in mismatched[:5]]
        problems.append("shape mismatch " + ", ".join(shapes) + (" ..." if len(mismatched) > 5 else ""))
    if problems:
        raise CheckpointError(f"{file_path} does not fit its model_config: " + "; ".join(problems))
