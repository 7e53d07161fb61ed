"""What the Train page draws: the corpus's name lengths, the live loss curves, expert load and
I(domain; expert) during training (from probes.training: corpus_view, loss_curves, expert_load_history,
domain_mi_history).

All Plotly, like every other chart of the app, so the large-text switch and the language's number marks
reach them (charts.common.for_display). The live ones are redrawn every second with the same layout and
`uirevision`, which Plotly updates in place, keeping the user's zoom. (Streamlit's st.line_chart names
its Vega-Lite dataset after a hash of the data, so every redraw of a growing frame rebuilt the chart
from an empty dataset: two "Infinite extent" warnings in the browser console per second of training.)
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from dsmini.i18n import t

from .common import OTHER_COLOR, layer_label, message_figure, rounded
from .experts import INITIAL_COLOR

MAX_LINE_POINTS = 400  # loss and imbalance curves: more points add bytes, not information


# Expert load during training (from probes.expert_load_history)


def _load_layer_names(load_history: dict[str, Any], lang: str) -> list[str]:
    layers = load_history["layers"]
    if layers is None:
        return [t("chart.moe_layer_n", lang, n=j + 1) for j in range(len(load_history["share"]))]
    return [layer_label(layer, load_history["n_layers"], lang) for layer in layers]


def expert_load_bars(load_history: dict[str, Any], lang: str = "en") -> go.Figure:
    """The latest step's share of assignments per routed expert, grouped by MoE layer, against
    the dashed uniform line 1/E that a perfectly balanced router would sit on."""
    if not load_history["steps"] or not load_history["share"]:
        return message_figure(t("chart.no_steps", lang))
    n_exp = len(load_history["share"][0][-1])
    fig = go.Figure([
        go.Bar(x=list(range(n_exp)), y=[rounded(s) for s in share[-1]], name=name)
        for name, share in zip(_load_layer_names(load_history, lang), load_history["share"])
    ])
    fig.add_hline(
        y=rounded(1 / n_exp), line_dash="dash", line_color="#555555",
        annotation_text=t("chart.load.uniform", lang, n=n_exp), annotation_position="top right",
    )
    fig.update_layout(
        title=t("chart.load.title", lang, step=load_history["steps"][-1]), barmode="group",
        xaxis=dict(title=t("chart.load.expert", lang), tickmode="linear", dtick=1),
        yaxis=dict(title=t("chart.load.y", lang), rangemode="tozero"),
        height=320, margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.25),
    )
    return fig


def _thin(n: int, limit: int = MAX_LINE_POINTS) -> list[int]:
    """At most `limit` evenly spaced indices of range(n), always keeping the last (the live value)."""
    if n <= limit:
        return list(range(n))
    stride = -(-n // limit)  # ceil
    keep = list(range(0, n, stride))
    return keep if keep[-1] == n - 1 else keep + [n - 1]


def length_figure(length_hist: dict[int, int], lang: str = "en") -> go.Figure:
    """How many names of each length the corpus has (`CorpusStats.length_hist`)."""
    fig = go.Figure(go.Bar(x=list(length_hist), y=list(length_hist.values()), marker_color=OTHER_COLOR,
                           hovertemplate="%{x}: %{y}<extra></extra>"))
    fig.update_layout(
        xaxis=dict(title=t("train.length", lang), tickmode="linear", dtick=1),
        yaxis=dict(title=t("train.n_names", lang)), height=200, margin=dict(l=10, r=10, t=10, b=40),
    )
    return fig


def loss_figure(curves: dict[str, tuple[list[int], list[float]]], lang: str = "en") -> go.Figure:
    """The live loss curves (probes.loss_curves), each thinned to MAX_LINE_POINTS with its latest value kept."""
    if not curves:
        return message_figure(t("chart.loss.none", lang))
    traces = []
    for name, (steps, values) in curves.items():
        keep = _thin(len(steps))
        traces.append(go.Scatter(x=[steps[i] for i in keep], y=[rounded(values[i]) for i in keep], mode="lines",
                                 name=name, hovertemplate="%{x}: %{y}"))
    fig = go.Figure(traces)
    fig.update_layout(
        xaxis=dict(title=t("chart.step", lang)), yaxis=dict(title=t("train.nats", lang)),
        height=300, margin=dict(l=10, r=10, t=10, b=40), legend=dict(orientation="h", y=-0.3),
        uirevision="loss",  # a live redraw keeps the user's zoom
    )
    return fig


def imbalance_figure(load_history: dict[str, Any], lang: str = "en") -> go.Figure:
    """Max / mean expert load per MoE layer over training steps; 1.0 (dashed) is perfect balance."""
    if not load_history["steps"] or not load_history["share"]:
        return message_figure(t("chart.no_steps", lang))
    keep = _thin(len(load_history["steps"]))
    steps = [load_history["steps"][s] for s in keep]
    fig = go.Figure([
        go.Scatter(x=steps, y=[rounded(values[s]) for s in keep], mode="lines", name=name)
        for name, values in zip(_load_layer_names(load_history, lang), load_history["imbalance"])
    ])
    fig.add_hline(
        y=1.0, line_dash="dash", line_color="#555555",
        annotation_text=t("chart.imbalance.perfect", lang), annotation_position="bottom right",
    )
    fig.update_layout(
        title=t("chart.imbalance.title", lang),
        xaxis=dict(title=t("chart.step", lang)), yaxis=dict(title=t("chart.imbalance.y", lang), rangemode="tozero"),
        height=300, margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.3),
    )
    return fig


def domain_mi_curve(mi_history: dict[str, Any], lang: str = "en") -> go.Figure:
    """I(domain; expert) per main MoE layer over the eval steps, against the same model untrained
    (grey, dashed: the highest of its layers, so every trained line is read against the hardest bar)."""
    steps = mi_history["steps"]
    if not steps:
        return message_figure(t("chart.domain_mi.no_steps", lang))
    layers = mi_history["layers"] or [None] * len(mi_history["mi"])
    names = [t("chart.moe_layer_n", lang, n=j + 1) if layer is None else layer_label(layer, None, lang)
             for j, layer in enumerate(layers)]
    fig = go.Figure([
        go.Scatter(x=steps, y=[rounded(v) for v in values], mode="lines+markers", name=name)
        for name, values in zip(names, mi_history["mi"])
    ])
    fig.add_trace(go.Scatter(
        x=steps, y=[rounded(max(mi_history["initial"]))] * len(steps), mode="lines",
        name=t("chart.domain_mi.initial", lang),
        line=dict(color=INITIAL_COLOR, dash="dash"),
    ))
    fig.update_layout(
        title=t("chart.domain_mi.title", lang),
        xaxis=dict(title=t("chart.step", lang)), yaxis=dict(title=t("chart.experts.bits", lang), rangemode="tozero"),
        height=300, margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.3),
        uirevision="domain_mi",  # a live redraw keeps the user's zoom
    )
    return fig
