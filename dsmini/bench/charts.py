"""Report figures: plain section results -> plotly go.Figure (pure, English: the report is).

Each section registers its figures by name (`sections.Section.charts`); a figure is saved as
`chart_file(name)`, under `CHART_DIR` (relative to the folder of BENCHMARKS.md), and the section's
markdown links the same name.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from dsmini.charts.common import rounded

from .archs import ARCH_BY_KEY

# raw numbers and charts, below the package: the top level stays as README lists it
RESULTS_DIR = "dsmini/bench/results"
CHART_DIR = f"{RESULTS_DIR}/charts"
ARCH_COLORS = {"dense": "#7f7f7f", "mla": "#1f77b4", "moe": "#ff7f0e", "full": "#9467bd"}
_LAYOUT = dict(margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.2))


def chart_file(name: str) -> str:
    """Where figure `name` is saved, relative to BENCHMARKS.md."""
    return f"{CHART_DIR}/{name}.html"


def throughput_figure(section: dict[str, Any]) -> go.Figure:
    """Training tokens/s per architecture, each bar labelled with its ratio to the dense baseline."""
    archs = section["archs"]
    fig = go.Figure(go.Bar(
        x=[ARCH_BY_KEY[k].label for k in archs],
        y=[rounded(a["tokens_per_sec"]) for a in archs.values()],
        text=[f"{a['ratio']:.2f}x" for a in archs.values()],
        marker_color=[ARCH_COLORS[k] for k in archs],
    ))
    fig.update_layout(title="Training tokens/s (real target tokens; median of rounds)",
                      yaxis=dict(title="tokens/s", rangemode="tozero"), height=380, **_LAYOUT)
    return fig


def quality_figure(corpus: str, summary: dict[str, Any]) -> go.Figure:
    """Val loss against training seconds per architecture, with the target and the equal-time budget."""
    fig = go.Figure([
        go.Scatter(
            x=[rounded(p["seconds"]) for p in run["curve"]], y=[rounded(p["val"]) for p in run["curve"]],
            name=ARCH_BY_KEY[key].label, mode="lines+markers", marker_size=4, line_color=ARCH_COLORS[key],
            customdata=[p["step"] for p in run["curve"]], hovertemplate="step %{customdata}: %{y} at %{x}s",
        )
        for key, run in summary["runs"].items()
    ])
    if summary["target"] is not None:
        fig.add_hline(y=rounded(summary["target"]), line_dash="dot", annotation_text="target")
    fig.add_vline(x=rounded(summary["budget_seconds"]), line_dash="dash", annotation_text="equal-time budget")
    fig.update_layout(title=f"{corpus}: val loss (nats/char) vs training seconds",
                      xaxis_title="training seconds", yaxis_title="val loss, nats/char", height=420, **_LAYOUT)
    return fig


def quality_figures(section: dict[str, Any]) -> dict[str, go.Figure]:
    """One `quality_figure` per corpus, named `quality-<i>` in the section's corpus order."""
    corpora = section["corpora"].items()
    return {f"quality-{i}": quality_figure(corpus, summary) for i, (corpus, summary) in enumerate(corpora)}


def decoding_figure(section: dict[str, Any]) -> go.Figure:
    """ms per generated character against prefix length: cached (solid) vs recomputed (dashed)."""
    lengths = section["prefix_lengths"]
    traces = []
    for key, curve in section["archs"].items():
        for series, dash, what in (("cached_ms", "solid", "KV cache"), ("uncached_ms", "dash", "no cache")):
            traces.append(go.Scatter(
                x=lengths, y=[rounded(v) for v in curve[series]], mode="lines+markers",
                name=f"{ARCH_BY_KEY[key].label}, {what}", line=dict(color=ARCH_COLORS[key], dash=dash),
            ))
    fig = go.Figure(traces)
    fig.update_layout(title="ms per generated character vs prefix length",
                      xaxis=dict(title="prefix length (characters)", type="log", tickvals=lengths),
                      yaxis=dict(title="ms/char", type="log"), height=440, **_LAYOUT)
    return fig


def memory_figure(section: dict[str, Any]) -> go.Figure:
    """KV-cache bytes per token by attention type, one group of bars per preset."""
    fig = go.Figure([
        go.Bar(x=list(rows), y=[rounded(r["bytes_per_token"]) for r in rows.values()], name=f"preset {name}",
               text=[f"{r['vs_mha']:.0%} of MHA" for r in rows.values()])
        for name, rows in section["presets"].items()
    ])
    fig.update_layout(title="KV-cache bytes per token (whole model, fp32)", barmode="group",
                      yaxis=dict(title="bytes/token", rangemode="tozero"), height=360, **_LAYOUT)
    return fig


def specialisation_figure(section: dict[str, Any]) -> go.Figure:
    """I(domain; expert) per MoE layer, a bar per router at its mean over seeds, whiskers to min and max,
    and the untrained value as a dotted marker."""
    traces = []
    for router, r in section["routers"]["summary"].items():
        layers = [f"layer {layer}" for layer in r["layers"]]
        traces.append(go.Bar(
            x=layers, y=[rounded(m["mean"]) for m in r["mi"]], name=router, offsetgroup=router,
            error_y=dict(type="data", symmetric=False, array=[rounded(m["max"] - m["mean"]) for m in r["mi"]],
                         arrayminus=[rounded(m["mean"] - m["min"]) for m in r["mi"]]),
        ))
        traces.append(go.Scatter(  # over its router's bar (scattermode "group")
            x=layers, y=[rounded(m["mean"]) for m in r["mi_initial"]], mode="markers", offsetgroup=router,
            name=f"{router}, untrained", marker=dict(symbol="line-ew-open", size=18, color="black"),
        ))
    fig = go.Figure(traces)
    fig.update_layout(title=f"I(domain; expert) on {section['corpus']}, bits (mean, min–max over seeds)",
                      barmode="group", scattermode="group", yaxis=dict(title="bits", rangemode="tozero"), height=420,
                      **_LAYOUT)
    return fig
