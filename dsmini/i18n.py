"""Every user-facing string of the app, in English and Russian, and `t()` to look one up.

The strings live in one TOML file per language, `dsmini/locales/<lang>.toml`, which a translator
edits without touching code; this module reads them once, at import. Keys are dotted and grouped
by where they appear: the file's `[home]` table holds `home.*`, `[chart.mtp]` holds `chart.mtp.*`,
`chart.*` being figure titles and axes. `STRINGS` is the merged view, key -> {language: text}.

How to add a string: pick its key (`<page>.<what>`, or `chart.<figure>.<what>`), add
`<what> = "..."` under the right `[table]` of *every* `locales/*.toml`, keeping the tables' keys
sorted, the same `{placeholders}` in each language, and in Russian text no Latin words beyond the
technical terms allowed by tests/test_i18n.py; then call `t("<page>.<what>", lang, ...)`.
tests/test_i18n.py fails on a key missing in any language and on mismatched placeholders.
"""

from __future__ import annotations

import tomllib
from importlib import resources

LANGUAGES = {"en": "English", "ru": "Русский"}
DEFAULT_LANGUAGE = "en"


class CatalogueError(ValueError):
    """A catalogue file that cannot be read: the message names the file, line and key."""


def _flatten(table: dict, prefix: str, source: str) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{key}.", source))
        elif isinstance(value, str):
            flat[key] = value
        else:
            raise CatalogueError(f"{source}: {key} must be text in quotes, not {value!r}")
    return flat


def load_catalogue(lang: str) -> dict[str, str]:
    """Key -> text of `locales/<lang>.toml`."""
    source = resources.files(__package__) / "locales" / f"{lang}.toml"
    try:
        table = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:  # the error says the line
        raise CatalogueError(f"{source}: {err}") from err
    return _flatten(table, "", str(source))


def _merge(catalogues: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    keys = sorted(set().union(*catalogues.values()))
    return {key: {lang: texts[key] for lang, texts in catalogues.items() if key in texts} for key in keys}


STRINGS: dict[str, dict[str, str]] = _merge({lang: load_catalogue(lang) for lang in LANGUAGES})


def t(key: str, lang: str = DEFAULT_LANGUAGE, **fmt: object) -> str:
    """The string for `key` in `lang`, formatted with `fmt`.

    Falls back to English, then to the key itself: a missing translation shows up as English
    (or as a visible key) instead of crashing a page in front of a user.
    """
    entry = STRINGS.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**{name: _in_language(value, lang) for name, value in fmt.items()})


def _in_language(value: object, lang: str) -> object:
    """A float handed to `t` as is gets the language's decimal mark (0.46 -> 0,46), like every number the
    pages format with `fmt_num`; anything else is formatted as it is."""
    return _marked(str(value), lang) if isinstance(value, float) else value


# Digit grouping and decimal mark per language (Russian: a narrow no-break space, which never breaks a
# number across lines, and a decimal comma; GOST 8.417 and Russian typography).
NUMBER_MARKS = {"en": (",", "."), "ru": ("\u202f", ",")}
PERCENT_SIGN = {"ru": "\u00a0%"}  # Russian parts a percentage from its number by a no-break space


def fmt_num(x: float, digits: int, lang: str = DEFAULT_LANGUAGE, *, sign: bool = False, style: str = "f") -> str:
    """`x` as `lang` writes numbers: with `digits` decimals and grouped thousands (446,528.5 / 446 528,5),
    a "+" before a positive number with `sign` (a change), and in Python's `style` "%" (12.5% / 12,5 %),
    "e" (1.0e-06 / 1,0e-06) or "g" (`digits` significant digits) instead of "f"."""
    text = f"{x:{'+' if sign else ''}{',' if style in 'f%' else ''}.{digits}{style}}"
    return _marked(text, lang).replace("%", PERCENT_SIGN.get(lang, "%"))


def _marked(text: str, lang: str) -> str:
    """Python's "," and "." marks of a formatted number -> `lang`'s."""
    thousands, decimal = NUMBER_MARKS.get(lang, NUMBER_MARKS[DEFAULT_LANGUAGE])
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


def fmt_int(n: int, lang: str = DEFAULT_LANGUAGE) -> str:
    """A count with grouped thousands: 446,528 / 446 528."""
    return fmt_num(n, 0, lang)


def plotly_separators(lang: str) -> str:
    """Plotly's `layout.separators` (decimal mark, then thousands) for `lang`, so d3-formatted ticks and
    hover numbers match `fmt_num`."""
    thousands, decimal = NUMBER_MARKS.get(lang, NUMBER_MARKS[DEFAULT_LANGUAGE])
    return decimal + thousands


def parse_num(text: str, lang: str = DEFAULT_LANGUAGE) -> float:
    """The inverse of `fmt_num` (what a page showed, back to a number; tests read metrics with it); a
    percentage comes back as the number shown before its sign (12,5 % -> 12.5)."""
    thousands, decimal = NUMBER_MARKS.get(lang, NUMBER_MARKS[DEFAULT_LANGUAGE])
    return float(text.removesuffix(PERCENT_SIGN.get(lang, "%")).replace(thousands, "").replace(decimal, "."))
