"""Which names a checkpoint may have, and which checkpoints a save may replace.

A name becomes a directory under the checkpoints root, so `validate_name` refuses anything that
could escape the root, hide, or break on some OS; `next_free_name` is the name the app offers when
one is taken. A save replaces an existing checkpoint only when asked (overwrite=True), and never a
shipped one: `"shipped": true` in its checkpoint.json, a flag that travels with the folder, so a
copy (`without_shipped_flag`) drops it to become the user's own. `replace_check` is the check that
`dsmini.checkpoint.atomic.publish` runs under its lock, so nothing changes between it and the renames.

Claiming a name across processes (several app replicas, or machines sharing the folder): on one
machine that lock (flock on the folder) makes check-then-rename one step, so of two saves under one
new name the second finds the first's checkpoint and is refused with its free name. Where the lock
does not reach (a folder shared between machines whose locks are local) the last step still claims
the name atomically: renaming the finished temp folder onto a name that another save has filled
meanwhile fails (a directory is only ever renamed onto an empty one), and `taken_meanwhile` turns
that failure into the same refusal.
"""

from __future__ import annotations

import errno
import json
import os
import unicodedata
from pathlib import Path
from typing import Callable

from . import atomic
from .errors import CheckpointAheadError, CheckpointError, CheckpointExistsError
from .files import META_FILE

MAX_NAME_LEN = 64
# Windows device names: a directory called "con" cannot be created there, even as "con.txt".
_RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"{dev}{i}" for dev in ("com", "lpt") for i in range(1, 10))}


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



def _is_shipped(path: Path) -> bool:
    """Whether the checkpoint at `path` says it ships with dsmini. An unreadable checkpoint.json
    proves nothing: such a folder is replaced like any other (with overwrite=True)."""
    try:
        meta = json.loads((path / META_FILE).read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(meta, dict) and meta.get("shipped") is True


def _saved_step(path: Path) -> int | None:
    """The step in the checkpoint.json at `path`, None when it cannot be read."""
    try:
        step = json.loads((path / META_FILE).read_bytes()).get("step")
    except (OSError, ValueError, RecursionError, AttributeError):
        return None
    return step if isinstance(step, int) else None


def replace_check(overwrite: bool, step: int | None = None) -> Callable[[Path], None]:
    """The check before a save renames anything: refuse to replace a foreign directory, a shipped
    checkpoint, or (without overwrite=True) any checkpoint; with `step` (a run saving over its own
    checkpoint), also one that is further along than `step`."""

    def check(final: Path) -> None:
        if not atomic.exists(final):
            return
        if final.is_symlink() or not (final.is_dir() and (final / META_FILE).is_file()):
            raise CheckpointError(f"{final} exists and is not a dsmini checkpoint; not overwriting it")
        shipped = _is_shipped(final)
        if shipped or not overwrite:
            raise CheckpointExistsError(final, next_free_name(final.parent, final.name), shipped)
        ahead = _saved_step(final) if step is not None else None
        if ahead is not None and ahead > step:
            raise CheckpointAheadError(final, next_free_name(final.parent, final.name), step, ahead)

    return check


def taken_meanwhile(final: Path, err: OSError) -> CheckpointExistsError | None:
    """The refusal for a save whose last rename failed because another process placed a checkpoint
    at `final` between the check and the rename; None for any other failure."""
    if err.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not (final / META_FILE).is_file():
        return None
    return CheckpointExistsError(final, next_free_name(final.parent, final.name), _is_shipped(final))


def without_shipped_flag(meta_data: bytes) -> bytes:
    """checkpoint.json bytes for a copy: the copy is the user's own, not read-only. Unchanged
    (byte for byte) when there is no flag."""
    meta = json.loads(meta_data.decode("utf-8"))
    if "shipped" not in meta:
        return meta_data
    del meta["shipped"]
    return json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")
