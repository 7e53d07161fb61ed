"""The character tokenizer: how a name becomes ids and rows (`dsmini.data.batches` prepares a corpus with it).

A name is a sequence framed by one boundary token (id 0) on both sides: the model reads
`[B] c1 .. cn` and predicts `c1 .. cn [B]`, so "start of name" and "end of name" share one
id and generation stops when the model emits it. The boundary is an id, never a character,
so no name can collide with it; `BOUNDARY_SYMBOL` is only how it is drawn in the app.
`CharTokenizer.frame` is the one place text becomes `[B] + ids` (training rows, generation
prefixes, the probes' traces), and `nfc` the one normalisation every text goes through.

A name may carry a domain label (its language, its part of a full name, its gender): the labels
travel beside the names, one per name, through every step above, so the explorer can ask which
experts take which domain. `domains=None` everywhere means an unlabelled corpus.

Everything here is plain Python + torch: no streamlit, no network.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import torch

from dsmini.model import IGNORE_INDEX

if TYPE_CHECKING:
    from dsmini.config import ModelConfig

BOUNDARY_ID = 0  # start-of-name and end-of-name token
BOUNDARY_SYMBOL = "|"  # display only (charts, token labels); never encoded
MIN_NAMES = 2  # fewest names that still give a non-empty train and val split


class CorpusError(ValueError):
    """A corpus cannot be used; the message says why in words a user can act on."""


class UnknownCharacterError(ValueError):
    """Text contains characters the tokenizer has no id for.

    `.chars` lists them (unique, first-seen order) so the app can highlight them.
    """

    def __init__(self, chars: Sequence[str]):
        self.chars = list(chars)
        listed = ", ".join(repr(c) for c in self.chars)
        super().__init__(f"characters not in this model's alphabet: {listed}")


def nfc(text: str) -> str:
    """Unicode NFC: a "й" typed as "и" + combining breve becomes the one character the corpus has.

    Corpus cleaning and every text a model reads (`CharTokenizer.frame`) go through it, so a name
    typed either way meets the same ids.
    """
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class LabelledNames:
    """Names and, parallel to them, their domain labels (None: the names are unlabelled)."""

    names: list[str]
    domains: list[str] | None = None

    def __post_init__(self) -> None:
        if self.domains is not None and len(self.domains) != len(self.names):
            raise ValueError(f"{len(self.names)} names but {len(self.domains)} domain labels")


# ---------------------------------------------------------------------------------------------
# Statistics (the split itself: dsmini.data.splits)


@dataclass(frozen=True)
class CorpusStats:
    count: int
    alphabet: list[str]  # sorted distinct characters
    char_counts: dict[str, int]  # char -> occurrences, in alphabet order
    length_hist: dict[int, int]  # name length -> number of names, by length
    mean_len: float
    max_len: int


def corpus_stats(names: Sequence[str]) -> CorpusStats:
    """Counts the app shows next to a corpus (and that choose block_size)."""
    chars = Counter("".join(names))
    lengths = Counter(len(n) for n in names)
    return CorpusStats(
        count=len(names),
        alphabet=sorted(chars),
        char_counts={c: chars[c] for c in sorted(chars)},
        length_hist={k: lengths[k] for k in sorted(lengths)},
        mean_len=sum(len(n) for n in names) / len(names) if names else 0.0,
        max_len=max(lengths, default=0),
    )


def default_block_size(names: Iterable[str]) -> int:
    """The smallest block_size that fits every name: longest name + one boundary token."""
    return max((len(n) for n in names), default=0) + 1


# ---------------------------------------------------------------------------------------------
# Tokenizer


@dataclass
class CharTokenizer:
    """Characters -> ids 1..V-1; id 0 is the boundary token (start and end of a name).

    The vocabulary is the sorted set of characters of the training corpus, so the same
    corpus always gives the same ids; it is saved next to a model with `to_dict`.
    """

    chars: list[str]
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.chars:
            raise ValueError("a tokenizer needs at least one character")
        bad = [c for c in self.chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"tokenizer entries must be single characters, got {bad[:5]!r}")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("tokenizer characters must be unique")
        self.chars = list(self.chars)
        self._ids = {c: i + 1 for i, c in enumerate(self.chars)}

    @classmethod
    def from_names(cls, names: Iterable[str]) -> CharTokenizer:
        return cls(sorted(set("".join(names))))

    @property
    def vocab_size(self) -> int:
        """Characters + the boundary token: the model's embedding and output size."""
        return len(self.chars) + 1

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of `text` without an id (unique, first-seen order); [] if encodable."""
        return list(dict.fromkeys(c for c in text if c not in self._ids))

    def encode(self, text: str) -> list[int]:
        """Characters -> ids, no boundary token and no normalisation (`frame` adds both)."""
        try:
            return [self._ids[c] for c in text]
        except KeyError:
            raise UnknownCharacterError(self.unknown_chars(text)) from None

    def frame(self, text: str) -> list[int]:
        """`[B] + ids` of the NFC text: how a model reads a name, a prefix or a training row.

        Raises UnknownCharacterError naming the characters without an id.
        """
        return [BOUNDARY_ID, *self.encode(nfc(text))]

    def frame_for(self, cfg: ModelConfig, text: str, max_chars: int | None = None, what: str = "name") -> list[int]:
        """`frame(text)` for a model of `cfg`: ValueError unless the model has this vocabulary and the
        NFC text has at most `max_chars` characters (default: what block_size holds after [B]); the
        message calls the text `what` ("name", "prefix")."""
        self.check_model(cfg)
        text = nfc(text)  # its length is what the model reads
        limit = cfg.block_size - 1 if max_chars is None else max_chars
        if len(text) > limit:
            shown = repr(text) if len(text) <= 40 else f"{text[:40]!r}..."  # a 10,000-character paste is not echoed
            raise ValueError(f"{what} {shown} has {len(text):,} characters; names here have at most {limit}")
        return self.frame(text)

    def check_model(self, cfg: ModelConfig) -> None:
        """ValueError unless a model of `cfg` has one embedding row per id of this tokenizer."""
        if self.vocab_size != cfg.vocab_size:
            raise ValueError(f"tokenizer vocab_size {self.vocab_size} does not match the model's {cfg.vocab_size}")

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; boundary tokens are skipped, so a framed name decodes to the name."""
        out = []
        for i in ids:
            i = int(i)
            if i == BOUNDARY_ID:
                continue
            if not 0 < i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary (size {self.vocab_size})")
            out.append(self.chars[i - 1])
        return "".join(out)

    def label(self, token_id: int) -> str:
        """How one token is drawn in the app: its character, or BOUNDARY_SYMBOL for id 0."""
        return BOUNDARY_SYMBOL if token_id == BOUNDARY_ID else self.decode([token_id])

    def to_dict(self) -> dict[str, Any]:
        return {"type": "char", "boundary_id": BOUNDARY_ID, "chars": list(self.chars)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        """Inverse of `to_dict`; a mismatch means the file was written by something else."""
        if data.get("type") != "char" or data.get("boundary_id") != BOUNDARY_ID:
            raise ValueError(
                f"not a CharTokenizer with boundary id {BOUNDARY_ID}: "
                f"type={data.get('type')!r}, boundary_id={data.get('boundary_id')!r}"
            )
        return cls(list(data.get("chars", [])))


# ---------------------------------------------------------------------------------------------
# Tensors and batches


def encode_names(
    names: Sequence[str], tokenizer: CharTokenizer, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Names -> (x, y), both (N, block_size) int64, one name per row, left-aligned.

    x = [B] c1 .. cn 0 .. 0     (padding 0 is harmless: causal attention never lets the
    y = c1 .. cn [B] -1 .. -1    real positions see it, and its targets are ignored)
    so y[:, t] is the token after x[:, t]; y == IGNORE_INDEX marks padding.
    """
    rows_x: list[list[int]] = []
    rows_y: list[list[int]] = []
    for name in names:
        if len(name) + 1 > block_size:
            raise ValueError(
                f"name {name!r} has {len(name)} characters; block_size {block_size} fits at "
                f"most {block_size - 1} (one position is the boundary token)"
            )
        framed = tokenizer.frame(name)  # [B] c1 .. cn
        pad = block_size - len(framed)
        rows_x.append(framed + [BOUNDARY_ID] * pad)
        rows_y.append(framed[1:] + [BOUNDARY_ID] + [IGNORE_INDEX] * pad)
    x = torch.tensor(rows_x, dtype=torch.long).view(len(names), block_size)  # (N, T)
    y = torch.tensor(rows_y, dtype=torch.long).view(len(names), block_size)  # (N, T)
    return x, y
