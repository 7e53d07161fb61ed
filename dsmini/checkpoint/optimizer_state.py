"""Optimizer and RNG state <-> (tensors for optimizer.safetensors, a JSON tree for checkpoint.json).

What an exact resume needs besides the weights: the optimizer state dicts (e.g. AdamW's moments
and param_groups) and named torch.Generator states. They are stored without pickle, so loading a
checkpoint never runs code: every tensor goes to the safetensors file under a path-like key
(`adamw/state/3/exp_avg`, `rng/batches`), and the rest of each state dict becomes a tagged tree.

Optimizer state dicts mix tensors, int keys (param ids), tuples (betas) and numbers. The tree keeps
every type exactly: tensors become {"tensor": key}; dicts are lists of [key, value] pairs (JSON
object keys would turn 3 into "3"); tuples, lists and non-finite floats are tagged too.
`dsmini.checkpoint.schema` checks a tree's shape before it is decoded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import safetensors.torch
import torch

from .errors import CheckpointError
from .files import META_FILE


def encode_optimizer_state(
    optimizer_states: Mapping[str, Any] | None, rng_states: Mapping[str, torch.Tensor] | None
) -> tuple[bytes, dict[str, Any]] | None:
    """(safetensors bytes, JSON part) for exact resume, or None when there is nothing to save."""
    if not optimizer_states and not rng_states:
        return None
    tensors: dict[str, torch.Tensor] = {}
    states = {name: _encode_tree(sd, name, tensors) for name, sd in (optimizer_states or {}).items()}
    rng_names = []
    for name, state in (rng_states or {}).items():
        if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8:
            raise CheckpointError(f"rng state {name!r} must be a ByteTensor from Generator.get_state()")
        _encode_tree(state, f"rng/{name}", tensors)
        rng_names.append(name)
    return safetensors.torch.save(tensors), {"states": states, "rng": rng_names}


def decode_optimizer_state(
    entry: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], file_path: Path
) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor] | None]:
    """(optimizer state dicts, rng states) rebuilt with their exact types from checkpoint.json's
    checked `optimizer` entry and the tensors read from `file_path`; None for an empty part."""
    try:
        rng = {name: tensors[f"rng/{name}"] for name in entry["rng"]}
        states = {name: _decode_tree(tree, tensors) for name, tree in entry["states"].items()}
    except KeyError as err:
        raise CheckpointError(
            f"{file_path} lacks the tensor {err} that the optimizer entry of {META_FILE} names"
        ) from None
    not_bytes = [name for name, state in rng.items() if state.dtype != torch.uint8]
    if not_bytes:
        raise CheckpointError(f"{file_path}: rng state {not_bytes[0]!r} is not a ByteTensor from Generator.get_state()")
    return (states or None), (rng or None)


def _encode_tree(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        if key in tensors:
            raise CheckpointError(f"optimizer state: two entries map to the tensor name {key!r}")
        tensors[key] = obj.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        return {"tensor": key}
    if isinstance(obj, Mapping):
        bad = [k for k in obj if isinstance(k, bool) or not isinstance(k, (str, int))]
        if bad:
            raise CheckpointError(f"optimizer state at {key!r}: keys must be str or int, got {bad[:3]!r}")
        return {"dict": [[k, _encode_tree(v, f"{key}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        tag = "tuple" if isinstance(obj, tuple) else "list"
        return {tag: [_encode_tree(v, f"{key}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"float": repr(obj)}  # 'nan', 'inf', '-inf'
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"optimizer state at {key!r} is a {type(obj).__name__}, which cannot be saved")


def _decode_tree(node: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if not isinstance(node, dict):
        return node
    (tag, value), = node.items()
    if tag == "tensor":
        return tensors[value]
    if tag == "dict":
        return {k: _decode_tree(v, tensors) for k, v in value}
    if tag == "list":
        return [_decode_tree(v, tensors) for v in value]
    if tag == "tuple":
        return tuple(_decode_tree(v, tensors) for v in value)
    if tag == "float":
        return float(value)
    raise ValueError(f"unknown tag {tag!r}")
