"""Shared pieces of the figure builders: colours, rounding, the empty-state figure, char axes."""

from __future__ import annotations

import copy
import functools
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsmini.i18n import plotly_separators, t

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


def subplot_layout(**grid) -> dict:
    """make_subplots' layout (axis domains, subplot titles, shared axes) as a plain dict, a fresh copy to edit.

    Figures with subplots are then built once from dicts (traces placed with `on_subplot`): per-subplot
    `add_trace`/`update_xaxes` calls re-validate the whole figure each time and made a 4 x 5 grid five
    times slower. The layout depends only on the grid, so it is made once per grid: make_subplots was
    the largest cost of a page run when 30 sessions opened Attention or Experts at once (BENCHMARKS).
    """
    key = tuple(sorted((name, tuple(v) if isinstance(v, list) else v) for name, v in grid.items()))
    return copy.deepcopy(_grid_layout(key))


@functools.lru_cache(maxsize=64)
def _grid_layout(grid: tuple) -> dict:
    return make_subplots(**{name: list(v) if isinstance(v, tuple) else v for name, v in grid}).layout.to_plotly_json()


def on_subplot(i: int) -> dict[str, str]:
    """Axis references of subplot i (1-based, row by row): x/y for the first, x{i}/y{i} after."""
    suffix = str(i) if i > 1 else ""
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


BASE_FONT_SIZE = 12  # Plotly's default, which every figure here inherits unless it sets its own


def for_display(fig: go.Figure, lang: str, scale: float = 1.0) -> go.Figure:
    """`fig` as a session shows it: the language's number marks on ticks and hover numbers
    (`layout.separators`), and every font scaled by `scale` (the sidebar's large-text switch, for a
    projector). The one place every figure passes through on its way to the page (pages/_ui.py).

    Returns `fig` itself when nothing changes; else a copy, so a figure shared by sessions stays as built.
    """
    separators = plotly_separators(lang)
    if scale == 1.0 and separators == plotly_separators("en"):
        return fig
    shown = go.Figure(fig)
    shown.update_layout(separators=separators)
    if scale != 1.0:
        _scale_fonts(shown, scale)
    return shown


def _scale_fonts(fig: go.Figure, scale: float) -> None:
    layout = fig.layout
    layout.font.size = round((layout.font.size or BASE_FONT_SIZE) * scale)
    for font in _explicit_fonts(fig):
        font.size = round(font.size * scale)
    if layout.height:  # bigger text needs more room; the width follows the page
        layout.height = round(layout.height * (1 + (scale - 1) / 2))


def _explicit_fonts(fig: go.Figure):
    """The fonts a figure sized itself (titles, annotations, axis ticks, trace text); the rest inherit."""
    layout = fig.layout
    candidates = [layout.title.font, layout.legend.font, *(a.font for a in layout.annotations)]
    for axis in [*fig.select_xaxes(), *fig.select_yaxes()]:
        candidates += [axis.tickfont, axis.title.font]
    for trace in fig.data:
        candidates += [getattr(trace, name) for name in ("textfont", "insidetextfont", "outsidetextfont")
                       if hasattr(trace, name)]
    return [font for font in candidates if font is not None and font.size]
