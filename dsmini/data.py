"""Corpora, normalisation, splits, the character tokenizer and training batches.

Data flow (each arrow is one function below):

```
built-in package data | uploaded bytes | .txt path
  -> raw names      ru_names / en_names / _decode_text (size, empty, binary, UTF-8 checks)
  -> normalise      normalise_names: NFC, strip, collapse spaces, lowercase?, dedupe,
                    drop unprintable and too-long names (counted in `Dropped`)
  -> Corpus         load_corpus / corpus_from_bytes / corpus_from_path (>= 2 names, alphabet cap)
  -> CorpusData     prepare_corpus: drop names that do not fit block_size, split_names (seeded),
                    CharTokenizer.from_names, encode_names per split
  -> batches        get_batch(x, y, batch_size, generator)
```

A name is a sequence framed by one boundary token (id 0) on both sides: the model reads
`[B] c1 .. cn` and predicts `c1 .. cn [B]`, so "start of name" and "end of name" share one
id and generation stops when the model emits it. The boundary is an id, never a character,
so no name can collide with it; `BOUNDARY_SYMBOL` is only how it is drawn in the app.

Everything here is plain Python + torch: no streamlit, no network (corpora are read from the
installed `names` and `russian-names` packages' data files).
"""

from __future__ import annotations

import importlib.util
import os
import random
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

BOUNDARY_ID = 0  # start-of-name and end-of-name token
BOUNDARY_SYMBOL = "|"  # display only (charts, token labels); never encoded
IGNORE_INDEX = -1  # target value at padded positions; pass to cross_entropy(ignore_index=...)

DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # upload cap: 5 MB
DEFAULT_MAX_CHARS = 200  # alphabet cap: a bigger one is almost surely not a list of names
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


# ---------------------------------------------------------------------------------------------
# Normalisation


@dataclass(frozen=True)
class Dropped:
    """How many input names normalisation removed, by reason (shown to the user)."""

    duplicates: int = 0
    too_long: int = 0
    unprintable: int = 0  # control or invisible format characters, e.g. a stray ESC byte

    @property
    def total(self) -> int:
        return self.duplicates + self.too_long + self.unprintable

    def describe(self) -> str:
        """One phrase for messages, e.g. '3 repeated, 1 too long'; '' when nothing dropped."""
        parts = [
            (self.duplicates, "repeated"),
            (self.too_long, "too long"),
            (self.unprintable, "with unprintable characters"),
        ]
        return ", ".join(f"{n} {reason}" for n, reason in parts if n)


def normalise_names(
    raw: Iterable[str], *, lowercase: bool = False, max_len: int | None = None
) -> tuple[list[str], Dropped]:
    """Clean raw lines into a deduplicated list of names, keeping first-seen order.

    NFC first so a "й" typed as "и" + combining breve is one character, not two alphabet
    entries. Internal whitespace is kept (double names like "Анна Мария") but runs of it are
    collapsed to one space. Lowercasing happens before dedupe so "Anna" and "anna" merge.
    """
    seen: set[str] = set()
    names: list[str] = []
    duplicates = too_long = unprintable = 0
    for line in raw:
        name = " ".join(unicodedata.normalize("NFC", line).split())
        if not name:
            continue
        if lowercase:
            name = name.lower()
        if not name.isprintable():
            unprintable += 1
        elif max_len is not None and len(name) > max_len:
            too_long += 1
        elif name in seen:
            duplicates += 1
        else:
            seen.add(name)
            names.append(name)
    return names, Dropped(duplicates=duplicates, too_long=too_long, unprintable=unprintable)


# ---------------------------------------------------------------------------------------------
# Built-in corpora (package data files, read directly; importing the packages is not needed)

# Line index of each section in russian_names' base.txt (see russian_names/names.py
# `_fill_base`): rare and common first names/patronymics, then surnames, men then women.
_RU_SECTIONS = {
    "first": (0, 1, 5, 6),
    "surname": (4, 9),
    "patronymic": (2, 3, 7, 8),
}
RU_PARTS = tuple(_RU_SECTIONS)


def _package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it.

    `russian_names/__init__.py` decodes its whole 3.7 MB archive at import; we only need
    the file's location.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(f"package {package!r} is not installed; pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations)))


def ru_names(parts: Sequence[str] = ("first", "surname")) -> list[str]:
    """Russian names (men's and women's, common and rare) from the `russian-names` package.

    The archive `_data.zip` holds one `base.txt`: ten lines, each a space-separated list.
    Original capitalisation is kept ("Красоткина").
    """
    unknown = [p for p in parts if p not in _RU_SECTIONS]
    if unknown or not parts:
        raise CorpusError(f"unknown Russian name parts {unknown}; choose from {list(RU_PARTS)}")
    archive = _package_dir("russian_names") / "_data.zip"
    with zipfile.ZipFile(archive) as zf:
        lines = zf.read("base.txt").decode("utf-8").splitlines()
    return [
        name
        for part in parts
        for index in _RU_SECTIONS[part]
        for name in lines[index].split(" ")
    ]


def _census_names(filename: str) -> list[str]:
    """Names from one of the `names` package's 1990 US census files.

    Each line is `NAME freq cumfreq rank` in upper case; "MARY" becomes "Mary".
    """
    text = (_package_dir("names") / filename).read_text(encoding="ascii")
    return [line.split()[0].capitalize() for line in text.splitlines() if line.strip()]


def en_names() -> list[str]:
    """US first names, men's then women's (1,219 + 4,275 lines; shared names dedupe later)."""
    return _census_names("dist.male.first") + _census_names("dist.female.first")


def en_surnames() -> list[str]:
    """US surnames (88,799 lines)."""
    return _census_names("dist.all.last")


@dataclass(frozen=True)
class _Builtin:
    description: str
    load: Callable[[], list[str]]


_BUILTINS: dict[str, _Builtin] = {
    "ru-names": _Builtin(
        "Russian first names and surnames (mostly surnames), men's and women's (russian-names)",
        partial(ru_names, ("first", "surname")),
    ),
    "ru-first-names": _Builtin(
        "Russian first names, men's and women's, common and rare (russian-names)",
        partial(ru_names, ("first",)),
    ),
    "ru-surnames": _Builtin(
        "Russian surnames, men's and women's forms (russian-names)",
        partial(ru_names, ("surname",)),
    ),
    "ru-patronymics": _Builtin(
        "Russian patronymics, men's and women's forms (russian-names)",
        partial(ru_names, ("patronymic",)),
    ),
    "en-names": _Builtin("US first names, men's and women's, 1990 census (names)", en_names),
    "en-surnames": _Builtin("US surnames, 1990 census (names)", en_surnames),
}


def list_corpora() -> dict[str, str]:
    """Built-in corpus names -> one-line descriptions, in display order."""
    return {name: builtin.description for name, builtin in _BUILTINS.items()}


# ---------------------------------------------------------------------------------------------
# Corpora: built-in or a text file (path or uploaded bytes), one name per line


@dataclass(frozen=True)
class Corpus:
    """Normalised names ready for `prepare_corpus`, plus what normalisation removed."""

    name: str  # registry name or file name
    names: list[str]
    dropped: Dropped


def _human_size(n_bytes: int) -> str:
    """Sizes as 812 B / 3.4 KB / 6.0 MB, binary units as Streamlit's maxUploadSize counts."""
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def _check_size(n_bytes: int, max_bytes: int) -> None:
    """Reject big files before decoding them."""
    if n_bytes > max_bytes:
        raise CorpusError(
            f"file is too large: {_human_size(n_bytes)}, the limit is {_human_size(max_bytes)}"
        )


def _decode_text(data: bytes, max_bytes: int) -> list[str]:
    """Bytes of a text file -> lines, rejecting what is clearly not a UTF-8 list of names.

    `utf-8-sig` strips a BOM (Windows Notepad); `splitlines` handles LF, CRLF and CR.
    NUL bytes are checked before decoding because UTF-16 text is "valid" byte soup otherwise.
    """
    _check_size(len(data), max_bytes)
    if not data:
        raise CorpusError("file is empty: expected one name per line")
    if b"\x00" in data:
        raise CorpusError(
            "file looks binary (it contains NUL bytes; UTF-16 text does too): "
            "expected UTF-8 text with one name per line"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"file is not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start} "
            "is invalid); save it as UTF-8"
        ) from None
    if not text.strip():
        raise CorpusError("file contains only whitespace: expected one name per line")
    return text.splitlines()


def _make_corpus(
    name: str, raw: Iterable[str], lowercase: bool, max_len: int | None, max_chars: int
) -> Corpus:
    """Normalise and check the result is trainable (enough names, a plausible alphabet)."""
    names, dropped = normalise_names(raw, lowercase=lowercase, max_len=max_len)
    if len(names) < MIN_NAMES:
        why = f" (dropped {dropped.describe()})" if dropped.total else ""
        raise CorpusError(
            f"{name}: found {len(names)} usable name(s) after normalisation{why}; "
            f"need at least {MIN_NAMES}"
        )
    n_chars = len(set("".join(names)))
    if n_chars > max_chars:
        raise CorpusError(
            f"{name}: too many distinct characters: found {n_chars}, the limit is {max_chars} "
            "(is this a list of names, one per line?)"
        )
    return Corpus(name=name, names=names, dropped=dropped)


def corpus_from_bytes(
    data: bytes,
    name: str = "upload",
    *,
    lowercase: bool = False,
    max_len: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Corpus:
    """An uploaded text file (one name per line) -> Corpus, or CorpusError saying why not."""
    return _make_corpus(name, _decode_text(data, max_bytes), lowercase, max_len, max_chars)


def corpus_from_path(
    path: str | os.PathLike[str],
    *,
    lowercase: bool = False,
    max_len: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Corpus:
    """A local text file -> Corpus; same checks as an upload, size checked before reading."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"no such file: {path}")
    _check_size(path.stat().st_size, max_bytes)
    return corpus_from_bytes(
        path.read_bytes(),
        path.name,
        lowercase=lowercase,
        max_len=max_len,
        max_bytes=max_bytes,
        max_chars=max_chars,
    )


def load_corpus(
    name_or_path: str | os.PathLike[str],
    *,
    lowercase: bool = False,
    max_len: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Corpus:
    """A built-in corpus by name, else a text file by path.

    A string counts as a path when it exists, contains a path separator or ends in ".txt";
    anything else is a mistyped corpus name, answered with the list of known ones.
    """
    key = os.fspath(name_or_path)
    if key in _BUILTINS:
        return _make_corpus(key, _BUILTINS[key].load(), lowercase, max_len, max_chars)
    looks_like_path = os.path.exists(key) or os.sep in key or "/" in key or key.endswith(".txt")
    if not looks_like_path:
        raise CorpusError(
            f"unknown corpus {key!r}; known corpora: {', '.join(_BUILTINS)} "
            "(or give the path of a .txt file, one name per line)"
        )
    return corpus_from_path(
        key, lowercase=lowercase, max_len=max_len, max_bytes=max_bytes, max_chars=max_chars
    )


# ---------------------------------------------------------------------------------------------
# Splits and statistics


@dataclass(frozen=True)
class Splits:
    train: list[str]
    val: list[str]
    test: list[str]


def split_names(
    names: Sequence[str], seed: int, val_frac: float = 0.1, test_frac: float = 0.1
) -> Splits:
    """Shuffle a copy with `random.Random(seed)` and cut it into train/val/test.

    Deterministic for a seed and independent of the global RNG. Val gets at least one name
    whenever there are two, so validation loss always exists; train always keeps one.
    """
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(
            f"val_frac={val_frac} and test_frac={test_frac} must be in [0, 1) with sum < 1"
        )
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    n_val = min(max(round(n * val_frac), 1 if n >= 2 else 0), max(n - 1, 0))
    n_test = min(round(n * test_frac), max(n - 1 - n_val, 0))
    return Splits(
        train=shuffled[n_val + n_test :],
        val=shuffled[:n_val],
        test=shuffled[n_val : n_val + n_test],
    )


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
        """Characters -> ids, no boundary tokens added (callers frame names themselves)."""
        try:
            return [self._ids[c] for c in text]
        except KeyError:
            raise UnknownCharacterError(self.unknown_chars(text)) from None

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
        ids = tokenizer.encode(name)
        pad = block_size - len(ids) - 1
        rows_x.append([BOUNDARY_ID, *ids] + [BOUNDARY_ID] * pad)
        rows_y.append([*ids, BOUNDARY_ID] + [IGNORE_INDEX] * pad)
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

    @property
    def splits(self) -> Splits:
        return Splits(self.train.names, self.val.names, self.test.names)


def validation_names(
    names: Sequence[str], block_size: int, seed: int, max_names: int | None = None
) -> list[str]:
    """The validation names `prepare_corpus(names, block_size, seed)` makes, without encoding the
    corpus (the explorer only needs the names; encoding 200K Russian names costs seconds). The
    split is shuffled, so its first `max_names` are a fair sample."""
    kept = [n for n in names if len(n) + 1 <= block_size]
    return split_names(kept, seed).val[:max_names]


def prepare_corpus(
    names: Sequence[str],
    block_size: int,
    seed: int,
    corpus_name: str = "custom",
    val_frac: float = 0.1,
    test_frac: float = 0.1,
) -> CorpusData:
    """Normalised names -> tokenizer, seeded splits and encoded tensors.

    The tokenizer is built from all kept names, not just train, so a rare character that
    lands only in val/test still has an id (as in makemore). Pass
    `default_block_size(names)` to keep every name.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2 (boundary + a name), got {block_size}")
    kept = [n for n in names if len(n) + 1 <= block_size]
    if len(kept) < MIN_NAMES:
        raise CorpusError(
            f"{corpus_name}: only {len(kept)} name(s) fit block_size {block_size} "
            f"(names of at most {block_size - 1} characters); need at least {MIN_NAMES}"
        )
    tokenizer = CharTokenizer.from_names(kept)
    splits = split_names(kept, seed, val_frac=val_frac, test_frac=test_frac)

    def encoded(part: list[str]) -> EncodedSplit:
        return EncodedSplit(part, *encode_names(part, tokenizer, block_size))

    return CorpusData(
        corpus_name=corpus_name,
        seed=seed,
        block_size=block_size,
        tokenizer=tokenizer,
        train=encoded(splits.train),
        val=encoded(splits.val),
        test=encoded(splits.test),
        n_too_long=len(names) - len(kept),
    )
