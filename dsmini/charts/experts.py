"""Which experts handle which characters (from probes.experts: ExpertReport, ExpertProfile)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dsmini.i18n import t
from dsmini.probes.experts import ExpertProfile, ExpertReport

from .common import (
    ACTUAL_COLOR,
    OTHER_COLOR,
    layer_label,
    message_figure,
    on_subplot,
    rounded,
    show_char,
    subplot_layout,
)

VIEWS = ("allk", "top1")  # all-k: each of the k choices counts 1/k; top-1: the heaviest choice only
ROW_PX = 15  # height of one letter row in the letter x expert maps
INITIAL_COLOR = "#bbbbbb"


def _share_maps(
    report: ExpertReport, matrices: dict[int, list[list[float]]], rows: list[str], counts: list[int],
    view: str, title: str, row_px: int, show_text: bool, lang: str,
) -> go.Figure:
    """One heatmap per MoE layer side by side (rows shared): color = share of the row's tokens."""
    n_exp, layers = report.n_experts, report.layers
    layout = subplot_layout(rows=1, cols=len(layers), shared_yaxes=True, horizontal_spacing=0.02,
                            subplot_titles=[layer_label(layer, None, lang) for layer in layers])
    labels = [show_char(r) for r in rows]
    # one hover template per layer with the row label and count as customdata, not a string per cell:
    # a 63-letter map would otherwise carry ~1,500 hover strings to the browser
    custom = [[[labels[r], counts[r]]] * n_exp for r in range(len(rows))]
    data = []
    for j, layer in enumerate(layers, start=1):
        z = [[rounded(v) for v in row] for row in matrices[layer]]
        hover = t("chart.experts.share_hover", lang, row="%{customdata[0]}", count="%{customdata[1]}",
                  layer=layer_label(layer, None, lang), expert="%{x}", share="%{z}")
        data.append(go.Heatmap(
            z=z, x=list(range(n_exp)), y=list(range(len(rows))), coloraxis="coloraxis", xgap=1, ygap=1,
            customdata=custom, hovertemplate=hover + "<extra></extra>",
            texttemplate="%{z:.2f}" if show_text else None, **on_subplot(j),
        ))
    expert_axis = dict(tickmode="linear", dtick=1, title=dict(text=t("chart.experts.expert_axis", lang)))
    letter_axis = dict(tickmode="array", tickvals=list(range(len(rows))), ticktext=labels, autorange="reversed")
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")):
            axis.update(expert_axis if key.startswith("xaxis") else letter_axis)
    cmax = 1 / report.top_k if view == "allk" else 1.0  # all-k: a token puts at most 1/k on one expert
    layout.update(
        title=title,
        coloraxis=dict(colorscale="Blues", cmin=0, cmax=rounded(cmax),
                       colorbar=dict(title=t("chart.experts.share", lang))),
        height=130 + row_px * len(rows), margin=dict(l=10, r=10, t=80, b=40),
    )
    return go.Figure(data=data, layout=layout)


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")


def letter_expert_figure(report: ExpertReport, view: str = "allk", lang: str = "en") -> go.Figure:
    """Per MoE layer, a letters x experts map: the share of each input letter's tokens routed to
    each expert ("|" = the boundary at the start); every row sums to 1."""
    _check_view(view)
    if not report.has_moe:
        return message_figure(t("chart.no_moe", lang))
    matrices = report.allk if view == "allk" else report.top1
    title = t(f"chart.experts.letters_title_{view}", lang, k=report.top_k)
    return _share_maps(report, matrices, report.letters, report.letter_counts, view, title, ROW_PX, False, lang)


def position_expert_figure(report: ExpertReport, view: str = "allk", lang: str = "en") -> go.Figure:
    """Per MoE layer, position-in-name categories (start, first, middle, last) x experts."""
    _check_view(view)
    if not report.has_moe:
        return message_figure(t("chart.no_moe", lang))
    matrices = report.position_allk if view == "allk" else report.position_top1
    rows = [t(f"chart.experts.cat_{c}", lang) for c in report.categories]
    title = t(f"chart.experts.positions_title_{view}", lang, k=report.top_k)
    return _share_maps(report, matrices, rows, report.category_counts, view, title, 34, True, lang)


def expert_load_figure(report: ExpertReport, lang: str = "en") -> go.Figure:
    """Share of the k x tokens assignments each routed expert took, grouped by layer, against the
    dashed uniform line 1/E of a perfectly balanced router."""
    if not report.has_moe:
        return message_figure(t("chart.no_moe", lang))
    n_exp = report.n_experts
    fig = go.Figure([
        go.Bar(x=list(range(n_exp)), y=[rounded(s) for s in report.load[layer]], name=layer_label(layer, None, lang))
        for layer in report.layers
    ])
    fig.add_hline(
        y=rounded(1 / n_exp), line_dash="dash", line_color="#555555",
        annotation_text=t("chart.load.uniform", lang, n=n_exp), annotation_position="top right",
    )
    fig.update_layout(
        title=t("chart.experts.load_title", lang, dropped=sum(report.n_dropped.values())),
        barmode="group",
        xaxis=dict(title=t("chart.load.expert", lang), tickmode="linear", dtick=1),
        yaxis=dict(title=t("chart.load.y", lang), rangemode="tozero"),
        height=320, margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.25),
    )
    return fig


def specialisation_figure(report: ExpertReport, lang: str = "en") -> go.Figure:
    """I(letter; expert) in bits per MoE layer, trained vs the untrained model, under the ceiling
    log2(E / k) that all-k routing can reach."""
    if not report.has_moe:
        return message_figure(t("chart.no_moe", lang))
    names = [layer_label(layer, None, lang) for layer in report.layers]
    bars = [(t("chart.experts.trained", lang), report.mi, OTHER_COLOR)]
    if report.mi_initial is not None:
        bars.append((t("chart.experts.initial", lang), report.mi_initial, INITIAL_COLOR))
    fig = go.Figure([
        go.Bar(x=names, y=[rounded(mi[layer]) for layer in report.layers], name=label, marker_color=color,
               text=[f"{mi[layer]:.2f}" for layer in report.layers], textposition="auto")
        for label, mi, color in bars
    ])
    fig.add_hline(
        y=rounded(report.mi_ceiling), line_dash="dash", line_color="#555555",
        annotation_text=t("chart.experts.ceiling", lang, bits=rounded(report.mi_ceiling)),
        annotation_position="top left",
    )
    fig.update_layout(
        title=t("chart.experts.mi_title", lang), barmode="group",
        yaxis=dict(title=t("chart.experts.bits", lang), rangemode="tozero", range=[0, report.mi_ceiling * 1.15]),
        height=320, margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.2),
    )
    return fig


def expert_profile_figure(profile: ExpertProfile, lang: str = "en") -> go.Figure:
    """Two bar lists for one expert: the letters it handles most and the contexts (previous
    characters + the current one), each as a share of the expert's tokens, most frequent on top."""
    if not profile.n_tokens:
        return message_figure(t("chart.experts.idle", lang, expert=profile.expert))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=[
        t("chart.experts.top_letters", lang), t("chart.experts.top_contexts", lang),
    ])
    letters = profile.letters
    fig.add_trace(go.Bar(
        x=[rounded(s) for _, _, s, _ in letters], y=list(range(len(letters))), orientation="h",
        marker_color=OTHER_COLOR, text=[str(c) for _, c, _, _ in letters], textposition="auto",
        hovertext=[t("chart.experts.letter_hover", lang, letter=show_char(c), count=n, share=rounded(s),
                     of_letter=rounded(f)) for c, n, s, f in letters],
        hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
    ), row=1, col=1)
    contexts = profile.contexts
    fig.add_trace(go.Bar(
        x=[rounded(s) for _, _, s, _, _ in contexts], y=list(range(len(contexts))), orientation="h",
        marker_color=ACTUAL_COLOR, text=[str(c) for _, c, _, _, _ in contexts], textposition="auto",
        hovertext=[t("chart.experts.context_hover", lang, context=ctx, count=n, share=rounded(s),
                     next=show_char(nxt), next_share=rounded(ns)) for ctx, n, s, nxt, ns in contexts],
        hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
    ), row=1, col=2)
    for col, labels in ((1, [show_char(c) for c, *_ in letters]), (2, [ctx for ctx, *_ in contexts])):
        fig.update_yaxes(row=1, col=col, tickmode="array", tickvals=list(range(len(labels))), ticktext=labels,
                         autorange="reversed")
        fig.update_xaxes(row=1, col=col, title_text=t("chart.experts.share_of_expert", lang), rangemode="tozero")
    fig.update_layout(
        title=t("chart.experts.profile_title", lang, expert=profile.expert,
                layer=layer_label(profile.layer, None, lang), n=profile.n_tokens,
                share=rounded(profile.share_of_tokens)),
        height=110 + 26 * max(len(letters), len(contexts)), margin=dict(l=10, r=10, t=80, b=40),
    )
    return fig
