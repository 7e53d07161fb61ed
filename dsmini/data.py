"""Corpora, normalisation, splits, the character tokenizer and training batches.

Data flow (each arrow is one function below):

```
built-in package data | uploaded bytes | .txt path
  -> raw names      ru_names / en_names / _decode_text (size, empty, binary, UTF-8 checks),
                    _parse_lines (`name<TAB>domain` lines, checked line by line)
  -> normalise      normalise_labelled: NFC, strip, collapse spaces, lowercase?, dedupe,
                    drop unprintable and too-long names and names seen in another domain
                    (all counted in `Dropped`)
  -> Corpus         load_corpus / corpus_from_bytes / corpus_from_path (>= 2 names, alphabet cap)
  -> CorpusData     prepare_corpus: drop names that do not fit block_size, split_names (seeded),
                    CharTokenizer.from_names, encode_names per split
  -> batches        get_batch(x, y, batch_size, generator)
```

A name is a sequence framed by one boundary token (id 0) on both sides: the model reads
`[B] c1 .. cn` and predicts `c1 .. cn [B]`, so "start of name" and "end of name" share one
id and generation stops when the model emits it. The boundary is an id, never a character,
so no name can collide with it; `BOUNDARY_SYMBOL` is only how it is drawn in the app.

A name may carry a domain label (its language, its part of a full name, its gender): the labels
travel beside the names, one per name, through every step above, so the explorer can ask which
experts take which domain. `domains=None` everywhere means an unlabelled corpus.

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
MAX_DOMAINS = 12  # more labels than a chart can tell apart by colour
MAX_DOMAIN_LEN = 24  # labels are legend entries and axis ticks
# Longest name the CLI and the app keep from a file (longer ones are dropped and counted): block_size
# follows the longest name, and one 100,000-character line would otherwise make every encoded row
# 100,001 positions long. The built-in corpora's longest name has 22 characters.
MAX_NAME_LEN = 32
# A line longer than this is dropped as too long before it is normalised, whatever max_len is: it is
# no name, and NFC-normalising and encoding it only costs time and memory.
MAX_LINE_LEN = 1_000


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
class LabelledNames:
    """Names and, parallel to them, their domain labels (None: the names are unlabelled)."""

    names: list[str]
    domains: list[str] | None = None

    def __post_init__(self) -> None:
        if self.domains is not None and len(self.domains) != len(self.names):
            raise ValueError(f"{len(self.names)} names but {len(self.domains)} domain labels")


def count_domains(domains: Sequence[str] | None) -> dict[str, int]:
    """Label -> number of names, labels sorted; {} for an unlabelled list."""
    counts = Counter(domains or ())
    return {label: counts[label] for label in sorted(counts)}


@dataclass(frozen=True)
class Dropped:
    """How many input names normalisation removed, by reason (shown to the user)."""

    duplicates: int = 0
    too_long: int = 0
    unprintable: int = 0  # control or invisible format characters, e.g. a stray ESC byte
    conflicting: int = 0  # a name seen again with another domain label: the first label is kept

    @property
    def total(self) -> int:
        return self.duplicates + self.too_long + self.unprintable + self.conflicting

    def describe(self) -> str:
        """One phrase for messages, e.g. '3 repeated, 1 too long'; '' when nothing dropped."""
        parts = [
            (self.duplicates, "repeated"),
            (self.too_long, "too long"),
            (self.unprintable, "with unprintable characters"),
            (self.conflicting, "in several domains"),
        ]
        return ", ".join(f"{n} {reason}" for n, reason in parts if n)


def _clean(text: str) -> str:
    """NFC, then runs of whitespace collapsed to one space and the ends stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def normalise_labelled(
    raw: Iterable[str],
    domains: Sequence[str] | None = None,
    *,
    lowercase: bool = False,
    max_len: int | None = None,
) -> tuple[LabelledNames, Dropped]:
    """Clean raw lines (and their parallel domain labels) into deduplicated names, first-seen order.

    NFC first so a "й" typed as "и" + combining breve is one character, not two alphabet
    entries. Internal whitespace is kept (double names like "Анна Мария") but runs of it are
    collapsed to one space. Lowercasing happens before dedupe so "Anna" and "anna" merge.
    A name seen again under another label keeps its first label and is counted as
    conflicting, so an ambiguous name never silently takes whichever label came last.
    Lines over MAX_LINE_LEN characters are counted too long without being cleaned.
    """
    raw = list(raw)
    labels = list(domains) if domains is not None else [None] * len(raw)
    if len(labels) != len(raw):
        raise ValueError(f"{len(raw)} names but {len(labels)} domain labels")
    first_label: dict[str, str | None] = {}
    counts = Counter()
    for line, label in zip(raw, labels):
        if len(line) > MAX_LINE_LEN:
            counts["too_long"] += 1
            continue
        name = _clean(line)
        if not name:
            continue
        if lowercase:
            name = name.lower()
        if not name.isprintable():
            counts["unprintable"] += 1
        elif max_len is not None and len(name) > max_len:
            counts["too_long"] += 1
        elif name not in first_label:
            first_label[name] = label
        else:
            counts["duplicates" if first_label[name] == label else "conflicting"] += 1
    names = list(first_label)
    kept = list(first_label.values()) if domains is not None else None
    return LabelledNames(names, kept), Dropped(**counts)


def normalise_names(
    raw: Iterable[str], *, lowercase: bool = False, max_len: int | None = None
) -> tuple[list[str], Dropped]:
    """`normalise_labelled` for unlabelled lines: the names and what was dropped."""
    cleaned, dropped = normalise_labelled(raw, lowercase=lowercase, max_len=max_len)
    return cleaned.names, dropped


# ---------------------------------------------------------------------------------------------
# Built-in corpora (package data files, read directly; importing the packages is not needed)

# Line index of each section in russian_names' base.txt (see russian_names/names.py
# `_fill_base`): rare and common first names/patronymics, then surnames, men then women
# (lines 0-4 are men's, 5-9 women's).
_RU_SECTIONS = {
    "first": (0, 1, 5, 6),
    "surname": (4, 9),
    "patronymic": (2, 3, 7, 8),
}
RU_PARTS = tuple(_RU_SECTIONS)
_RU_MEN_LINES = range(0, 5)
_RU_WOMEN_LINES = range(5, 10)


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
    return _ru_lines(index for part in parts for index in _RU_SECTIONS[part])


def _ru_lines(indices: Iterable[int]) -> list[str]:
    """The names on the given lines of russian_names' base.txt, in that order."""
    archive = _package_dir("russian_names") / "_data.zip"
    with zipfile.ZipFile(archive) as zf:
        lines = zf.read("base.txt").decode("utf-8").splitlines()
    return [name for index in indices for name in lines[index].split(" ")]


def _ru_gendered(part: str, lines: range) -> list[str]:
    """One part's names (e.g. first names) of one gender's lines of base.txt."""
    return _ru_lines(index for index in _RU_SECTIONS[part] if index in lines)


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


# Mixed corpora: names with a domain label ---------------------------------------------------
#
# Each domain is a sample of about the same size, so a per-domain statistic in the explorer (which
# experts take Cyrillic names?) is not just a measure of which domain is bigger. The samples are
# drawn with a fixed seed: the corpus is the same on every machine, so a checkpoint can rebuild its
# validation names from the corpus name alone.

_SAMPLE_SEED = 11
RU_EN_PER_LANGUAGE = 5_000  # ~ the 5,163 US first names
SURNAMES_PER_PART = 1_000  # ~ the 736 first names and 856 patronymics, which are used whole
NAMES_PER_GENDER = 2_500


def _sample(names: Sequence[str], k: int, salt: str) -> list[str]:
    """`k` names (all when there are fewer) drawn by a fixed-seed RNG, in their original order.

    `salt` gives each sample its own stream, so adding a domain never changes another's names.
    """
    if k >= len(names):
        return list(names)
    rng = random.Random(f"{_SAMPLE_SEED}:{salt}")
    return [names[i] for i in sorted(rng.sample(range(len(names)), k))]


def _labelled(groups: dict[str, list[str]]) -> LabelledNames:
    """Domain label -> names, flattened into one labelled list in that order."""
    return LabelledNames(
        [name for names in groups.values() for name in names],
        [label for label, names in groups.items() for _ in names],
    )


def ru_en_names() -> LabelledNames:
    """Russian first names (all) and surnames (a sample) against US first names: domain = language."""
    first = ru_names(("first",))
    surnames = _sample(ru_names(("surname",)), RU_EN_PER_LANGUAGE - len(first), "ru-en/surname")
    return _labelled({"ru": first + surnames, "en": en_names()})


def ru_name_parts() -> LabelledNames:
    """First names and patronymics (all of each) and a sample of surnames: domain = part."""
    return _labelled({
        "first": ru_names(("first",)),
        "surname": _sample(ru_names(("surname",)), SURNAMES_PER_PART, "parts/surname"),
        "patronymic": ru_names(("patronymic",)),
    })


def ru_gender() -> LabelledNames:
    """Men's and women's first names (all) and surnames (a sample), to NAMES_PER_GENDER each.

    Some surnames do not change with gender (Русских, Шерих) and are in both lists. A sampled
    name that is in the other gender's list too is listed under both labels, so normalisation
    counts it as conflicting (and keeps it as men's, the first label) instead of labelling it
    by the chance of which sample drew it.
    """
    lists = {"male": _RU_MEN_LINES, "female": _RU_WOMEN_LINES}
    surnames = {label: _ru_gendered("surname", lines) for label, lines in lists.items()}
    samples = {}
    for label, lines in lists.items():
        first = _ru_gendered("first", lines)
        samples[label] = first + _sample(surnames[label], NAMES_PER_GENDER - len(first), f"gender/{label}")
    ambiguous = set(surnames["male"]) & set(surnames["female"])
    men, women = samples["male"], samples["female"]
    return _labelled({
        "male": men + [n for n in women if n in ambiguous],
        "female": women + [n for n in men if n in ambiguous],
    })


@dataclass(frozen=True)
class _Builtin:
    description: str
    load: Callable[[], list[str] | LabelledNames]
    domains: tuple[str, ...] = ()  # labels of a mixed corpus, sorted (checked by the tests)

    def raw(self) -> LabelledNames:
        loaded = self.load()
        return loaded if isinstance(loaded, LabelledNames) else LabelledNames(loaded)


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
    "ru-en-names": _Builtin(
        "Russian and US names, domain = language (ru / en): ~5,000 Russian first names and surnames "
        "(a fixed sample) and the ~5,000 US first names (russian-names, names)",
        ru_en_names,
        ("en", "ru"),
    ),
    "ru-name-parts": _Builtin(
        "Russian first names, surnames and patronymics, domain = part (first / surname / patronymic): "
        "all first names and patronymics, a fixed sample of 1,000 surnames (russian-names)",
        ru_name_parts,
        ("first", "patronymic", "surname"),
    ),
    "ru-gender": _Builtin(
        "Russian first names and surnames, domain = gender (male / female): 2,500 each, a fixed sample; "
        "a surname in both the men's and the women's list is counted as conflicting (russian-names)",
        ru_gender,
        ("female", "male"),
    ),
}


def list_corpora() -> dict[str, str]:
    """Built-in corpus names -> one-line descriptions, in display order."""
    return {name: builtin.description for name, builtin in _BUILTINS.items()}


def list_corpus_domains() -> dict[str, list[str]]:
    """Built-in corpus names -> their domain labels ([] when unlabelled), without loading any."""
    return {name: list(builtin.domains) for name, builtin in _BUILTINS.items()}


# ---------------------------------------------------------------------------------------------
# Corpora: built-in or a text file (path or uploaded bytes), one name per line, or
# `name<TAB>domain` per line


@dataclass(frozen=True)
class Corpus:
    """Normalised names ready for `prepare_corpus`, plus what normalisation removed."""

    name: str  # registry name or file name
    names: list[str]
    dropped: Dropped
    domains: list[str] | None = None  # one label per name; None: unlabelled
    # True when `load_corpus(name)` rebuilds exactly these names (a built-in with default options),
    # so a checkpoint may refer to it by name instead of storing its validation names
    builtin: bool = False

    def __post_init__(self) -> None:
        LabelledNames(self.names, self.domains)  # same length, or ValueError

    @property
    def domain_labels(self) -> list[str]:
        """Distinct domain labels, sorted; [] when unlabelled."""
        return sorted(set(self.domains or ()))

    @property
    def domain_counts(self) -> dict[str, int]:
        """Label -> names, labels sorted; {} when unlabelled."""
        return count_domains(self.domains)


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


def _shown(line: str, limit: int = 40) -> str:
    """A line as error messages quote it: repr (tabs visible), long lines cut."""
    return repr(line[:limit]) + ("..." if len(line) > limit else "")


def _parse_lines(lines: Sequence[str]) -> LabelledNames:
    """Text lines -> raw names, and domain labels when the file has them.

    The first non-empty line decides: with a TAB, every non-empty line must be `name<TAB>domain`;
    without, no line may have a TAB. So a file is never half labelled, and a stray TAB is an
    error that names its line, not a name with a tab in it. Line numbers count every line.
    """
    filled = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    if not filled or "\t" not in filled[0][1]:
        for number, line in filled:
            if "\t" in line:
                raise CorpusError(
                    f"line {number}: a TAB in a file without domains (line {filled[0][0]} has none); "
                    f"give every line as name<TAB>domain or none, got {_shown(line)}"
                )
        return LabelledNames([line for _, line in filled])
    names, domains = [], []
    for number, line in filled:
        name, domain = _split_labelled(number, line)
        if domain not in domains and len(set(domains)) == MAX_DOMAINS:
            raise CorpusError(
                f"line {number}: domain {domain!r} is one too many: at most {MAX_DOMAINS} domains "
                f"({', '.join(sorted(set(domains)))})"
            )
        names.append(name)
        domains.append(domain)
    return LabelledNames(names, domains)


def _split_labelled(number: int, line: str) -> tuple[str, str]:
    """One `name<TAB>domain` line -> (name, cleaned domain), or CorpusError naming the line."""
    parts = line.split("\t")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise CorpusError(f"line {number}: expected name<TAB>domain, got {_shown(line)}")
    domain = _clean(parts[1])
    if not domain.isprintable():
        raise CorpusError(f"line {number}: domain {domain!r} has unprintable characters")
    if len(domain) > MAX_DOMAIN_LEN:
        raise CorpusError(
            f"line {number}: domain {_shown(domain, MAX_DOMAIN_LEN)} is {len(domain)} characters long, "
            f"the limit is {MAX_DOMAIN_LEN}"
        )
    return parts[0], domain


def _make_corpus(
    name: str,
    raw: LabelledNames,
    lowercase: bool,
    max_len: int | None,
    max_chars: int,
    builtin: bool = False,
) -> Corpus:
    """Normalise and check the result is trainable (enough names, a plausible alphabet)."""
    cleaned, dropped = normalise_labelled(raw.names, raw.domains, lowercase=lowercase, max_len=max_len)
    names = cleaned.names
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
    return Corpus(name=name, names=names, dropped=dropped, domains=cleaned.domains, builtin=builtin)


def corpus_from_bytes(
    data: bytes,
    name: str = "upload",
    *,
    lowercase: bool = False,
    max_len: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Corpus:
    """An uploaded text file (one name, or `name<TAB>domain`, per line) -> Corpus, or CorpusError
    saying why not."""
    raw = _parse_lines(_decode_text(data, max_bytes))
    return _make_corpus(name, raw, lowercase, max_len, max_chars)


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
        as_registered = not lowercase and max_len is None
        return _make_corpus(key, _BUILTINS[key].raw(), lowercase, max_len, max_chars, builtin=as_registered)
    looks_like_path = os.path.exists(key) or os.sep in key or "/" in key or key.endswith(".txt")
    if not looks_like_path:
        raise CorpusError(
            f"unknown corpus {key!r}; known corpora: {', '.join(_BUILTINS)} "
            "(or give the path of a .txt file, one name or name<TAB>domain per line)"
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
    # the domain label of each name above, position by position; None: unlabelled
    train_domains: list[str] | None = None
    val_domains: list[str] | None = None
    test_domains: list[str] | None = None


def split_names(
    names: Sequence[str],
    seed: int,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    domains: Sequence[str] | None = None,
) -> Splits:
    """Shuffle a copy with `random.Random(seed)` and cut it into train/val/test.

    Deterministic for a seed and independent of the global RNG. Val gets at least one name
    whenever there are two, so validation loss always exists; train always keeps one.
    The positions are shuffled, then names and labels are read through them: `shuffle` moves
    items by position only, so the names come out exactly as shuffling the names themselves
    did before labels existed, and old checkpoints rebuild the same validation names.
    """
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(
            f"val_frac={val_frac} and test_frac={test_frac} must be in [0, 1) with sum < 1"
        )
    LabelledNames(list(names), None if domains is None else list(domains))  # same length, or ValueError
    order = list(range(len(names)))
    random.Random(seed).shuffle(order)
    n = len(order)
    n_val = min(max(round(n * val_frac), 1 if n >= 2 else 0), max(n - 1, 0))
    n_test = min(round(n * test_frac), max(n - 1 - n_val, 0))
    parts = {"train": order[n_val + n_test :], "val": order[:n_val], "test": order[n_val : n_val + n_test]}

    def labels(part: list[int]) -> list[str] | None:
        return None if domains is None else [domains[i] for i in part]

    return Splits(
        **{key: [names[i] for i in part] for key, part in parts.items()},
        **{f"{key}_domains": labels(part) for key, part in parts.items()},
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
    domains: list[str] | None = None  # label of each row's name; None: unlabelled


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
) -> LabelledNames:
    """The validation names (and labels) `prepare_corpus(names, block_size, seed, domains=...)` makes,
    without encoding the corpus (the explorer only needs the names; encoding 200K Russian names
    costs seconds). The split is shuffled, so its first `max_names` are a fair sample."""
    kept = _fitting(names, block_size, domains)
    splits = split_names(kept.names, seed, domains=kept.domains)
    val_domains = splits.val_domains[:max_names] if splits.val_domains is not None else None
    return LabelledNames(splits.val[:max_names], val_domains)


def validation_names(
    names: Sequence[str],
    block_size: int,
    seed: int,
    max_names: int | None = None,
    domains: Sequence[str] | None = None,
) -> list[str]:
    """`validation_set(...).names`: for callers that need only the names."""
    return validation_set(names, block_size, seed, max_names, domains).names


def prepare_corpus(
    names: Sequence[str],
    block_size: int,
    seed: int,
    corpus_name: str = "custom",
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    domains: Sequence[str] | None = None,
    builtin: bool = False,
) -> CorpusData:
    """Normalised names (and their domain labels) -> tokenizer, seeded splits and encoded tensors.

    The tokenizer is built from all kept names, not just train, so a rare character that
    lands only in val/test still has an id (as in makemore). Pass
    `default_block_size(names)` to keep every name. `builtin`: `corpus_name` is a registry
    name that `load_corpus` rebuilds (pass `Corpus.builtin`); a checkpoint then stores the name,
    not the validation names.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2 (boundary + a name), got {block_size}")
    kept = _fitting(names, block_size, domains)
    if len(kept.names) < MIN_NAMES:
        raise CorpusError(
            f"{corpus_name}: only {len(kept.names)} name(s) fit block_size {block_size} "
            f"(names of at most {block_size - 1} characters); need at least {MIN_NAMES}"
        )
    tokenizer = CharTokenizer.from_names(kept.names)
    splits = split_names(kept.names, seed, val_frac=val_frac, test_frac=test_frac, domains=kept.domains)

    def encoded(part: list[str], labels: list[str] | None) -> EncodedSplit:
        return EncodedSplit(part, *encode_names(part, tokenizer, block_size), domains=labels)

    return CorpusData(
        corpus_name=corpus_name,
        seed=seed,
        block_size=block_size,
        tokenizer=tokenizer,
        train=encoded(splits.train, splits.train_domains),
        val=encoded(splits.val, splits.val_domains),
        test=encoded(splits.test, splits.test_domains),
        n_too_long=len(names) - len(kept.names),
        domain_labels=sorted(set(domains or ())),
        builtin=builtin,
    )
