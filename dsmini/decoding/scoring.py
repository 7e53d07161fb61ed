"""Scoring names with a model: nats per character, bits per character and perplexity, overall and
by name length or domain. Training's validation and test losses, `python -m dsmini eval` and the
app's Compare page all count through `score_rows`, so their numbers are the same quantity.

What is counted: a name of n characters is read as `[B] c1 .. cn` and scored on its n + 1
predictions `c1 .. cn [B]`: the first character predicted from the boundary (start) token, every
following character, and the end token. nats/char = Σ -ln p over those predictions / Σ (n + 1);
bits/char = nats/char / ln 2; perplexity = e^(nats/char). These are per *token* (character or
end), as every character-level LM reports them (makemore, char-RNN); a name's own loss is the sum.

Plain torch, no streamlit.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from dsmini.data import IGNORE_INDEX, CharTokenizer, encode_names, nfc
from dsmini.model import DSMini

from .generate import inference

GROUPINGS = ("length", "domain")  # what `score_table(by=...)` can split the rows by
ALL = "all"  # the group label of the row over every name


def score_rows(model: DSMini, x: torch.Tensor, y: torch.Tensor,
               batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of (x, y) (N, T), as encode_names makes them: (nats, tokens), each (N,) on the CPU:
    Σ -ln p(target) over the row's real targets, and how many there are. Eval mode, no autograd;
    the caller's mode comes back. The targets go into the forward pass, so padding is masked exactly
    as in training (an expert's capacity counts only real tokens)."""
    device = model.head.weight.device
    nats, tokens = [], []
    with inference(model):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)  # (b, T)
            logits = model(xb, yb).logits  # (b, T, V)
            per_token = F.cross_entropy(logits.transpose(1, 2).float(), yb, ignore_index=IGNORE_INDEX,
                                        reduction="none")  # (b, T)
            nats.append(per_token.sum(dim=1).cpu())
            tokens.append((yb != IGNORE_INDEX).sum(dim=1).cpu())
    if not nats:
        return torch.zeros(0), torch.zeros(0, dtype=torch.long)
    return torch.cat(nats).double(), torch.cat(tokens)


def unreadable(tokenizer: CharTokenizer, block_size: int, names: Sequence[str], model: str) -> tuple[str, str] | None:
    """The first name `model` (its label in messages) cannot read and why, or None: a character
    without an id, or more characters than its block_size holds."""
    limit = block_size - 1
    for name in names:
        unknown = tokenizer.unknown_chars(nfc(name))
        if unknown:
            chars = ", ".join(repr(c) for c in unknown)
            return name, f"{name!r} has {chars}, not in the alphabet of {model}: it cannot be scored"
        if len(name) > limit:
            return name, f"{name!r} has {len(name)} characters; {model} reads names of at most {limit}"
    return None


@dataclass(frozen=True)
class NameScore:
    name: str
    domain: str | None
    nats: float  # Σ -ln p over its len + 1 predictions
    tokens: int  # len(name) + 1


def score_names(
    model: DSMini, tokenizer: CharTokenizer, names: Sequence[str], domains: Sequence[str] | None = None,
    batch_tokens: int = 8192, progress: Callable[[int, int], None] | None = None,
) -> list[NameScore]:
    """Each name's loss under the model. ValueError for a name the model cannot read (a character
    without an id, or too long for its block_size): check them first to point at a file's line.

    Names are scored shortest first, each batch padded only to its own longest name and holding about
    `batch_tokens` positions: a list of 480,000 names costs what its characters cost, not 480,000 rows of
    block_size. Each row is scored on its own (no capacity limit at inference), so the grouping changes no
    number. `progress(done, total)` after each batch."""
    tokenizer.check_model(model.cfg)
    order = sorted(range(len(names)), key=lambda i: len(names[i]))
    nats, tokens = [0.0] * len(names), [0] * len(names)
    start = 0
    while start < len(order):
        width = min(len(names[order[start]]) + 1, model.cfg.block_size)  # the batch's shortest row
        rows = max(1, batch_tokens // width)
        chunk = order[start : start + rows]
        longest = min(len(names[chunk[-1]]) + 1, model.cfg.block_size)
        x, y = encode_names([names[i] for i in chunk], tokenizer, longest)
        chunk_nats, chunk_tokens = score_rows(model, x, y, batch_size=len(chunk))
        for i, n, t in zip(chunk, chunk_nats.tolist(), chunk_tokens.tolist()):
            nats[i], tokens[i] = n, t
        start += len(chunk)
        if progress is not None:
            progress(start, len(order))
    labels = list(domains) if domains is not None else [None] * len(names)
    return [NameScore(n, d, s, t) for n, d, s, t in zip(names, labels, nats, tokens)]


@dataclass(frozen=True)
class ScoreRow:
    group: str  # ALL, a name length ("5") or a domain label
    names: int
    tokens: int  # predictions counted: characters + one end token per name
    nats: float  # their summed -ln p

    @property
    def nats_per_char(self) -> float:
        return self.nats / self.tokens if self.tokens else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_char)


def score_table(scores: Sequence[NameScore], by: str | None = None) -> list[ScoreRow]:
    """The row over every name first, then one per length (ascending) or per domain (sorted) when `by`
    asks; by="domain" on unlabelled names gives the overall row only."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"score rows by {by!r}: choose one of {', '.join(GROUPINGS)}")
    groups: dict[str, list[NameScore]] = defaultdict(list)
    for s in scores:
        key = len(s.name) if by == "length" else s.domain if by == "domain" else None
        if key is not None:
            groups[key].append(s)
    rows = [_row(ALL, scores)]
    return rows + [_row(str(key), groups[key]) for key in sorted(groups)]


def _row(group: str, scores: Sequence[NameScore]) -> ScoreRow:
    return ScoreRow(group, len(scores), sum(s.tokens for s in scores), sum(s.nats for s in scores))


def format_table(rows: Sequence[ScoreRow], by: str | None = None) -> str:
    """The rows as the CLI prints them: aligned columns, one header line."""
    header = f"{by or 'names':>10} {'names':>8} {'tokens':>9} {'nats/char':>10} {'bits/char':>10} {'perplexity':>10}"
    lines = [header] + [
        f"{r.group:>10} {r.names:>8,} {r.tokens:>9,} {r.nats_per_char:>10.4f} {r.bits_per_char:>10.4f} "
        f"{r.perplexity:>10.3f}"
        for r in rows
    ]
    return "\n".join(lines)
