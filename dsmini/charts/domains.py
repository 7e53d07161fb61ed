"""Which experts take which domain, and what switching experts off breaks (probes.domains, probes.ablation)."""

from __future__ import annotations

import plotly.graph_objects as go

from dsmini.i18n import STRINGS, t
from dsmini.probes.ablation import AblationResult, AblationSpec
from dsmini.probes.domains import DomainReport

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
from .experts import INITIAL_COLOR

ROW_PX = 34  # one domain row in the domain x expert maps
MIN_HEIGHT = 300  # two domains still get a readable colour bar


def domain_name(label: str, lang: str) -> str:
    """A domain label as people read it: the built-in corpora's labels are translated ("ru" -> "Russian"),
    a user's own labels are shown as they wrote them."""
    key = f"domain.{label}"
    return t(key, lang) if key in STRINGS else label


def relative_load_maps(panels: list[tuple[str, list[list[float]]]], domains: list[str], n_experts: int, title: str,
                       lang: str) -> go.Figure:
    """Heatmaps side by side (rows shared): row = domain, column = routed expert, colour = relative load
    (white = 1, an even share; red = the expert favours the domain; blue = avoids it). panels: (subtitle, load)."""
    rows = [domain_name(d, lang) for d in domains]
    layout = subplot_layout(rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.03,
                            subplot_titles=[subtitle for subtitle, _ in panels])
    data = []
    for j, (subtitle, load) in enumerate(panels, start=1):
        hover = t("chart.domains.hover", lang, domain="%{y}", expert="%{x}", layer=subtitle, load="%{z}")
        data.append(go.Heatmap(
            z=[[rounded(v) for v in row] for row in load], x=list(range(n_experts)), y=rows, coloraxis="coloraxis",
            xgap=1, ygap=1, texttemplate="%{z:.1f}", hovertemplate=hover + "<extra></extra>", **on_subplot(j),
        ))
    for key, axis in layout.items():
        if key.startswith("xaxis"):
            axis.update(tickmode="linear", dtick=1, title=dict(text=t("chart.experts.expert_axis", lang)))
        elif key.startswith("yaxis"):
            axis.update(autorange="reversed")
    top = max([2.0] + [v for _, load in panels for row in load for v in row])
    layout.update(
        title=title,
        coloraxis=dict(colorscale="RdBu_r", cmin=0, cmid=1, cmax=rounded(top),
                       colorbar=dict(title=t("chart.domains.load", lang))),
        height=max(MIN_HEIGHT, 150 + ROW_PX * len(rows)), margin=dict(l=10, r=10, t=80, b=40),
    )
    return go.Figure(data=data, layout=layout)


def domain_map_figure(report: DomainReport, lang: str = "en", initial: bool = False) -> go.Figure:
    """One relative-load map per MoE layer, of the trained model or of the same config untrained."""
    loads = report.relative_load_initial if initial else report.relative_load
    panels = [(layer_label(layer, None, lang), loads[layer]) for layer in report.layers]
    title = t("chart.domains.title_initial" if initial else "chart.domains.title", lang)
    return relative_load_maps(panels, report.domains, report.n_experts, title, lang)


def domain_mi_figure(report: DomainReport, lang: str = "en") -> go.Figure:
    """I(domain; expert) per layer, trained beside the same config untrained; the ceiling H(domain) dashed."""
    x = [layer_label(layer, None, lang) for layer in report.layers]
    fig = go.Figure([
        go.Bar(name=t("chart.experts.trained", lang), x=x, y=[rounded(report.mi[layer]) for layer in report.layers],
               marker_color=OTHER_COLOR, texttemplate="%{y:.2f}"),
        go.Bar(name=t("chart.experts.initial", lang), x=x,
               y=[rounded(report.mi_initial[layer]) for layer in report.layers], marker_color=INITIAL_COLOR,
               texttemplate="%{y:.2f}"),
    ])
    fig.add_hline(y=report.mi_ceiling, line_dash="dash", line_color="#888888",
                  annotation_text=t("chart.domains.ceiling", lang, bits=rounded(report.mi_ceiling)))
    fig.update_layout(
        title=t("chart.domains.mi_title", lang), barmode="group",
        yaxis=dict(title=t("chart.experts.bits", lang), range=[0, max(report.mi_ceiling * 1.1, 0.05)]),
        height=340, margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.15),
    )
    return fig


def spec_label(spec: AblationSpec, lang: str) -> str:
    """What an ablation switched off, in words: 'drop experts 2, 5 in layer 2; shared expert off (layer 2)'."""
    where = ", ".join(layer_label(layer, None, lang) for layer in spec.layers)
    parts = [t(f"chart.ablation.what_{spec.kind}", lang, experts=", ".join(map(str, experts)),
               layer=layer_label(layer, None, lang)) for layer, experts in zip(spec.layers, spec.experts) if experts]
    if spec.kind == "mask_top":
        parts.append(t("chart.ablation.what_mask_top", lang, r=spec.mask_top, layers=where))
    if spec.shared_off:
        parts.append(t("chart.ablation.what_shared", lang, layers=where))
    return "; ".join(parts)


def _delta_bars(labels: list[str], counts: list[int], on: list[float], off: list[float], delta: list[float],
                lang: str) -> go.Bar:
    hover = [t("chart.experts.ablation_hover", lang, letter=label, count=n, on=rounded(a), off=rounded(b),
               delta=rounded(d)) for label, n, a, b, d in zip(labels, counts, on, off, delta)]
    return go.Bar(x=list(range(len(labels))), y=[rounded(d) for d in delta],
                  marker_color=[ACTUAL_COLOR if d > 0 else OTHER_COLOR for d in delta],
                  hovertext=hover, hovertemplate="%{hovertext}<extra></extra>")


def ablation_figure(result: AblationResult, lang: str = "en") -> go.Figure:
    """Change in next-character loss per *target* letter with the experts off (red: worse), most hurt first."""
    letters = result.letters
    if not letters.labels:
        return message_figure(t("chart.experts.ablation_empty", lang))
    shown = [show_char(c) for c in letters.labels]
    fig = go.Figure(_delta_bars(shown, letters.counts, letters.loss_on, letters.loss_off, letters.delta, lang))
    fig.update_layout(
        title=t("chart.experts.ablation_title", lang, what=spec_label(result.spec, lang), on=rounded(result.mean_on),
                off=rounded(result.mean_off)),
        xaxis=dict(title=t("chart.experts.target_letter", lang), tickmode="array",
                   tickvals=list(range(len(shown))), ticktext=shown),
        yaxis=dict(title=t("chart.experts.delta_loss", lang)),
        height=340, margin=dict(l=10, r=10, t=50, b=40),
    )
    return fig


def domain_damage_figure(result: AblationResult, lang: str = "en") -> go.Figure:
    """Change in loss per domain with the experts off: which domain the switched-off experts served."""
    domains = result.domains
    if not domains.labels:
        return message_figure(t("chart.domains.none", lang))
    names = [domain_name(d, lang) for d in domains.labels]
    fig = go.Figure(_delta_bars(names, domains.counts, domains.loss_on, domains.loss_off, domains.delta, lang))
    fig.update_traces(texttemplate="%{y:+.3f}")
    fig.update_layout(
        title=t("chart.domains.damage_title", lang),
        xaxis=dict(tickmode="array", tickvals=list(range(len(names))), ticktext=names),
        yaxis=dict(title=t("chart.experts.delta_loss", lang)),
        height=300, margin=dict(l=10, r=10, t=50, b=40),
    )
    return fig
