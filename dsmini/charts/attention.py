"""Attention maps for one traced name (from probes.attention.trace_attention).

Every map has the query (the character doing the looking) on rows, top to bottom, and the key
(the character looked at) on columns, both by position with the character as tick text, the
boundary "|" first. Future keys are masked: those cells are left empty, not drawn as 0, so
"not allowed to look" is visibly different from "chose not to look".
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

from dsmini.i18n import t
from dsmini.probes.attention import AttentionTrace

from .common import char_axis, message_figure, on_subplot, rounded, show_char, subplot_layout

TICK_FONT = dict(size=9)


def _causal(z: list[list[float]]) -> list[list[float | None]]:
    """Rounded values with the masked (future, or NaN) cells as gaps."""
    return [[None if k > q or math.isnan(v) else rounded(v) for k, v in enumerate(row)] for q, row in enumerate(z)]


def _pairs(labels: list[str]) -> list[list[str]]:
    """Hover text per cell: query char -> key char (the value is added by the hovertemplate)."""
    return [[f"“{show_char(q)}” → “{show_char(k)}”" for k in labels] for q in labels]


def _heatmap(z, labels: list[str], hover: list[list[str]], value_label: str, where: str, **axes) -> go.Heatmap:
    n = len(labels)
    return go.Heatmap(
        z=_causal(z), x=list(range(n)), y=list(range(n)), hovertext=hover, coloraxis="coloraxis",
        hovertemplate=f"%{{hovertext}}<br>{value_label}: %{{z}}<extra>{where}</extra>", xgap=1, ygap=1, **axes,
    )


def _char_axes(layout: dict, labels: list[str]) -> dict:
    """Characters as ticks on every x and y axis of a subplot layout (dict); queries top to bottom."""
    ticks = {**char_axis(labels), "tickfont": TICK_FONT}
    for key, axis in layout.items():
        if key.startswith("xaxis"):
            axis.update(ticks, tickangle=0)
        elif key.startswith("yaxis"):
            axis.update(ticks, autorange="reversed")
    return layout


def attention_grid_figure(trace: AttentionTrace, lang: str = "en") -> go.Figure:
    """Every layer (rows) × head (columns) of softmax attention, plus each layer's head average
    as the last column; one shared 0..1 colour scale."""
    n_layers, n_heads, labels = trace.n_layers, trace.n_heads, trace.labels
    columns = [t("chart.attention.head", lang, head=h) for h in range(n_heads)] + [t("chart.attention.mean", lang)]
    rows = [t("chart.layer", lang, layer=layer) for layer in range(n_layers)]
    layout = subplot_layout(
        rows=n_layers, cols=n_heads + 1, shared_xaxes=True, shared_yaxes=True, column_titles=columns,
        row_titles=rows, horizontal_spacing=0.1 / (n_heads + 1), vertical_spacing=0.12 / n_layers,
    )
    hover, weight = _pairs(labels), t("chart.attention.weight", lang)
    data = []
    for layer in range(n_layers):
        maps = trace.probs[layer] + [trace.head_average(layer)]
        for col, z in enumerate(maps):
            where = f"{rows[layer]}, {columns[col]}"
            data.append(_heatmap(z, labels, hover, weight, where, **on_subplot(layer * (n_heads + 1) + col + 1)))
    layout.update(
        title=t("chart.attention.grid_title", lang, name=trace.name, kind=trace.attn_type.upper()),
        coloraxis=dict(colorscale="Blues", cmin=0, cmax=1, colorbar=dict(title=weight)),
        height=90 + 190 * n_layers, margin=dict(l=10, r=10, t=80, b=20),
    )
    return go.Figure(data=data, layout=_char_axes(layout, labels))


def score_split_figure(trace: AttentionTrace, layer: int, head: int, lang: str = "en") -> go.Figure:
    """MLA: one head's pre-softmax scores side by side: total = content (nope) + position (RoPE).
    One diverging colour scale centred on 0, so the three maps are comparable cell by cell."""
    if not trace.has_split:
        return message_figure(t("chart.attention.no_split", lang, kind=trace.attn_type.upper()))
    if not (0 <= layer < trace.n_layers and 0 <= head < trace.n_heads):
        raise ValueError(f"layer must be in [0, {trace.n_layers - 1}] and head in [0, {trace.n_heads - 1}]")
    maps = [trace.scores(layer, head), trace.scores_nope[layer][head], trace.scores_rope[layer][head]]
    titles = [t(f"chart.attention.{part}", lang) for part in ("total", "content", "position")]
    layout = subplot_layout(rows=1, cols=3, shared_yaxes=True, subplot_titles=titles, horizontal_spacing=0.04)
    hover, score = _pairs(trace.labels), t("chart.attention.score", lang)
    data = [
        _heatmap(z, trace.labels, hover, score, title, **on_subplot(col))
        for col, (z, title) in enumerate(zip(maps, titles), start=1)
    ]
    limit = max((abs(v) for z in maps for row in _causal(z) for v in row if v is not None), default=1.0) or 1.0
    layout.update(
        title=t("chart.attention.split_title", lang, layer=layer, head=head),
        coloraxis=dict(colorscale="RdBu", reversescale=True, cmin=-limit, cmax=limit, colorbar=dict(title=score)),
        height=380, margin=dict(l=10, r=10, t=80, b=20),
    )
    return go.Figure(data=data, layout=_char_axes(layout, trace.labels))
