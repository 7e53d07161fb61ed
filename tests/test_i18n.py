"""The string catalogue: every key in every language with the same placeholders, Russian text free of
stray English, catalogue files read with errors that name the file and line, numbers per language."""

import dataclasses
import re
import string

import pytest

from dsmini import i18n
from dsmini.config import ModelConfig
from dsmini.i18n import LANGUAGES, STRINGS, t

# Latin words a Russian text may keep: technical terms and abbreviations a Russian course uses as is,
# product and file-format names. Anything else in Latin letters is an untranslated word.
ALLOWED_LATIN = {
    "AdamW", "all-k", "bf16", "CPU", "CUDA", "DeepSeek", "DeepSeek-V2", "DeepSeek-V3", "DeepSeekMoE", "dsmini",
    "DSA", "emb", "FFN", "float32", "MoBA", "GPT", "GPU", "GQA", "KV", "max", "MHA", "min", "MLA", "MoE", "MPS", "MQA",
    "MTP", "Muon", "Python", "RMSNorm", "RoPE", "softmax", "SwiGLU", "top-1", "top-k", "top-p", "txt", "UTF-8", "zip",
}
CODE = [
    r"`[^`]*`",  # code in backticks
    r"<[^>]+>",  # markup (Plotly's <br>, <b>)
    r"[A-Za-z_][\w.]*\([^()]*\)",  # a call: hnorm(h), log2(E/k), min(1, p/q)
]
FORMULA_OR_IDENTIFIER = re.compile(r"[A-Za-z]\d*|\w*_\w*")  # d, k, T, V2; q_nope, block_size, d_model


def _fields(text):
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def latin_words(text: str) -> list[str]:
    """The Latin-alphabet words of `text` outside code, markup, formulas and the allow-list."""
    text = re.sub(r"\{[^{}]*\}", "1", text)  # a placeholder reads as a number: top-{k} -> top-1
    for pattern in CODE:
        text = re.sub(pattern, " ", text)
    words = (word.rstrip("-") for word in re.findall(r"[A-Za-z][A-Za-z0-9_\-]*", text))  # "KV-кэш" -> "KV"
    return [word for word in words if not FORMULA_OR_IDENTIFIER.fullmatch(word) and not _allowed(word)]


def _allowed(word: str) -> bool:
    numbered = re.sub(r"-\d+$", "", word)  # MTP-1, a term and a number
    return bool({word, word.lower(), numbered} & ALLOWED_LATIN)


def test_every_key_in_every_language_with_the_same_placeholders():
    for key, entry in STRINGS.items():
        assert set(entry) == set(LANGUAGES), f"{key}: missing in {set(LANGUAGES) - set(entry)}"
        assert all(entry[lang].strip() for lang in LANGUAGES), key
        assert _fields(entry["en"]) == _fields(entry["ru"]), key


def test_russian_text_has_no_english_words():
    found = {key: latin_words(entry["ru"]) for key, entry in STRINGS.items()}
    assert {key: words for key, words in found.items() if words} == {}


def test_latin_word_check_catches_english_and_spares_terms():
    assert latin_words("**Mixture of Experts** (каждый символ)") == ["Mixture", "of", "Experts"]
    assert latin_words("MLA хранит c_kv ({d_c}) + k_rope, top-{k}, KV-кэш, `cache.numel()`, log2(E/k)") == []


def test_every_config_field_has_words_for_the_compare_page():
    missing = [field.name for field in dataclasses.fields(ModelConfig) if f"cmp.field.{field.name}" not in STRINGS]
    assert missing == [], "add cmp.field.<name> to every dsmini/locales/*.toml"


def test_lookup_and_fallbacks():
    assert t("chart.layer", "ru", layer=2) == "слой 2"
    assert t("chart.layer", "de", layer=2) == "layer 2"  # unknown language -> English
    assert t("no.such.key", "ru") == "no.such.key"


def test_catalogue_files_hold_every_key(tmp_path):
    for lang in LANGUAGES:
        assert set(i18n.load_catalogue(lang)) == set(STRINGS)


def test_broken_catalogue_names_file_and_line(tmp_path, monkeypatch):
    (tmp_path / "locales").mkdir()
    (tmp_path / "locales" / "xx.toml").write_text('[home]\ntitle = "ok"\nintro = "unclosed\n', encoding="utf-8")
    (tmp_path / "locales" / "yy.toml").write_text("[home]\ntitle = 3\n", encoding="utf-8")
    monkeypatch.setattr(i18n.resources, "files", lambda package: tmp_path)
    with pytest.raises(i18n.CatalogueError, match=r"xx\.toml.*line 3"):
        i18n.load_catalogue("xx")
    with pytest.raises(i18n.CatalogueError, match=r"yy\.toml: home\.title must be text"):
        i18n.load_catalogue("yy")


def test_numbers_follow_the_language():
    assert i18n.fmt_int(446528, "en") == "446,528"
    assert i18n.fmt_int(446528, "ru") == "446\u202f528"
    assert i18n.fmt_num(1.9734, 3, "ru") == "1,973"
    assert i18n.fmt_num(1234567.891, 2, "en") == "1,234,567.89"
    assert i18n.fmt_num(1234567.891, 2, "ru") == "1\u202f234\u202f567,89"
    assert i18n.fmt_num(-0.5, 1, "ru") == "-0,5"
    assert i18n.fmt_int(999, "ru") == "999"
    assert i18n.fmt_int(5, "de") == "5"  # unknown language: English marks
    assert i18n.parse_num("1\u202f234\u202f567,89", "ru") == 1234567.89 == i18n.parse_num("1,234,567.89", "en")
    assert i18n.plotly_separators("ru") == ",\u202f" and i18n.plotly_separators("en") == ".,"
