"""dsmini.data.builtin, dsmini.data.corpora and dsmini.data: built-in corpora, upload validation, splits,
stats, tokenizer, batches."""

from __future__ import annotations

import functools
import json
import random

import pytest
import torch

from dsmini.config import preset
from dsmini.data import (
    BOUNDARY_ID,
    IGNORE_INDEX,
    CharTokenizer,
    CorpusError,
    LabelledNames,
    UnknownCharacterError,
    corpus_stats,
    count_target_tokens,
    default_block_size,
    encode_names,
    get_batch,
    list_corpus_domains,
    nfc,
    prepare_corpus,
    split_names,
    validation_set,
)
from dsmini.data.builtin import list_corpora, ru_names
from dsmini.data.corpora import (
    MAX_DOMAIN_LEN,
    MAX_DOMAINS,
    Corpus,
    Dropped,
    corpus_from_bytes,
    corpus_from_path,
    count_domains,
    load_corpus,
    normalise_labelled,
    normalise_names,
)

CYRILLIC = {chr(c) for c in range(ord("А"), ord("я") + 1)} | {"Ё", "ё"}

# Sizes measured with names 0.3.0 / russian-names 0.1.2 (after dedupe): ru-names 199,263,
# ru-first-names 736, ru-surnames 198,577, ru-patronymics 856, en-names 5,163,
# en-surnames 88,799. The minimums leave room for small data fixes, not for a broken reader.
MIN_SIZE = {
    "ru-names": 190_000,
    "ru-first-names": 700,
    "ru-surnames": 190_000,
    "ru-patronymics": 800,
    "en-names": 5_000,
    "en-surnames": 85_000,
    "ru-en-names": 9_500,
    "ru-name-parts": 2_500,
    "ru-gender": 4_900,
    "ru-full-names": 5_000,
}
KNOWN_NAMES = {
    "ru-names": ["Анна", "Александр", "Иванова", "Красоткина"],
    "ru-first-names": ["Анна", "Александр"],
    "ru-surnames": ["Иванов", "Красоткина"],
    "ru-patronymics": ["Александрович", "Ивановна"],
    "en-names": ["Mary", "James"],
    "en-surnames": ["Smith", "Johnson"],
    "ru-en-names": ["Анна", "Mary"],
    "ru-name-parts": ["Анна", "Александрович"],
    "ru-gender": ["Анна", "Александр"],
    "ru-full-names": ["Лебедевин Владилен Феофанович"],
}


# --- built-in corpora ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin():
    """Loads each built-in corpus once per module: ru-names alone is ~200k names."""
    return functools.cache(load_corpus)


def test_registry_lists_every_corpus_with_a_description():
    corpora = list_corpora()
    assert set(corpora) == set(MIN_SIZE)
    assert all(isinstance(d, str) and d for d in corpora.values())


@pytest.mark.parametrize("name", sorted(MIN_SIZE))
def test_builtin_corpus_loads_clean(builtin, name):
    corpus = builtin(name)
    names = corpus.names
    assert corpus.name == name
    assert len(names) >= MIN_SIZE[name]
    assert len(set(names)) == len(names)
    assert all(n and n == n.strip() and "  " not in n and n.isprintable() for n in names)
    assert all(n[0].isupper() for n in names)  # original / title case kept
    for known in KNOWN_NAMES[name]:
        assert known in names
    alphabet = set("".join(names))
    if name.startswith("ru-"):
        assert len(alphabet & CYRILLIC) >= 50
    else:
        assert alphabet == set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def test_ru_parts_compose_and_the_corrupt_entry_is_dropped(builtin):
    first = set(builtin("ru-first-names").names)
    surnames = set(builtin("ru-surnames").names)
    both = builtin("ru-names")
    assert set(both.names) == first | surnames
    # the archive has 'Крас\x1bнов(а)': an ESC byte inside a surname
    assert both.dropped.unprintable == 2
    assert not any("\x1b" in n for n in both.names)


def test_ru_names_rejects_unknown_parts():
    with pytest.raises(CorpusError, match="nicknames"):
        ru_names(("first", "nicknames"))


def test_lowercase_and_max_len_options():
    corpus = load_corpus("en-names", lowercase=True, max_len=4)
    assert "mary" in corpus.names and "Mary" not in corpus.names
    assert all(len(n) <= 4 for n in corpus.names)
    assert corpus.dropped.too_long > 1000


def test_unknown_corpus_lists_known_ones():
    with pytest.raises(CorpusError) as err:
        load_corpus("klingon-names")
    assert "klingon-names" in str(err.value)
    for name in list_corpora():
        assert name in str(err.value)


# --- normalisation ---------------------------------------------------------------------------


def test_normalise_strips_collapses_dedupes_in_first_seen_order():
    raw = ["  Анна  ", "Борис", "", "   ", "Анна\tМария", "анна", "Анна", "Борис", "Ян"]
    names, dropped = normalise_names(raw)
    assert names == ["Анна", "Борис", "Анна Мария", "анна", "Ян"]
    assert dropped.duplicates == 2 and dropped.total == 2

    lower, dropped = normalise_names(raw, lowercase=True, max_len=4)
    assert lower == ["анна", "ян"]  # lowercase before dedupe: "Анна" and "анна" merge
    assert dropped.too_long == 3  # "борис" twice, "анна мария"
    assert dropped.duplicates == 2


def test_normalise_composes_and_drops_control_characters():
    decomposed = "Андреи\u0306"  # "й" typed as "и" + combining breve
    names, dropped = normalise_names([decomposed, "Андрей", "Ян\x1b", "Zero\u200bwidth"])
    assert names == ["Андрей"]
    assert dropped.duplicates == 1 and dropped.unprintable == 2


# --- uploads and local files -----------------------------------------------------------------


def test_upload_with_bom_and_crlf_parses():
    data = "\ufeffАнна\r\nБорис\r\n\r\n  Ян  \r\nАнна\r\n".encode("utf-8")
    corpus = corpus_from_bytes(data, "names.txt")
    assert corpus.names == ["Анна", "Борис", "Ян"]  # no BOM glued to the first name
    assert corpus.name == "names.txt"
    assert corpus.dropped.duplicates == 1


def test_path_loads_like_an_upload(tmp_path):
    path = tmp_path / "my_names.txt"
    path.write_bytes("\ufeffAda\r\nGrace\r\nLinus".encode("utf-8"))
    for corpus in (corpus_from_path(path), load_corpus(str(path)), load_corpus(path)):
        assert corpus.names == ["Ada", "Grace", "Linus"]
        assert corpus.name == "my_names.txt"


@pytest.mark.parametrize(
    ("data", "kwargs", "words"),
    [
        (b"", {}, ["empty"]),
        (b" \r\n\t\n   \n", {}, ["only whitespace"]),
        ("Анна\nБорис\n".encode("cp1251"), {}, ["not UTF-8"]),
        ("Anna\nBoris\n".encode("utf-16"), {}, ["binary", "NUL"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, ["binary", "NUL"]),
        (b"Anna\nBoris\nClara\n", {"max_bytes": 10}, ["too large", "10 B"]),
        (b"Anna\n\nAnna\n  Anna \n", {}, ["found 1", "at least 2", "2 repeated"]),
        (b"Anna\nBoris\n", {"max_len": 4}, ["found 1", "at least 2", "1 too long"]),
        ("\n".join(chr(0x4E00 + i) * 2 for i in range(300)).encode(), {}, ["300", "200"]),
        (b"Anna\nBoris\nClara\n", {"max_chars": 5}, ["distinct characters", "found 10"]),
    ],
    ids=[
        "empty",
        "whitespace",
        "cp1251",
        "utf16",
        "png",
        "size-cap",
        "one-name-after-dedupe",
        "one-name-after-max-len",
        "alphabet-cap-default",
        "alphabet-cap-param",
    ],
)
def test_bad_upload_raises_corpus_error_naming_the_problem(data, kwargs, words):
    with pytest.raises(CorpusError) as err:
        corpus_from_bytes(data, **kwargs)
    assert isinstance(err.value, ValueError)
    for word in words:
        assert word in str(err.value)


def test_oversized_file_is_rejected_before_reading(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"Anna\n" * 1000)
    with pytest.raises(CorpusError, match="too large"):
        corpus_from_path(path, max_bytes=1000)
    with pytest.raises(CorpusError, match="no such file"):
        corpus_from_path(tmp_path / "missing.txt")


def test_default_size_cap_is_5_mb():
    with pytest.raises(CorpusError, match=r"5\.0 MB"):
        corpus_from_bytes(b"Anna\n" * (5 * 2**20 // 5 + 1))


# --- splits and statistics -------------------------------------------------------------------

NAMES = [f"name{i}" for i in range(100)]


def test_split_is_deterministic_disjoint_and_complete():
    a, b = split_names(NAMES, seed=1), split_names(NAMES, seed=1)
    assert a == b
    assert split_names(NAMES, seed=2) != a
    parts = a.train + a.val + a.test
    assert sorted(parts) == sorted(NAMES)  # complete and, with equal length, disjoint
    assert (len(a.train), len(a.val), len(a.test)) == (80, 10, 10)
    assert NAMES == [f"name{i}" for i in range(100)]  # the input was not shuffled in place


def test_split_does_not_touch_global_random_state():
    random.seed(0)
    expected = random.random()
    random.seed(0)
    split_names(NAMES, seed=3)
    assert random.random() == expected


@pytest.mark.parametrize("n", [2, 3, 5, 9])
def test_small_splits_keep_one_val_and_one_train(n):
    s = split_names(NAMES[:n], seed=0)
    assert len(s.val) >= 1 and len(s.train) >= 1
    assert sorted(s.train + s.val + s.test) == sorted(NAMES[:n])


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError):
        split_names(NAMES, seed=0, val_frac=0.6, test_frac=0.5)


def test_corpus_stats_on_a_hand_list():
    stats = corpus_stats(["Ян", "Анна", "Лев", "Ия"])
    assert stats.count == 4
    assert stats.alphabet == ["А", "И", "Л", "Я", "а", "в", "е", "н", "я"]
    assert stats.char_counts == {
        "А": 1, "И": 1, "Л": 1, "Я": 1, "а": 1, "в": 1, "е": 1, "н": 3, "я": 1
    }  # fmt: skip
    assert stats.length_hist == {2: 2, 3: 1, 4: 1}
    assert stats.mean_len == pytest.approx(11 / 4)
    assert stats.max_len == 4
    assert default_block_size(["Ян", "Анна"]) == 5


# --- tokenizer -------------------------------------------------------------------------------


def test_tokenizer_round_trip_with_cyrillic_and_space():
    names = ["Анна Мария", "Ёжиков", "Zoë"]
    tok = CharTokenizer.from_names(names)
    assert tok.chars == sorted(set("".join(names)))
    assert tok.vocab_size == len(tok.chars) + 1
    for name in names:
        ids = tok.encode(name)
        assert BOUNDARY_ID not in ids
        assert tok.decode(ids) == name
        assert tok.decode([BOUNDARY_ID, *ids, BOUNDARY_ID]) == name  # boundary is skipped
    assert tok.label(BOUNDARY_ID) != tok.label(1)


def test_tokenizer_json_round_trip():
    tok = CharTokenizer.from_names(["Анна", "Ян"])
    again = CharTokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again == tok
    assert again.encode("Яна") == tok.encode("Яна")
    with pytest.raises(ValueError):
        CharTokenizer.from_dict({"type": "bpe", "chars": ["a"]})
    with pytest.raises(ValueError):
        CharTokenizer.from_dict({"type": "char", "boundary_id": 0, "chars": ["a", "a"]})


def test_unknown_characters_are_named():
    tok = CharTokenizer.from_names(["Анна"])
    assert tok.unknown_chars("Анна") == []
    assert tok.unknown_chars("ZАнёнZ") == ["Z", "ё"]
    with pytest.raises(UnknownCharacterError) as err:
        tok.encode("ZАнёнZ")
    assert err.value.chars == ["Z", "ё"]
    assert "'Z', 'ё'" in str(err.value)
    assert "alphabet" in str(err.value)
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValueError):
        tok.decode([tok.vocab_size])


def test_frame_is_nfc_ids_after_the_boundary():
    tok = CharTokenizer.from_names(["Йод", "ёж"])
    decomposed = "И\u0306од"  # "Й" typed as "И" + combining breve
    assert nfc(decomposed) == "Йод"
    assert tok.frame(decomposed) == tok.frame("Йод") == [BOUNDARY_ID, *tok.encode("Йод")]
    assert tok.frame("") == [BOUNDARY_ID]
    with pytest.raises(UnknownCharacterError) as err:
        tok.frame("Zёж")
    assert err.value.chars == ["Z"]


def test_check_model_refuses_another_vocabulary():
    tok = CharTokenizer.from_names(["Анна"])
    tok.check_model(preset("tiny", vocab_size=tok.vocab_size))
    with pytest.raises(ValueError, match="tokenizer vocab_size 4 does not match the model's 9"):
        tok.check_model(preset("tiny", vocab_size=9))


def test_frame_for_checks_the_model_and_the_length():
    tok = CharTokenizer.from_names(["Йод", "ёж"])
    cfg = preset("tiny", vocab_size=tok.vocab_size, block_size=4)  # [B] + at most 3 characters
    assert tok.frame_for(cfg, "И\u0306од") == tok.frame("Йод")  # NFC first: 3 characters, not 4
    with pytest.raises(ValueError, match="name 'Йодё' has 4 characters; names here have at most 3"):
        tok.frame_for(cfg, "Йодё")
    with pytest.raises(ValueError, match="prefix 'Йо' has 2 characters; names here have at most 1"):
        tok.frame_for(cfg, "Йо", max_chars=1, what="prefix")
    with pytest.raises(ValueError, match="does not match the model's 9"):
        tok.frame_for(preset("tiny", vocab_size=9), "Йод")


# --- tensors and batches ---------------------------------------------------------------------


def test_encode_names_shapes_shift_and_padding():
    names = ["Ян", "Анна", "Ия"]
    tok = CharTokenizer.from_names(names)
    x, y = encode_names(names, tok, block_size=6)
    assert x.shape == y.shape == (3, 6) and x.dtype == y.dtype == torch.long
    assert x[:, 0].tolist() == [BOUNDARY_ID] * 3
    anna = tok.encode("Анна")
    assert x[1].tolist() == [BOUNDARY_ID, *anna, 0]
    assert y[1].tolist() == [*anna, BOUNDARY_ID, IGNORE_INDEX]
    assert y[0].tolist() == [*tok.encode("Ян"), BOUNDARY_ID] + [IGNORE_INDEX] * 3
    assert x[0, 3:].tolist() == [0, 0, 0]
    valid = y[:, :-1] != IGNORE_INDEX
    assert torch.equal(y[:, :-1][valid], x[:, 1:][valid])  # y is x shifted left by one
    assert count_target_tokens(y) == sum(len(n) + 1 for n in names)


def test_encode_names_rejects_a_name_too_long_for_block_size():
    tok = CharTokenizer.from_names(["Анна"])
    encode_names(["Анна"], tok, block_size=5)  # 4 chars + boundary fits exactly
    with pytest.raises(ValueError, match="block_size 4"):
        encode_names(["Анна"], tok, block_size=4)


def test_get_batch_is_reproducible_with_a_seeded_generator():
    tok = CharTokenizer.from_names(NAMES)
    x, y = encode_names(NAMES, tok, block_size=8)
    xb, yb = get_batch(x, y, 16, torch.Generator().manual_seed(0))
    xb2, _ = get_batch(x, y, 16, torch.Generator().manual_seed(0))
    assert xb.shape == yb.shape == (16, 8)
    assert torch.equal(xb, xb2)
    pairs = {(tuple(a), tuple(b)) for a, b in zip(x.tolist(), y.tolist())}
    assert all(p in pairs for p in zip(map(tuple, xb.tolist()), map(tuple, yb.tolist())))


def test_prepare_corpus_bundles_everything(builtin):
    names = builtin("en-names").names
    data = prepare_corpus(names, block_size=8, seed=0, corpus_name="en-names")
    too_long = sum(len(n) > 7 for n in names)
    assert data.n_too_long == too_long > 0
    kept = len(names) - too_long
    assert len(data.train.names) + len(data.val.names) + len(data.test.names) == kept
    assert data.splits == split_names([n for n in names if len(n) <= 7], seed=0)
    for part in (data.train, data.val, data.test):
        assert part.x.shape == part.y.shape == (len(part.names), 8)
    assert data.tokenizer.vocab_size == 53  # 52 letters + boundary
    assert (data.corpus_name, data.seed, data.block_size) == ("en-names", 0, 8)
    again = prepare_corpus(names, block_size=8, seed=0, corpus_name="en-names")
    assert torch.equal(again.train.x, data.train.x)


def test_prepare_corpus_needs_names_that_fit():
    with pytest.raises(CorpusError, match="block_size 3"):
        prepare_corpus(["Анна", "Борис", "Ян"], block_size=3, seed=0)


# --- domains: labelled corpora ---------------------------------------------------------------

# The domain counts of the mixed corpora with names 0.3.0 / russian-names 0.1.2 (fixed samples).
MIXED = {
    "ru-en-names": {"en": 5_163, "ru": 4_998},
    "ru-name-parts": {"first": 736, "patronymic": 856, "surname": 1_000},
    "ru-gender": {"female": 2_482, "male": 2_517},
    "ru-full-names": {"female": 2_500, "male": 2_500},
}


def test_labelled_file_parses_names_and_domains():
    data = "\ufeffАнна\tru\r\n\r\nMary \t en \r\n  Иван  Петров\tru\nJohn\ten\n".encode("utf-8")
    corpus = corpus_from_bytes(data, "mixed.txt")
    assert corpus.names == ["Анна", "Mary", "Иван Петров", "John"]
    assert corpus.domains == ["ru", "en", "ru", "en"]
    assert corpus.domain_labels == ["en", "ru"]
    assert corpus.domain_counts == {"en": 2, "ru": 2}
    assert not corpus.builtin  # a file is not rebuilt by name


def test_unlabelled_file_has_no_domains():
    corpus = corpus_from_bytes(b"Anna\nBoris\n")
    assert corpus.domains is None and corpus.domain_labels == [] and corpus.domain_counts == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Anna\tru\nBoris\n", ["line 2", "expected name<TAB>domain", "'Boris'"]),
        ("Anna\tru\n\nBoris\ten\tx\n", ["line 3", "expected name<TAB>domain", "'Boris\\ten\\tx'"]),
        ("Anna\tru\n\tru\n", ["line 2", "expected name<TAB>domain"]),
        ("Anna\tru\nBoris\t  \n", ["line 2", "expected name<TAB>domain"]),
        ("Anna\nBoris\n\nClara\ten\n", ["line 4", "without domains", "line 1 has none", "'Clara\\ten'"]),
        ("Anna\t" + "x" * 30 + "\nBoris\tru\n", ["line 1", "30 characters", f"limit is {MAX_DOMAIN_LEN}"]),
        ("Anna\tr\x1bu\nBoris\tru\n", ["line 1", "unprintable"]),
        ("Anna\tru\n" + "B" * 100 + "\n", ["line 2", "..."]),
    ],
    ids=["missing-tab", "two-tabs", "empty-name", "empty-domain", "tab-in-unlabelled", "long-label",
         "unprintable-label", "long-line-truncated"],
)
def test_bad_labelled_lines_name_the_line(text, words):
    with pytest.raises(CorpusError) as err:
        corpus_from_bytes(text.encode("utf-8"))
    for word in words:
        assert word in str(err.value)
    assert len(str(err.value)) < 250  # a long line is cut, not echoed whole


def test_too_many_domains_names_the_first_extra_line():
    ok = "".join(f"Name{chr(65 + i)}\td{i}\n" for i in range(MAX_DOMAINS))
    assert corpus_from_bytes(ok.encode()).domain_labels == sorted(f"d{i}" for i in range(MAX_DOMAINS))
    with pytest.raises(CorpusError) as err:
        corpus_from_bytes((ok + "Extra\tone-more\n").encode())
    assert f"line {MAX_DOMAINS + 1}" in str(err.value) and f"at most {MAX_DOMAINS} domains" in str(err.value)


def test_conflicting_duplicates_keep_the_first_label_and_are_counted():
    data = "Анна\tru\nSasha\ten\nАнна\tru\nSasha\tru\nанна\tother\n".encode()
    corpus = corpus_from_bytes(data)
    assert corpus.names == ["Анна", "Sasha", "анна"]
    assert corpus.domains == ["ru", "en", "other"]
    assert (corpus.dropped.duplicates, corpus.dropped.conflicting, corpus.dropped.total) == (1, 1, 2)
    assert corpus.dropped.describe() == "1 repeated, 1 in several domains"
    assert corpus.dropped.describe(lang="ru") == "повторы: 1, в нескольких доменах: 1"
    lower = corpus_from_bytes(data, lowercase=True)  # lowercase first: "анна" now clashes with "Анна"
    assert lower.names == ["анна", "sasha"] and lower.domains == ["ru", "en"]
    assert (lower.dropped.duplicates, lower.dropped.conflicting) == (1, 2)


def test_normalise_labelled_keeps_names_and_labels_aligned():
    raw = ["  Ян ", "", "Ян\x1b", "Александра", "Ян", "Zoe"]
    labels = ["a", "b", "c", "d", "a", "b"]
    cleaned, dropped = normalise_labelled(raw, labels, max_len=5)
    assert cleaned == LabelledNames(["Ян", "Zoe"], ["a", "b"])
    assert dropped == Dropped(duplicates=1, too_long=1, unprintable=1)
    with pytest.raises(ValueError, match="2 names but 1 domain"):
        normalise_labelled(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="2 names but 1 domain"):
        Corpus("c", ["a", "b"], Dropped(), domains=["x"])


def test_count_domains_sorts_labels():
    assert count_domains(["ru", "en", "ru"]) == {"en": 1, "ru": 2}
    assert count_domains(None) == {}


# splits ----------------------------------------------------------------------------------------

TWELVE = ["Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Зоя", "Иван", "Кира", "Лев", "Мира"]


def _old_split(names, seed, val_frac=0.1, test_frac=0.1):
    """split_names as it was before domains existed: what old checkpoints' validation names follow."""
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    n_val = min(max(round(n * val_frac), 1 if n >= 2 else 0), max(n - 1, 0))
    n_test = min(round(n * test_frac), max(n - 1 - n_val, 0))
    return shuffled[n_val + n_test :], shuffled[:n_val], shuffled[n_val : n_val + n_test]


def test_unlabelled_split_is_unchanged(builtin):
    # recorded with the code before domains existed
    assert split_names(TWELVE, 42) == split_names(TWELVE, 42, domains=None)
    assert (split_names(TWELVE, 42).val, split_names(TWELVE, 42).test) == (["Зоя"], ["Егор"])
    quarter = split_names(TWELVE, 7, 0.25, 0.25)
    assert (quarter.train, quarter.val, quarter.test) == (
        ["Кира", "Борис", "Анна", "Жанна", "Вера", "Егор"], ["Зоя", "Мира", "Глеб"], ["Лев", "Иван", "Дарья"]
    )
    assert quarter.val_domains is None
    names = builtin("en-names").names
    for seed in (0, 42):
        new = split_names(names, seed)
        assert (new.train, new.val, new.test) == _old_split(names, seed)
    val = validation_set(names, 12, 42).names  # what the shipped en-names checkpoint probes with
    assert len(val) == 516 and val[:3] == ["Tyesha", "Roselle", "Francie"]


def test_labelled_split_keeps_each_name_with_its_label():
    labels = [f"d{i % 3}" for i in range(len(TWELVE))]
    of = dict(zip(TWELVE, labels))
    splits = split_names(TWELVE, 42, domains=labels)
    assert (splits.train, splits.val, splits.test) == _old_split(TWELVE, 42)  # same permutation as unlabelled
    for part, part_domains in ((splits.train, splits.train_domains), (splits.val, splits.val_domains),
                               (splits.test, splits.test_domains)):
        assert part_domains == [of[n] for n in part]
    with pytest.raises(ValueError, match="domain labels"):
        split_names(TWELVE, 42, domains=labels[:-1])


def test_prepare_corpus_and_validation_set_carry_domains():
    names = TWELVE + ["Длинноеимя" * 2]
    labels = [f"d{i % 3}" for i in range(len(TWELVE))] + ["long"]
    of = dict(zip(names, labels))
    data = prepare_corpus(names, 8, 3, domains=labels)
    assert data.domain_labels == ["d0", "d1", "d2", "long"]  # the corpus's labels, even if a name does not fit
    assert data.n_too_long == 1 and data.builtin is False
    for part in (data.train, data.val, data.test):
        assert part.domains == [of[n] for n in part.names]
    assert data.splits.val_domains == data.val.domains
    val = validation_set(names, 8, 3, domains=labels)
    assert val == LabelledNames(data.val.names, data.val.domains)
    assert validation_set(names, 8, 3, max_names=1, domains=labels) == LabelledNames(val.names[:1], val.domains[:1])
    plain = prepare_corpus(names, 8, 3)
    assert plain.val.names == data.val.names and plain.val.domains is None and plain.domain_labels == []
    assert validation_set(names, 8, 3) == LabelledNames(plain.val.names, None)


# built-in mixed corpora ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MIXED))
def test_mixed_builtin_has_its_domains_balanced(builtin, name):
    corpus = builtin(name)
    assert corpus.builtin
    assert corpus.domain_labels == list_corpus_domains()[name] == sorted(MIXED[name])
    assert corpus.domain_counts == MIXED[name]  # fixed samples: the same on every machine
    counts = corpus.domain_counts.values()
    assert max(counts) <= 1.5 * min(counts)
    assert "domain" in list_corpora()[name]


def test_ru_en_names_splits_by_script(builtin):
    corpus = builtin("ru-en-names")
    latin = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    for name, domain in zip(corpus.names, corpus.domains):
        assert (set(name) <= latin) == (domain == "en"), name
    ru = [n for n, d in zip(corpus.names, corpus.domains) if d == "ru"]
    first = set(builtin("ru-first-names").names)
    assert sum(n in first for n in ru) == len(first)  # all first names, the rest surnames
    assert set(n for n, d in zip(corpus.names, corpus.domains) if d == "en") == set(builtin("en-names").names)


def test_ru_name_parts_labels_match_the_single_part_corpora(builtin):
    corpus = builtin("ru-name-parts")
    parts = {"first": "ru-first-names", "patronymic": "ru-patronymics", "surname": "ru-surnames"}
    for domain, source in parts.items():
        picked = {n for n, d in zip(corpus.names, corpus.domains) if d == domain}
        assert picked <= set(builtin(source).names)
    assert {n for n, d in zip(corpus.names, corpus.domains) if d == "first"} == set(builtin("ru-first-names").names)


def test_ru_gender_counts_surnames_of_both_genders_as_conflicting(builtin):
    corpus = builtin("ru-gender")
    assert corpus.dropped.conflicting > 0 and "in several domains" in corpus.dropped.describe()
    gender = dict(zip(corpus.names, corpus.domains))
    assert gender["Анна"] == "female" and gender["Александр"] == "male"
    women = [n for n, d in gender.items() if d == "female"]
    assert sum(n.endswith("а") for n in women) > 0.8 * len(women)


def test_mixed_corpora_are_deterministic():
    assert load_corpus("ru-gender") == load_corpus("ru-gender")
    assert load_corpus("ru-gender", lowercase=True).builtin is False  # not what the name rebuilds
