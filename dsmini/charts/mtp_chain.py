"""Chained MTP drafts (from probes.mtp): acceptance per draft depth beside the characters each main
pass gives, and the measured wall-clock speed-up of each chain depth beside the ceiling its
measured pass costs allow."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsmini.i18n import t
from dsmini.probes.mtp import V3_ACCEPTANCE, DraftStats, SpeedView, Tally

from .common import rounded
from .mtp import BAND_COLOR, BAND_LINE, GREEDY_COLOR, SAMPLED_COLOR

PLAIN_COLOR, MEASURED_COLOR, CEILING_COLOR, BOUND_COLOR = "#bdbdbd", "#2ca02c", "#9467bd", "#d9d9d9"


def _depth_bars(name: str, color: str, depths: list[int], stats: DraftStats, lang: str) -> go.Bar:
    cells = [stats.by_depth.get(k, Tally()) for k in depths]
    return go.Bar(
        name=name, x=[t("mtp.chain.depth_tick", lang, depth=k) for k in depths],
        y=[rounded(c.rate) if c.proposed else None for c in cells], marker_color=color,
        text=[f"{c.accepted}/{c.proposed}" if c.proposed else "" for c in cells], textposition="outside",
        cliponaxis=False, legendgroup=name,
    )


def chain_figure(chains: tuple[DraftStats, ...], sampled: DraftStats, temperature: float,
                 lang: str = "en") -> go.Figure:
    """Left: acceptance of the drafts of each depth (greedy and sampled, with the full chain), over
    DeepSeek-V3's 85–90% band. Right: generated characters per main-model pass, plain decoding (1)
    beside drafting up to k = 1 .. D characters a round (greedy)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        t("mtp.chain.acceptance_title", lang), t("mtp.chain.cpf_title", lang)))
    depths = sorted({k for stats in (chains[-1], sampled) for k in stats.by_depth}) or [1]
    fig.add_trace(_depth_bars(t("chart.mtp.greedy", lang), GREEDY_COLOR, depths, chains[-1], lang), row=1, col=1)
    fig.add_trace(_depth_bars(t("chart.mtp.sampled", lang, temperature=rounded(temperature)), SAMPLED_COLOR, depths,
                              sampled, lang), row=1, col=1)
    low, high = V3_ACCEPTANCE
    fig.add_hrect(y0=low, y1=high, fillcolor=BAND_COLOR, line=dict(color=BAND_LINE, width=1, dash="dot"), layer="above",
                  row=1, col=1)
    labels = [t("mtp.chain.plain", lang)] + [t("mtp.chain.chain_tick", lang, depth=k)
                                             for k in range(1, len(chains) + 1)]
    values = [1.0] + [rounded(stats.chars_per_forward) for stats in chains]
    fig.add_trace(go.Bar(x=labels, y=values, marker_color=[PLAIN_COLOR] + [GREEDY_COLOR] * len(chains),
                         text=[f"{v:.2f}" for v in values], textposition="outside", cliponaxis=False, showlegend=False),
                  row=1, col=2)
    fig.update_yaxes(title=t("chart.mtp.acceptance", lang), range=[0, 1.15], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(title=t("mtp.chain.cpf_axis", lang), range=[0, max(values) * 1.2], row=1, col=2)
    fig.update_layout(barmode="group", height=360, margin=dict(l=10, r=10, t=80, b=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.08, x=1, xanchor="right"))
    return fig


def speed_figure(speed: SpeedView, lang: str = "en") -> go.Figure:
    """Per chain depth: the measured wall-clock speed-up over plain greedy, the ceiling the measured
    pass costs allow with the measured drafts, and the bound if verifying and drafting were free."""
    labels = [t("mtp.chain.chain_tick", lang, depth=c.depth) for c in speed.ceilings]
    series = (
        (t("mtp.chain.measured", lang), MEASURED_COLOR, [speed.report.speedup_at(c.depth) for c in speed.ceilings]),
        (t("mtp.chain.ceiling", lang), CEILING_COLOR, [c.ceiling for c in speed.ceilings]),
        (t("mtp.chain.bound", lang), BOUND_COLOR, [c.bound for c in speed.ceilings]),
    )
    fig = go.Figure([
        go.Bar(name=name, x=labels, y=[rounded(v) for v in values], marker_color=color,
               text=[f"{v:.2f}×" for v in values], textposition="outside", cliponaxis=False)
        for name, color, values in series
    ])
    fig.add_hline(y=1.0, line=dict(color="#636363", width=1, dash="dot"))
    top = max(v for _, _, values in series for v in values)
    fig.update_layout(
        title=t("mtp.chain.speed_title", lang), barmode="group",
        yaxis=dict(title=t("mtp.chain.speed_axis", lang), range=[0, top * 1.2]),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right"),
        height=340, margin=dict(l=10, r=10, t=80, b=40),
    )
    return fig
