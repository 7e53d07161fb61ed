"""What a valid checkpoint.json holds, field by field, and how values are cleaned to go in it.

`meta_problem` checks every field of a parsed checkpoint.json: its type, range and nesting (configs
field by field against their dataclass annotations, tokenizer, corpus, step, history columns,
metrics, parameter counts, timestamps, versions, files, the optimizer tree), and names the first
wrong one. Unknown top-level fields and unknown keys of open objects (metrics, corpus, history
columns) are accepted, so a newer writer's additions do not break an older reader. `dsmini.checkpoint`
runs it on load and on listing alike; what only the configs' own validation or the tensors can tell
(ranges, model size, shapes, hashes) is checked there.

The checks see parsed JSON only (dicts, lists, strings, numbers), never a tensor or a pickle.
`jsonable` is the way in: caller-given metadata becomes strict JSON (NaN becomes null), and
`history_columns` stores a training history one list per metric.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from dsmini.config import ModelConfig, TrainConfig

from .errors import CheckpointError
from .files import BEST_FILE, META_FILE, MODEL_FILE, OPTIMIZER_FILE

# ---------------------------------------------------------------------------------------------
# JSON values


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_MAX_INT = 2**63  # JSON integers beyond int64 are no size, step or seed this code could use


def is_int(value: Any) -> bool:
    """A JSON integer. `type() is`, not isinstance: bool is an int to Python, but true is no step
    count (and the histories' hundred thousand numbers are checked faster this way)."""
    return type(value) is int and -_MAX_INT < value < _MAX_INT


def _is_number(value: Any) -> bool:
    """A finite JSON number: NaN is stored as null, so a NaN or Infinity literal was not written by dsmini."""
    return (type(value) is float and math.isfinite(value)) or is_int(value)


def jsonable(obj: Any, where: str) -> Any:
    """Caller-given metadata -> strict JSON values; NaN/inf become null (JSON has no NaN).

    Accepts dataclasses (e.g. the trainer's metric records), 0-dim tensors and numpy scalars
    (via `.item()`), so callers can pass what they have.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0 and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    raise CheckpointError(f"{where} is a {type(obj).__name__}, which cannot be stored in {META_FILE}")


def history_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Metric rows -> one list per metric: each key is written once, not once per step
    (3,000 steps of rows would take 1.5 MB of the 5 MB a shipped checkpoint may use)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return {key: [row.get(key) for row in rows] for key in keys}


def history_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Inverse of `history_columns` (for checked columns: all of one length)."""
    length = len(next(iter(columns.values()), []))
    return [{key: values[i] for key, values in columns.items()} for i in range(length)]


# ---------------------------------------------------------------------------------------------
# Validation of checkpoint.json
#
# A check takes (value, field path) and raises _Invalid naming the field; `meta_problem` returns its
# message, which `dsmini.checkpoint` turns into one CheckpointError naming the file too. Checks are
# built from a few constructors so that the tables below read as the schema.

Check = Callable[[Any, str], None]


class _Invalid(Exception):
    """A field of checkpoint.json is wrong; the message names it."""


def _need(ok: bool, field: str, expected: str, value: Any) -> None:
    if not ok:
        raise _Invalid(f"field {field!r} must be {expected}, got {value!r:.80}")


def _integer(minimum: int = 0) -> Check:
    return lambda value, field: _need(is_int(value) and value >= minimum, field, f"an integer >= {minimum}", value)


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
        return is_int(value)
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


_CORPUS_INTS = {"split_seed": None, "block_size": 1, "n_train": 0, "n_val": 0}  # field -> minimum


def corpus_problem(corpus: Any) -> str | None:
    """What is wrong with a corpus entry, naming the field, or None.

    Entries written before domains existed have none of these fields: unlabelled, no stored names.
    """
    if not isinstance(corpus, Mapping):
        return f"'corpus' must be an object, got {type(corpus).__name__}"
    if "name" in corpus and not isinstance(corpus["name"], str):
        return f"corpus field 'name' must be a string, got {corpus['name']!r:.80}"
    for key, minimum in _CORPUS_INTS.items():
        value = corpus.get(key, 0 if minimum is None else minimum)
        if not is_int(value) or (minimum is not None and value < minimum):
            at_least = f" >= {minimum}" if minimum is not None else ""
            return f"corpus field {key!r} must be an integer{at_least}, got {value!r:.80}"
    for key in ("val_file", "test_file"):
        if corpus.get(key) is not None and not isinstance(corpus[key], str):
            return f"corpus field {key!r} must be null or a string, got {corpus[key]!r:.80}"
    for key in ("val_frac", "test_frac"):
        value = corpus.get(key)
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and 0 <= value < 1):
            return f"corpus field {key!r} must be null or a number in [0, 1), got {value!r:.80}"
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


def _corpus(value: Any, field: str) -> None:
    problem = corpus_problem(value)
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
    _object({name: _FILE_ENTRY for name in (MODEL_FILE, OPTIMIZER_FILE, BEST_FILE)},
            required=(MODEL_FILE,))(value, field)
    unknown = sorted(set(value) - {MODEL_FILE, OPTIMIZER_FILE, BEST_FILE})
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
    """A node of the optimizer state's tagged tree (`dsmini.checkpoint.optimizer_state`): a plain JSON value or
    a one-key tagged object."""
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
    _need(isinstance(value, list) and len(value) == 2 and (isinstance(value[0], str) or is_int(value[0])),
          field, "a [key, value] pair with a string or integer key", value)
    _tree(value[1], f"{field}[1]")


def _optimizer(value: Any, field: str) -> None:
    _object({"states": _object({}), "rng": _list_of(_text)}, required=("states", "rng"))(value, field)
    for name, tree in value["states"].items():
        _tree(tree, f"{field}.states.{name}")


def _is_count(value: Any) -> bool:
    return is_int(value) and value >= 0


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


# The StepMetrics fields (dsmini.training.trainer): what each row's value must be. A history has thousands of
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
    "qk_clipped": (_is_count, "an integer >= 0"),  # muonclip: heads rescaled in the step
    "qk_max_logit": (_or_null(_is_number), "a finite number or null"),
    "qk_min_gamma": (_is_amount, "a number >= 0"),
}


def _history(value: Any, field: str) -> None:
    """One list per metric (see `history_columns`), all as long as the history, each row's known
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


def meta_problem(meta: dict[str, Any]) -> str | None:
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
    return step_problem(meta.get("step", 0), meta.get("history", {}).get("step", []))


def step_problem(step: int, steps: list[int]) -> str | None:
    """A run records one history row per step, so its last row is its step (a resume asks --steps from it)."""
    if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
        return "field 'history.step' must increase from row to row"
    if steps and steps[-1] != step:
        return f"field 'step' is {step:,} but the history ends at step {steps[-1]:,}: one of them is wrong"
    return None
