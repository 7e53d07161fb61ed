"""Page views computed ahead of time and kept on disk beside the checkpoints, so a fresh server serves a
class at once: `python -m dsmini warm --checkpoints checkpoints` writes them, the app reads them.

A fresh server's first sessions would otherwise wait for each page's first computation (the Experts
analysis, the MTP drafts, Compare: seconds each, many times that while a class arrives). Each shipped
checkpoint's default views (`dsmini/page_views.py`) are stored in `<checkpoints>/.views/<name>.json`
(the tree of each view: dataclasses, lists, numbers, text) and `<name>.safetensors` (its tensors), and
are used only while both keys match:
- the checkpoint: the sha256 of its checkpoint.json as read now (which holds its weights' sha256), and
  of the second checkpoint for a pair (Compare);
- the code: a sha256 of every dsmini source file a view can depend on, and torch's version
  (`code_version`): any change there and the views are computed again, never trusted.
A mismatched, missing or unreadable file only costs the head start: the view is computed as before.
Nothing is unpickled: JSON and safetensors, and only dataclasses defined in dsmini are rebuilt. Files
are written atomically (the tensors first, then the JSON that names their sha256). Views that measure
this machine (the KV cache page's decode timing) are not stored: another machine's numbers would be wrong.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import math
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from dsmini.checkpoint import META_FILE, Checkpoint, replace_file
from dsmini.single_flight import SharedResults

STORE_DIR = ".views"  # hidden: the checkpoint listing skips it
FORMAT = "dsmini-views"
PACKAGE = Path(__file__).resolve().parent.parent
# Sources that never change what a view holds: the CLI, the server, training and its jobs, saving, figures,
# text, benchmarks (the shipped views are regenerated less often for changes that cannot matter); paths
# relative to the package, a folder with its slash
UNRELATED = ("bench/", "charts/", "cli/", "export/", "jobs/", "locales/", "__main__.py", "i18n.py", "single_flight.py",
             "probes/store.py", "training/trainer.py", "training/muon.py", "training/qk_clip.py",
             "checkpoint/optimizer_state.py", "checkpoint/atomic.py", "checkpoint/names.py", "data/file_kind.py")
log = logging.getLogger("dsmini.views")


def code_version() -> str:
    """sha256 over the dsmini sources a view can depend on, and torch's version."""
    digest = hashlib.sha256(torch.__version__.encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.as_posix().startswith(UNRELATED):
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def checkpoint_sha256(ckpt: Checkpoint) -> str | None:
    """sha256 of the checkpoint.json `ckpt` was loaded from; None if it was saved again since (or is
    gone): then no stored view is its view."""
    path = ckpt.path / META_FILE
    try:
        data, mtime = path.read_bytes(), path.stat().st_mtime
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest() if mtime == ckpt.mtime and ckpt.weights == "last" else None


def entry_key(view: Callable, args: tuple) -> str | None:
    """The stored entry of `view(*args)`: its name, each checkpoint by sha256 and the settings by value;
    None when some checkpoint has no stable identity (saved again, or its best weights)."""
    parts = []
    for arg in args:
        if isinstance(arg, Checkpoint):
            sha = checkpoint_sha256(arg)
            if sha is None:
                return None
            parts.append(f"checkpoint:{sha}")
        else:
            parts.append(repr(arg))
    return f"{view.__module__}.{view.__qualname__}({', '.join(parts)})"


def store_paths(ckpt_path: Path) -> tuple[Path, Path]:
    folder = ckpt_path.parent / STORE_DIR
    return folder / f"{ckpt_path.name}.json", folder / f"{ckpt_path.name}.safetensors"


# ---------------------------------------------------------------------------------------------
# Views as JSON + tensors (tags: {"$t": i} a tensor, {"$dc": "module.Class", ...} a dataclass,
# {"$tuple": [...]}, {"$dict": [[key, value], ...]} a dict with keys other than text, {"$f": "nan"})


def encode(obj: Any, tensors: list[torch.Tensor]) -> Any:
    """`obj` as a JSON tree; its tensors appended to `tensors`. TypeError for anything else."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$f": repr(obj)}
    if isinstance(obj, torch.Tensor):
        tensors.append(obj.detach().cpu().contiguous())
        return {"$t": len(tensors) - 1}
    if isinstance(obj, list):
        return [encode(item, tensors) for item in obj]
    if isinstance(obj, tuple):
        return {"$tuple": [encode(item, tensors) for item in obj]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: encode(v, tensors) for k, v in obj.items()}
        return {"$dict": [[encode(k, tensors), encode(v, tensors)] for k, v in obj.items()]}
    if dataclasses.is_dataclass(obj) and type(obj).__module__.startswith("dsmini."):
        fields = {f.name: encode(getattr(obj, f.name), tensors) for f in dataclasses.fields(obj)}
        return {"$dc": f"{type(obj).__module__}:{type(obj).__qualname__}", **fields}
    raise TypeError(f"cannot store a {type(obj).__module__}.{type(obj).__qualname__} in a view file")


def decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `encode`; ValueError for a tree it did not write."""
    if isinstance(tree, list):
        return [decode(item, tensors) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if "$t" in tree:
        return tensors[str(tree["$t"])]
    if "$f" in tree:
        return float(tree["$f"])
    if "$tuple" in tree:
        return tuple(decode(item, tensors) for item in tree["$tuple"])
    if "$dict" in tree:
        return {decode(k, tensors): decode(v, tensors) for k, v in tree["$dict"]}
    if "$dc" in tree:
        return _dataclass(tree, tensors)
    return {k: decode(v, tensors) for k, v in tree.items()}


def _dataclass(tree: dict, tensors: dict[str, torch.Tensor]) -> Any:
    module, _, name = tree["$dc"].partition(":")
    if not module.startswith("dsmini."):
        raise ValueError(f"not a dsmini class: {tree['$dc']}")
    cls = importlib.import_module(module)
    for part in name.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"not a dataclass: {tree['$dc']}")
    obj = object.__new__(cls)  # as it was when stored: no __init__ checks to run again
    for field in dataclasses.fields(cls):
        object.__setattr__(obj, field.name, decode(tree[field.name], tensors))
    return obj


# ---------------------------------------------------------------------------------------------
# Files


def write_views(ckpt_path: Path, entries: dict[str, Any]) -> Path:
    """Store `entries` (entry_key -> view) for the checkpoint at `ckpt_path`; the JSON file's path."""
    json_path, tensor_path = store_paths(ckpt_path)
    json_path.parent.mkdir(exist_ok=True)
    tensors: list[torch.Tensor] = []
    trees = {key: encode(view, tensors) for key, view in entries.items()}
    tensor_data = save_tensors({str(i): t for i, t in enumerate(tensors)})
    meta = {"format": FORMAT, "code": code_version(), "tensors_sha256": hashlib.sha256(tensor_data).hexdigest(),
            "entries": trees}
    replace_file(tensor_path, tensor_data)
    replace_file(json_path, json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode())
    return json_path


class StoredViews:
    """The views stored for one checkpoint, read once; `get(key)` -> the view or None."""

    def __init__(self, ckpt_path: Path, code: str):
        self.entries: dict[str, Any] = {}
        self.tensors: dict[str, torch.Tensor] = {}
        json_path, tensor_path = store_paths(ckpt_path)
        if not json_path.exists():
            return
        try:
            meta = json.loads(json_path.read_bytes())
            if meta.get("format") != FORMAT or meta.get("code") != code:
                log.info("stored views of %s are for other code: computing them", ckpt_path.name)
                return
            data = tensor_path.read_bytes()
            if hashlib.sha256(data).hexdigest() != meta.get("tensors_sha256"):
                raise ValueError(f"{tensor_path.name} does not match {json_path.name}")
            self.tensors, self.entries = load_tensors(data), meta["entries"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("stored views of %s not used (%s): computing them", ckpt_path.name, err)

    def get(self, key: str) -> Any:
        tree = self.entries.get(key)
        if tree is None:
            return None
        try:
            return decode(tree, self.tensors)
        except (ValueError, KeyError, TypeError, AttributeError, ImportError) as err:
            log.warning("a stored view could not be read (%s): computing it", err)
            return None


_OPENED = SharedResults(max_entries=32)  # (checkpoint path, mtime) -> its StoredViews, read once per process


def stored_view(view: Callable, args: tuple) -> Any | None:
    """`view(*args)` as stored beside its first argument's checkpoint, if both keys match; else None."""
    ckpt = args[0] if args and isinstance(args[0], Checkpoint) else None
    key = entry_key(view, args) if ckpt is not None else None
    if key is None:
        return None
    code = _OPENED.get("code", code_version)
    return _OPENED.get((str(ckpt.path), ckpt.mtime), lambda: StoredViews(ckpt.path, code)).get(key)
