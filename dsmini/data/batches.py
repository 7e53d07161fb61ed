"""A corpus made ready to train on: names that fit the block, seeded splits, each split encoded as
(x, y) rows, and random batches drawn from them.

```
Corpus names (normalised, with optional domain labels)
  -> CorpusData     prepare_corpus: drop names that do not fit block_size, split_names (seeded),
                    CharTokenizer.from_names, encode_names per split (dsmini.data.tokenizer)
  -> batches        get_batch(x, y, batch_size, generator)
```

Domain labels travel beside the names, one per name, through every step (`domains=None`: unlabelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from dsmini.model import IGNORE_INDEX

from .splits import Splits, split_names
from .tokenizer import MIN_NAMES, CharTokenizer, CorpusError, LabelledNames, encode_names


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
        raise CorpusError(
            f"{corpus_name}: no validation names: give a validation file or a validation fraction above 0"
        )
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
        raise CorpusError(
            f"{held.source}: {has} has domain labels (name<TAB>domain) but {lacks} does not; give both or neither"
        )
    unknown = sorted(set(held.names.domains or ()) - set(labels))
    if unknown:
        raise CorpusError(f"{held.source}: domains {unknown[:5]} are not among the corpus's {labels}")
    for name in held.names.names:
        missing = tokenizer.unknown_chars(name)
        if missing:
            raise HeldOutCharacterError(held.source, name, missing)
    kept = _fitting(held.names.names, block_size, held.names.domains)
    if not kept.names:
        raise CorpusError(
            f"{held.source}: none of its names fit block_size {block_size} (at most {block_size - 1} characters)"
        )
    return kept
