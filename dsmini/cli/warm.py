"""`python -m dsmini warm`: compute the shipped checkpoints' default page views and store them beside the
checkpoints (dsmini/probes/store.py), so a fresh server reads them instead of computing them while a class
waits. Run it again after re-saving a shipped checkpoint or changing the code that computes views: the
stored files are keyed by both and are not used once either changes (a test checks they match)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dsmini.checkpoint import Checkpoint, load_checkpoint, scan_checkpoints
from dsmini.jobs import THREADS
from dsmini.page_views import default_calls
from dsmini.probes.store import entry_key, write_views

from .threads import set_threads

SERVER_THREADS = THREADS["server"]  # what the app computes its views with (dsmini/jobs/slots.py)


def add_parser(sub) -> None:
    warm = sub.add_parser("warm", help="store the shipped checkpoints' default page views beside them "
                                       "(a fresh server reads them)",
                          description=__doc__)
    warm.add_argument("--checkpoints", type=Path, default=Path("checkpoints"),
                      help="the checkpoints folder (default: checkpoints)")
    warm.add_argument("--threads", type=int, default=None,
                      help=f"torch CPU threads (default: the app server's, {SERVER_THREADS}: the views stored are then "
                           "bit for bit the ones the server would compute)")


def stored_calls(ckpt: Checkpoint, listed: dict[str, Path]) -> dict[str, tuple]:
    """entry key -> (view, arguments) of each default view of `ckpt` that is kept on disk."""
    def load(name: str) -> Checkpoint | None:
        return load_checkpoint(listed[name]) if name in listed else None

    calls = {}
    for _, work, args in default_calls(ckpt, load):
        key = entry_key(work.view, args) if work.stored else None
        if key is not None:
            calls[key] = (work.view, args)
    return calls


def shipped(root: Path) -> dict[str, Path]:
    """name -> path of each shipped checkpoint under `root`."""
    return {info.name: info.path for info in scan_checkpoints(root).good if info.shipped}


def cmd_warm(args: argparse.Namespace) -> int:
    # not the other commands' idle cores: a float sum over another thread count differs in its last bits
    set_threads(SERVER_THREADS if args.threads is None else args.threads)
    listed = shipped(args.checkpoints)
    if not listed:
        raise ValueError(f"{args.checkpoints} holds no shipped checkpoint: nothing to store")
    for name, path in listed.items():
        started = time.perf_counter()
        ckpt = load_checkpoint(path)
        entries = {key: view(*call_args) for key, (view, call_args) in stored_calls(ckpt, listed).items()}
        written = write_views(path, entries)
        print(f"{name}: {len(entries)} views in {time.perf_counter() - started:.1f} s -> {written}")
    return 0
