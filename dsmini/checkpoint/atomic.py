"""Publish a directory under a name atomically, and settle a publish that a kill interrupted.

POSIX cannot swap two directories in one step, so publishing `<root>/<name>` takes four steps,
all under an exclusive lock on `root` (flock on the directory itself: one publish or recovery per
root at a time, across threads and processes; the kernel drops the lock of a killed process):

1. fill:  `<root>/.tmp-<name>-<token>` is created, filled by the caller, fsynced
2. aside: if `<name>` exists, it is renamed to `<root>/.old-<name>-<token>` (the same token)
3. place: `.tmp-<name>-<token>` is renamed to `<name>`, and `root` is fsynced
4. clean: `.old-<name>-<token>` is deleted

A kill leaves one of these states on disk; `recover` (called before every listing and load, under
the same lock, so never while a live publish is mid-way) settles each so that `<name>` holds a
complete old or a complete new version, never nothing and never a half-written one:

| killed during or after | on disk                                        | recovery                              |
|------------------------|------------------------------------------------|---------------------------------------|
| 1 fill                 | `<name>` (old, or none), `.tmp-T` (any state)  | delete `.tmp-T`: rolled back          |
| 2 aside                | `.old-T` (old), `.tmp-T` (new, complete)       | rename `.tmp-T` -> `<name>`, delete   |
|                        |                                                | `.old-T`: completed                   |
| 3 place, 4 clean       | `<name>` (new), `.old-T` (maybe partly deleted)| delete `.old-T`: completed            |

An `.old-*` with no `<name>` and no `.tmp-*` of the same token (which this protocol never leaves,
but an older dsmini could) is renamed back to `<name>`: recovery never deletes the only copy.
Hidden names (leading '.') are therefore reserved: nothing else may be called `.tmp-*` or `.old-*`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; the threads of one process are still serialised
    fcntl = None

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
RECOVERY_WAIT_S = 10.0  # a publish holds the lock for a few writes and renames; readers wait this long at most
_THREAD_LOCK = threading.Lock()  # stands in for flock where there is none


def _no_op(step: str) -> None:
    pass


# Called with the name of each step once it is done ("wrote <file>", "filled", "aside", "placed",
# "cleaned"): tests kill the process there to check that recovery handles every state.
on_step: Callable[[str], None] = _no_op


def write_file(path: Path, data: bytes) -> None:
    """Write and fsync, so a completed rename never points at data still in the page cache."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    on_step(f"wrote {path.name}")


def replace_file(path: Path, data: bytes) -> None:
    """`path` holds `data` or what it held before, never a part: written beside it, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_file(tmp, data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make renames and new entries in `path` durable (POSIX only; Windows cannot open dirs)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exists(path: Path) -> bool:
    """Whether anything has this name, a dangling symlink included."""
    return path.exists() or path.is_symlink()


def _remove(path: Path) -> None:
    """Best-effort delete of a temp/old directory (cleanup must not hide the real error)."""
    shutil.rmtree(path, ignore_errors=True)


def _flock(fd: int, timeout: float | None) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"another process has been writing to this folder for over {timeout:g} s") from None
            time.sleep(0.02)


@contextlib.contextmanager
def _locked(root: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold `root`'s lock; TimeoutError (an OSError) if it is not free within `timeout` seconds."""
    if fcntl is None:
        if not _THREAD_LOCK.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError(f"{root} is busy")
        try:
            yield
        finally:
            _THREAD_LOCK.release()
        return
    fd = os.open(root, os.O_RDONLY)  # read-only is enough for flock, so read-only folders lock too
    try:
        _flock(fd, timeout)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def claimed(root: Path, name: str) -> Iterator[None]:
    """Hold `name`'s claim in `root` for as long as one process works on it (a resumed training run
    saves over it); a second claim fails at once with BlockingIOError. The kernel frees the claim when
    its holder dies. The claim is a hidden file (listings never take it for a checkpoint), removed on
    release; a claimer that locked a file removed meanwhile locks the new one instead."""
    path = root / f".{name}.claim"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:  # released (and removed) between our open and our lock: try again
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still held: nobody else holds a lock on this file now
        os.close(fd)


def _leftovers(root: Path, prefix: str, name: str | None) -> dict[tuple[str, str], Path]:
    """(name, token) -> path of each `<prefix><name>-<token>` directory in `root` (of `name` only, if given)."""
    found = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            left, sep, token = entry.name[len(prefix):].rpartition("-")
            if sep and left and name in (None, left):
                found[left, token] = Path(entry.path)
    return found


def _settle(root: Path, name: str) -> None:
    """Bring `name` to a complete version and delete its leftovers (the table in the module docstring).
    Caller holds the lock."""
    tmps = {token: path for (_, token), path in _leftovers(root, TMP_PREFIX, name).items()}
    olds = {token: path for (_, token), path in _leftovers(root, OLD_PREFIX, name).items()}
    if not tmps and not olds:
        return
    final = root / name
    if not exists(final):
        paired = sorted(tmps.keys() & olds.keys())
        if paired:  # killed between aside and place: the new version was complete before the old moved
            os.replace(tmps.pop(paired[0]), final)
        elif olds:  # no newer complete version: put the old one back
            os.replace(olds.pop(min(olds)), final)
    for path in (*tmps.values(), *olds.values()):
        _remove(path)
    fsync_dir(root)


def recover(root: Path, name: str | None = None) -> None:
    """Settle the publishes under `root` (only `name`'s, if given) that a kill interrupted.

    Costs one directory scan when there is nothing to settle. Leaves the leftovers for next time,
    quietly, when `root` cannot be locked or changed (a read-only folder, or a publish that holds
    the lock for over RECOVERY_WAIT_S): readers then see what is there, which is never half-written.
    """
    try:
        names = {left for left, _ in (*_leftovers(root, TMP_PREFIX, name), *_leftovers(root, OLD_PREFIX, name))}
        if not names:
            return
        with _locked(root, RECOVERY_WAIT_S):
            for left in sorted(names):
                _settle(root, left)
    except OSError:  # includes TimeoutError, and a root that is missing or not a directory
        pass


def publish(root: Path, name: str, fill: Callable[[Path], None], check: Callable[[Path], None]) -> Path:
    """Publish `<root>/<name>` through the four steps of the module docstring and return its path.

    `check(final)` runs first, under the lock, so nothing changes between it and the renames; it
    raises to refuse. `fill(tmp)` writes the files into the temp directory. OSError passes through;
    on any failure the temp directory is gone and an old `<name>` is still (or again) in place.
    """
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        _settle(root, name)  # a kill may have left this very name mid-publish
        final = root / name
        check(final)
        # decided now, with the check: a `<name>` that appears later (a save on another machine, where this
        # lock does not reach) makes the rename below fail, instead of being moved aside and replaced
        replacing = exists(final)
        token = secrets.token_hex(4)
        tmp, old = root / f"{TMP_PREFIX}{name}-{token}", root / f"{OLD_PREFIX}{name}-{token}"
        os.mkdir(tmp)
        try:
            fill(tmp)
            fsync_dir(tmp)
            on_step("filled")
            if replacing:
                os.replace(final, old)
                on_step("aside")
            try:
                os.replace(tmp, final)
            except OSError:
                if replacing:
                    os.replace(old, final)
                raise
            fsync_dir(root)
            on_step("placed")
        finally:
            _remove(tmp)  # already renamed away unless a step failed
        if replacing:
            _remove(old)
            on_step("cleaned")
    return final
