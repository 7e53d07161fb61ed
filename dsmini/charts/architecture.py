"""The model in one picture: a block diagram drawn from a ModelConfig."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from dsmini.config import ModelConfig
from dsmini.i18n import t
from dsmini.model import CacheDims, cache_values_per_token, values_per_layer

from .common import COLORS

# Architecture block diagram (data coordinates: x 0..100, y 0..40)


@dataclass
class _Canvas:
    """Shapes and annotations collected as plain dicts and handed to the figure in one go
    (adding them one by one revalidates the layout each time: ten times slower)."""

    shapes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def box(self, x0: float, x1: float, y0: float, y1: float, text: str, kind: str, size: int = 11) -> None:
        line, fill = COLORS[kind]
        self.shapes.append(
            dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color=line, width=1.5), fillcolor=fill)
        )
        if text:
            self.text((x0 + x1) / 2, (y0 + y1) / 2, text, size=size)

    def text(self, x: float, y: float, text: str, size: int = 11, color: str = "#222222", **extra: Any) -> None:
        self.notes.append(dict(x=x, y=y, text=text, showarrow=False, font=dict(size=size, color=color), **extra))

    def arrow(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.notes.append(dict(
            x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
            showarrow=True, arrowhead=2, arrowwidth=1.5, arrowcolor="#555555",
        ))

    def line(self, x0: float, y0: float, x1: float, y1: float) -> None:
        dotted = dict(color="#555555", width=1.5, dash="dot")
        self.shapes.append(dict(type="line", x0=x0, y0=y0, x1=x1, y1=y1, line=dotted))


def _attention_label(cfg: ModelConfig, lang: str) -> str:
    """The attention type with what it caches per token per layer (DeepSeek-V2 Table 1)."""
    if cfg.latent_attention:
        return t(
            f"chart.arch.attn_{cfg.attn_type}", lang, heads=cfg.n_heads, kv=cfg.kv_lora_rank,
            rope=cfg.qk_rope_head_dim, index=cfg.dsa_index_dim, top_k=cfg.dsa_top_k, block=cfg.moba_block_size,
        )
    per_layer = values_per_layer(cfg.attn_type, CacheDims.from_config(cfg))
    return t(
        f"chart.arch.attn_{cfg.attn_type}", lang,
        heads=cfg.n_heads, dim=cfg.mha_head_dim, groups=cfg.kv_heads, cache=per_layer,
    )


def _layer_groups(cfg: ModelConfig) -> list[tuple[int, int, bool]]:
    """Runs of consecutive main layers with the same FFN: (first, last, is_moe)."""
    groups: list[tuple[int, int, bool]] = []
    for i in range(cfg.n_layers):
        moe = cfg.is_moe_layer(i)
        if groups and groups[-1][2] == moe:
            groups[-1] = (groups[-1][0], i, moe)
        else:
            groups.append((i, i, moe))
    return groups


def _draw_group(c: _Canvas, cfg: ModelConfig, x0: float, x1: float, group: tuple[int, int, bool], lang: str) -> None:
    """One run of layers: a frame with attention above its FFN, labelled with the layer span."""
    first, last, moe = group
    span_key = "chart.arch.layers_one" if first == last else "chart.arch.layers_many"
    span = t(span_key, lang, first=first, last=last, n=last - first + 1)
    c.box(x0, x1, 13, 39, "", "group")
    c.text((x0 + x1) / 2, 37, t("chart.arch.group_moe" if moe else "chart.arch.group_dense", lang, span=span),
           color="#555555")
    c.box(x0 + 1, x1 - 1, 27, 34.5, _attention_label(cfg, lang), "attn")
    ffn = (
        t("chart.arch.moe", lang, shared=cfg.n_shared_experts, routed=cfg.n_routed_experts, k=cfg.top_k)
        if moe
        else t("chart.arch.dense", lang, d_ff=cfg.d_ff)
    )
    c.box(x0 + 1, x1 - 1, 15, 22.5, ffn, "moe" if moe else "dense")
    c.arrow((x0 + x1) / 2, 27, (x0 + x1) / 2, 22.5)


def _draw_mtp(c: _Canvas, cfg: ModelConfig, from_x: float, lang: str) -> None:
    """The MTP branch: last hidden state + embedding of the next char -> MTP blocks -> shared head."""
    if cfg.mtp_depth == 0:
        c.text(60, 5.5, t("chart.arch.mtp_off", lang), color="#777777")
        return
    c.box(36, 86, 1, 10, t("chart.arch.mtp", lang, depth=cfg.mtp_depth), "mtp", size=10)
    c.arrow(from_x, 13, from_x, 10)  # h from the last main block
    c.line(16.5, 22, 16.5, 5.5)
    c.arrow(16.5, 5.5, 36, 5.5)  # the shared embedding of t_{i+k}
    c.text(18, 7.5, t("chart.arch.mtp_emb", lang), size=10, xanchor="left")
    out = "chart.arch.mtp_out_one" if cfg.mtp_depth == 1 else "chart.arch.mtp_out_many"
    c.box(89, 100, 1, 10, t(out, lang, last=cfg.mtp_depth + 1), "io")
    c.arrow(86, 5.5, 89, 5.5)


def architecture_figure(cfg: ModelConfig, lang: str = "en") -> go.Figure:
    """Block diagram of this config, left to right: input -> embedding -> layer runs (attention over
    FFN, dense runs apart from MoE runs) -> RMSNorm -> head -> next char; MTP branch underneath."""
    c = _Canvas()
    c.box(0, 9, 22, 32, t("chart.arch.input", lang), "io")
    c.box(12, 21, 22, 32, t("chart.arch.embedding", lang, vocab=cfg.vocab_size, d_model=cfg.d_model), "io")
    c.arrow(9, 27, 12, 27)
    groups = _layer_groups(cfg)
    gap, left, right = 3, 24, 73
    width = (right - left - gap * (len(groups) - 1)) / len(groups)
    c.arrow(21, 27, left, 27)
    for j, group in enumerate(groups):
        x0 = left + j * (width + gap)
        _draw_group(c, cfg, x0, x0 + width, group, lang)
        if j < len(groups) - 1:
            c.arrow(x0 + width, 27, x0 + width + gap, 27)
    c.box(76, 86, 22, 32, t("chart.arch.head", lang), "io")
    c.box(89, 100, 22, 32, t("chart.arch.next_char", lang), "io")
    c.arrow(right, 27, 76, 27)
    c.arrow(86, 27, 89, 27)
    _draw_mtp(c, cfg, right - 4, lang)
    subtitle = t("chart.arch.subtitle", lang, values=cache_values_per_token(cfg), layers=cfg.n_layers)
    return go.Figure(layout=dict(
        shapes=c.shapes, annotations=c.notes,
        title=dict(text=f"{t('chart.arch.title', lang)}<br><sup>{subtitle}</sup>"),
        height=350, margin=dict(l=10, r=10, t=60, b=10), plot_bgcolor="white", showlegend=False,
        xaxis=dict(range=[-1, 101], visible=False, fixedrange=True),
        yaxis=dict(range=[0, 40], visible=False, fixedrange=True),
    ))
