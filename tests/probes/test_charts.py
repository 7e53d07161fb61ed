"""Charts: figures built from plain data have the data's shape, localised titles, and empty states
(the string catalogue itself: tests/test_i18n.py)."""


import plotly.graph_objects as go
import pytest

from dsmini import charts
from dsmini.charts.common import ACTUAL_COLOR
from dsmini.charts.training import MAX_LINE_POINTS
from dsmini.config import preset
from dsmini.data import CharTokenizer
from dsmini.i18n import t
from dsmini.model import DSMini, cache_values_per_token
from dsmini.probes import expert_load_history, loss_curves, trace_name
from tests.helpers import MIXED_NAMES as NAMES
from tests.helpers import tiny_model


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_names(NAMES)


@pytest.fixture(scope="module")
def trace(tok):
    return trace_name(tiny_model(tok, n_layers=3), tok, "анна")  # 2 MoE layers


@pytest.fixture(scope="module")
def dense_trace(tok):
    cfg = preset("tiny", vocab_size=tok.vocab_size, block_size=12, ffn_type="dense")
    return trace_name(DSMini(cfg), tok, "анна")


@pytest.mark.parametrize(
    "overrides",
    [{}, {"attn_type": "mha"}, {"attn_type": "gqa"}, {"attn_type": "mqa", "mtp_depth": 0},
     {"ffn_type": "dense", "mtp_depth": 2}, {"n_dense_layers": 0}],
)
def test_architecture_figure(overrides):
    cfg = preset("small", **overrides)
    fig = charts.architecture_figure(cfg)
    assert isinstance(fig, go.Figure) and fig.layout.height == 350
    texts = " ".join(a.text for a in fig.layout.annotations)
    if cfg.attn_type == "mla":
        assert "c_kv 32 + k_rope 8" in texts
    else:
        assert cfg.attn_type.upper() in texts
    if cfg.ffn_type == "moe":
        assert "1 shared + 8 routed" in texts and "top-2" in texts
    assert ("MTP ×" in texts) == (cfg.mtp_depth > 0)
    assert str(cache_values_per_token(cfg)) in fig.layout.title.text
    ru = charts.architecture_figure(cfg, lang="ru")
    assert t("chart.arch.title", "ru") in ru.layout.title.text


def test_architecture_shows_dense_then_moe_runs():
    texts = " ".join(a.text for a in charts.architecture_figure(preset("small")).layout.annotations)
    assert "layer 0 (×1) · dense" in texts and "layers 1–3 (×3) · MoE" in texts


def test_routing_figure_shapes(trace):
    fig = charts.routing_figure(trace)
    n_pos, n_rows = len(trace.labels), trace.n_routed_experts + trace.n_shared_experts
    assert len(fig.data) == len(trace.layers) == 2
    for heatmap, layer in zip(fig.data, trace.layers):
        assert len(heatmap.z) == n_rows and all(len(row) == n_pos for row in heatmap.z)
        assert list(heatmap.z[0]) == [1.0] * n_pos  # shared experts: always on
        for i in range(n_pos):
            column = [heatmap.z[r][i] for r in range(1, n_rows)]
            assert sum(w > 0 for w in column) == trace.top_k
            assert [heatmap.z[e + 1][i] for e in trace.experts[layer][i]] == [
                round(w, 3) for w in trace.gate_weights[layer][i]
            ]
    assert list(fig.layout.xaxis.ticktext) == trace.labels  # both "н" kept, at distinct positions
    assert list(fig.layout.xaxis.tickvals) == list(range(n_pos))
    assert fig.layout.yaxis.ticktext[0] == "shared ×1 (always on)"
    assert fig.layout.height > 0 and "top-2 of 4" in fig.layout.title.text
    ru = charts.routing_figure(trace, lang="ru")
    assert ru.layout.title.text == t("chart.routing.title", "ru", k=2, n=4)


def test_next_char_figure(trace):
    for position in range(len(trace.labels)):
        fig = charts.next_char_figure(trace, position)
        bar = fig.data[0]
        actual, _ = trace.next_actual[position]
        chars = list(fig.layout.yaxis.ticktext)
        assert chars[:5] == [c for c, _ in trace.next_top[position]] and actual in chars
        assert [col == ACTUAL_COLOR for col in bar.marker.color] == [c == actual for c in chars]
        assert all(x == round(x, 3) for x in bar.x)
    assert "После «|ан»" in charts.next_char_figure(trace, 2, lang="ru").layout.title.text
    with pytest.raises(ValueError):
        charts.next_char_figure(trace, len(trace.labels))


def test_next_char_heatmap(trace):
    fig = charts.next_char_heatmap(trace)
    heatmap = fig.data[0]
    assert len(heatmap.z) == 5 and all(len(row) == len(trace.labels) for row in heatmap.z)
    assert [heatmap.text[0][i].replace("<b>", "").replace("</b>", "") for i in range(len(trace.labels))] == [
        top[0][0] for top in trace.next_top
    ]
    assert list(fig.layout.xaxis.ticktext) == trace.labels
    assert charts.next_char_heatmap(trace, "ru").layout.title.text == t("chart.next.heatmap_title", "ru")


def test_dense_model_has_empty_routing_state(dense_trace):
    fig = charts.routing_figure(dense_trace, lang="ru")
    assert len(fig.data) == 0 and fig.layout.annotations[0].text == t("chart.no_moe", "ru")
    assert len(charts.next_char_heatmap(dense_trace).data) == 1  # next-char charts still work


def _history(steps):
    return [{"step": s, "expert_load": [[s, 1, 1, 2], [3, 3, 1, 1]]} for s in range(1, steps + 1)]


def test_expert_load_figures():
    load = expert_load_history(_history(3), preset("tiny"))
    bars = charts.expert_load_bars(load)
    assert [b.name for b in bars.data] == ["layer 1", "MTP depth 1"]
    assert list(bars.data[0].y) == [0.429, 0.143, 0.143, 0.286] and list(bars.data[0].x) == [0, 1, 2, 3]
    assert bars.layout.shapes[0].y0 == 0.25 and "step 3" in bars.layout.title.text
    lines = charts.imbalance_figure(load, lang="ru")
    assert list(lines.data[0].x) == [1, 2, 3] and lines.data[0].y[-1] == round(4 * 3 / 7, 3)
    assert lines.layout.title.text == t("chart.imbalance.title", "ru")
    unnamed = charts.expert_load_bars(expert_load_history(_history(1)))
    assert [b.name for b in unnamed.data] == ["MoE layer #1", "MoE layer #2"]


def test_expert_load_figures_empty_and_long():
    empty = expert_load_history([{"step": 1, "expert_load": []}])
    assert charts.expert_load_bars(empty).layout.annotations[0].text == t("chart.no_steps")
    assert len(charts.imbalance_figure(empty, "ru").data) == 0
    long = charts.imbalance_figure(expert_load_history(_history(1001)))
    xs = list(long.data[0].x)
    assert len(xs) <= MAX_LINE_POINTS + 1 and xs[0] == 1 and xs[-1] == 1001



def test_loss_and_length_figures():
    curves = loss_curves([{"step": s, "main_loss": 3 - s / 1000, "val_loss": 2.5 if s % 500 == 0 else None}
                          for s in range(1, 2001)], "ru")
    fig = charts.loss_figure(curves, "ru")
    assert [trace.name for trace in fig.data] == [t("chart.loss.train", "ru"), t("chart.loss.val", "ru")]
    train, val = fig.data
    assert len(train.x) <= MAX_LINE_POINTS + 1 and train.x[0] == 1 and train.x[-1] == 2000 and train.y[-1] == 1.0
    assert list(val.x) == [500, 1000, 1500, 2000]  # a sparse curve keeps every point
    assert fig.layout.yaxis.title.text == t("train.nats", "ru") and fig.layout.uirevision == "loss"
    assert charts.loss_figure({}, "ru").layout.annotations[0].text == t("chart.loss.none", "ru")
    lengths = charts.length_figure({2: 5, 3: 7, 9: 1}, "ru")
    assert list(lengths.data[0].x) == [2, 3, 9] and list(lengths.data[0].y) == [5, 7, 1]
    assert lengths.layout.xaxis.title.text == t("train.length", "ru")

def test_for_display_scales_fonts_and_sets_number_marks_without_touching_the_shared_figure():
    from dsmini.charts.common import for_display

    fig = charts.architecture_figure(preset("small"), "ru")
    before = fig.to_plotly_json()
    assert for_display(fig, "en") is fig  # nothing to change: no copy
    big = for_display(fig, "ru", 1.5)
    assert big.layout.separators == ",\u202f" and big.layout.font.size == 18
    sized = [a.font.size for a in fig.layout.annotations if a.font.size]
    assert sized and [a.font.size for a in big.layout.annotations if a.font.size] == [round(s * 1.5) for s in sized]
    assert big.layout.height > fig.layout.height
    assert fig.to_plotly_json() == before  # the shared figure is as built
