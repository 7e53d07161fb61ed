"""Shared pieces of the figure builders: colours, rounding, the empty-state figure, char axes."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..i18n import t

# (outline, fill) per kind of block in the architecture diagram
COLORS = {
    "io": ("#7f7f7f", "rgba(127,127,127,0.10)"),
    "attn": ("#1f77b4", "rgba(31,119,180,0.12)"),
    "moe": ("#ff7f0e", "rgba(255,127,14,0.14)"),
    "dense": ("#8c8c8c", "rgba(140,140,140,0.14)"),
    "group": ("#bbbbbb", "rgba(0,0,0,0)"),
    "mtp": ("#9467bd", "rgba(148,103,189,0.14)"),
}
ACTUAL_COLOR, OTHER_COLOR = "#d62728", "#9ecae1"


def show_char(char: str) -> str:
    """A character as drawn on an axis: a space would be an invisible tick."""
    return "␣" if char == " " else char


def rounded(x: float) -> float:
    return round(float(x), 3)


def message_figure(text: str, height: int = 160) -> go.Figure:
    """The empty state: a figure that says why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=14))
    fig.update_layout(height=height, xaxis_visible=False, yaxis_visible=False, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def layer_label(layer: int, n_layers: int | None, lang: str) -> str:
    """'layer 2' for a main block, 'MTP depth 1' for block n_layers (ids as in the code, from 0)."""
    if n_layers is not None and layer >= n_layers:
        return t("chart.layer_mtp", lang, depth=layer - n_layers + 1)
    return t("chart.layer", lang, layer=layer)


def char_axis(labels: list[str]) -> dict[str, Any]:
    """Positions as x values with the characters as tick text (duplicates stay distinct)."""
    return dict(tickmode="array", tickvals=list(range(len(labels))), ticktext=[show_char(c) for c in labels])
