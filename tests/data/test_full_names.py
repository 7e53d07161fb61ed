"""The `ru-full-names` corpus: «Фамилия Имя Отчество» with one gender throughout."""

import statistics

import pytest

from dsmini.cli.main import main
from dsmini.data import default_block_size, load_corpus, prepare_corpus
from dsmini.data.builtin import (
    _RU_MEN_LINES,
    _RU_WOMEN_LINES,
    FULL_NAME_LEN,
    FULL_NAMES_PER_GENDER,
    _ru_gendered,
    ru_full_names,
)
from tests.helpers import app_test

GENDER_LINES = {"male": _RU_MEN_LINES, "female": _RU_WOMEN_LINES}
PATRONYMIC_ENDING = {"male": "ич", "female": "на"}  # -ович/-евич/-ич, -овна/-евна/-ична


@pytest.fixture(scope="module")
def corpus():
    return load_corpus("ru-full-names")


def test_every_part_has_the_name_s_gender(corpus):
    parts = {g: {p: set(_ru_gendered(p, lines)) for p in ("surname", "first", "patronymic")}
             for g, lines in GENDER_LINES.items()}
    for name, gender in zip(corpus.names, corpus.domains):
        surname, first, patronymic = name.split(" ")
        assert surname in parts[gender]["surname"], name
        assert first in parts[gender]["first"], name
        assert patronymic in parts[gender]["patronymic"], name
        assert patronymic.endswith(PATRONYMIC_ENDING[gender]), name
    # the cue is real: most women's names have a woman's first name ending (а/я), men's do not
    women = [n.split(" ")[1] for n, d in zip(corpus.names, corpus.domains) if d == "female"]
    men = [n.split(" ")[1] for n, d in zip(corpus.names, corpus.domains) if d == "male"]
    assert sum(f[-1] in "ая" for f in women) > 0.9 * len(women)
    assert sum(f[-1] in "ая" for f in men) < 0.1 * len(men)


def test_sizes_and_lengths_are_as_documented(corpus):
    assert corpus.domain_counts == {"female": FULL_NAMES_PER_GENDER, "male": FULL_NAMES_PER_GENDER}
    assert corpus.dropped.total == 0  # nothing repeated, conflicting or too long
    shortest, longest = FULL_NAME_LEN
    lengths = [len(n) for n in corpus.names]
    assert (shortest, longest) == (28, 40)
    assert min(lengths) == shortest and max(lengths) == longest
    assert 28 <= statistics.median(lengths) <= 32
    # every name fits the block size training picks for it: nothing is dropped as too long
    assert default_block_size(corpus.names) == longest + 1
    data = prepare_corpus(corpus.names, default_block_size(corpus.names), seed=42, domains=corpus.domains)
    assert data.n_too_long == 0


def test_the_corpus_is_deterministic(corpus):
    assert ru_full_names() == ru_full_names()
    assert load_corpus("ru-full-names") == corpus
    assert corpus.builtin  # a checkpoint rebuilds it by name alone
    assert corpus.names[0] == "Лебедевин Владилен Феофанович"  # the fixed seed's first draw


def test_corpora_command_lists_it_with_its_domains(capsys):
    assert main(["corpora"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "[domains: female, male]" in lines["ru-full-names"]
    assert "Фамилия Имя Отчество" in lines["ru-full-names"]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_attention_page_opens_the_shipped_full_names_model_with_its_blocks(lang):
    """The shipped MoBA model of full names: the page opens on a full name and draws what each query saw."""

    from dsmini.i18n import t

    at = app_test()
    at.session_state["lang"] = lang
    at.session_state["checkpoint"] = "ru-full-names"
    at.run()
    at = at.switch_page("pages/attention.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.text_input[0].value == "Красоткина Мария Петровна"
    caption = t("attention.selection_caption.moba", lang, size=4, top=2)
    assert any(c.value == caption for c in at.caption), [c.value for c in at.caption]
