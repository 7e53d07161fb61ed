"""MTP draft probes and charts (acceptance stats, timelines, timing) and the checkpoint comparison
probe and chart: numbers checked against the decoder's own results and hand-built inputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dsmini.charts.compare import compare_figure
from dsmini.charts.mtp import acceptance_by_letter_figure, acceptance_by_position_figure, draft_timeline_figure
from dsmini.checkpoint import load_checkpoint, save_checkpoint
from dsmini.config import ModelConfig, preset
from dsmini.data import BOUNDARY_ID, CharTokenizer, load_corpus, prepare_corpus, validation_set
from dsmini.decoding import generate
from dsmini.decoding.speculative import SpecResult, SpecStep
from dsmini.i18n import t
from dsmini.model import DSMini
from dsmini.probes.compare import (
    CompareRow,
    compare_rows,
    config_rows,
    display_value,
    fact_rows,
    model_facts,
    rows_frame,
)
from dsmini.probes.mtp import (
    SOURCES,
    V3_ACCEPTANCE,
    Tally,
    acceptance_stats,
    alphabet_prefixes,
    draft_prefixes,
    draft_timeline,
    greedy_matches,
    run_drafts,
    time_decoding,
)
from tests.helpers import RU_NAMES as NAMES
from tests.helpers import SHIPPED

TOK = CharTokenizer.from_names(NAMES)


def tiny(**overrides) -> DSMini:
    torch.manual_seed(0)
    return DSMini(preset("tiny", vocab_size=TOK.vocab_size, block_size=12, **overrides)).eval()


@pytest.fixture(scope="module")
def en():
    return load_checkpoint(SHIPPED / "en-names")


@pytest.fixture(scope="module")
def en_prefixes(en):
    c = en.corpus
    names = validation_set(load_corpus(c.name).names, c.block_size, c.split_seed).names
    return draft_prefixes(names, 8, en.tokenizer)


@pytest.fixture(scope="module")
def en_greedy(en, en_prefixes):
    return run_drafts(en.model, en.tokenizer, en_prefixes)


def step(position: int, draft: str, accepted: bool, chosen: str | None = None) -> SpecStep:
    chosen = draft if accepted else chosen
    ids = {c: i + 1 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")} | {"|": BOUNDARY_ID}
    return SpecStep(position, ids[draft], draft, accepted, ids[chosen], chosen)


# --- prefixes ------------------------------------------------------------------------------------


def test_validation_names_are_the_val_split_of_prepare_corpus():
    names = load_corpus("en-names").names
    assert validation_set(names, 12, 42).names == prepare_corpus(names, 12, 42).val.names
    short = validation_set(names, 6, 7).names
    assert short == prepare_corpus(names, 6, 7).val.names and all(len(n) <= 5 for n in short)


def test_draft_prefixes_alternate_one_and_two_letters_distinct_and_encodable():
    names = ["Anna", "Anton", "Anna", "Bob", "Ann", "Olga", "Яна"]
    # i=0 "A", i=1 "An", i=2 "A" (dup), i=3 "Bo", i=4 "A" (dup), i=5 "Ol", i=6 "Я"
    assert draft_prefixes(names) == ["A", "An", "Bo", "Ol", "Я"]
    assert draft_prefixes(names, n=2) == ["A", "An"]
    latin = CharTokenizer.from_names(["Anna", "Anton", "Bob", "Olga"])
    assert draft_prefixes(names, tokenizer=latin) == ["A", "An", "Bo", "Ol"]  # "Я" cannot be encoded
    assert alphabet_prefixes(latin) == ["A", "B", "O"]
    assert alphabet_prefixes(CharTokenizer(list("ab")), n=1) == ["a"]  # no capitals: letters


# --- runs on the shipped English model -----------------------------------------------------------


def test_greedy_speculative_equals_plain_greedy_over_the_prefixes(en, en_prefixes, en_greedy):
    assert len(en_prefixes) == 8
    assert greedy_matches(en.model, en.tokenizer, en_prefixes, en_greedy) == len(en_prefixes)
    (plain,) = generate(en.model, en.tokenizer, en_prefixes[0], n=1, temperature=0)
    assert en_greedy[0].ids == plain.ids and plain.text.startswith(en_prefixes[0])
    tampered = dataclasses.replace(en_greedy[1], ids=en_greedy[1].ids[:-1])
    assert greedy_matches(en.model, en.tokenizer, en_prefixes[:2], [en_greedy[0], tampered]) == 1


def test_acceptance_counts_agree_with_the_timelines(en, en_greedy):
    stats = acceptance_stats(en_greedy)
    assert stats.overall.proposed == sum(r.drafts_proposed for r in en_greedy) > 0
    assert stats.overall.accepted == sum(r.drafts_accepted for r in en_greedy)
    assert sum(t.proposed for t in stats.by_position.values()) == stats.overall.proposed
    assert sum(t.accepted for t in stats.by_letter.values()) == stats.overall.accepted
    assert stats.chars_per_forward == (sum(r.generated_tokens for r in en_greedy)
                                       / sum(r.main_forward_passes for r in en_greedy))
    assert 0.6 < stats.overall.rate <= 1.0 and 1.2 < stats.chars_per_forward <= 2.0  # a trained MTP head drafts well
    for result in en_greedy:
        timeline = draft_timeline(result, en.tokenizer)
        sources = [c.source for c in timeline.cells]
        assert sources.count("accepted") == result.drafts_accepted == timeline.accepted
        assert sources.count("rejected") == result.drafts_proposed - result.drafts_accepted
        assert sum(c.draft is not None for c in timeline.cells) == result.drafts_proposed == timeline.proposed
        assert "".join(c.char for c in timeline.cells) == result.text + ("|" if result.finished else "")
        assert [c.position for c in timeline.cells] == list(range(1, len(result.ids)))
        assert len(result.ids) - 1 - sources.count("prefix") == result.generated_tokens
        for cell in timeline.cells:
            assert (cell.draft == cell.char) == (cell.source == "accepted")


def test_sampled_runs_replay_with_their_seed(en, en_prefixes):
    first = run_drafts(en.model, en.tokenizer, en_prefixes[:4], temperature=0.8, seed=3)
    again = run_drafts(en.model, en.tokenizer, en_prefixes[:4], temperature=0.8, seed=3)
    assert [r.ids for r in first] == [r.ids for r in again]
    assert [r.timeline for r in first] == [r.timeline for r in again]


def test_time_decoding_reports_both_decoders_on_the_same_tokens(en, en_prefixes, en_greedy):
    report = time_decoding(en.model, en.tokenizer, en_prefixes[:3], repeats=1)
    assert report.tokens == sum(r.generated_tokens for r in en_greedy[:3])
    assert report.speculative_seconds > 0 and report.plain_seconds > 0 and report.repeats == 1
    assert report.speedup == pytest.approx(report.speculative_per_second / report.plain_per_second)


# --- statistics on hand-built timelines -------------------------------------------------------------


def test_stats_aggregate_by_position_and_by_drafted_letter():
    # "ab|": prefix "a"; b from prefill, then draft "|" at 3 rejected (correction "c"), ...
    one = SpecResult("abc", [0, 1, 2, 3, 0], True, generated_tokens=3, main_forward_passes=3,
                     timeline=[step(3, "|", False, "c"), step(4, "|", True)])
    two = SpecResult("abcd", [0, 1, 2, 3, 4], False, generated_tokens=4, main_forward_passes=3,
                     timeline=[step(2, "b", True), step(3, "x", False, "c"), step(4, "d", True)])
    stats = acceptance_stats([one, two])
    assert stats.overall == Tally(3, 5) and stats.overall.rate == 0.6
    assert stats.by_position == {2: Tally(1, 1), 3: Tally(0, 2), 4: Tally(2, 2)}
    assert list(stats.by_letter) == ["b", "d", "x", "|"]  # alphabetical, the end of name last
    assert stats.by_letter["|"] == Tally(1, 2) and stats.by_letter["x"] == Tally(0, 1)
    assert stats.generated_tokens == 7 and stats.forward_passes == 6 and stats.n_names == 2
    assert stats.chars_per_forward == pytest.approx(7 / 6)
    empty = acceptance_stats([])
    assert empty.overall.rate == 0.0 and empty.chars_per_forward == 0.0 and not empty.by_position

    tok = CharTokenizer(list("abcdx"))
    cells = draft_timeline(one, tok).cells
    assert [(c.char, c.source, c.draft) for c in cells] == [
        ("a", "prefix", None), ("b", "main", None), ("c", "rejected", "|"), ("|", "accepted", "|"),
    ]


def test_a_model_without_mtp_is_refused_with_a_clear_message():
    model = tiny(mtp_depth=0)
    with pytest.raises(ValueError, match="no MTP module.*mtp_depth = 0"):
        run_drafts(model, TOK, ["А"])
    with pytest.raises(ValueError, match="no MTP module"):
        time_decoding(model, TOK, ["А"])


# --- MTP charts ------------------------------------------------------------------------------------


def hand_stats():
    one = SpecResult("abc", [0, 1, 2, 3, 0], True, 3, 3, [step(3, "|", False, "c"), step(4, "|", True)])
    two = SpecResult("abcd", [0, 1, 2, 3, 4], False, 4, 3, [step(2, "b", True), step(3, "x", False, "c")])
    return acceptance_stats([one]), acceptance_stats([one, two]), one


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_acceptance_figures_bars_per_key_and_the_v3_band(lang):
    greedy, sampled, _ = hand_stats()
    fig = acceptance_by_position_figure(greedy, sampled, 0.8, lang)
    bars = [d for d in fig.data if d.type == "bar"]
    assert len(bars) == 2 and all(len(b.x) == 3 for b in bars)  # positions 2, 3, 4
    assert list(fig.layout.xaxis.ticktext) == ["2", "3", "4"]
    assert list(bars[0].y) == [None, 0.0, 1.0]  # greedy has no draft at position 2
    assert list(bars[1].y) == [1.0, 0.0, 1.0] and list(bars[1].text) == ["1/1", "0/2", "1/1"]
    band = fig.layout.shapes[0]
    assert (band.y0, band.y1) == V3_ACCEPTANCE and fig.layout.height
    letters = acceptance_by_letter_figure(greedy, sampled, 0.8, lang)
    assert list(letters.layout.xaxis.ticktext) == ["b", "x", "|"]
    assert list(letters.data[1].y) == [1.0, 0.0, 0.5]
    # the band's legend entry
    assert fig.data[-1].type == "scatter" and fig.data[-1].name == t("chart.mtp.v3_band", lang)
    only_greedy = acceptance_by_position_figure(greedy, lang=lang)
    assert [d.type for d in only_greedy.data] == ["bar", "scatter"]
    empty = acceptance_stats([])
    assert not acceptance_by_position_figure(empty, empty, 0.8, lang).data  # a message, not an empty chart
    assert not acceptance_by_letter_figure(empty, lang=lang).data


def test_timeline_figure_rows_codes_and_legend():
    _, _, one = hand_stats()
    fig = draft_timeline_figure(draft_timeline(one, CharTokenizer(list("abcdx"))))
    heatmap, legend = fig.data[0], fig.data[1:]
    code = {s: i + 1 for i, s in enumerate(SOURCES)}
    draft_row, kept_row = heatmap.z
    assert list(draft_row) == [None, None, code["rejected"], code["accepted"]]
    # the correction is the main model's
    assert list(kept_row) == [code["prefix"], code["main"], code["main"], code["accepted"]]
    assert [list(r) for r in heatmap.text] == [["", "", "|", "|"], ["a", "b", "c", "|"]]
    assert [t.name for t in legend] == ["prefix", "main model", "accepted draft", "rejected draft"]
    assert (heatmap.zmin, heatmap.zmax) == (0.5, 4.5) and fig.layout.height
    assert "3 characters in 3 main passes" in fig.layout.title.text


# --- compare --------------------------------------------------------------------------------------


def test_config_rows_flag_exactly_the_fields_that_differ():
    a = preset("small")
    rows = config_rows(a, a)
    assert [r.key for r in rows] == [f.name for f in dataclasses.fields(ModelConfig)]
    assert not any(r.differs for r in rows)
    b = dataclasses.replace(a, attn_type="gqa", n_kv_heads=1, capacity_factor=1.25)
    assert {r.key for r in config_rows(a, b) if r.differs} == {"attn_type", "n_kv_heads", "capacity_factor"}
    row = next(r for r in config_rows(a, b) if r.key == "capacity_factor")
    assert (row.a, row.b) == (None, 1.25)


def test_compare_rows_union_and_frame_marks():
    rows = compare_rows({"x": 1, "y": 2.5}, {"y": 2.5, "z": "moe"})
    assert rows == [CompareRow("x", 1, None), CompareRow("y", 2.5, 2.5), CompareRow("z", None, "moe")]
    frame = rows_frame(rows, {"x": "ex"}, ("field", "A", "B", "≠"))
    assert frame.values.tolist() == [["ex", "1", "—", "≠"], ["y", "2.5", "2.5", ""], ["z", "—", "moe", "≠"]]
    assert [display_value(v) for v in (445248, 1.9548612, 10000.0, 0.001, True, None)] == [
        "445,248", "1.955", "10,000", "0.001", "True", "—",
    ]


def test_model_facts_of_shipped_and_of_a_model_without_mtp(en, tmp_path):
    facts = model_facts(en)
    assert facts.corpus == "en-names" and facts.steps == en.step
    assert facts.cache_values_per_token == (32 + 8) * 4  # MLA: (kv_lora_rank + rope) * layers
    assert facts.cache_bytes_per_token == 4 * facts.cache_values_per_token  # float32
    assert facts.params_main_total == en.param_counts["main"]["total"] and facts.params_mtp_total > 0
    assert facts.val_loss == en.summary["val_loss"] and facts.best_val_loss == en.summary["best_val_loss"]
    model = tiny(mtp_depth=0, attn_type="mha", ffn_type="dense")
    plain = load_checkpoint(save_checkpoint(tmp_path, "plain", model, TOK))
    other = model_facts(plain)
    assert other.params_mtp_total == other.params_mtp_active == 0 and other.val_loss is None
    assert other.cache_values_per_token == 2 * 2 * 16 * 2  # MHA: 2 * heads * head_dim * layers
    differing = {r.key for r in fact_rows(facts, other) if r.differs}
    assert {"corpus", "params_mtp_total", "val_loss", "cache_values_per_token"} <= differing
    assert not any(r.differs for r in fact_rows(facts, facts))


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_compare_figure_three_panels_two_models(en, lang):
    a = model_facts(en)
    b = dataclasses.replace(a, val_loss=None, cache_bytes_per_token=1280)
    fig = compare_figure(a, b, "A: x", "B: y", lang)
    bars = [d for d in fig.data if d.type == "bar"]
    assert len(bars) == 6 and [b.name for b in bars] == ["A: x", "B: y"] * 3
    assert len(bars[0].x) == 3 and list(bars[1].y) == [a.params_main_total, a.params_main_active, a.params_mtp_total]
    assert list(bars[3].y) == [None] and list(bars[5].y) == [1280]
    assert sum(b.showlegend for b in bars) == 2 and fig.layout.height
