"""What a path is when a regular file was expected, in words a message can use."""

from __future__ import annotations

import stat
from pathlib import Path

_KINDS = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISCHR: "a character device",
          stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}


def file_kind(path: Path) -> str | None:
    """None for a regular file (following links); else what `path` is: "missing", "a FIFO (named pipe),
    not a regular file", ... A link to /dev/zero or a FIFO is named as such, never called missing (and
    never opened: a FIFO would block the reader, a device never ends)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing" + (" (a link to nothing)" if path.is_symlink() else "")
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    if stat.S_ISREG(mode):
        return None
    what = next((name for test, name in _KINDS.items() if test(mode)), "not a regular file")
    return f"{what}, not a regular file" + (" (through a link)" if path.is_symlink() else "")
