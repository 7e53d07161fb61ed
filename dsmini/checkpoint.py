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
                       size of each safetensors file (so truncation and corruption are caught)
```

The corpus reference (`corpus_reference`) says how to rebuild the validation names the explorer
probes with: a built-in corpus by its name, block size and split seed; any other corpus (an upload,
a .txt path) stores up to MAX_STORED_VAL_NAMES of them, with their domain labels, because the file
is gone once training ends. `checkpoint_validation_set` reads either kind back.

Safety: nothing is ever unpickled (no `torch.load`); a pickle or `.pt` file is refused
before it is opened as anything but bytes. Atomicity: everything is written and fsynced in a
hidden temp directory `<root>/.tmp-<name>-*`, then renamed into place; an existing checkpoint
is first renamed aside to `<root>/.old-<name>-*` and deleted only after the new one has its
name. So the final name always holds a complete checkpoint (or nothing, for an instant, during
an overwrite), and a crash leaves at most hidden dot-directories, which `list_checkpoints`
skips. Every failure is a `CheckpointError` whose message names the path and the problem.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import math
import os
import secrets
import shutil
import tempfile
import threading
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import safetensors.torch
import torch
from safetensors import SafetensorError

from .config import ModelConfig, TrainConfig
from .data import CharTokenizer, Corpus, CorpusData, CorpusError, LabelledNames, list_corpora, load_corpus, validation_set
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
# One process can serve many Streamlit sessions: serialise the rename dance between threads.
_PLACE_LOCK = threading.Lock()


class CheckpointError(ValueError):
    """A checkpoint cannot be saved, found, read or trusted; the message says which file and why."""


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


def _corpus_problem(corpus: Any) -> str | None:
    """What is wrong with a corpus entry, naming the field, or None.

    Entries written before domains existed have none of these fields: unlabelled, no stored names.
    """
    if not isinstance(corpus, Mapping):
        return f"'corpus' must be an object, got {type(corpus).__name__}"
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
# Files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_file(path: Path, data: bytes) -> None:
    """Write and fsync, so a completed rename never points at data still in the page cache."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make renames and new entries in `path` durable (POSIX only; Windows cannot open dirs)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Best-effort delete of a temp/old directory (cleanup must not hide the real error)."""
    shutil.rmtree(path, ignore_errors=True)


def _make_tmp(root: Path, name: str) -> Path:
    """A fresh hidden directory inside `root` (same filesystem, so the final rename is atomic)."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    tmp.chmod(0o755)  # mkdtemp makes it private (0700); a checkpoint is an ordinary directory
    return tmp


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
    if not isinstance(columns, dict):
        raise CheckpointError("checkpoint.json: 'history' must be an object of metric columns")
    length = max((len(v) for v in columns.values()), default=0)
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


def _place(tmp: Path, final: Path) -> None:
    """Rename a complete temp checkpoint to its final name, replacing an old one safely.

    POSIX cannot atomically swap two directories, so: old -> `.old-*`, new -> final, delete
    old. If the second rename fails the old checkpoint is renamed back.
    """
    with _PLACE_LOCK:
        old = None
        if final.exists() or final.is_symlink():
            if not _is_checkpoint_dir(final) or final.is_symlink():
                raise CheckpointError(f"{final} exists and is not a dsmini checkpoint; not overwriting it")
            old = final.with_name(f".old-{final.name}-{secrets.token_hex(4)}")
            os.replace(final, old)
        try:
            os.replace(tmp, final)
        except OSError:
            if old is not None:
                os.replace(old, final)
            raise
        _fsync_dir(final.parent)
    if old is not None:
        _remove(old)


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
) -> Path:
    """Write `<root>/<name>/` atomically and return its path.

    optimizer_states: e.g. `{"adamw": opt.state_dict()}`; rng_states: e.g.
    `{"batches": generator.get_state()}`. Both optional, both needed for an exact resume.
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
        _write_file(tmp / MODEL_FILE, model_data)
        if optimizer is not None:
            _write_file(tmp / OPTIMIZER_FILE, optimizer[0])
        _write_file(tmp / META_FILE, meta_data)  # last: a dir with checkpoint.json is complete

    return _commit(root, name, fill)


def _commit(root: Path, name: str, fill) -> Path:
    """Atomic publish: `fill(tmp)` writes a hidden temp dir inside `root`, which is fsynced and
    only then renamed to `<root>/<name>`; on any failure the temp dir is removed and an OSError
    becomes a CheckpointError that says where and why."""
    tmp = None
    try:
        tmp = _make_tmp(root, name)
        fill(tmp)
        _fsync_dir(tmp)
        final = root / name
        _place(tmp, final)
        return final
    except OSError as err:
        raise _os_error(root, err) from err
    finally:
        if tmp is not None and tmp.exists():
            _remove(tmp)


def copy_checkpoint(source: str | os.PathLike[str], root: str | os.PathLike[str], name: str) -> Path:
    """Publish a byte-exact copy of the checkpoint at `source` as `<root>/<name>/`, atomically.

    For a run kept in a private folder (a training job's) that the user saves under a name."""
    name = validate_name(name)
    source = _checkpoint_dir(Path(source))
    meta = _read_meta(source)

    def fill(tmp: Path) -> None:
        for file_name in (*meta["files"], META_FILE):  # checkpoint.json last, as in save_checkpoint
            _write_file(tmp / file_name, (source / file_name).read_bytes())

    return _commit(Path(root), name, fill)


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
    """Parse checkpoint.json and check format, version and the data files' presence and sizes.

    Cheap (one small read, two stats): `list_checkpoints` relies on it for every entry.
    """
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{meta_path} is not valid JSON: {err}") from None
    except OSError as err:
        raise CheckpointError(f"could not read {meta_path}: {err.strerror or err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{meta_path} is not a dsmini checkpoint (format {found!r}, expected {FORMAT!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is from another version of dsmini: format_version {version!r}, "
            f"this dsmini reads {FORMAT_VERSION}"
        )
    files = meta.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise CheckpointError(f"{meta_path} does not list {MODEL_FILE} under 'files'")
    for file_name, entry in files.items():
        _check_size(path / file_name, entry)
    return meta


def _check_size(file_path: Path, entry: Any) -> None:
    if file_path.name not in KNOWN_FILES:
        raise CheckpointError(f"{file_path.parent / META_FILE} lists an unknown file {file_path.name!r}")
    if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("bytes"), int)):
        raise CheckpointError(f"{file_path.parent / META_FILE}: entry for {file_path.name} lacks sha256/bytes")
    if not file_path.is_file():
        raise CheckpointError(f"{file_path} is missing")
    size = file_path.stat().st_size
    if size != entry["bytes"]:
        raise CheckpointError(f"{file_path} is truncated or corrupt: {size} bytes, expected {entry['bytes']}")


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
    """Configs and tokenizer from JSON; their own ValueError text says which field is wrong."""
    try:
        cfg = ModelConfig.from_dict(meta["model_config"])
        train = meta.get("train_config")
        train_config = TrainConfig.from_dict(train) if train is not None else None
        tokenizer = CharTokenizer.from_dict(meta["tokenizer"])
    except KeyError as err:
        raise CheckpointError(f"{meta_path} lacks {err}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{meta_path} has an invalid configuration: {err}") from None
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
    if OPTIMIZER_FILE not in meta["files"]:
        raise CheckpointError(f"{path / META_FILE} has optimizer state but does not list {OPTIMIZER_FILE}")
    tensors = _read_tensors(file_path, meta["files"][OPTIMIZER_FILE])
    try:
        rng = {name: tensors[f"rng/{name}"] for name in optimizer["rng"]}
        states = {name: _decode_tree(tree, tensors) for name, tree in optimizer["states"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{file_path} does not match the optimizer entry of {META_FILE}: {err!r}") from None
    return (states or None), (rng or None)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", load_optimizer: bool = False
) -> Checkpoint:
    """Load and verify a checkpoint directory; the model comes back in eval mode on `device`.

    Verified: format and version, file sizes and sha256, configs, tensor names and shapes.
    The optimizer file is read only with load_optimizer=True (the app never needs it).
    """
    path = _checkpoint_dir(Path(path))
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
        corpus=_check_corpus(meta.get("corpus") or {}, meta_path),
        history=_history_rows(meta.get("history") or {}),
        summary=meta.get("metrics") or {},
        step=int(meta.get("step", 0)),
        param_counts=model.param_counts(),
        path=path,
        name=path.name,
        optimizer_states=optimizer_states,
        rng_states=rng_states,
        mtime=meta_path.stat().st_mtime,
        created=meta.get("created", ""),
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


def _info(path: Path) -> CheckpointInfo:
    meta = _read_meta(path)
    _parse_configs(meta, path / META_FILE)
    _check_corpus(meta.get("corpus") or {}, path / META_FILE)
    summary = meta.get("metrics") or {}
    main = (meta.get("param_counts") or {}).get("main", {})
    val_loss = next((summary[k] for k in SUMMARY_VAL_LOSS_KEYS if summary.get(k) is not None), None)
    return CheckpointInfo(
        name=path.name,
        path=path,
        corpus=(meta.get("corpus") or {}).get("name"),
        params_total=int(main.get("total", 0)),
        params_active=int(main.get("active", 0)),
        val_loss=val_loss,
        step=int(meta.get("step", 0)),
        mtime=(path / META_FILE).stat().st_mtime,
        created=meta.get("created", ""),
        summary=summary,
    )


def list_checkpoints(
    root: str | os.PathLike[str], errors: list[tuple[str, str]] | None = None
) -> list[CheckpointInfo]:
    """Checkpoints under `root`, sorted by name; a missing root is simply empty.

    Hidden entries (our `.tmp-*`/`.old-*` leftovers) and plain files are skipped silently;
    a directory that is not a valid checkpoint is skipped and, if `errors` is given,
    reported there as (name, message). Reads only checkpoint.json: no tensors, no hashing.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    infos = []
    for entry in root.iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            infos.append(_info(_checkpoint_dir(entry)))
        except (CheckpointError, OSError) as err:
            if errors is not None:
                errors.append((entry.name, str(err)))
    return sorted(infos, key=lambda i: (i.name.casefold(), i.name))


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
    data: bytes, root: str | os.PathLike[str], name: str, max_bytes: int = MAX_ZIP_BYTES
) -> Path:
    """Unpack an uploaded checkpoint zip as `<root>/<name>/` after full validation; return its path.

    Member names are only compared against the three known file names, never used as paths.
    The unpacked copy is checked with `load_checkpoint` (hashes, shapes, optimizer state)
    inside a hidden temp dir and only then renamed into place, like a save.
    """
    name = validate_name(name)
    root = Path(root)

    def fill(tmp: Path) -> None:
        _unzip(data, tmp, max_bytes)
        try:
            load_checkpoint(tmp, load_optimizer=True)
        except CheckpointError as err:  # name the upload, not our temp dir
            raise CheckpointError(f"uploaded checkpoint is invalid: {str(err).replace(str(tmp), 'upload')}") from None

    return _commit(root, name, fill)
