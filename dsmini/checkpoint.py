"""Checkpoints: save, load, list, zip. Safetensors + JSON, written atomically, checked on load.

A checkpoint is a directory `<root>/<name>/`:

```
model.safetensors      model state_dict (parameters + persistent buffers such as the
                       sigmoid_bias router's `bias`), float32
optimizer.safetensors  optional, for exact resume: every tensor of the optimizer state dicts
                       and the named torch.Generator states, keyed like `adamw/state/3/exp_avg`,
                       `rng/batches`; the rest of those dicts (param_groups, plain numbers)
                       is a tagged tree in checkpoint.json
checkpoint.json        format tag + version, configs, tokenizer, corpus provenance, step,
                       history, metric summary, parameter counts, versions, and the sha256 and
                       size of each safetensors file (so truncation and corruption are caught);
                       `"shipped": true` in the models that ship with dsmini (read-only)
```

The corpus reference (`corpus_reference`) says how to rebuild the validation names the explorer
probes with: a built-in corpus by its name, block size and split seed; any other corpus (an upload,
a .txt path) stores up to MAX_STORED_VAL_NAMES of them, with their domain labels, because the file
is gone once training ends. `checkpoint_validation_set` reads either kind back.

Validation: every field of checkpoint.json is checked, on load and on listing alike: its type,
range and nesting (configs field by field, tokenizer, corpus, step, history columns, metrics,
parameter counts, timestamps, versions, files, the optimizer tree). Unknown top-level fields and
unknown keys of open objects (metrics, corpus, history columns) are accepted, so a newer writer's
additions do not break an older reader. Every failure is a `CheckpointError` whose message names
the file and the field. `scan_checkpoints` lists the good checkpoints and, separately, why each bad
one was skipped, so one broken folder never hides the others.

Safety: nothing is ever unpickled (no `torch.load`); a pickle or `.pt` file is refused
before it is opened as anything but bytes.

Saving: everything is written and fsynced in a hidden temp directory, then renamed into place
by `dsmini.atomic` (its docstring lists the steps, the states a kill can leave on disk, and what
recovery does with each); listing and loading run that recovery first, so an interrupted save
shows up as the complete old or the complete new checkpoint, never as nothing. A name that is
taken is replaced only with `overwrite=True`, and a shipped checkpoint (`"shipped": true` in its
checkpoint.json, a flag that travels with the folder) never: `CheckpointExistsError` says so and
offers `next_free_name`. Copies (`copy_checkpoint`, uploads) are the user's own: the flag is dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import logging
import math
import os
import re
import shutil
import types
import typing
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import safetensors.torch
import torch
from safetensors import SafetensorError

from . import atomic
from .config import ModelConfig, TrainConfig
from .data import CharTokenizer, Corpus, CorpusData, CorpusError, LabelledNames, list_corpora, load_corpus, validation_set
from .limits import ResourceLimitError, check_model_size
from .model import DSMini

FORMAT = "dsmini-checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
META_FILE = "checkpoint.json"
KNOWN_FILES = (META_FILE, MODEL_FILE, OPTIMIZER_FILE)
MAX_NAME_LEN = 64
MAX_ZIP_BYTES = 256 * 2**20  # uncompressed cap for an uploaded checkpoint zip
SUMMARY_VAL_LOSS_KEYS = ("best_val_loss", "val_loss", "last_val_loss")  # first present wins
MAX_STORED_VAL_NAMES = 2_000  # ~20 KB of JSON; more than any probe page reads at once

# Windows device names: a directory called "con" cannot be created there, even as "con.txt".
_RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"{dev}{i}" for dev in ("com", "lpt") for i in range(1, 10))}
# Pickle protocol 2+ starts with 0x80 then the protocol byte; torch.save writes a zip of pickles.
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".zip")
_ZIP_MAGIC = b"PK\x03\x04"
log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint cannot be saved, found, read or trusted; the message says which file and why."""


class CheckpointExistsError(CheckpointError):
    """A save would replace a checkpoint: a shipped one (never allowed) or another one without
    overwrite=True. `free_name` is a name not yet taken, for the app to offer instead."""

    def __init__(self, path: Path, free_name: str, shipped: bool):
        self.path, self.free_name, self.shipped = path, free_name, shipped
        if shipped:
            message = f"{path.name!r} ships with dsmini and is read-only: save under another name, e.g. {free_name!r}"
        else:
            message = (
                f"a checkpoint named {path.name!r} already exists in {path.parent}: choose another name, "
                f"e.g. {free_name!r}, or overwrite it explicitly"
            )
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# Names


def validate_name(name: str) -> str:
    """Check a user-typed checkpoint name and return it (NFC-normalised).

    Names become directory names, so anything that could escape `root` (separators, `..`),
    hide (leading dot: our temp dirs), or break on some OS (reserved device names, NUL,
    trailing dot) is refused. NFC first so "й" typed as "и" + combining breve is one letter.
    """
    if not isinstance(name, str):
        raise CheckpointError(f"checkpoint name must be a string, got {type(name).__name__}")
    name = unicodedata.normalize("NFC", name)
    problem = _name_problem(name)
    if problem:
        raise CheckpointError(f"checkpoint name {name!r} is not allowed: {problem}")
    return name


def _name_problem(name: str) -> str | None:
    """What is wrong with a name, in words, or None."""
    if not name:
        return "it is empty"
    if "\x00" in name:
        return "it contains a NUL character"
    if not name.strip():
        return "it is only whitespace"
    if "/" in name or "\\" in name:
        return "it contains a path separator ('/' or '\\')"
    if ".." in name:
        return "it contains '..'"
    if name.startswith("."):
        return "it starts with '.' (hidden names are reserved for temporary files)"
    if name.startswith("-"):
        return "it starts with '-' (it would look like a command-line option)"
    if name.endswith("."):
        return "it ends with '.'"
    if len(name) > MAX_NAME_LEN:
        return f"it is {len(name)} characters long, the limit is {MAX_NAME_LEN}"
    bad = sorted({c for c in name if not (c.isalnum() or c in "-_.")})
    if bad:
        listed = ", ".join(repr(c) for c in bad)
        return f"it contains {listed}; use letters, digits, '-', '_' and '.'"
    if name.split(".")[0].casefold() in _RESERVED_NAMES:
        return "it is a reserved device name on Windows"
    return None


def next_free_name(root: str | os.PathLike[str], name: str) -> str:
    """`name` if nothing in `root` has it yet, else the first free `name-2`, `name-3`, ...
    ("my-run-2" goes on to "my-run-3", not "my-run-2-2"), cut to fit MAX_NAME_LEN."""
    name, root = validate_name(name), Path(root)
    if not atomic.exists(root / name):
        return name
    base, sep, digits = name.rpartition("-")
    numbered = bool(sep and base and digits.isascii() and digits.isdigit())
    base, n = (base, int(digits) + 1) if numbered else (name, 2)
    while True:
        suffix = f"-{n}"
        candidate = base[: MAX_NAME_LEN - len(suffix)] + suffix
        if not atomic.exists(root / candidate):
            return candidate
        n += 1


# ---------------------------------------------------------------------------------------------
# JSON-able values


def _jsonable(obj: Any, where: str) -> Any:
    """Caller-given metadata -> strict JSON values; NaN/inf become null (JSON has no NaN).

    Accepts dataclasses (e.g. the trainer's metric records), 0-dim tensors and numpy scalars
    (via `.item()`), so callers can pass what they have.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0 and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    raise CheckpointError(f"{where} is a {type(obj).__name__}, which cannot be stored in {META_FILE}")


# ---------------------------------------------------------------------------------------------
# Optimizer state <-> (tensors, JSON tree)
#
# Optimizer state dicts mix tensors, int keys (param ids), tuples (betas) and numbers. The
# tree keeps every type exactly: tensors become {"tensor": key} and move to the safetensors
# file; dicts are lists of [key, value] pairs (JSON object keys would turn 3 into "3").


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


# ---------------------------------------------------------------------------------------------
# Corpus reference: enough to rebuild the validation names


def corpus_reference(data: CorpusData) -> dict[str, Any]:
    """The `corpus` entry of checkpoint.json for a run trained on `data`.

    A built-in corpus is rebuilt by name (its validation split can be 20,000 names); any other
    keeps its first MAX_STORED_VAL_NAMES validation names (a fair sample: the split is shuffled).
    """
    ref: dict[str, Any] = {
        "name": data.corpus_name,
        "split_seed": data.seed,
        "block_size": data.block_size,
        "n_train": len(data.train.names),
        "n_val": len(data.val.names),
        "domains": list(data.domain_labels),
    }
    if not data.builtin:
        val_domains = data.val.domains
        ref["val_names"] = data.val.names[:MAX_STORED_VAL_NAMES]
        ref["val_domains"] = val_domains[:MAX_STORED_VAL_NAMES] if val_domains is not None else None
    return ref


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_MAX_INT = 2**63  # JSON integers beyond int64 are no size, step or seed this code could use


def _is_int(value: Any) -> bool:
    """A JSON integer. `type() is`, not isinstance: bool is an int to Python, but true is no step
    count (and the histories' hundred thousand numbers are checked faster this way)."""
    return type(value) is int and -_MAX_INT < value < _MAX_INT


def _is_number(value: Any) -> bool:
    """A finite JSON number: NaN is stored as null, so a NaN or Infinity literal was not written by dsmini."""
    return (type(value) is float and math.isfinite(value)) or _is_int(value)


_CORPUS_INTS = {"split_seed": None, "block_size": 1, "n_train": 0, "n_val": 0}  # field -> minimum


def _corpus_problem(corpus: Any) -> str | None:
    """What is wrong with a corpus entry, naming the field, or None.

    Entries written before domains existed have none of these fields: unlabelled, no stored names.
    """
    if not isinstance(corpus, Mapping):
        return f"'corpus' must be an object, got {type(corpus).__name__}"
    if "name" in corpus and not isinstance(corpus["name"], str):
        return f"corpus field 'name' must be a string, got {corpus['name']!r:.80}"
    for key, minimum in _CORPUS_INTS.items():
        value = corpus.get(key, 0 if minimum is None else minimum)
        if not _is_int(value) or (minimum is not None and value < minimum):
            at_least = f" >= {minimum}" if minimum is not None else ""
            return f"corpus field {key!r} must be an integer{at_least}, got {value!r:.80}"
    domains = corpus.get("domains", [])
    if not _is_str_list(domains) or len(set(domains)) != len(domains):
        return f"corpus field 'domains' must be a list of distinct strings, got {domains!r:.80}"
    val_names, val_domains = corpus.get("val_names"), corpus.get("val_domains")
    if val_names is None:
        return "corpus field 'val_domains' is given without 'val_names'" if val_domains is not None else None
    if not _is_str_list(val_names):
        return f"corpus field 'val_names' must be a list of strings, got {val_names!r:.80}"
    if val_domains is None:
        return "corpus field 'val_domains' is null but the corpus has domains" if domains else None
    if not _is_str_list(val_domains):
        return f"corpus field 'val_domains' must be null or a list of strings, got {val_domains!r:.80}"
    if len(val_domains) != len(val_names):
        return f"corpus field 'val_domains' has {len(val_domains)} labels for {len(val_names)} 'val_names'"
    unknown = sorted(set(val_domains) - set(domains))
    if unknown:
        return f"corpus field 'val_domains' has labels not in 'domains': {unknown[:5]}"
    return None


def _check_corpus(corpus: Any, where: Path | str) -> dict[str, Any]:
    problem = _corpus_problem(corpus)
    if problem:
        raise CheckpointError(f"{where}: {problem}")
    return dict(corpus)


# ---------------------------------------------------------------------------------------------
# Validation of checkpoint.json
#
# A check takes (value, field path) and raises _Invalid naming the field; `_read_meta` turns it into
# one CheckpointError naming the file too. Checks are built from a few constructors so that the
# tables below read as the schema.

Check = Callable[[Any, str], None]


class _Invalid(Exception):
    """A field of checkpoint.json is wrong; the message names it."""


def _need(ok: bool, field: str, expected: str, value: Any) -> None:
    if not ok:
        raise _Invalid(f"field {field!r} must be {expected}, got {value!r:.80}")


def _integer(minimum: int = 0) -> Check:
    return lambda value, field: _need(_is_int(value) and value >= minimum, field, f"an integer >= {minimum}", value)


def _number(minimum: float | None = None) -> Check:
    expected = "a finite number" + (f" >= {minimum}" if minimum is not None else "")
    return lambda value, field: _need(
        _is_number(value) and (minimum is None or value >= minimum), field, expected, value
    )


def _text(value: Any, field: str) -> None:
    _need(isinstance(value, str), field, "a string", value)


def _flag(value: Any, field: str) -> None:
    _need(isinstance(value, bool), field, "true or false", value)


def _nullable(check: Check) -> Check:
    def nullable(value: Any, field: str) -> None:
        if value is not None:
            check(value, field)

    return nullable


def _list_of(check: Check) -> Check:
    def list_of(value: Any, field: str) -> None:
        _need(isinstance(value, list), field, "a list", value)
        for i, item in enumerate(value):
            check(item, f"{field}[{i}]")

    return list_of


def _object(known: Mapping[str, Check], required: Sequence[str] = ()) -> Check:
    """An object whose `known` keys are checked; other keys are accepted (a newer writer's).
    Its fields are named `<field>.<key>`, or `<key>` at the top level (field "")."""

    def check(value: Any, field: str) -> None:
        _need(isinstance(value, dict), field, "an object", value)
        for key in required:
            if key not in value:
                raise _Invalid(f"field {_join(field, key)!r} is missing")
        for key, check_value in known.items():
            if key in value:
                check_value(value[key], _join(field, key))

    return check


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _hint_matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a config field's annotation (int, float, str, bool, X | None, tuple)."""
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return _is_number(value)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_hint_matches(value, arg) for arg in args)
    if typing.get_origin(hint) is tuple:  # JSON has no tuples: TrainConfig.betas is a list of 2
        return isinstance(value, list) and len(value) == len(args) and all(map(_hint_matches, value, args))
    return True  # a kind of field this does not know: left to the config's own validation


def _config_fields(cls: type) -> Check:
    """Each known field's JSON type against the dataclass annotation; ranges and unknown fields
    are the config's own validation (`_parse_configs`)."""
    hints = typing.get_type_hints(cls)

    def check(value: Any, field: str) -> None:
        _need(isinstance(value, dict), field, "an object", value)
        for key, item in value.items():
            if key in hints:
                hint = hints[key]
                _need(_hint_matches(item, hint), f"{field}.{key}", getattr(hint, "__name__", None) or str(hint), item)

    return check


def _corpus(value: Any, field: str) -> None:
    problem = _corpus_problem(value)
    if problem:
        raise _Invalid(problem)


def _char(value: Any, field: str) -> None:
    _need(isinstance(value, str) and len(value) == 1, field, "a single character", value)


def _timestamp(value: Any, field: str) -> None:
    _text(value, field)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(
            f"field {field!r} must be an ISO 8601 time (2025-01-31T12:00:00+00:00), got {value!r:.80}"
        ) from None


def _sha256_hex(value: Any, field: str) -> None:
    _need(isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value) is not None, field, "64 hex digits", value)


_FILE_ENTRY = _object({"sha256": _sha256_hex, "bytes": _integer()}, required=("sha256", "bytes"))


def _files(value: Any, field: str) -> None:
    _object({name: _FILE_ENTRY for name in (MODEL_FILE, OPTIMIZER_FILE)}, required=(MODEL_FILE,))(value, field)
    unknown = sorted(set(value) - {MODEL_FILE, OPTIMIZER_FILE})
    if unknown:
        raise _Invalid(f"field {field!r} lists an unknown file {unknown[0]!r}")


def _param_counts(value: Any, field: str) -> None:
    _need(isinstance(value, dict), field, "an object", value)
    if "main" not in value:
        raise _Invalid(f"field {_join(field, 'main')!r} is missing")
    for group, counts in value.items():
        _object({"total": _integer(), "active": _integer()}, required=("total", "active"))(counts, f"{field}.{group}")
        total, active = counts["total"], counts["active"]
        _need(active <= total, f"{field}.{group}.active", f"<= total {total}", active)


_TREE_TAGS = ("tensor", "dict", "list", "tuple", "float")


def _tree(value: Any, field: str) -> None:
    """A node of `_encode_tree`'s tagged tree: a plain JSON value or a one-key tagged object."""
    if value is None or isinstance(value, (bool, str)) or _is_number(value):
        return
    _need(isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TREE_TAGS, field,
          f"a number, string, null or an object with one key of {', '.join(_TREE_TAGS)}", value)
    (tag, item), = value.items()
    where = f"{field}.{tag}"
    if tag == "tensor":
        _text(item, where)
    elif tag == "float":
        _need(item in ("nan", "inf", "-inf"), where, "'nan', 'inf' or '-inf'", item)
    elif tag == "dict":
        _list_of(_tree_pair)(item, where)
    else:
        _list_of(_tree)(item, where)


def _tree_pair(value: Any, field: str) -> None:
    _need(isinstance(value, list) and len(value) == 2 and (isinstance(value[0], str) or _is_int(value[0])),
          field, "a [key, value] pair with a string or integer key", value)
    _tree(value[1], f"{field}[1]")


def _optimizer(value: Any, field: str) -> None:
    _object({"states": _object({}), "rng": _list_of(_text)}, required=("states", "rng"))(value, field)
    for name, tree in value["states"].items():
        _tree(tree, f"{field}.states.{name}")


def _is_count(value: Any) -> bool:
    return _is_int(value) and value >= 0


def _is_amount(value: Any) -> bool:
    return _is_number(value) and value >= 0


def _or_null(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or ok(value)


def _all(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: type(value) is list and all(map(ok, value))


def _amounts(value: Any) -> bool:
    """A list of finite numbers >= 0, in a few C-speed passes: a history's expert loads are ~100K
    numbers. The bounds come before isfinite, which cannot take a huge int; it catches NaN."""
    return type(value) is list and set(map(type, value)) <= {int, float} and (
        not value or (min(value) >= 0 and max(value) < _MAX_INT and all(map(math.isfinite, value)))
    )


# The StepMetrics fields (dsmini.train): what each row's value must be. A history has thousands of
# rows, so these are plain predicates run over a whole column, not the field-naming checks above
# (the first bad row is named afterwards). Other columns are accepted as they are.
_HISTORY_COLUMNS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "step": (_is_count, "an integer >= 0"),
    "loss": (_or_null(_is_number), "a finite number or null"),  # NaN losses are stored as null
    "main_loss": (_or_null(_is_number), "a finite number or null"),
    "mtp_losses": (_all(_or_null(_is_number)), "a list of numbers or nulls"),
    "aux_loss": (_or_null(_is_number), "a finite number or null"),
    "lr": (_or_null(_is_amount), "a number >= 0 or null"),
    "grad_norm": (_or_null(_is_number), "a finite number or null"),
    "tokens": (_is_count, "an integer >= 0"),
    "tokens_per_sec": (_or_null(_is_amount), "a number >= 0 or null"),
    "elapsed": (_or_null(_is_amount), "a number >= 0 or null"),
    "expert_load": (_all(_amounts), "a list (per MoE layer) of lists of numbers >= 0"),
    "dropped": (_amounts, "a list of numbers >= 0"),
    "val_loss": (_or_null(_is_number), "a finite number or null"),
    "samples": (_or_null(_all(lambda v: type(v) is str)), "null or a list of strings"),
    # bits; a plug-in estimate can round to a hair below 0
    "domain_mi": (_or_null(_all(_is_number)), "null or a list of numbers"),
    "domain_mi_initial": (_or_null(_all(_is_number)), "null or a list of numbers"),
}


def _history(value: Any, field: str) -> None:
    """One list per metric (see `_history_columns`), all as long as the history, each row's known
    metrics of their type, and I(domain; expert) with its untrained contrast beside it."""
    _need(isinstance(value, dict), field, "an object of metric columns", value)
    lengths = {}
    for key, column in value.items():
        _need(type(column) is list, f"{field}.{key}", "a list (one value per step)", column)
        lengths[key] = len(column)
        ok, expected = _HISTORY_COLUMNS.get(key, (None, ""))
        if ok is not None and not all(map(ok, column)):
            row = next(i for i, item in enumerate(column) if not ok(item))
            _need(False, f"{field}.{key}[{row}]", expected, column[row])
    if len(set(lengths.values())) > 1:
        raise _Invalid(f"field {field!r} has columns of different lengths: {lengths}")
    mi, initial = value.get("domain_mi", ()), value.get("domain_mi_initial", ())
    for i, row_mi in enumerate(mi):
        row_initial = initial[i] if i < len(initial) else None
        if row_mi is not None and (row_initial is None or len(row_initial) != len(row_mi)):
            raise _Invalid(
                f"field '{field}.domain_mi_initial[{i}]' must be a list as long as domain_mi[{i}], "
                f"got {row_initial!r:.80}"
            )


_LOSS = _nullable(_number())  # NaN losses are stored as null
_METRICS = _object({
    "steps": _integer(),
    "val_loss": _LOSS,
    "best_val_loss": _LOSS,
    "last_val_loss": _LOSS,
    "train_seconds": _nullable(_number(0)),
    "stop_reason": _nullable(_text),
})

# Every field dsmini writes (format and format_version are checked first, with their own messages).
_META = _object(
    {
        "model_config": _config_fields(ModelConfig),
        "train_config": _nullable(_config_fields(TrainConfig)),
        "tokenizer": _object({"type": _text, "boundary_id": _integer(), "chars": _list_of(_char)},
                             required=("type", "boundary_id", "chars")),
        "corpus": _corpus,
        "step": _integer(),
        "history": _history,
        "metrics": _METRICS,
        "param_counts": _param_counts,
        "created": _timestamp,
        "dsmini_version": _text,
        "torch_version": _text,
        "files": _files,
        "optimizer": _nullable(_optimizer),
        "shipped": _flag,
    },
    required=("model_config", "tokenizer", "files"),
)


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with the fields of a parsed checkpoint.json, naming the field, or None."""
    try:
        _META(meta, "")
    except _Invalid as err:
        return str(err)
    except RecursionError:
        return "a field is nested too deeply"
    has_state, lists_file = meta.get("optimizer") is not None, OPTIMIZER_FILE in meta["files"]
    if has_state and not lists_file:
        return f"field 'optimizer' holds optimizer state but 'files' does not list {OPTIMIZER_FILE}"
    if lists_file and not has_state:
        return f"field 'files' lists {OPTIMIZER_FILE} but 'optimizer' is null"
    return None


# ---------------------------------------------------------------------------------------------
# Files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _os_error(root: Path, err: OSError) -> CheckpointError:
    reason = err.strerror or str(err)
    return CheckpointError(f"could not write checkpoint to {root}: {reason}")


# ---------------------------------------------------------------------------------------------
# Save


def _model_bytes(model: DSMini) -> bytes:
    """state_dict (persistent buffers included, rope tables are not) as float32 safetensors.

    Cloned so tensors that share storage do not trip safetensors' shared-memory check.
    """
    state = {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone(
            memory_format=torch.contiguous_format
        )
        for k, v in model.state_dict().items()
    }
    return safetensors.torch.save(state)


def _optimizer_payload(
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


def _file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": _sha256(data), "bytes": len(data)}


def _versions() -> dict[str, str]:
    """Provenance: which code wrote the file (looked up at save time, when `dsmini` is imported)."""
    package = importlib.import_module(__package__)
    return {"dsmini_version": getattr(package, "__version__", "unknown"), "torch_version": torch.__version__}


def _history_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Metric rows -> one list per metric: each key is written once, not once per step
    (3,000 steps of rows would take 1.5 MB of the 5 MB a shipped checkpoint may use)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return {key: [row.get(key) for row in rows] for key in keys}


def _history_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Inverse of `_history_columns` (for checked columns: all of one length)."""
    length = len(next(iter(columns.values()), []))
    return [{key: values[i] for key, values in columns.items()} for i in range(length)]


def _metadata(
    model: DSMini,
    tokenizer: CharTokenizer,
    train_config: TrainConfig | None,
    corpus: Mapping[str, Any] | None,
    history: Sequence[Any],
    summary: Mapping[str, Any] | None,
    step: int,
    files: dict[str, dict[str, Any]],
    optimizer_json: dict[str, Any] | None,
) -> dict[str, Any]:
    """The contents of checkpoint.json; refuses a tokenizer that does not fit the model."""
    if tokenizer.vocab_size != model.cfg.vocab_size:
        raise CheckpointError(
            f"tokenizer vocab_size {tokenizer.vocab_size} does not match the model's {model.cfg.vocab_size}"
        )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "train_config": train_config.to_dict() if train_config is not None else None,
        "tokenizer": tokenizer.to_dict(),
        "corpus": _check_corpus(_jsonable(corpus or {}, "corpus"), "corpus"),
        "step": int(step),
        "history": _history_columns(_jsonable(list(history), "history")),
        "metrics": _jsonable(summary or {}, "summary"),
        "param_counts": model.param_counts(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **_versions(),
        "files": files,
        "optimizer": optimizer_json,
    }


def _is_checkpoint_dir(path: Path) -> bool:
    return path.is_dir() and (path / META_FILE).is_file()


def _is_shipped(path: Path) -> bool:
    """Whether the checkpoint at `path` says it ships with dsmini. An unreadable checkpoint.json
    proves nothing: such a folder is replaced like any other (with overwrite=True)."""
    try:
        meta = json.loads((path / META_FILE).read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(meta, dict) and meta.get("shipped") is True


def _replaceable(overwrite: bool) -> Callable[[Path], None]:
    """The check before a save renames anything: refuse to replace a foreign directory, a shipped
    checkpoint, or (without overwrite=True) any checkpoint."""

    def check(final: Path) -> None:
        if not atomic.exists(final):
            return
        if final.is_symlink() or not _is_checkpoint_dir(final):
            raise CheckpointError(f"{final} exists and is not a dsmini checkpoint; not overwriting it")
        shipped = _is_shipped(final)
        if shipped or not overwrite:
            raise CheckpointExistsError(final, next_free_name(final.parent, final.name), shipped)

    return check


def _without_shipped_flag(meta_data: bytes) -> bytes:
    """checkpoint.json bytes for a copy: the copy is the user's own, not read-only. Unchanged
    (byte for byte) when there is no flag."""
    meta = json.loads(meta_data.decode("utf-8"))
    if "shipped" not in meta:
        return meta_data
    del meta["shipped"]
    return json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")


def save_checkpoint(
    root: str | os.PathLike[str],
    name: str,
    model: DSMini,
    tokenizer: CharTokenizer,
    *,
    train_config: TrainConfig | None = None,
    corpus: Mapping[str, Any] | None = None,
    history: Sequence[Any] = (),
    summary: Mapping[str, Any] | None = None,
    step: int = 0,
    optimizer_states: Mapping[str, Any] | None = None,
    rng_states: Mapping[str, torch.Tensor] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `<root>/<name>/` atomically and return its path.

    optimizer_states: e.g. `{"adamw": opt.state_dict()}`; rng_states: e.g.
    `{"batches": generator.get_state()}`. Both optional, both needed for an exact resume.
    An existing `<name>` is replaced only with overwrite=True, and a shipped one never
    (CheckpointExistsError, with a free name to offer).
    Everything is serialised in memory first, so a bad argument fails before touching disk.
    """
    name = validate_name(name)
    root = Path(root)
    model_data = _model_bytes(model)
    files = {MODEL_FILE: _file_entry(model_data)}
    optimizer = _optimizer_payload(optimizer_states, rng_states)
    if optimizer is not None:
        files[OPTIMIZER_FILE] = _file_entry(optimizer[0])
    meta = _metadata(
        model, tokenizer, train_config, corpus, history, summary, step, files,
        optimizer[1] if optimizer is not None else None,
    )
    meta_data = json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")

    def fill(tmp: Path) -> None:
        atomic.write_file(tmp / MODEL_FILE, model_data)
        if optimizer is not None:
            atomic.write_file(tmp / OPTIMIZER_FILE, optimizer[0])
        atomic.write_file(tmp / META_FILE, meta_data)

    return _commit(root, name, fill, overwrite)


def _commit(root: Path, name: str, fill: Callable[[Path], None], overwrite: bool) -> Path:
    """Publish through `dsmini.atomic`; an OSError becomes a CheckpointError that says where and why."""
    try:
        return atomic.publish(root, name, fill, _replaceable(overwrite))
    except OSError as err:
        raise _os_error(root, err) from err


def copy_checkpoint(
    source: str | os.PathLike[str], root: str | os.PathLike[str], name: str, overwrite: bool = False
) -> Path:
    """Publish a copy of the checkpoint at `source` as `<root>/<name>/`, atomically; the data files
    byte for byte, checkpoint.json without a shipped flag. Replaces like `save_checkpoint`.

    For a run kept in a private folder (a training job's) that the user saves under a name."""
    name = validate_name(name)
    source = _checkpoint_dir(Path(source))
    meta = _read_meta(source)

    def fill(tmp: Path) -> None:
        for file_name in meta["files"]:
            atomic.write_file(tmp / file_name, (source / file_name).read_bytes())
        atomic.write_file(tmp / META_FILE, _without_shipped_flag((source / META_FILE).read_bytes()))

    return _commit(Path(root), name, fill, overwrite)


# ---------------------------------------------------------------------------------------------
# Load


@dataclass
class Checkpoint:
    model: DSMini  # eval mode, on the requested device
    tokenizer: CharTokenizer
    model_config: ModelConfig
    train_config: TrainConfig | None
    corpus: dict[str, Any]
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


def _refuse_file(path: Path) -> None:
    """A file where a checkpoint directory was expected: say what it is, never unpickle it."""
    with open(path, "rb") as f:
        head = f.read(4)
    is_pickle = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if path.suffix.lower() in _PICKLE_SUFFIXES or is_pickle or head == _ZIP_MAGIC:
        raise CheckpointError(
            f"{path} is a pickle/torch/zip file; pickle files are not loaded: they can run code. "
            f"A dsmini checkpoint is a directory with {META_FILE} and {MODEL_FILE} "
            "(a downloaded checkpoint zip goes through load_checkpoint_zip)"
        )
    raise CheckpointError(f"{path} is a file, not a checkpoint directory")


def _checkpoint_dir(path: Path) -> Path:
    """The checkpoint directory for `path` (which may also name its checkpoint.json)."""
    if path.name == META_FILE and path.is_file():
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the path does not exist")
    if not path.is_dir():
        _refuse_file(path)
    if not (path / META_FILE).is_file():
        raise CheckpointError(f"{path} is not a dsmini checkpoint: {META_FILE} is missing")
    return path


def _read_meta(path: Path) -> dict[str, Any]:
    """Parse checkpoint.json, check every field, and the data files' presence and sizes.

    Cheap (one small read, two stats, no tensors, no hashing): `scan_checkpoints` relies on it for
    every entry.
    """
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{meta_path} is not valid JSON: {err}") from None
    except RecursionError:  # the parser's own limit: thousands of nested brackets
        raise CheckpointError(f"{meta_path} is not valid JSON: nested too deeply") from None
    except OSError as err:
        raise CheckpointError(f"could not read {meta_path}: {err.strerror or err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{meta_path} is not a dsmini checkpoint (format {found!r}, expected {FORMAT!r})")
    version = meta.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is from another version of dsmini: format_version {version!r}, "
            f"this dsmini reads {FORMAT_VERSION}"
        )
    problem = _meta_problem(meta)
    if problem:
        raise CheckpointError(f"{meta_path}: {problem}")
    for file_name, entry in meta["files"].items():
        _check_size(path / file_name, entry["bytes"])
    return meta


def _check_size(file_path: Path, expected: int) -> None:
    if not file_path.is_file():
        raise CheckpointError(f"{file_path} is missing")
    size = file_path.stat().st_size
    if size != expected:
        raise CheckpointError(f"{file_path} is truncated or corrupt: {size} bytes, expected {expected}")


def _read_tensors(file_path: Path, entry: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Read once, hash what was read, then parse those same bytes (no check-then-reread race)."""
    try:
        data = file_path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"could not read {file_path}: {err.strerror or err}") from None
    digest = _sha256(data)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"{file_path} is corrupt or truncated: sha256 {digest[:12]}..., expected {entry['sha256'][:12]}..."
        )
    try:
        return safetensors.torch.load(data)
    except SafetensorError as err:
        raise CheckpointError(f"{file_path} is not a readable safetensors file: {err}") from None


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


def _check_state(
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


def _load_optimizer(
    path: Path, meta: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor] | None]:
    """(optimizer state dicts, rng states) rebuilt with their exact types, or (None, None)."""
    optimizer = meta.get("optimizer")
    if optimizer is None:
        return None, None
    file_path = path / OPTIMIZER_FILE
    tensors = _read_tensors(file_path, meta["files"][OPTIMIZER_FILE])
    try:
        rng = {name: tensors[f"rng/{name}"] for name in optimizer["rng"]}
        states = {name: _decode_tree(tree, tensors) for name, tree in optimizer["states"].items()}
    except KeyError as err:
        raise CheckpointError(
            f"{file_path} lacks the tensor {err} that the optimizer entry of {META_FILE} names"
        ) from None
    not_bytes = [name for name, state in rng.items() if state.dtype != torch.uint8]
    if not_bytes:
        raise CheckpointError(f"{file_path}: rng state {not_bytes[0]!r} is not a ByteTensor from Generator.get_state()")
    return (states or None), (rng or None)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", load_optimizer: bool = False
) -> Checkpoint:
    """Load and verify a checkpoint directory; the model comes back in eval mode on `device`.

    Verified: every field of checkpoint.json, file sizes and sha256, configs, tensor names and
    shapes. The optimizer file is read only with load_optimizer=True (the app never needs it).
    A save of this name that a kill interrupted is completed or rolled back first (dsmini.atomic).
    """
    path = Path(path)
    atomic.recover(path.parent, path.name)
    return _load_verified(_checkpoint_dir(path), device, load_optimizer)


def _load_verified(path: Path, device: str | torch.device, load_optimizer: bool) -> Checkpoint:
    meta = _read_meta(path)
    meta_path = path / META_FILE
    cfg, train_config, tokenizer = _parse_configs(meta, meta_path)
    state = _read_tensors(path / MODEL_FILE, meta["files"][MODEL_FILE])
    model = DSMini(cfg)
    _check_state(model.state_dict(), state, path / MODEL_FILE)
    model.load_state_dict(state)
    optimizer_states, rng_states = _load_optimizer(path, meta) if load_optimizer else (None, None)
    return Checkpoint(
        model=model.to(device).eval(),
        tokenizer=tokenizer,
        model_config=cfg,
        train_config=train_config,
        corpus=dict(meta.get("corpus", {})),
        history=_history_rows(meta.get("history", {})),
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
    )


def checkpoint_validation_set(
    source: Checkpoint | Mapping[str, Any],
    max_names: int | None = None,
    load: Callable[[str], Corpus] = load_corpus,
) -> LabelledNames:
    """The validation names (and domain labels) of the run that made a checkpoint.

    `source` is a loaded Checkpoint or its `corpus` entry. Stored names come first (uploads and
    files); otherwise a built-in corpus is rebuilt with `load` (the app passes its cached loader:
    ru-names takes seconds) and re-split exactly as training did. CorpusError when neither works.
    """
    corpus = source.corpus if isinstance(source, Checkpoint) else _check_corpus(source, "corpus reference")
    if corpus.get("val_names") is not None:
        val_domains = corpus.get("val_domains")
        return LabelledNames(
            list(corpus["val_names"][:max_names]),
            list(val_domains[:max_names]) if val_domains is not None else None,
        )
    name = corpus.get("name")
    if not isinstance(name, str) or name not in list_corpora():
        raise CorpusError(
            f"the validation names of corpus {name!r} cannot be rebuilt: it is not a built-in corpus and "
            "the checkpoint does not store them (it was saved by an older dsmini); train it again to explore it"
        )
    block_size, seed = corpus.get("block_size"), corpus.get("split_seed")
    if not isinstance(block_size, int) or not isinstance(seed, int):
        raise CorpusError(f"corpus {name!r}: the checkpoint lacks an integer 'block_size' and 'split_seed'")
    rebuilt = load(name)
    if "domains" in corpus and corpus["domains"] != rebuilt.domain_labels:
        raise CorpusError(
            f"built-in corpus {name!r} now has domains {rebuilt.domain_labels}, but the checkpoint was "
            f"trained with {corpus['domains']}: its validation names cannot be rebuilt"
        )
    return validation_set(rebuilt.names, block_size, seed, max_names, rebuilt.domains)


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
    )


def _by_name(name: str) -> tuple[str, str]:
    return name.casefold(), name


def scan_checkpoints(root: str | os.PathLike[str]) -> CheckpointListing:
    """The checkpoints under `root`, and the folders that are not one with the reason; a missing
    root is simply empty.

    Saves that a kill interrupted are completed or rolled back first (dsmini.atomic). Hidden
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
            good.append(_info(_checkpoint_dir(entry)))
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
# Zip download / upload


def checkpoint_zip_bytes(path: str | os.PathLike[str]) -> bytes:
    """The checkpoint as a zip (files under `<name>/`), e.g. for a browser download button.

    Only the known files are packed, after the same size checks as loading.
    """
    path = _checkpoint_dir(Path(path))
    meta = _read_meta(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file_name in (META_FILE, *meta["files"]):
            zf.write(path / file_name, f"{path.name}/{file_name}")
    return buffer.getvalue()


def _zip_members(zf: zipfile.ZipFile, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    """Known file name -> member; members may sit at the top or in one common folder."""
    members: dict[str, zipfile.ZipInfo] = {}
    folders = set()
    for info in zf.infolist():
        member = info.filename
        if member.startswith(("/", "\\")) or "\\" in member or ".." in member.split("/") or ":" in member:
            raise CheckpointError(f"zip member {member!r} has an unsafe path")
        if info.is_dir():
            continue
        folder, _, file_name = member.rpartition("/")
        if file_name not in KNOWN_FILES or "/" in folder:
            raise CheckpointError(f"zip member {member!r} is not a checkpoint file ({', '.join(KNOWN_FILES)})")
        if file_name in members:
            raise CheckpointError(f"zip holds {file_name} twice")
        folders.add(folder)
        members[file_name] = info
    if len(folders) > 1:
        raise CheckpointError(f"zip holds files in several folders: {sorted(folders)}")
    if META_FILE not in members or MODEL_FILE not in members:
        raise CheckpointError(f"zip is not a dsmini checkpoint: it needs {META_FILE} and {MODEL_FILE}")
    if sum(i.file_size for i in members.values()) > max_bytes:
        raise CheckpointError(f"zip unpacks to more than {max_bytes // 2**20} MB")
    return members


def _unzip(data: bytes, target: Path, max_bytes: int) -> None:
    """Write the known members of a zip into `target`.

    The declared sizes are capped by `_zip_members`; zipfile stops each member at its
    declared size and checks its CRC, so a header that lies (a zip bomb) cannot write more.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for file_name, info in _zip_members(zf, max_bytes).items():
                with zf.open(info) as src, open(target / file_name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                    dst.flush()
                    os.fsync(dst.fileno())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as err:
        # RuntimeError: encrypted member; NotImplementedError: unknown compression method
        raise CheckpointError(f"uploaded file is not a readable checkpoint zip: {err}") from None


def load_checkpoint_zip(
    data: bytes, root: str | os.PathLike[str], name: str, max_bytes: int = MAX_ZIP_BYTES, overwrite: bool = False
) -> Path:
    """Unpack an uploaded checkpoint zip as `<root>/<name>/` after full validation; return its path.

    Member names are only compared against the three known file names, never used as paths.
    The unpacked copy is checked like `load_checkpoint` (every field, hashes, shapes, optimizer
    state) inside a hidden temp dir and only then renamed into place, like a save (and replaces
    like one). An upload is the user's own: a shipped flag in it is dropped.
    """
    name = validate_name(name)
    root = Path(root)

    def fill(tmp: Path) -> None:
        _unzip(data, tmp, max_bytes)
        try:
            _load_verified(tmp, "cpu", load_optimizer=True)
        except CheckpointError as err:  # name the upload, not our temp dir
            raise CheckpointError(f"uploaded checkpoint is invalid: {str(err).replace(str(tmp), 'upload')}") from None
        meta_path = tmp / META_FILE
        atomic.write_file(meta_path, _without_shipped_flag(meta_path.read_bytes()))

    return _commit(root, name, fill, overwrite)
