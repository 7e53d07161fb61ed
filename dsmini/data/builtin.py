"""The built-in corpora: name lists read from installed packages' data files, and the registry.

Single-domain corpora are whole lists (Russian first names, US surnames, ...); mixed corpora give
each name a domain label (its language, its part of a full name, its gender) and are drawn as
fixed-seed samples of about the same size per domain. `BUILTINS` maps each registry name to its
description, builder and labels; `dsmini.data.corpora.load_corpus` normalises what a builder returns.

No network and no import of the packages themselves: their data files are read directly.
"""

from __future__ import annotations

import importlib.util
import random
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .tokenizer import CorpusError, LabelledNames

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


# Full names: «Фамилия Имя Отчество» with one gender throughout -------------------------------
#
# A task where the right ending depends on characters far back: after "Иванова Мария Петров" the
# model must write "на", not "ич", and the cue (the surname's and the first name's endings) is
# 15-25 positions earlier. Lengths are kept in FULL_NAME_LEN, so a full name fits block_size 41.

FULL_NAMES_PER_GENDER = 2_500  # 5,000 names: training stays quick
FULL_NAME_LEN = (28, 40)  # characters, spaces included; the natural median of a random triple is ~27
FULL_NAME_PARTS = ("surname", "first", "patronymic")  # in the order they are written


def _full_names(lines: range, k: int, salt: str) -> list[str]:
    """`k` distinct «Фамилия Имя Отчество» of one gender's lines, drawn part by part with a fixed
    seed; a triple outside FULL_NAME_LEN is drawn again (so long names are not cut)."""
    parts = [_ru_gendered(part, lines) for part in FULL_NAME_PARTS]
    rng = random.Random(f"{_SAMPLE_SEED}:{salt}")
    shortest, longest = FULL_NAME_LEN
    names: dict[str, None] = {}  # insertion-ordered set
    while len(names) < k:
        name = " ".join(rng.choice(options) for options in parts)
        if shortest <= len(name) <= longest:
            names.setdefault(name)
    return list(names)


def ru_full_names() -> LabelledNames:
    """Full Russian names, surname + first name + patronymic of one gender: domain = gender.

    A woman's name takes a woman's surname (Иванова), first name and «-овна/-евна» patronymic, a
    man's name the men's forms and «-ович/-евич»; FULL_NAMES_PER_GENDER of each.
    """
    return _labelled({
        label: _full_names(lines, FULL_NAMES_PER_GENDER, f"full/{label}")
        for label, lines in (("male", _RU_MEN_LINES), ("female", _RU_WOMEN_LINES))
    })


# The registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Builtin:
    description: str
    load: Callable[[], list[str] | LabelledNames]
    domains: tuple[str, ...] = ()  # labels of a mixed corpus, sorted (checked by the tests)

    def raw(self) -> LabelledNames:
        loaded = self.load()
        return loaded if isinstance(loaded, LabelledNames) else LabelledNames(loaded)


# registry name -> builtin, in display order; `load_corpus(name)` looks names up here
BUILTINS: dict[str, _Builtin] = {
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
    "ru-full-names": _Builtin(
        "Full Russian names «Фамилия Имя Отчество», domain = gender (male / female): 2,500 each, surname, "
        "first name and patronymic of the same gender drawn with a fixed seed, 28-40 characters (russian-names)",
        ru_full_names,
        ("female", "male"),
    ),
}


def list_corpora() -> dict[str, str]:
    """Built-in corpus names -> one-line descriptions, in display order."""
    return {name: builtin.description for name, builtin in BUILTINS.items()}


def list_corpus_domains() -> dict[str, list[str]]:
    """Built-in corpus names -> their domain labels ([] when unlabelled), without loading any."""
    return {name: list(builtin.domains) for name, builtin in BUILTINS.items()}

