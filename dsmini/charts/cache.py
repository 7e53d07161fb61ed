"""KV-cache size tables and the size-vs-length chart (from probes.cache).

The tables are pandas DataFrames with translated headers, for `st.dataframe`; the chart is a
log-log plot, where caches that grow linearly with length are parallel lines whose vertical
gaps are the ratios between attention types.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from dsmini.i18n import t
from dsmini.model import CacheDims, cached_per_layer
from dsmini.probes.cache import CacheGrowth, CacheMeasurement, ScaleRow

from .common import rounded

COLORS = {
    "mha": "#d62728", "gqa": "#ff7f0e", "mqa": "#2ca02c", "mla": "#1f77b4",
    "dsa": "#9467bd", "moba": "#8c564b", "loglinear": "#e377c2",
}


def formula(attn_type: str, dims: CacheDims) -> str:
    """Table 1's per-token formula with this model's numbers filled in, e.g. '(32+8)·4' for MLA;
    the latent types list what they cache per layer, e.g. '(32+8+16)·4' for DSA."""
    layers, d_h = dims.n_layers, dims.head_dim
    family = {
        "mha": f"2·{dims.n_heads}·{d_h}·{layers}",
        "gqa": f"2·{dims.n_groups}·{d_h}·{layers}",
        "mqa": f"2·{d_h}·{layers}",
    }
    if attn_type in family:
        return family[attn_type]
    return "(" + "+".join(str(values) for _, values in cached_per_layer(attn_type, dims)) + f")·{layers}"


def contents_label(contents: tuple[tuple[str, int], ...]) -> str:
    """What one layer caches per token: 'c_kv 16 + k_rope 4 + k_index 16'."""
    return " + ".join(f"{name} {values}" for name, values in contents)


def _type_label(attn_type: str, loaded: bool, lang: str) -> str:
    label = attn_type.upper()
    return t("chart.cache.this_model", lang, kind=label) if loaded else label


def _headers(lang: str):
    """Column key -> translated header."""
    return lambda key: t(f"chart.cache.col_{key}", lang)


def cache_table(rows: list[CacheMeasurement], dims: CacheDims, lang: str = "en") -> pd.DataFrame:
    """One row per attention type: Table 1 formula and value, the measured value, bytes per token."""
    c = _headers(lang)
    return pd.DataFrame([
        {
            c("attention"): _type_label(r.attn_type, r.loaded, lang),
            c("formula"): formula(r.attn_type, dims),
            c("cached"): contents_label(r.contents),
            c("analytic"): r.analytic,
            c("measured"): r.measured,
            c("match"): "✓" if r.matches else "✗",
            c("fp32"): int(r.bytes_fp32),
            c("bf16"): int(r.bytes_bf16),
        }
        for r in rows
    ])


def scale_table(rows: list[ScaleRow], dims: CacheDims, lang: str = "en") -> pd.DataFrame:
    """Table 1 at a big model's dimensions (bf16): per token, per 1K and per 128K tokens."""
    c = _headers(lang)
    return pd.DataFrame([
        {
            c("attention"): r.attn_type.upper(),
            c("formula"): formula(r.attn_type, dims),
            c("per_layer"): r.per_layer,
            c("per_token"): r.per_token,
            c("kb_token"): round(r.bytes_per_token / 1000, 1),
            c("gb_1k"): rounded(r.gb_per_1k),
            c("gb_128k"): round(r.gb_per_128k, 1),
            c("vs_mha"): f"{r.times_mha:.2%}",
        }
        for r in rows
    ])


def cache_growth_figure(series: list[CacheGrowth], loaded: str, lang: str = "en") -> go.Figure:
    """Cache bytes vs sequence length per attention type: solid where real caches were measured
    (up to block_size), dashed where extrapolated."""
    fig = go.Figure()
    block = series[0].measured_upto if series else 1
    length, size = t("chart.cache.length", lang), t("chart.cache.bytes", lang)
    for s in series:
        cut = s.lengths.index(s.measured_upto) + 1
        name = _type_label(s.attn_type, s.attn_type == loaded, lang)
        measured = (s.lengths[:cut], s.n_bytes[:cut], "solid", True)
        extrapolated = (s.lengths[cut - 1 :], s.n_bytes[cut - 1 :], "dash", False)  # joins at block_size
        for x, y, dash, first in (measured, extrapolated):
            fig.add_trace(go.Scatter(
                x=x, y=[rounded(v) for v in y], mode="lines", name=name, legendgroup=s.attn_type, showlegend=first,
                line=dict(color=COLORS[s.attn_type], dash=dash, width=3 if s.attn_type == loaded else 2),
                hovertemplate=f"{name}<br>{length}: %{{x}}<br>{size}: %{{y:,.0f}}<extra></extra>",
            ))
    fig.add_vline(x=block, line=dict(color="#7f7f7f", dash="dot"))
    # on a log axis plotly.js places shapes by value but annotations by log10(value)
    fig.add_annotation(x=math.log10(block), y=1, yref="paper", text=t("chart.cache.block", lang, n=block),
                       showarrow=False, xanchor="right", yanchor="top")
    fig.update_layout(
        title=t("chart.cache.growth_title", lang),
        xaxis=dict(title=length, type="log"),
        yaxis=dict(title=size, type="log"),
        height=420, margin=dict(l=10, r=10, t=60, b=40), legend=dict(title=t("chart.cache.col_attention", lang)),
    )
    return fig
