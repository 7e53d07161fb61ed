"""The character tokenizer, splits and training batches: what a model is trained and run on.

Data flow (each arrow is one function below; corpora come from `dsmini.data.corpora`):

```
Corpus names (normalised, with optional domain labels)
  -> CorpusData     prepare_corpus: drop names that do not fit block_size, split_names (seeded),
                    CharTokenizer.from_names, encode_names per split
  -> batches        get_batch(x, y, batch_size, generator)
```

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

from .splits import Splits, split_names

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


def get_batch(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rows (with replacement) drawn from `generator`, so a seeded run replays exactly."""
    if len(x) == 0:
        raise ValueError("cannot draw a batch from an empty split")
    idx = torch.randint(len(x), (batch_size,), generator=generator)  # (B,)
    return x[idx], y[idx]  # (B, T) each


def count_target_tokens(y: torch.Tensor) -> int:
    """Real (non-padding) target tokens: what throughput numbers should count."""
    return int((y != IGNORE_INDEX).sum())


@dataclass(frozen=True)
class EncodedSplit:
    names: list[str]
    x: torch.Tensor  # (N, block_size) inputs
    y: torch.Tensor  # (N, block_size) targets, IGNORE_INDEX at padding
    domains: list[str] | None = None  # label of each row's name; None: unlabelled


@dataclass(frozen=True)
class HeldOut:
    """A validation or test set given as a file of its own instead of cut from the corpus."""

    source: str  # the file's name: messages and the checkpoint's corpus entry say it
    names: LabelledNames


class HeldOutCharacterError(CorpusError):
    """A validation or test name has a character the training names lack: the model has no id for it.
    `.source`, `.name` and `.chars` say which, so the CLI can point at the file's line."""

    def __init__(self, source: str, name: str, chars: Sequence[str]):
        self.source, self.name, self.chars = source, name, list(chars)
        listed = ", ".join(repr(c) for c in self.chars)
        super().__init__(f"{source}: name {name!r} has {listed}, not in the training names' alphabet")


@dataclass(frozen=True)
class CorpusData:
    """Everything training needs from a corpus, and the provenance a checkpoint records."""

    corpus_name: str
    seed: int
    block_size: int
    tokenizer: CharTokenizer
    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit
    n_too_long: int  # names dropped because they do not fit block_size
    domain_labels: list[str] = field(default_factory=list)  # of the whole corpus, sorted; [] unlabelled
    builtin: bool = False  # `load_corpus(corpus_name)` rebuilds the names (see Corpus.builtin)
    val_source: str | None = None  # the file val came from; None: cut from the corpus (val_frac)
    test_source: str | None = None  # likewise for test
    val_frac: float = 0.1  # of the corpus, cut for val when val_source is None (else 0)
    test_frac: float = 0.1
    # val/test names that are also training names (a given file may repeat them; a cut never does
    # unless --no-dedupe kept repeats): reported, kept, so a given test file stays the benchmark it is
    overlap: dict[str, int] = field(default_factory=dict)

    @property
    def splits(self) -> Splits:
        return Splits(
            self.train.names, self.val.names, self.test.names,
            self.train.domains, self.val.domains, self.test.domains,
        )


def _fitting(names: Sequence[str], block_size: int, domains: Sequence[str] | None) -> LabelledNames:
    """The names (and their labels) short enough for block_size: name + one boundary token."""
    labels = domains if domains is not None else [None] * len(names)
    pairs = [(n, d) for n, d in zip(names, labels, strict=True) if len(n) + 1 <= block_size]
    return LabelledNames([n for n, _ in pairs], [d for _, d in pairs] if domains is not None else None)


def validation_set(
    names: Sequence[str],
    block_size: int,
    seed: int,
    max_names: int | None = None,
    domains: Sequence[str] | None = None,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
) -> LabelledNames:
    """The validation names (and labels) `prepare_corpus(names, block_size, seed, domains=...)` makes,
    without encoding the corpus (the explorer only needs the names; encoding 200K Russian names
    costs seconds). The split is shuffled, so its first `max_names` are a fair sample."""
    kept = _fitting(names, block_size, domains)
    splits = split_names(kept.names, seed, val_frac=val_frac, test_frac=test_frac, domains=kept.domains)
    val_domains = splits.val_domains[:max_names] if splits.val_domains is not None else None
    return LabelledNames(splits.val[:max_names], val_domains)



def _enough_fitting(names: Sequence[str], block_size: int, corpus_name: str,
                    domains: Sequence[str] | None) -> LabelledNames:
    """The names that fit block_size, refused when fewer than MIN_NAMES do."""
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2 (boundary + a name), got {block_size}")
    kept = _fitting(names, block_size, domains)
    if len(kept.names) < MIN_NAMES:
        raise CorpusError(
            f"{corpus_name}: only {len(kept.names)} name(s) fit block_size {block_size} "
            f"(names of at most {block_size - 1} characters); need at least {MIN_NAMES}"
        )
    return kept


def corpus_tokenizer(names: Sequence[str], block_size: int, corpus_name: str = "custom") -> CharTokenizer:
    """The tokenizer `prepare_corpus` builds for `names` at `block_size`, without splitting or encoding
    anything: what a run's vocab_size is known from before its data is prepared."""
    return CharTokenizer.from_names(_enough_fitting(names, block_size, corpus_name, None).names)


def prepare_corpus(
    names: Sequence[str],
    block_size: int,
    seed: int,
    corpus_name: str = "custom",
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    domains: Sequence[str] | None = None,
    builtin: bool = False,
    val: HeldOut | None = None,
    test: HeldOut | None = None,
) -> CorpusData:
    """Normalised names (and their domain labels) -> tokenizer, seeded splits and encoded tensors.

    The tokenizer is built from all kept names of the corpus, not just train, so a rare character
    that lands only in a val/test cut still has an id (as in makemore). Pass
    `default_block_size(names)` to keep every name. `builtin`: `corpus_name` is a registry
    name that `load_corpus` rebuilds (pass `Corpus.builtin`); a checkpoint then stores the name,
    not the validation names. `val` / `test`: given as files of their own, so nothing is cut from
    the corpus for them (their fraction is ignored); their names must use the corpus's characters
    (HeldOutCharacterError) and its domain labels, and names too long for block_size are dropped
    and counted in `n_too_long` like the corpus's own.
    """
    kept = _enough_fitting(names, block_size, corpus_name, domains)
    tokenizer = CharTokenizer.from_names(kept.names)
    val_frac, test_frac = (0.0 if val else val_frac), (0.0 if test else test_frac)
    splits = split_names(kept.names, seed, val_frac=val_frac, test_frac=test_frac, domains=kept.domains)
    labels = sorted(set(domains or ()))
    files = {part: held for part, held in (("val", val), ("test", test)) if held is not None}
    given = {part: _held_out(held, block_size, tokenizer, labels, domains is not None) for part, held in files.items()}

    def encoded(part: str) -> EncodedSplit:
        cut = LabelledNames(getattr(splits, part), getattr(splits, f"{part}_domains"))
        chosen = given.get(part, cut)
        return EncodedSplit(chosen.names, *encode_names(chosen.names, tokenizer, block_size), domains=chosen.domains)

    parts = {part: encoded(part) for part in ("train", "val", "test")}
    if not parts["val"].names:
        raise CorpusError(f"{corpus_name}: no validation names: give a validation file or a validation fraction "
                          "above 0")
    train_names = set(parts["train"].names)
    held_too_long = sum(len(held.names.names) - len(given[part].names) for part, held in files.items())
    return CorpusData(
        corpus_name=corpus_name,
        seed=seed,
        block_size=block_size,
        tokenizer=tokenizer,
        **parts,
        n_too_long=len(names) - len(kept.names) + held_too_long,
        domain_labels=labels,
        builtin=builtin,
        val_source=val.source if val else None,
        test_source=test.source if test else None,
        val_frac=val_frac,
        test_frac=test_frac,
        overlap={part: sum(name in train_names for name in parts[part].names) for part in ("val", "test")},
    )


def _held_out(
    held: HeldOut, block_size: int, tokenizer: CharTokenizer, labels: list[str], labelled: bool
) -> LabelledNames:
    """A given val/test file's names that fit block_size, checked against the corpus: its characters
    (HeldOutCharacterError naming the first name with an unknown one) and its domain labels."""
    if (held.names.domains is not None) != labelled:
        has, lacks = ("the corpus", "this file") if labelled else ("this file", "the corpus")
        raise CorpusError(f"{held.source}: {has} has domain labels (name<TAB>domain) but {lacks} does not; give "
                          "both or neither")
    unknown = sorted(set(held.names.domains or ()) - set(labels))
    if unknown:
        raise CorpusError(f"{held.source}: domains {unknown[:5]} are not among the corpus's {labels}")
    for name in held.names.names:
        missing = tokenizer.unknown_chars(name)
        if missing:
            raise HeldOutCharacterError(held.source, name, missing)
    kept = _fitting(held.names.names, block_size, held.names.domains)
    if not kept.names:
        raise CorpusError(f"{held.source}: none of its names fit block_size {block_size} (at most {block_size - 1} "
                          "characters)")
    return kept
