"""Routing and next-character beliefs for one traced name (from probes.routing.trace_name), and for
the steps of step-through decoding (probes.routing.step_once)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsmini.data import BOUNDARY_SYMBOL
from dsmini.i18n import fmt_num, t
from dsmini.probes.routing import DecodeStep, NameTrace

from .common import ACTUAL_COLOR, OTHER_COLOR, char_axis, message_figure, rounded, show_char

# Routing and next-character beliefs for one traced name


def _routing_layer(trace: NameTrace, layer: int, lang: str) -> tuple[list[str], go.Heatmap]:
    """One MoE layer as (row labels, heatmap): rows = [shared] + routed experts, columns = positions."""
    n_pos, n_exp = len(trace.labels), trace.n_routed_experts
    name = t("chart.layer", lang, layer=layer)
    z = [[0.0] * n_pos for _ in range(n_exp)]
    text = [[""] * n_pos for _ in range(n_exp)]
    for i in range(n_pos):
        for e, w in zip(trace.experts[layer][i], trace.gate_weights[layer][i]):
            z[e][i], text[e][i] = rounded(w), f"{w:.2f}"
    hover = [
        [
            t(
                "chart.routing.hover", lang, char=show_char(trace.labels[i]), pos=i, layer=name,
                expert=t("chart.routing.expert", lang, expert=e), weight=rounded(z[e][i]),
                prob=rounded(trace.router_probs[layer][i][e]),
            )
            for i in range(n_pos)
        ]
        for e in range(n_exp)
    ]
    rows = [t("chart.routing.expert", lang, expert=e) for e in range(n_exp)]
    if trace.n_shared_experts:
        rows.insert(0, t("chart.routing.shared", lang, n=trace.n_shared_experts))
        z.insert(0, [1.0] * n_pos)
        text.insert(0, [""] * n_pos)
        hover.insert(0, [
            t("chart.routing.hover_shared", lang, char=show_char(c), pos=i, layer=name)
            for i, c in enumerate(trace.labels)
        ])
    heatmap = go.Heatmap(
        z=z, x=list(range(n_pos)), y=list(range(len(rows))), text=text, texttemplate="%{text}",
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", coloraxis="coloraxis", xgap=1, ygap=1,
    )
    return rows, heatmap


def routing_figure(trace: NameTrace, lang: str = "en") -> go.Figure:
    """Per MoE layer (one subplot each, shared x), which routed experts each character went to:
    color and text = gate weight (0 where not chosen); the shared experts as an always-on top row."""
    if not trace.has_moe:
        return message_figure(t("chart.no_moe", lang))
    n, n_rows = len(trace.layers), trace.n_routed_experts + (1 if trace.n_shared_experts else 0)
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.25 / n)
    for j, layer in enumerate(trace.layers, start=1):
        rows, heatmap = _routing_layer(trace, layer, lang)
        fig.add_trace(heatmap, row=j, col=1)
        fig.update_yaxes(
            row=j, col=1, tickmode="array", tickvals=list(range(n_rows)), ticktext=rows,
            autorange="reversed", title_text=t("chart.layer", lang, layer=layer),
        )
    fig.update_xaxes(**char_axis(trace.labels))
    fig.update_layout(
        title=t("chart.routing.title", lang, k=trace.top_k, n=trace.n_routed_experts),
        coloraxis=dict(colorscale="Blues", cmin=0, cmax=1, colorbar=dict(title=t("chart.routing.gate_weight", lang))),
        height=90 + n * (30 + 20 * n_rows), margin=dict(l=10, r=10, t=60, b=30),
    )
    return fig


def next_char_figure(trace: NameTrace, position: int, lang: str = "en") -> go.Figure:
    """Horizontal bars of the likeliest next characters after `position`; the actual one in red
    (appended below the top list if the model did not rank it there)."""
    if not 0 <= position < len(trace.labels):
        raise ValueError(f"position must be in [0, {len(trace.labels) - 1}], got {position}")
    actual, p_actual = trace.next_actual[position]
    context = "".join(trace.labels[: position + 1])
    title = t("chart.next.title", lang, context=context, actual=show_char(actual), p=rounded(p_actual))
    return _candidate_bars(trace.next_top[position], actual, p_actual, title, lang)


def step_candidates_figure(step: DecodeStep, lang: str = "en") -> go.Figure:
    """One step of step-through decoding: bars of the likeliest next characters after what the
    model read, the one it picked in red (appended below the list when a draw picked an outsider)."""
    title = t("gen.step.chart_title", lang, context=BOUNDARY_SYMBOL + step.read, char=show_char(step.char),
              p=rounded(step.prob))
    return _candidate_bars(step.candidates, step.char, step.prob, title, lang)


def _candidate_bars(top: list[tuple[str, float]], picked: str, p_picked: float, title: str, lang: str) -> go.Figure:
    """Horizontal bars of (label, prob) candidates, most likely on top; `picked` in red, added if missing."""
    candidates = list(top)
    if picked not in [c for c, _ in candidates]:
        candidates.append((picked, p_picked))
    chars = [c for c, _ in candidates]
    fig = go.Figure(go.Bar(
        x=[rounded(p) for _, p in candidates], y=list(range(len(chars))), orientation="h",
        marker_color=[ACTUAL_COLOR if c == picked else OTHER_COLOR for c in chars],
        text=[f"{p:.3f}" for _, p in candidates], textposition="auto",
        hovertemplate="%{x}<extra></extra>",
    ))
    fig.update_layout(
        title=title,
        xaxis=dict(title=t("chart.probability", lang), range=[0, 1]),
        yaxis=dict(tickmode="array", tickvals=list(range(len(chars))), ticktext=[show_char(c) for c in chars],
                   autorange="reversed"),
        height=80 + 32 * len(chars), margin=dict(l=10, r=10, t=50, b=40),
    )
    return fig


def expert_choice(step: DecodeStep, layer: int, lang: str = "en") -> str:
    """The routed experts `layer` chose for the character the step read, heaviest first:
    "expert 3 (0.61) · expert 0 (0.39)"."""
    return " · ".join(
        f"{t('chart.routing.expert', lang, expert=e)} ({fmt_num(w, 2, lang)})"
        for e, w in zip(step.experts[layer], step.gate_weights[layer])
    )


def step_table(steps: list[DecodeStep], lang: str = "en") -> pd.DataFrame:
    """One row per step of a walk: the character read, the experts per MoE layer it went to, the
    character added ("|" = the end) and its probability, and the name after the step."""
    return pd.DataFrame([
        {
            t("gen.step.col_step", lang): i,
            t("gen.step.col_read", lang): show_char(step.fed),
            **{t("gen.step.col_experts", lang, layer=layer): expert_choice(step, layer, lang) for layer in step.layers},
            t("gen.step.col_added", lang): show_char(step.char),
            t("gen.step.col_prob", lang): rounded(step.prob),
            t("gen.step.col_name", lang): step.text,
        }
        for i, step in enumerate(steps, start=1)
    ])


def next_char_heatmap(trace: NameTrace, lang: str = "en") -> go.Figure:
    """The whole name at a glance: column i = after labels[i], row r = the r-th likeliest next
    character (text), color = its probability; the actual next character is in bold."""
    n_pos, n_rank = len(trace.labels), min(len(top) for top in trace.next_top)
    z, text, hover = [], [], []
    for r in range(n_rank):
        z_row, text_row, hover_row = [], [], []
        for i in range(n_pos):
            cand, p = trace.next_top[i][r]
            actual, p_actual = trace.next_actual[i]
            z_row.append(rounded(p))
            text_row.append(f"<b>{show_char(cand)}</b>" if cand == actual else show_char(cand))
            hover_row.append(t(
                "chart.next.heatmap_hover", lang, context="".join(trace.labels[: i + 1]), rank=r + 1,
                cand=show_char(cand), p=rounded(p), actual=show_char(actual), p_actual=rounded(p_actual),
            ))
        z.append(z_row)
        text.append(text_row)
        hover.append(hover_row)
    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(n_pos)), y=list(range(1, n_rank + 1)), text=text, texttemplate="%{text}",
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", colorscale="Blues", zmin=0, zmax=1,
        colorbar=dict(title=t("chart.probability", lang)), xgap=1, ygap=1,
    ))
    fig.update_layout(
        title=t("chart.next.heatmap_title", lang),
        xaxis=dict(title=t("chart.after_char", lang), **char_axis(trace.labels)),
        yaxis=dict(title=t("chart.next.rank", lang), tickmode="array", tickvals=list(range(1, n_rank + 1)),
                   autorange="reversed"),
        height=110 + 34 * n_rank, margin=dict(l=10, r=10, t=50, b=40),
    )
    return fig
