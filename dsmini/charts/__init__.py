"""Plotly figure builders: plain data (a config, a trace, a history) -> go.Figure.

Pure functions: no streamlit, no torch, no model, so each figure is testable without a browser.
Titles and axis labels come from `i18n.t`, so one builder serves English and Russian. Values
are rounded to 3 decimals and maps kept small: the figure's JSON is what the browser downloads
on every rerun. Heatmaps are `go.Heatmap` (far cheaper than px.imshow). Characters sit on the
x axis by *position* with the character as tick text, so the two "н" of "Анна" stay apart.
"""

from .architecture import architecture_figure
from .routing import next_char_figure, next_char_heatmap, routing_figure
from .training import domain_mi_curve, expert_load_bars, imbalance_figure, length_figure, loss_figure

__all__ = [
    "architecture_figure",
    "domain_mi_curve",
    "expert_load_bars",
    "imbalance_figure",
    "length_figure",
    "loss_figure",
    "next_char_figure",
    "next_char_heatmap",
    "routing_figure",
]
