"""`python -m dsmini eval`: score a file of names with a checkpoint (nats/char, bits/char, perplexity),
overall and by length or domain; and the loss lines of `info`.

What is counted is `dsmini.decoding.scoring`'s: every character of every name, the first one predicted from
the start token, and the end token. Every line of the file counts (repeats included, as `train
--test-file` scores it), so `eval --names test.txt` on the final weights gives the test loss that
training printed. A name the model cannot read is refused naming the file, the line and the character.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dsmini.checkpoint import Checkpoint, load_checkpoint
from dsmini.data import MAX_NAME_LEN, CorpusError, line_of, load_corpus
from dsmini.decoding import GROUPINGS, format_table, score_names, score_table, unreadable

from .threads import THREADS_HELP, set_threads


def add_eval_parser(sub, best_help: str) -> None:
    ev = sub.add_parser(
        "eval", help="score a file of names with a checkpoint: nats/char, bits/char, perplexity",
        description="Score every name of --names (one name or name<TAB>domain per line; every line counts) under "
        "--checkpoint. Each name of n characters counts n + 1 predictions: its characters, the first one from "
        "the start token, and the end token.",
    )
    ev.add_argument("--checkpoint", required=True, help="checkpoint folder")
    ev.add_argument("--names", required=True,
                    help="a .txt file (or a built-in corpus name), one name or name<TAB>domain per line")
    ev.add_argument("--by", choices=GROUPINGS, default=None,
                    help="one row per name length or per domain, below the overall row")
    ev.add_argument("--lowercase", action="store_true",
                    help="lowercase every name (as a model trained with --lowercase reads)")
    ev.add_argument("--best", action="store_true", help=best_help)
    ev.add_argument("--threads", type=int, default=None, help=THREADS_HELP)


def cmd_eval(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    corpus = load_corpus(args.names, lowercase=args.lowercase, max_len=MAX_NAME_LEN, dedupe=False, min_names=1)
    ckpt = load_checkpoint(args.checkpoint, best=args.best)
    _check_readable(ckpt, corpus.names, args.names, args.lowercase)
    if args.by == "domain" and corpus.domains is None:
        raise CorpusError(f"{args.names}: --by domain needs name<TAB>domain lines; this file has no domains")
    scores = score_names(ckpt.model, ckpt.tokenizer, corpus.names, corpus.domains, progress=Progress(len(corpus.names)))
    rows = score_table(scores, args.by)
    dropped = corpus.dropped.describe()
    print(f"{ckpt.path} ({ckpt.weights} weights, step {ckpt.step}) on {corpus.name}: "
          f"{corpus.intake(deduplicated=False)}" + (f" (dropped {dropped})" if dropped else ""))
    print(format_table(rows, args.by))
    return 0


class Progress:
    """`scored 120,000 / 480,000 names (25%), 6 s` on stderr, redrawn on a terminal at most twice a second;
    in a log one line per 10%; nothing for a list that takes under a second."""

    def __init__(self, total: int):
        self.started, self.shown, self.live = time.monotonic(), 0.0, sys.stderr.isatty()
        self.tenth = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        tenth = 10 * done // total
        due = (now - self.shown >= 0.5) if self.live else tenth > self.tenth
        if elapsed < 1.0 or not (due or done == total):
            return
        self.shown, self.tenth = now, tenth
        line = f"scored {done:,} / {total:,} names ({100 * done // total}%), {elapsed:.0f} s"
        print(f"\r{line}" if self.live else line, end="\n" if done == total or not self.live else "",
              file=sys.stderr, flush=True)


def _check_readable(ckpt: Checkpoint, names: list[str], source: str, lowercase: bool) -> None:
    """CorpusError at the first name the model cannot read, naming the file's line when it is a file."""
    problem = unreadable(ckpt.tokenizer, ckpt.model_config.block_size, names, str(ckpt.path))
    if problem is not None:
        name, message = problem
        number = line_of(source, name, lowercase) if Path(source).is_file() else None
        raise CorpusError(f"{source} line {number}: {message}" if number is not None else f"{source}: {message}")


def loss_lines(ckpt: Checkpoint) -> list[str]:
    """`info`'s loss lines: the last and best evaluations, the whole val split and the test split."""
    summary = ckpt.summary or {}

    def loss(key: str, detail: str = "") -> str:
        value = summary.get(key)
        return f"{value:.4f} nats/char{detail}" if value is not None else "-"

    best_detail = f" at step {summary['best_step']} (best.safetensors)" if summary.get("best_step") is not None else ""
    names = summary.get("test_names")
    return [
        f"weights     {ckpt.weights}"
        + (" (best ones kept too: --best)" if ckpt.has_best and ckpt.weights == "last" else ""),
        f"val loss    {loss('val_loss')}",
        f"best val    {loss('best_val_loss', best_detail)}",
        f"whole val   {loss('final_val_loss')}",
        f"test loss   {loss('test_loss', f' ({names:,} names)' if names else '')}",
    ]
