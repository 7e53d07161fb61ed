"""Corpora: a built-in one by name, or a text file (path or uploaded bytes), checked and normalised.

```
built-in registry (dsmini.data.builtin) | uploaded bytes | .txt path
  -> raw names      BUILTINS[name].raw() / _decode_text (size, empty, binary, UTF-8 checks),
                    _parse_lines (`name<TAB>domain` lines, checked line by line)
  -> normalise      normalise_labelled: NFC, strip, collapse spaces, lowercase?, dedupe,
                    drop unprintable and too-long names and names seen in another domain
                    (all counted in `Dropped`)
  -> Corpus         load_corpus / corpus_from_bytes / corpus_from_path (>= 2 names, alphabet cap)
```
A `Corpus` then goes to `dsmini.data.prepare_corpus` (tokenizer, splits, tensors). Domain labels
travel beside the names, one per name; `domains=None` means an unlabelled corpus.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from dsmini.i18n import DEFAULT_LANGUAGE, t

from .builtin import BUILTINS
from .file_kind import file_kind
from .tokenizer import MIN_NAMES, CorpusError, LabelledNames, nfc

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what editors count as a new line
DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # upload cap: 5 MB
DEFAULT_MAX_CHARS = 200  # alphabet cap: a bigger one is almost surely not a list of names
MAX_DOMAINS = 12  # more labels than a chart can tell apart by colour
MAX_DOMAIN_LEN = 24  # labels are legend entries and axis ticks
# Longest name the CLI and the app keep from a file (longer ones are dropped and counted): block_size
# follows the longest name, and one 100,000-character line would otherwise make every encoded row
# 100,001 positions long. Built-in corpora are not capped (they are loaded by name): their longest
# single names have 22 characters, ru-full-names' full names 40 (a file of them keeps those <= 32).
MAX_NAME_LEN = 32
# A line longer than this is dropped as too long before it is normalised, whatever max_len is: it is
# no name, and NFC-normalising and encoding it only costs time and memory.
MAX_LINE_LEN = 1_000


# ---------------------------------------------------------------------------------------------
# Normalisation


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

    @property
    def invalid(self) -> int:
        """Lines dropped for what they are (too long, unprintable, in several domains), not for repeating."""
        return self.total - self.duplicates

    def describe(self, duplicates: bool = True, lang: str = DEFAULT_LANGUAGE) -> str:
        """One phrase for messages, e.g. '3 repeated, 1 too long'; '' when nothing dropped.
        duplicates=False leaves the repeats out (a report that counts them apart)."""
        parts = {"duplicates": self.duplicates if duplicates else 0, "too_long": self.too_long,
                 "unprintable": self.unprintable, "conflicting": self.conflicting}
        return ", ".join(t(f"corpus.dropped.{reason}", lang, n=n) for reason, n in parts.items() if n)


def _clean(text: str) -> str:
    """NFC, then runs of whitespace collapsed to one space and the ends stripped."""
    return " ".join(nfc(text).split())


def normalise_labelled(
    raw: Iterable[str],
    domains: Sequence[str] | None = None,
    *,
    lowercase: bool = False,
    max_len: int | None = None,
    dedupe: bool = True,
) -> tuple[LabelledNames, Dropped]:
    """Clean raw lines (and their parallel domain labels) into deduplicated names, first-seen order.

    dedupe=False keeps every line, repeats and names under several labels included, in file order
    (a validation or test file, where each line is one example, or `train --no-dedupe`).

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
    kept: list[tuple[str, str | None]] = []
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
        elif not dedupe or name not in first_label:
            first_label.setdefault(name, label)
            kept.append((name, label))
        else:
            counts["duplicates" if first_label[name] == label else "conflicting"] += 1
    names = [name for name, _ in kept]
    labels_kept = [label for _, label in kept] if domains is not None else None
    return LabelledNames(names, labels_kept), Dropped(**counts)


def normalise_names(
    raw: Iterable[str], *, lowercase: bool = False, max_len: int | None = None
) -> tuple[list[str], Dropped]:
    """`normalise_labelled` for unlabelled lines: the names and what was dropped."""
    cleaned, dropped = normalise_labelled(raw, lowercase=lowercase, max_len=max_len)
    return cleaned.names, dropped


# ---------------------------------------------------------------------------------------------
# Corpora: built-in or a text file (path or uploaded bytes), one name per line, or
# `name<TAB>domain` per line


def count_domains(domains: Sequence[str] | None) -> dict[str, int]:
    """Label -> number of names, labels sorted; {} for an unlabelled list."""
    counts = Counter(domains or ())
    return {label: counts[label] for label in sorted(counts)}


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
    lines: int | None = None  # non-empty lines (or built-in entries) read, before normalisation

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

    def intake(self, deduplicated: bool = True) -> str:
        """What reading it did, in numbers: 'read 31,033 lines, dropped 2 (2 too long), deduplicated
        2,379 -> 28,652 names'; every line read is in exactly one of the counts. deduplicated=False:
        read with dedupe=False ('repeats kept')."""
        invalid = self.dropped.describe(duplicates=False)
        return (
            (f"read {self.lines:,} lines, " if self.lines is not None else "")
            + f"dropped {self.dropped.invalid:,}" + (f" ({invalid})" if invalid else "")
            + (f", deduplicated {self.dropped.duplicates:,}" if deduplicated else ", repeats kept")
            + f" -> {len(self.names):,} names"
        )


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

    `utf-8-sig` strips a BOM (Windows Notepad); `lines` splits as editors number lines.
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
    return lines(text)


def lines(text: str) -> list[str]:
    """The lines of a text at LF, CRLF or CR only, as editors number them (str.splitlines also breaks at
    U+2028, U+0085 and others, so error line numbers would disagree with the editor); such a character
    stays in its name, which is then dropped as unprintable."""
    parts = _LINE_BREAK.split(text)
    return parts[:-1] if parts and parts[-1] == "" else parts


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
    *,
    lowercase: bool = False,
    max_len: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    builtin: bool = False,
    dedupe: bool = True,
    min_names: int = MIN_NAMES,
) -> Corpus:
    """Normalise and check the result is usable (enough names, a plausible alphabet). Its keywords are the
    cleaning options every loader below takes (besides `max_bytes` for a file): lowercase, names longer than
    `max_len` dropped, at most `max_chars` distinct characters, duplicates dropped, at least `min_names`."""
    cleaned, dropped = normalise_labelled(raw.names, raw.domains, lowercase=lowercase, max_len=max_len, dedupe=dedupe)
    names = cleaned.names
    if len(names) < min_names:
        why = f" (dropped {dropped.describe()})" if dropped.total else ""
        raise CorpusError(
            f"{name}: found {len(names)} usable name(s) after normalisation{why}; "
            f"need at least {min_names}"
        )
    n_chars = len(set("".join(names)))
    if n_chars > max_chars:
        raise CorpusError(
            f"{name}: too many distinct characters: found {n_chars}, the limit is {max_chars} "
            "(is this a list of names, one per line?)"
        )
    return Corpus(
        name=name, names=names, dropped=dropped, domains=cleaned.domains, builtin=builtin, lines=len(raw.names)
    )


def corpus_from_bytes(
    data: bytes, name: str = "upload", *, max_bytes: int = DEFAULT_MAX_BYTES, **cleaning: Any
) -> Corpus:
    """An uploaded text file (one name, or `name<TAB>domain`, per line) -> Corpus, or CorpusError
    saying why not. `cleaning`: the options of `_make_corpus`."""
    return _make_corpus(name, _parse_lines(_decode_text(data, max_bytes)), **cleaning)


def corpus_from_path(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES, **cleaning: Any) -> Corpus:
    """A local text file -> Corpus; the same checks and options as an upload (`corpus_from_bytes`), the
    size checked before reading. Every CorpusError names the file."""
    path = Path(path)
    kind = file_kind(path)
    if kind is not None:
        raise CorpusError(f"no such file: {path}" if kind == "missing" else f"{path} is {kind}: expected a text file")
    try:
        _check_size(path.stat().st_size, max_bytes)
        return corpus_from_bytes(path.read_bytes(), path.name, max_bytes=max_bytes, **cleaning)
    except CorpusError as err:
        message = str(err)
        raise CorpusError(message if message.startswith(f"{path.name}:") else f"{path}: {message}") from None


def line_of(path: str | os.PathLike[str], name: str, lowercase: bool = False) -> int | None:
    """The number (1-based) of the first line of a text file that is `name` once cleaned as loading
    cleans it (its `<TAB>domain` aside), or None: so a message about one name can point at its line."""
    for number, line in enumerate(lines(Path(path).read_text("utf-8-sig", errors="replace")), 1):
        cleaned = _clean(line.split("\t")[0])
        if (cleaned.lower() if lowercase else cleaned) == name:
            return number
    return None


def load_corpus(name_or_path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES, **cleaning: Any) -> Corpus:
    """A built-in corpus by name, else a text file by path (`cleaning`: the options of `_make_corpus`).

    A string counts as a path when it exists, contains a path separator or ends in ".txt";
    anything else is a mistyped corpus name, answered with the list of known ones.
    """
    key = os.fspath(name_or_path)
    if key in BUILTINS:
        as_registered = (
            not cleaning.get("lowercase") and cleaning.get("max_len") is None and cleaning.get("dedupe", True)
        )
        return _make_corpus(key, BUILTINS[key].raw(), builtin=as_registered, **cleaning)
    looks_like_path = os.path.exists(key) or os.sep in key or "/" in key or key.endswith(".txt")
    if not looks_like_path:
        raise CorpusError(
            f"unknown corpus {key!r}; known corpora: {', '.join(BUILTINS)} "
            "(or give the path of a .txt file, one name or name<TAB>domain per line)"
        )
    return corpus_from_path(key, max_bytes=max_bytes, **cleaning)
