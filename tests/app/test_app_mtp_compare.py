"""AppTest for the MTP drafts page and the Compare page, in both languages, on the shipped
checkpoints and on a tiny model without MTP (dense FFN, MHA)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dsmini.checkpoint import save_checkpoint
from dsmini.config import ModelConfig, preset
from dsmini.data import CharTokenizer
from dsmini.i18n import fmt_int, parse_num, t
from dsmini.model import DSMini
from pages import _ui_models as ui_models
from tests.helpers import SHIPPED, app_test, charts, no_errors


def open_page(page: str, lang: str, checkpoint: str, **state) -> AppTest:
    at = app_test()
    at.session_state["lang"] = lang
    at.session_state["checkpoint"] = checkpoint
    for key, value in state.items():  # widget values before the first run: skips the default's work
        at.session_state[key] = value
    at.run()
    at.switch_page(page).run()
    return at


@pytest.fixture
def with_plain_model(tmp_path, monkeypatch):
    """A checkpoints folder with en-names, "plain" (a tiny untrained MHA model, dense FFN, no MTP,
    no corpus recorded) and "plain-mtp" (the same with an MTP module)."""
    (tmp_path / "en-names").symlink_to(SHIPPED / "en-names", target_is_directory=True)
    torch.manual_seed(0)
    tok = CharTokenizer.from_names(["Anna", "Bob", "Olga"])
    cfg = preset("tiny", vocab_size=tok.vocab_size, block_size=8, attn_type="mha", ffn_type="dense", mtp_depth=0)
    save_checkpoint(tmp_path, "plain", DSMini(cfg).eval(), tok)
    save_checkpoint(tmp_path, "plain-mtp", DSMini(dataclasses.replace(cfg, mtp_depth=1)).eval(), tok)
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)


# --- MTP -----------------------------------------------------------------------------------------


def check_mtp_page(at, lang: str, n: int, depth: int = 1) -> None:
    """Metrics, the greedy == plain check and the four charts' shapes (a model of MTP depth `depth`)."""
    no_errors(at)
    assert at.title[0].value == t("mtp.title", lang)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[t("mtp.m_identical", lang)] == f"✓ ({n}/{n})"
    greedy = parse_num(metrics[t("mtp.m_greedy", lang)], lang)
    assert 50 < greedy <= 100  # the shipped MTP heads draft well
    assert 1.2 < parse_num(metrics[t("mtp.m_cpf", lang)], lang) <= 1 + depth
    chain, by_position, by_letter, timeline = charts(at)[:4]
    ticks = [t("mtp.chain.depth_tick", lang, depth=k) for k in range(1, depth + 1)]
    assert [d["x"] for d in chain["data"][:2]] == [ticks, ticks]  # acceptance per draft depth, greedy and sampled
    assert len(chain["data"][2]["x"]) == 1 + depth  # characters per main pass: plain, then each chain depth
    assert [d["type"] for d in by_position["data"]] == ["bar", "bar", "scatter"]  # greedy, sampled, the V3 band's key
    band = by_position["layout"]["shapes"][0]
    assert (band["y0"], band["y1"]) == (0.85, 0.9)  # DeepSeek-V3's reported acceptance
    assert [d["type"] for d in by_letter["data"]] == ["bar", "bar", "scatter"]
    heatmap = timeline["data"][0]
    assert heatmap["type"] == "heatmap" and len(heatmap["z"]) == 2  # draft row, kept row
    kept = "".join(heatmap["text"][1])
    pick = at.selectbox(key="mtp_pick")
    assert kept.startswith(pick.options[pick.index]) and len(heatmap["z"][0]) == len(kept)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_mtp_page_on_the_english_model(lang):
    # mtp_n=8: fewer than the default 12, for test time
    check_mtp_page(open_page("pages/mtp.py", lang, "en-names", mtp_n=8), lang, 8)


@pytest.mark.slow
def test_mtp_page_on_the_russian_model_sampled_timeline_and_speed():
    at = open_page("pages/mtp.py", "ru", "ru-names", mtp_n=8)
    check_mtp_page(at, "ru", 8)
    assert not at.get("metric")[5:]  # no timing until asked: it takes seconds
    at.segmented_control(key="mtp_run").set_value("sampled")
    at.button(key="mtp_measure").click().run()
    check_mtp_page(at, "ru", 8)
    assert at.segmented_control(key="mtp_run").value == "sampled"
    metrics = {m.label: m.value for m in at.metric}
    spec = parse_num(metrics[t("mtp.m_spec_speed", "ru")], "ru")
    plain = parse_num(metrics[t("mtp.m_plain_speed", "ru")], "ru")
    assert spec > 0 and plain > 0 and metrics[t("mtp.m_speedup", "ru")].endswith("×")
    at.run()  # the measurement stays on screen (cached) across reruns
    assert t("mtp.m_speedup", "ru") in [m.label for m in at.metric]


@pytest.mark.slow
def test_mtp_page_on_the_chained_depth_2_model_with_speed_and_ceilings():
    at = open_page("pages/mtp.py", "en", "ru-names-mtp2", mtp_n=8)
    check_mtp_page(at, "en", 8, depth=2)
    chain = charts(at)[0]
    greedy = chain["data"][0]
    assert all(0.5 < rate <= 1 for rate in greedy["y"])  # both modules' drafts mostly stand
    timelines = []
    for i in range(8):  # some name of the eight has an accepted depth-2 draft, coloured as such
        at.selectbox(key="mtp_pick").set_value(i).run()
        timelines.append([d["name"] for d in charts(at)[3]["data"][1:]])
    assert any(t("mtp.chain.accepted_depth", "en", depth=2) in names for names in timelines)
    at.button(key="mtp_measure").click().run()
    no_errors(at)
    speed = charts(at)[-1]
    assert [d["name"] for d in speed["data"]] == [t(f"mtp.chain.{k}", "en")
                                                  for k in ("measured", "ceiling", "bound")]
    assert all(len(d["x"]) == 2 for d in speed["data"])  # chain depth 1 and 2
    assert t("mtp.chain.speed_caption", "en") in [c.value for c in at.caption]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_mtp_page_says_why_for_a_model_without_mtp(with_plain_model, lang):
    at = open_page("pages/mtp.py", lang, "plain")
    no_errors(at)
    assert at.info[0].value == t("mtp.no_mtp", lang)
    assert not at.get("plotly_chart")


def test_mtp_page_on_a_dense_mha_model_without_a_known_corpus(with_plain_model):
    at = open_page("pages/mtp.py", "en", "plain-mtp")
    no_errors(at)
    assert t("mtp.source_alphabet", "en", corpus="?", examples="A, B, O") in [c.value for c in at.caption]
    assert {m.label: m.value for m in at.metric}[t("mtp.m_identical", "en")] == "✓ (3/3)"
    assert len(charts(at)) == 4  # chain depths, by position, by letter, the timeline


# --- Compare -------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_compare_page_shipped_pair_side_by_side(lang):
    at = open_page("pages/compare.py", lang, "en-names")
    no_errors(at)
    assert (at.selectbox(key="cmp_a").value, at.selectbox(key="cmp_b").value) == ("en-names", "ru-names")
    (bars,) = charts(at)
    assert [d["name"] for d in bars["data"]] == ["A: en-names", "B: ru-names"] * 3
    facts, config = (df.value for df in at.dataframe)
    assert len(config) == len(dataclasses.fields(ModelConfig))
    differing = set(config[config.iloc[:, -1] == "≠"].iloc[:, 0])
    # same preset, different corpora; each field in words, with its name in the code
    assert differing == {f"{t(f'cmp.field.{key}', lang)} ({key})" for key in ("vocab_size", "block_size", "dropout")}
    assert f"{t('cmp.field.q_lora_rank', lang)} (q_lora_rank)" in set(config.iloc[:, 0])
    assert list(facts.columns[1:3]) == ["A: en-names", "B: ru-names"]
    cache_row = facts[facts.iloc[:, 0] == t("cmp.fact.cache_bytes_per_token", lang)]
    assert cache_row.iloc[0, 1:3].tolist() == ["640", "640"]  # MLA (32 + 8) x 4 layers x 4 bytes, both
    names_a, names_b = [m.value for m in at.markdown if m.value.startswith("1. ")]
    assert names_a.count("1. ") == names_b.count("1. ") == 8
    at.text_input(key="cmp_prefix").set_value("Ан").run()
    no_errors(at)
    assert len(at.warning) == 1 and "'А'" in at.warning[0].value  # English model only
    (names_b,) = [m.value for m in at.markdown if m.value.startswith("1. ")]
    assert all(line.startswith("1. **Ан") for line in names_b.splitlines())


def test_compare_page_same_model_twice_then_a_plain_model(with_plain_model):
    at = open_page("pages/compare.py", "en", "en-names")  # no ru-names here: en-names against itself
    no_errors(at)
    assert (at.selectbox(key="cmp_a").value, at.selectbox(key="cmp_b").value) == ("en-names", "en-names")
    facts, config = (df.value for df in at.dataframe)
    assert not (config.iloc[:, -1] == "≠").any() and not (facts.iloc[:, -1] == "≠").any()
    at.selectbox(key="cmp_b").set_value("plain")
    at.toggle(key="cmp_only_differing").set_value(True)
    at.text_input(key="cmp_prefix").set_value("Ed").run()  # "E" and "d": not in the plain model's alphabet
    no_errors(at)
    facts, config = (df.value for df in at.dataframe)
    assert (config.iloc[:, -1] == "≠").all()  # only the differing fields are listed
    fields = {"attn_type", "ffn_type", "mtp_depth", "d_model", "n_layers"}
    assert {f"{t(f'cmp.field.{key}', 'en')} ({key})" for key in fields} <= set(config.iloc[:, 0])
    assert len(at.warning) == 1 and "'E'" in at.warning[0].value
    assert len([m for m in at.markdown if m.value.startswith("1. ")]) == 1  # en-names still writes names


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_compare_page_scores_both_on_the_held_out_names_of_a_corpus(lang):
    from dsmini.checkpoint import load_checkpoint
    from dsmini.data import load_corpus
    from dsmini.decoding import score_names, score_table
    from dsmini.probes.compare import held_out_names

    at = open_page("pages/compare.py", lang, "en-names")
    assert at.selectbox(key="cmp_score_corpus").value == "en-names"  # A's own corpus by default
    assert len(at.dataframe) == 2  # nothing scored before the button
    at.button(key="cmp_score_button").click().run()
    assert "'Kimberly'" in at.error[0].value and "B (ru-names)" in at.error[0].value  # no Latin letters in B
    at.selectbox(key="cmp_b").set_value("ru-en-names").run()
    assert len(at.dataframe) == 2  # another B: its scores are asked for again
    at.button(key="cmp_score_button").click().run()
    no_errors(at)
    scores = at.dataframe[2].value
    names, _ = held_out_names(load_corpus("en-names"))
    expected = [score_table(score_names(c.model, c.tokenizer, names))[0].nats_per_char
                for c in (load_checkpoint(SHIPPED / "en-names"), load_checkpoint(SHIPPED / "ru-en-names"))]
    assert len(scores) == 1 and scores.iloc[0, 1] == fmt_int(len(names), lang)
    assert [parse_num(scores.iloc[0, 2], lang), parse_num(scores.iloc[0, 3], lang)] == [round(e, 4) for e in expected]
    assert scores.iloc[0, -1] == ("A" if expected[0] < expected[1] else "B")
    assert scores.columns[2] == t("cmp.score_nats", lang, label="A: en-names")
    at.radio(key="cmp_score_by").set_value("length").run()  # new rows: asked again first
    assert len(at.dataframe) == 2
    at.button(key="cmp_score_button").click().run()
    by_length = at.dataframe[2].value
    assert len(by_length) > 3 and by_length.iloc[1:, 0].astype(int).is_monotonic_increasing


def test_compare_scores_refuses_a_name_one_model_cannot_read():
    from dsmini.checkpoint import load_checkpoint
    from dsmini.probes.compare import compare_scores

    en, ru = load_checkpoint(SHIPPED / "en-names"), load_checkpoint(SHIPPED / "ru-names")
    scored = compare_scores(en, ru, ("Anna", "Emma"))
    assert not scored.rows and "'Anna'" in scored.problem and "B (ru-names)" in scored.problem
    assert "'Анна'" in compare_scores(en, ru, ("Анна",)).problem  # A is checked first
    same = compare_scores(en, en, ("Anna", "Emma"), by="length")
    assert [g for g, _, _ in same.rows] == ["all", "4"]
    assert all(ra == rb for _, ra, rb in same.rows) and same.rows[0][1].tokens == 10  # 4 + 1 per name
