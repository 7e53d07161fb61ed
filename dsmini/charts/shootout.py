"""The router shoot-out: checkpoints trained alike but for the router, side by side (probes.specialisation)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dsmini.i18n import t
from dsmini.probes.specialisation import RouterShootout

from .common import layer_label, rounded
from .domains import relative_load_maps

ROUTER_COLORS = {"sigmoid_bias": "#1f77b4", "softmax_topk": "#ff7f0e", "noisy_topk": "#2ca02c"}


def router_label(router: str, aux_loss_coef: float, lang: str) -> str:
    """'sigmoid + bias (aux-loss-free)' / 'softmax top-k + aux 0.01'."""
    text = t(f"chart.shootout.router_{router}", lang)
    return text + (t("chart.shootout.aux", lang, coef=aux_loss_coef) if aux_loss_coef else "")


def shootout_table(shootout: RouterShootout, lang: str) -> pd.DataFrame:
    """One row per checkpoint: router, steps, val loss, the best layer's MI trained and untrained."""
    rows = []
    for run in shootout.runs:
        best = max(run.layers, key=lambda layer: run.mi[layer])
        rows.append({
            t("chart.shootout.col_checkpoint", lang): run.name,
            t("chart.shootout.col_router", lang): router_label(run.router, run.aux_loss_coef, lang),
            t("chart.shootout.col_steps", lang): run.steps,
            t("chart.shootout.col_val", lang): None if run.val_loss is None else round(run.val_loss, 3),
            t("chart.shootout.col_mi", lang): f"{run.mi[best]:.3f} ({layer_label(best, None, lang)})",
            t("chart.shootout.col_mi_initial", lang): round(run.mi_initial[best], 3),
            t("chart.shootout.col_imbalance", lang): round(max(run.imbalance.values()), 2),
        })
    return pd.DataFrame(rows)


def _per_layer_bars(shootout: RouterShootout, values: str, title: str, y_title: str, lang: str) -> go.Figure:
    """Grouped bars: x = layer, one bar per checkpoint, height = run.<values>[layer]."""
    fig = go.Figure()
    for run in shootout.runs:
        fig.add_bar(name=f"{run.name}: {router_label(run.router, run.aux_loss_coef, lang)}",
                    x=[layer_label(layer, None, lang) for layer in run.layers],
                    y=[rounded(getattr(run, values)[layer]) for layer in run.layers],
                    marker_color=ROUTER_COLORS.get(run.router), texttemplate="%{y:.2f}")
    fig.update_layout(title=title, barmode="group", yaxis=dict(title=y_title), height=340,
                      margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.18))
    return fig


def mi_by_router_figure(shootout: RouterShootout, lang: str = "en") -> go.Figure:
    """I(domain; expert) (or letter MI without domains) per layer for each router; the untrained
    value of the first run as a grey line (the same config untrained is the same for every router)."""
    what = "domain" if shootout.has_domains else "letter"
    fig = _per_layer_bars(shootout, "mi", t(f"chart.shootout.mi_title_{what}", lang), t("chart.experts.bits", lang),
                          lang)
    first = shootout.runs[0]
    fig.add_scatter(name=t("chart.experts.initial", lang), x=[layer_label(layer, None, lang) for layer in first.layers],
                    y=[rounded(first.mi_initial[layer]) for layer in first.layers], mode="markers",
                    marker=dict(symbol="line-ew-open", size=40, color="#888888", line=dict(width=3)))
    return fig


def imbalance_by_router_figure(shootout: RouterShootout, lang: str = "en") -> go.Figure:
    fig = _per_layer_bars(shootout, "imbalance", t("chart.shootout.imbalance_title", lang),
                          t("chart.imbalance.y", lang), lang)
    fig.add_hline(y=1, line_dash="dash", line_color="#888888", annotation_text=t("chart.imbalance.perfect", lang))
    return fig


def domain_maps_by_router_figure(shootout: RouterShootout, lang: str = "en") -> go.Figure:
    """Each router's domain x expert relative-load map in one layer (the first run's clearest)."""
    runs = shootout.runs
    layer = runs[0].domains.clearest_layer
    panels = [(router_label(r.router, r.aux_loss_coef, lang), r.domains.relative_load[layer]) for r in runs]
    title = t("chart.shootout.maps_title", lang, layer=layer_label(layer, None, lang))
    return relative_load_maps(panels, runs[0].domains.domains, runs[0].domains.n_experts, title, lang)


def shootout_figures(shootout: RouterShootout, lang: str = "en") -> list[go.Figure]:
    """The shoot-out view's charts, top to bottom."""
    figures = [mi_by_router_figure(shootout, lang)]
    if shootout.has_domains:
        figures.append(domain_maps_by_router_figure(shootout, lang))
    figures.append(imbalance_by_router_figure(shootout, lang))
    return figures
