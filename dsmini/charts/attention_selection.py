"""What each query was allowed to see, for the sparse types (DSA, MoBA, log-linear; dsmini.model.sparse_attention).

One head of one layer, two panels side by side, query on rows and key on columns as in
dsmini.charts.attention: left its softmax weights, right the selection itself coloured by kind
(DSA: a top-k pick; MoBA: a chosen block or the query's own; log-linear: the Fenwick level, fine
levels token by token, coarser ones pooled). On both, earlier keys the query could *not* see are
grey and each run of same-kind cells in a row is outlined, so a MoBA block or a Fenwick bucket reads
as one box.
"""

from __future__ import annotations

import plotly.graph_objects as go

from dsmini.i18n import t
from dsmini.probes.attention import AttentionTrace

from .attention import _char_axes, _heatmap, _pairs
from .common import on_subplot, subplot_layout

EXCLUDED_COLOR = "#d9d9d9"
OUTLINE_COLOR = "#222222"
KIND_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def _kind_labels(trace: AttentionTrace, lang: str) -> list[str]:
    """The legend of the right panel: one label per kind value of `AttentionTrace.selection_map`."""
    if trace.levels is not None:
        n_levels = 1 + max(level for layer in trace.levels for row in layer for level in row)
        return [
            t("chart.selection.level_fine" if level < trace.fine_levels else "chart.selection.level_pooled", lang,
              level=level, size=max(1, 2 ** (level - 1)))
            for level in range(n_levels)
        ]
    if trace.moba_block_size is not None:
        return [t("chart.selection.moba_chosen", lang), t("chart.selection.moba_own", lang)]
    return [t("chart.selection.dsa_pick", lang)]


def _runs(row: list[int | None]) -> list[tuple[int, int]]:
    """(first, last) key of each run of equal, not-None kinds in one query's row."""
    runs, start = [], None
    for k, kind in enumerate(row + [None]):
        if start is not None and kind != row[start]:
            runs.append((start, k - 1))
            start = None
        if start is None and kind is not None:
            start = k
    return runs


def _outlines(selection: list[list[int | None]], subplots: tuple[int, ...]) -> list[dict]:
    """A rectangle around every run, on each of the subplots."""
    shapes = []
    for q, row in enumerate(selection):
        for first, last in _runs(row):
            for i in subplots:
                axes = on_subplot(i)
                shapes.append(dict(
                    type="rect", xref=axes["xaxis"], yref=axes["yaxis"], x0=first - 0.5, x1=last + 0.5,
                    y0=q - 0.5, y1=q + 0.5, line=dict(color=OUTLINE_COLOR, width=1.5), fillcolor="rgba(0,0,0,0)",
                ))
    return shapes


def _excluded(selection: list[list[int | None]], labels: list[str], lang: str, subplot: int) -> go.Heatmap:
    """Grey cells for the earlier keys left out of the selection (later keys stay empty)."""
    z = [[1 if kind is None and k <= q else None for k, kind in enumerate(row)] for q, row in enumerate(selection)]
    n = len(labels)
    return go.Heatmap(
        z=z, x=list(range(n)), y=list(range(n)), colorscale=[[0, EXCLUDED_COLOR], [1, EXCLUDED_COLOR]],
        showscale=False, hovertext=_pairs(labels), xgap=1, ygap=1, **on_subplot(subplot),
        hovertemplate=f"%{{hovertext}}<br>{t('chart.selection.excluded', lang)}<extra></extra>",
    )


def _kinds(selection: list[list[int | None]], labels: list[str], names: list[str]) -> go.Heatmap:
    """The right panel: each seen cell coloured by its kind, a discrete colour bar naming them."""
    n, m = len(labels), len(names)
    colors = [KIND_COLORS[i % len(KIND_COLORS)] for i in range(m)]
    scale = [step for i, c in enumerate(colors) for step in ([i / m, c], [(i + 1) / m, c])]
    pairs = _pairs(labels)
    hover = [[f"{pairs[q][k]}<br>{names[kind]}" if kind is not None else "" for k, kind in enumerate(row)]
             for q, row in enumerate(selection)]
    return go.Heatmap(
        z=selection, x=list(range(n)), y=list(range(n)), zmin=-0.5, zmax=m - 0.5, colorscale=scale,
        colorbar=dict(tickvals=list(range(m)), ticktext=names, x=1.02, len=0.9), hovertext=hover,
        hovertemplate="%{hovertext}<extra></extra>", xgap=1, ygap=1, **on_subplot(2),
    )


def selection_figure(trace: AttentionTrace, layer: int, head: int, lang: str = "en") -> go.Figure:
    """One head's weights (left) and what each of its queries was allowed to see (right)."""
    if not (0 <= layer < trace.n_layers and 0 <= head < trace.n_heads):
        raise ValueError(f"layer must be in [0, {trace.n_layers - 1}] and head in [0, {trace.n_heads - 1}]")
    selection, labels = trace.selection_map(layer, head), trace.labels
    titles = [t("chart.selection.weights", lang), t("chart.selection.kinds", lang)]
    layout = subplot_layout(rows=1, cols=2, shared_yaxes=True, subplot_titles=titles, horizontal_spacing=0.12)
    weight = t("chart.attention.weight", lang)
    probs = [[p if kind is not None else float("nan") for p, kind in zip(row, kinds)]
             for row, kinds in zip(trace.probs[layer][head], selection)]
    data = [
        _heatmap(probs, labels, _pairs(labels), weight, titles[0], **on_subplot(1)),
        _excluded(selection, labels, lang, 1),
        _excluded(selection, labels, lang, 2),
        _kinds(selection, labels, _kind_labels(trace, lang)),
    ]
    layout.update(
        title=t("chart.selection.title", lang, layer=layer, head=head, kind=trace.attn_type.upper()),
        coloraxis=dict(colorscale="Blues", cmin=0, cmax=1, colorbar=dict(title=weight, x=0.44, len=0.9)),
        shapes=_outlines(selection, (1, 2)), height=420, margin=dict(l=10, r=10, t=80, b=20),
    )
    return go.Figure(data=data, layout=_char_axes(layout, labels))
