"""AppTest for the Experts page: both shipped checkpoints, both languages, its widgets, and the
checkpoints it cannot analyse fully (dense FFN, MHA attention, a corpus that is not stored)."""

import json

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dsmini.checkpoint import save_checkpoint
from dsmini.config import preset
from dsmini.i18n import t
from dsmini.model import DSMini
from pages import _ui as ui

APP = "../app.py"  # relative to this file
N_CHARTS = 6  # letters, positions, load, specialisation, one expert's profile, ablation


@pytest.fixture
def at():
    return AppTest.from_file(APP, default_timeout=90)


def charts(app) -> list[dict]:
    return [json.loads(c.proto.spec) for c in app.get("plotly_chart")]


def no_errors(app) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def open_page(app, checkpoint: str, lang: str):
    app.session_state["lang"] = lang
    app.session_state["checkpoint"] = checkpoint
    app.run()
    app.switch_page("pages/experts.py").run()
    no_errors(app)
    return app


def traces(figure: dict, kind: str) -> list[dict]:
    return [trace for trace in figure["data"] if trace["type"] == kind]


@pytest.mark.parametrize(("checkpoint", "lang"), [("en-names", "en"), ("ru-names", "ru")])
def test_experts_page_charts(at, checkpoint, lang):
    open_page(at, checkpoint, lang)
    cfg = ui.load_by_name(checkpoint).model_config
    n_moe, n_exp = cfg.n_layers - cfg.n_dense_layers, cfg.n_routed_experts
    assert at.title[0].value == t("experts.title", lang)
    figures = charts(at)
    assert len(figures) == N_CHARTS
    letters, positions, load, mi, profile, ablation = figures
    maps = traces(letters, "heatmap")
    assert len(maps) == n_moe
    n_letters = len(letters["layout"]["yaxis"]["ticktext"])
    assert letters["layout"]["yaxis"]["ticktext"][0] == "|" and n_letters > 26
    for heatmap in maps:
        assert len(heatmap["z"]) == n_letters and all(len(row) == n_exp for row in heatmap["z"])
        assert all(abs(sum(row) - 1) < 0.01 for row in heatmap["z"])
    assert [len(h["z"]) for h in traces(positions, "heatmap")] == [4] * n_moe
    assert [len(bar["y"]) for bar in traces(load, "bar")] == [n_exp] * n_moe
    trained, initial = traces(mi, "bar")
    assert len(trained["y"]) == len(initial["y"]) == n_moe
    assert all(0 < bits <= 2 for bits in trained["y"] + initial["y"])  # ceiling log2(8 / 2) = 2 bits
    assert len(traces(profile, "bar")) == 2
    deltas = traces(ablation, "bar")[0]["y"]
    assert deltas == sorted(deltas, reverse=True)
    chosen = next(m for m in at.metric if m.label == t("experts.m_chosen", lang))
    assert chosen.value == "0"  # the switched-off expert is never chosen


def test_experts_page_widgets(at):
    """Pick another expert, the top-1 view and the last layer (en-names: each pick reruns the ablation)."""
    open_page(at, "en-names", "en")
    ckpt = ui.load_by_name("en-names")
    last = ckpt.model_config.n_layers - 1
    at.pills(key="experts_expert").set_value(5).run()
    at.segmented_control(key="experts_view").set_value("top1").run()
    at.selectbox(key="experts_layer").set_value(last).run()
    no_errors(at)
    figures = charts(at)
    assert len(figures) == N_CHARTS
    assert figures[0]["layout"]["title"]["text"] == t("chart.experts.letters_title_top1", "en", k=2)
    n_val = ckpt.corpus["n_val"]  # 516 < MAX_NAMES: all of them
    sample = t("experts.sample", "en", n=n_val, corpus="en-names", seed=42, tokens="#").split("#")[0]
    assert any(c.value.startswith(sample) for c in at.caption)
    assert figures[0]["layout"]["coloraxis"]["cmax"] == 1.0  # top-1: a letter can go wholly to one expert
    picked = f"Expert 5 of {t('chart.layer', 'en', layer=last)}"
    assert figures[4]["layout"]["title"]["text"].startswith(picked)  # the profile
    assert figures[5]["layout"]["title"]["text"].startswith(picked + " off")  # the ablation
    assert next(m for m in at.metric if m.label == t("experts.m_chosen", "en")).value == "0"


def _save(root, name, corpus, **overrides):
    tokenizer = ui.load_by_name("en-names").tokenizer
    torch.manual_seed(0)
    model = DSMini(preset("tiny", vocab_size=tokenizer.vocab_size, block_size=12, **overrides))
    save_checkpoint(root, name, model, tokenizer, corpus=corpus)


def test_experts_page_dense_mha_and_missing_corpus(at, tmp_path, monkeypatch):
    en = {"name": "en-names", "split_seed": 42, "block_size": 12}
    _save(tmp_path, "dense", en, ffn_type="dense")
    _save(tmp_path, "mha", en, attn_type="mha")
    _save(tmp_path, "upload", {"name": "my-names.txt", "split_seed": 42, "block_size": 12})
    monkeypatch.setattr(ui, "CHECKPOINTS", tmp_path)
    open_page(at, "dense", "ru")
    assert not charts(at) and at.info[0].value == t("chart.no_moe", "ru")
    at.session_state["checkpoint"] = "mha"  # AppTest drops the sidebar after switch_page: set the picker's key
    at.run()
    no_errors(at)
    assert len(charts(at)) == N_CHARTS
    at.session_state["checkpoint"] = "upload"
    at.run()
    no_errors(at)
    assert not charts(at) and "my-names.txt" in at.info[0].value
