"""Checkpoints: save, load, list. Safetensors + JSON, written atomically, checked on load.

A checkpoint is a directory `<root>/<name>/`:

```
model.safetensors      model state_dict (parameters + persistent buffers such as the
                       sigmoid_bias router's `bias`), float32
best.safetensors       optional: the weights of the best validation loss (`summary["best_step"]`), same
                       names and shapes as model.safetensors; `load_checkpoint(path, best=True)`
optimizer.safetensors  optional, for exact resume: the optimizer and RNG state's tensors
                       (`dsmini.checkpoint.optimizer_state`, which keeps the rest as a tree in checkpoint.json)
checkpoint.json        format tag + version, configs, tokenizer, corpus reference (`dsmini.checkpoint.corpus_ref`),
                       step, history, metric summary, parameter counts, versions, and the sha256 and
                       size of each safetensors file (so truncation and corruption are caught);
                       `"shipped": true` in the models that ship with dsmini (read-only)
```

Loading and listing check every field of checkpoint.json (`dsmini.checkpoint.schema`), then the
configs' own validation and the model size; loading also checks the hashes and each tensor's name
and shape. Every failure is a `CheckpointError` whose message names the file and the field.
`scan_checkpoints` lists the good checkpoints and, separately, why each bad one was skipped, so one
broken folder never hides the others. Nothing is ever unpickled (no `torch.load`); a pickle or
`.pt` file is refused before it is opened as anything but bytes (`dsmini.checkpoint.files`).

Saving: everything is serialised in memory, then written and fsynced in a hidden temp directory and
renamed into place by `dsmini.checkpoint.atomic` (its docstring lists the steps, the states a kill can leave on
disk, and what recovery does with each); listing and loading run that recovery first, so an
interrupted save shows up as the complete old or the complete new checkpoint, never as nothing.
Which names a save may take and replace (never a shipped checkpoint) is `dsmini.checkpoint.names`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from dsmini.config import ModelConfig, TrainConfig
from dsmini.data import CharTokenizer
from dsmini.model import DSMini, ResourceLimitError, check_model_size, stack_expert_weights
from dsmini.version import __version__

from . import atomic
from .corpus_ref import CorpusRef
from .errors import CheckpointError
from .files import (
    BEST_FILE,
    META_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    check_size,
    check_state,
    checkpoint_dir,
    file_entry,
    model_bytes,
    read_small,
    read_tensors,
    state_bytes,
)
from .names import replace_check, taken_meanwhile, validate_name, without_shipped_flag
from .optimizer_state import decode_optimizer_state, encode_optimizer_state
from .schema import history_columns, history_rows, is_int, jsonable, meta_problem, step_problem

FORMAT = "dsmini-checkpoint"
FORMAT_VERSION = 1
SUMMARY_VAL_LOSS_KEYS = ("best_val_loss", "val_loss", "last_val_loss")  # first present wins
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Save


def _versions() -> dict[str, str]:
    """Provenance: which code wrote the file."""
    return {"dsmini_version": __version__, "torch_version": torch.__version__}


def _metadata(
    model: DSMini,
    tokenizer: CharTokenizer,
    train_config: TrainConfig | None,
    corpus: CorpusRef | None,
    history: Sequence[Any],
    summary: Mapping[str, Any] | None,
    step: int,
    files: dict[str, dict[str, Any]],
    optimizer_json: dict[str, Any] | None,
) -> dict[str, Any]:
    """The contents of checkpoint.json; refuses a tokenizer that does not fit the model."""
    try:
        tokenizer.check_model(model.cfg)
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "train_config": train_config.to_dict() if train_config is not None else None,
        "tokenizer": tokenizer.to_dict(),
        "corpus": (corpus or CorpusRef()).to_json(),
        "step": int(step),
        "history": history_columns(jsonable(list(history), "history")),
        "metrics": jsonable(summary or {}, "summary"),
        "param_counts": model.param_counts(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **_versions(),
        "files": files,
        "optimizer": optimizer_json,
    }


def save_checkpoint(
    root: str | os.PathLike[str],
    name: str,
    model: DSMini,
    tokenizer: CharTokenizer,
    *,
    train_config: TrainConfig | None = None,
    corpus: CorpusRef | None = None,
    history: Sequence[Any] = (),
    summary: Mapping[str, Any] | None = None,
    step: int = 0,
    optimizer_states: Mapping[str, Any] | None = None,
    rng_states: Mapping[str, torch.Tensor] | None = None,
    best_state: Mapping[str, torch.Tensor] | None = None,
    overwrite: bool = False,
    forward_only: bool = False,
) -> Path:
    """Write `<root>/<name>/` atomically and return its path.

    best_state: the state_dict of the best validation loss, written beside the last weights (BEST_FILE).
    optimizer_states: e.g. `{"adamw": opt.state_dict()}`; rng_states: e.g.
    `{"batches": generator.get_state()}`. Both optional, both needed for an exact resume.
    An existing `<name>` is replaced only with overwrite=True, and a shipped one never
    (CheckpointExistsError, with a free name to offer); with forward_only=True (a run saving over its
    own checkpoint) not when it is at a later step than `step` (CheckpointAheadError).
    Everything is serialised in memory first, so a bad argument fails before touching disk.
    """
    name = validate_name(name)
    root = Path(root)
    model_data = model_bytes(model)
    files = {MODEL_FILE: file_entry(model_data)}
    if best_state is not None:
        check_state(model.state_dict(), best_state, Path(BEST_FILE))  # a load must find what a save wrote
    best_data = state_bytes(best_state) if best_state is not None else None
    files.update({BEST_FILE: file_entry(best_data)} if best_data is not None else {})
    optimizer = encode_optimizer_state(optimizer_states, rng_states)
    if optimizer is not None:
        files[OPTIMIZER_FILE] = file_entry(optimizer[0])
    meta = _metadata(
        model, tokenizer, train_config, corpus, history, summary, step, files,
        optimizer[1] if optimizer is not None else None,
    )
    problem = step_problem(meta["step"], meta["history"].get("step", []))
    if problem:  # a load would refuse it
        raise CheckpointError(f"not saving {name}: {problem}")
    meta_data = json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")

    def fill(tmp: Path) -> None:
        atomic.write_file(tmp / MODEL_FILE, model_data)
        if best_data is not None:
            atomic.write_file(tmp / BEST_FILE, best_data)
        if optimizer is not None:
            atomic.write_file(tmp / OPTIMIZER_FILE, optimizer[0])
        atomic.write_file(tmp / META_FILE, meta_data)

    return _commit(root, name, fill, overwrite, step if forward_only else None)


def _commit(root: Path, name: str, fill: Callable[[Path], None], overwrite: bool, step: int | None = None) -> Path:
    """Publish through `dsmini.checkpoint.atomic`, replacing only what `replace_check` allows; an OSError
    becomes a CheckpointError that says where and why."""
    try:
        return atomic.publish(root, name, fill, replace_check(overwrite, step))
    except OSError as err:
        taken = taken_meanwhile(root / name, err)  # another machine's save got there first
        if taken is not None:
            raise taken from err
        raise CheckpointError(f"could not write checkpoint to {root}: {err.strerror or err}") from err


def copy_checkpoint(
    source: str | os.PathLike[str], root: str | os.PathLike[str], name: str, overwrite: bool = False
) -> Path:
    """Publish a copy of the checkpoint at `source` as `<root>/<name>/`, atomically; the data files
    byte for byte, checkpoint.json without a shipped flag. Replaces like `save_checkpoint`.

    For a run kept in a private folder (a training job's) that the user saves under a name."""
    name = validate_name(name)
    source = checkpoint_dir(Path(source))
    meta = _read_meta(source)

    def fill(tmp: Path) -> None:
        for file_name in meta["files"]:
            atomic.write_file(tmp / file_name, (source / file_name).read_bytes())
        atomic.write_file(tmp / META_FILE, without_shipped_flag((source / META_FILE).read_bytes()))

    return _commit(Path(root), name, fill, overwrite)


# ---------------------------------------------------------------------------------------------
# Load


@dataclass
class Checkpoint:
    model: DSMini  # eval mode, on the requested device
    tokenizer: CharTokenizer
    model_config: ModelConfig
    train_config: TrainConfig | None
    corpus: CorpusRef  # empty (every field None) when saved without one
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    step: int
    param_counts: dict[str, dict[str, int]]
    path: Path
    name: str
    optimizer_states: dict[str, Any] | None  # only with load_optimizer=True and if saved
    rng_states: dict[str, torch.Tensor] | None
    mtime: float  # of checkpoint.json: changes on every save, so a good cache key with path
    created: str
    shipped: bool  # ships with dsmini: read-only
    has_best: bool = False  # the folder holds best-validation weights beside the last ones
    weights: str = "last"  # which of them `model` holds: "last" or "best"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is refused (json keeps the last silently: `"step": 999999`
    appended to a file would win)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _read_meta(path: Path) -> dict[str, Any]:
    """Parse checkpoint.json, check every field, and the data files' presence and sizes.

    Cheap (one small read, two stats, no tensors, no hashing): `scan_checkpoints` relies on it for
    every entry.
    """
    meta_path = path / META_FILE
    try:
        meta = json.loads(read_small(meta_path).decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError, a duplicate key, a 5,000-digit number
        raise CheckpointError(f"{meta_path} is not valid JSON: {err}") from None
    except RecursionError:  # the parser's own limit: thousands of nested brackets
        raise CheckpointError(f"{meta_path} is not valid JSON: nested too deeply") from None
    except OSError as err:
        raise CheckpointError(f"could not read {meta_path}: {err.strerror or err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{meta_path} is not a dsmini checkpoint (format {found!r}, expected {FORMAT!r})")
    version = meta.get("format_version")
    if not is_int(version) or version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is from another version of dsmini: format_version {version!r}, "
            f"this dsmini reads {FORMAT_VERSION}"
        )
    problem = meta_problem(meta)
    if problem:
        raise CheckpointError(f"{meta_path}: {problem}")
    for file_name, entry in meta["files"].items():
        try:
            check_size(path / file_name, entry["bytes"])
        except CheckpointError as err:
            if file_name != BEST_FILE:
                raise
            meta[_BEST_PROBLEM] = str(err)  # the last weights are intact: only --best is refused
    return meta


_BEST_PROBLEM = "_best_problem"  # in the parsed meta only: why best.safetensors cannot be used


def _has_best(meta: dict[str, Any]) -> bool:
    return BEST_FILE in meta["files"] and _BEST_PROBLEM not in meta


def _parse_configs(
    meta: dict[str, Any], meta_path: Path
) -> tuple[ModelConfig, TrainConfig | None, CharTokenizer]:
    """Configs and tokenizer from checked JSON; their own ValueError text says which value is wrong."""
    parsed = []
    for field, parse in (
        ("model_config", ModelConfig.from_dict),
        ("train_config", lambda d: TrainConfig.from_dict(d) if d is not None else None),
        ("tokenizer", CharTokenizer.from_dict),
    ):
        try:
            parsed.append(parse(meta.get(field)))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{meta_path}: field {field!r} is an invalid configuration: {err}") from None
    cfg, train_config, tokenizer = parsed
    try:  # a crafted config must not allocate gigabytes before it is refused
        check_model_size(cfg)
    except ResourceLimitError as err:
        raise CheckpointError(f"{meta_path}: field 'model_config' describes too big a model: {err}") from None
    if tokenizer.vocab_size != cfg.vocab_size:
        raise CheckpointError(
            f"{meta_path}: tokenizer has {tokenizer.vocab_size} tokens but model_config.vocab_size is {cfg.vocab_size}"
        )
    return cfg, train_config, tokenizer


def _load_optimizer(
    path: Path, meta: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor] | None]:
    """(optimizer state dicts, rng states) rebuilt with their exact types, or (None, None)."""
    if meta.get("optimizer") is None:
        return None, None
    file_path = path / OPTIMIZER_FILE
    return decode_optimizer_state(meta["optimizer"], read_tensors(file_path, meta["files"][OPTIMIZER_FILE]), file_path)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", load_optimizer: bool = False,
    best: bool = False,
) -> Checkpoint:
    """Load and verify a checkpoint directory; the model comes back in eval mode on `device`.

    best=True: the model holds the weights of the best validation loss (BEST_FILE); CheckpointError
    when the checkpoint has none. The rest (configs, history, optimizer state) is the same either way.
    Verified: every field of checkpoint.json, file sizes and sha256, configs, tensor names and
    shapes. The optimizer file is read only with load_optimizer=True (the app never needs it).
    A save of this name that a kill interrupted is completed or rolled back first (dsmini.checkpoint.atomic).
    """
    path = Path(path)
    atomic.recover(path.parent, path.name)
    path = checkpoint_dir(path)
    meta = _read_meta(path)
    meta_path = path / META_FILE
    cfg, train_config, tokenizer = _parse_configs(meta, meta_path)
    weights_file = BEST_FILE if best else MODEL_FILE
    if best and _BEST_PROBLEM in meta:
        raise CheckpointError(f"{meta[_BEST_PROBLEM]}; the last weights are intact: load them (without --best)")
    if weights_file not in meta["files"]:
        raise CheckpointError(
            f"{path} has no best weights ({BEST_FILE}): saved before any evaluation or by an older dsmini"
        )
    model = DSMini(cfg)
    model.load_state_dict(read_state(path, meta, model.state_dict(), weights_file))
    optimizer_states, rng_states = _load_optimizer(path, meta) if load_optimizer else (None, None)
    return Checkpoint(
        model=model.to(device).eval(),
        tokenizer=tokenizer,
        model_config=cfg,
        train_config=train_config,
        corpus=CorpusRef.from_json(meta.get("corpus", {})),
        history=history_rows(meta.get("history", {})),
        summary=meta.get("metrics", {}),
        step=meta.get("step", 0),
        param_counts=model.param_counts(),
        path=path,
        name=path.name,
        optimizer_states=optimizer_states,
        rng_states=rng_states,
        mtime=meta_path.stat().st_mtime,
        created=meta.get("created", ""),
        shipped=meta.get("shipped", False),
        has_best=_has_best(meta),
        weights="best" if best else "last",
    )


def read_state(path: Path, meta: dict[str, Any], expected: Mapping[str, torch.Tensor],
               file_name: str) -> dict[str, torch.Tensor]:
    """One weights file of a checked checkpoint, hashed and checked name by name and shape by shape;
    routed experts saved one module each (older dsmini) come back stacked."""
    state = stack_expert_weights(read_tensors(path / file_name, meta["files"][file_name]))
    check_state(expected, state, path / file_name)
    return state


def load_best_state(ckpt: Checkpoint) -> dict[str, torch.Tensor] | None:
    """A loaded checkpoint's best-validation weights (a resumed run keeps its best), or None."""
    return read_state(ckpt.path, _read_meta(ckpt.path), ckpt.model.state_dict(), BEST_FILE) if ckpt.has_best else None


# ---------------------------------------------------------------------------------------------
# List


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint picker shows, read from checkpoint.json alone."""

    name: str
    path: Path
    corpus: str | None  # corpus["name"]
    params_total: int  # main model (what generates), without the MTP modules
    params_active: int  # per token: routed experts count k of E
    val_loss: float | None  # first of SUMMARY_VAL_LOSS_KEYS present in the summary
    step: int
    mtime: float
    created: str
    summary: dict[str, Any]
    shipped: bool  # ships with dsmini: read-only, and what a new session opens on
    has_best: bool = False  # best-validation weights beside the last ones (load_checkpoint(best=True))


@dataclass(frozen=True)
class BrokenCheckpoint:
    """A folder under the checkpoints root that is not a usable checkpoint, and why."""

    name: str
    reason: str  # the CheckpointError message, paths relative to the root


@dataclass(frozen=True)
class CheckpointListing:
    good: list[CheckpointInfo]  # sorted by name
    broken: list[BrokenCheckpoint]  # sorted by name


def _info(path: Path) -> CheckpointInfo:
    meta = _read_meta(path)
    _parse_configs(meta, path / META_FILE)
    summary = meta.get("metrics", {})
    main = meta.get("param_counts", {}).get("main", {})
    val_loss = next((summary[k] for k in SUMMARY_VAL_LOSS_KEYS if summary.get(k) is not None), None)
    return CheckpointInfo(
        name=path.name,
        path=path,
        corpus=meta.get("corpus", {}).get("name"),
        params_total=main.get("total", 0),
        params_active=main.get("active", 0),
        val_loss=val_loss,
        step=meta.get("step", 0),
        mtime=(path / META_FILE).stat().st_mtime,
        created=meta.get("created", ""),
        summary=summary,
        shipped=meta.get("shipped", False),
        has_best=_has_best(meta),
    )


def _by_name(name: str) -> tuple[str, str]:
    return name.casefold(), name


def scan_checkpoints(root: str | os.PathLike[str]) -> CheckpointListing:
    """The checkpoints under `root`, and the folders that are not one with the reason; a missing
    root is simply empty.

    Saves that a kill interrupted are completed or rolled back first (dsmini.checkpoint.atomic). Hidden
    entries and plain files (a README) are skipped silently. Reads only checkpoint.json: no
    tensors, no hashing. Raises only when `root` itself cannot be read.
    """
    root = Path(root)
    if not root.is_dir():
        return CheckpointListing([], [])
    atomic.recover(root)
    try:
        entries = [e for e in root.iterdir() if not e.name.startswith(".") and e.is_dir()]
    except OSError as err:
        raise CheckpointError(f"could not read the checkpoints folder {root}: {err.strerror or err}") from None
    good, broken = [], []
    for entry in entries:
        try:
            good.append(_info(checkpoint_dir(entry)))
        except (CheckpointError, OSError) as err:
            broken.append(BrokenCheckpoint(entry.name, str(err).replace(f"{root}{os.sep}", "")))
        except Exception as err:  # a bug reading one folder must not hide the others; the log has it
            log.exception("reading checkpoint %s failed", entry)
            broken.append(BrokenCheckpoint(entry.name, f"unexpected {type(err).__name__}: {err}"))
    return CheckpointListing(
        sorted(good, key=lambda i: _by_name(i.name)), sorted(broken, key=lambda b: _by_name(b.name))
    )


def list_checkpoints(root: str | os.PathLike[str]) -> list[CheckpointInfo]:
    """The good checkpoints of `scan_checkpoints(root)`, sorted by name."""
    return scan_checkpoints(root).good


# ---------------------------------------------------------------------------------------------
# Download


def checkpoint_zip_bytes(path: str | os.PathLike[str]) -> bytes:
    """The checkpoint as a zip (files under `<name>/`), e.g. for a browser download button.

    Only the known files are packed, after the same size checks as loading.
    """
    path = checkpoint_dir(Path(path))
    meta = _read_meta(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file_name in (META_FILE, *meta["files"]):
            zf.write(path / file_name, f"{path.name}/{file_name}")
    return buffer.getvalue()
