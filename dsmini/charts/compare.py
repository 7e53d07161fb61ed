"""Two checkpoints' sizes, losses and cache costs as bars (from probes.compare.ModelFacts)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsmini.i18n import t
from dsmini.probes.compare import ModelFacts

from .common import rounded

A_COLOR, B_COLOR = "#1f77b4", "#ff7f0e"


def compare_figure(a: ModelFacts, b: ModelFacts, label_a: str, label_b: str, lang: str = "en") -> go.Figure:
    """Three panels, model A and model B side by side in each: parameters (main total, main active
    per char, MTP total), val loss (last evaluation; no bar if unknown), KV-cache bytes per token.
    Separate panels because the three scales differ by orders of magnitude."""
    panels = [
        (t("chart.cmp.params", lang), [
            (t("chart.cmp.main_total", lang), "params_main_total"),
            (t("chart.cmp.main_active", lang), "params_main_active"),
            (t("chart.cmp.mtp_total", lang), "params_mtp_total"),
        ]),
        (t("chart.cmp.val_loss", lang), [(t("chart.cmp.val_loss", lang), "val_loss")]),
        (t("chart.cmp.cache_bytes", lang), [(t("chart.cmp.cache_bytes", lang), "cache_bytes_per_token")]),
    ]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for title, _ in panels],
                        column_widths=[0.5, 0.25, 0.25], horizontal_spacing=0.08)
    for col, (_, bars) in enumerate(panels, start=1):
        for label, facts, color in ((label_a, a, A_COLOR), (label_b, b, B_COLOR)):
            values = [getattr(facts, field) for _, field in bars]
            fig.add_trace(go.Bar(
                name=label, legendgroup=label, showlegend=col == 1, marker_color=color,
                x=[name for name, _ in bars], y=[rounded(v) if v is not None else None for v in values],
                text=[f"{v:,.3f}".rstrip("0").rstrip(".") if v is not None else "—" for v in values],
                textposition="outside", cliponaxis=False, hovertemplate=f"{label}<br>%{{x}}: %{{y:,}}<extra></extra>",
            ), row=1, col=col)
    fig.update_layout(
        title=t("chart.cmp.title", lang, a=label_a, b=label_b), barmode="group",
        legend=dict(orientation="h", yanchor="bottom", y=1.12, x=1, xanchor="right"),
        height=380, margin=dict(l=10, r=10, t=100, b=40),
    )
    return fig
