"""Plotly figure builders: plain data (a config, a NameTrace, a load history) -> go.Figure.

Pure functions: no streamlit, no torch, no model, so each figure is testable without a browser.
Titles and axis labels come from `i18n.t`, so one builder serves English and Russian. Values
are rounded to 3 decimals and maps kept small: the figure's JSON is what the browser downloads
(DESIGN.md §4). Heatmaps are `go.Heatmap` (far cheaper than px.imshow). Characters sit on the
x axis by *position* with the character as tick text, so the two "н" of "Анна" stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .config import ModelConfig
from .i18n import t

if TYPE_CHECKING:
    from .probes import NameTrace

# (outline, fill) per kind of block in the architecture diagram
COLORS = {
    "io": ("#7f7f7f", "rgba(127,127,127,0.10)"),
    "attn": ("#1f77b4", "rgba(31,119,180,0.12)"),
    "moe": ("#ff7f0e", "rgba(255,127,14,0.14)"),
    "dense": ("#8c8c8c", "rgba(140,140,140,0.14)"),
    "group": ("#bbbbbb", "rgba(0,0,0,0)"),
    "mtp": ("#9467bd", "rgba(148,103,189,0.14)"),
}
ACTUAL_COLOR, OTHER_COLOR = "#d62728", "#9ecae1"
MAX_LINE_POINTS = 400  # imbalance curve: more points add bytes, not information


def _show(char: str) -> str:
    """A character as drawn on an axis: a space would be an invisible tick."""
    return "␣" if char == " " else char


def _r(x: float) -> float:
    return round(float(x), 3)


def _message_figure(text: str, height: int = 160) -> go.Figure:
    """The empty state: a figure that says why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=14))
    fig.update_layout(height=height, xaxis_visible=False, yaxis_visible=False, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def _layer_label(layer: int, n_layers: int | None, lang: str) -> str:
    """'layer 2' for a main block, 'MTP depth 1' for block n_layers (ids as in the code, from 0)."""
    if n_layers is not None and layer >= n_layers:
        return t("chart.layer_mtp", lang, depth=layer - n_layers + 1)
    return t("chart.layer", lang, layer=layer)


# ---------------------------------------------------------------------------------------------
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
    if cfg.attn_type == "mla":
        return t("chart.arch.attn_mla", lang, heads=cfg.n_heads, kv=cfg.kv_lora_rank, rope=cfg.qk_rope_head_dim)
    per_layer = cfg.cache_values_per_token() // cfg.n_layers
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
    subtitle = t("chart.arch.subtitle", lang, values=cfg.cache_values_per_token(), layers=cfg.n_layers)
    return go.Figure(layout=dict(
        shapes=c.shapes, annotations=c.notes,
        title=dict(text=f"{t('chart.arch.title', lang)}<br><sup>{subtitle}</sup>"),
        height=350, margin=dict(l=10, r=10, t=60, b=10), plot_bgcolor="white", showlegend=False,
        xaxis=dict(range=[-1, 101], visible=False, fixedrange=True),
        yaxis=dict(range=[0, 40], visible=False, fixedrange=True),
    ))


# ---------------------------------------------------------------------------------------------
# Routing and next-character beliefs for one traced name


def _char_axis(labels: list[str]) -> dict[str, Any]:
    """Positions as x values with the characters as tick text (duplicates stay distinct)."""
    return dict(tickmode="array", tickvals=list(range(len(labels))), ticktext=[_show(c) for c in labels])


def _routing_layer(trace: NameTrace, layer: int, lang: str) -> tuple[list[str], go.Heatmap]:
    """One MoE layer as (row labels, heatmap): rows = [shared] + routed experts, columns = positions."""
    n_pos, n_exp = len(trace.labels), trace.n_routed_experts
    name = t("chart.layer", lang, layer=layer)
    z = [[0.0] * n_pos for _ in range(n_exp)]
    text = [[""] * n_pos for _ in range(n_exp)]
    for i in range(n_pos):
        for e, w in zip(trace.experts[layer][i], trace.gate_weights[layer][i]):
            z[e][i], text[e][i] = _r(w), f"{w:.2f}"
    hover = [
        [
            t(
                "chart.routing.hover", lang, char=_show(trace.labels[i]), pos=i, layer=name,
                expert=t("chart.routing.expert", lang, expert=e), weight=_r(z[e][i]),
                prob=_r(trace.router_probs[layer][i][e]),
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
            t("chart.routing.hover_shared", lang, char=_show(c), pos=i, layer=name) for i, c in enumerate(trace.labels)
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
        return _message_figure(t("chart.no_moe", lang))
    n, n_rows = len(trace.layers), trace.n_routed_experts + (1 if trace.n_shared_experts else 0)
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.25 / n)
    for j, layer in enumerate(trace.layers, start=1):
        rows, heatmap = _routing_layer(trace, layer, lang)
        fig.add_trace(heatmap, row=j, col=1)
        fig.update_yaxes(
            row=j, col=1, tickmode="array", tickvals=list(range(n_rows)), ticktext=rows,
            autorange="reversed", title_text=t("chart.layer", lang, layer=layer),
        )
    fig.update_xaxes(**_char_axis(trace.labels))
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
    candidates = list(trace.next_top[position])
    actual, p_actual = trace.next_actual[position]
    if actual not in [c for c, _ in candidates]:
        candidates.append((actual, p_actual))
    chars = [c for c, _ in candidates]
    fig = go.Figure(go.Bar(
        x=[_r(p) for _, p in candidates], y=list(range(len(chars))), orientation="h",
        marker_color=[ACTUAL_COLOR if c == actual else OTHER_COLOR for c in chars],
        text=[f"{p:.3f}" for _, p in candidates], textposition="auto",
        hovertemplate="%{x}<extra></extra>",
    ))
    context = "".join(trace.labels[: position + 1])
    fig.update_layout(
        title=t("chart.next.title", lang, context=context, actual=_show(actual), p=_r(p_actual)),
        xaxis=dict(title=t("chart.probability", lang), range=[0, 1]),
        yaxis=dict(tickmode="array", tickvals=list(range(len(chars))), ticktext=[_show(c) for c in chars],
                   autorange="reversed"),
        height=80 + 32 * len(chars), margin=dict(l=10, r=10, t=50, b=40),
    )
    return fig


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
            z_row.append(_r(p))
            text_row.append(f"<b>{_show(cand)}</b>" if cand == actual else _show(cand))
            hover_row.append(t(
                "chart.next.heatmap_hover", lang, context="".join(trace.labels[: i + 1]), rank=r + 1,
                cand=_show(cand), p=_r(p), actual=_show(actual), p_actual=_r(p_actual),
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
        xaxis=dict(title=t("chart.after_char", lang), **_char_axis(trace.labels)),
        yaxis=dict(title=t("chart.next.rank", lang), tickmode="array", tickvals=list(range(1, n_rank + 1)),
                   autorange="reversed"),
        height=110 + 34 * n_rank, margin=dict(l=10, r=10, t=50, b=40),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Expert load during training (from probes.expert_load_history)


def _load_layer_names(load_history: dict[str, Any], lang: str) -> list[str]:
    layers = load_history["layers"]
    if layers is None:
        return [t("chart.moe_layer_n", lang, n=j + 1) for j in range(len(load_history["share"]))]
    return [_layer_label(layer, load_history["n_layers"], lang) for layer in layers]


def expert_load_bars(load_history: dict[str, Any], lang: str = "en") -> go.Figure:
    """The latest step's share of assignments per routed expert, grouped by MoE layer, against
    the dashed uniform line 1/E that a perfectly balanced router would sit on."""
    if not load_history["steps"] or not load_history["share"]:
        return _message_figure(t("chart.no_steps", lang))
    n_exp = len(load_history["share"][0][-1])
    fig = go.Figure([
        go.Bar(x=list(range(n_exp)), y=[_r(s) for s in share[-1]], name=name)
        for name, share in zip(_load_layer_names(load_history, lang), load_history["share"])
    ])
    fig.add_hline(
        y=_r(1 / n_exp), line_dash="dash", line_color="#555555",
        annotation_text=t("chart.load.uniform", lang, n=n_exp), annotation_position="top right",
    )
    fig.update_layout(
        title=t("chart.load.title", lang, step=load_history["steps"][-1]), barmode="group",
        xaxis=dict(title=t("chart.load.expert", lang), tickmode="linear", dtick=1),
        yaxis=dict(title=t("chart.load.y", lang), rangemode="tozero"),
        height=320, margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.25),
    )
    return fig


def _thin(n: int, limit: int = MAX_LINE_POINTS) -> list[int]:
    """At most `limit` evenly spaced indices of range(n), always keeping the last (the live value)."""
    if n <= limit:
        return list(range(n))
    stride = -(-n // limit)  # ceil
    keep = list(range(0, n, stride))
    return keep if keep[-1] == n - 1 else keep + [n - 1]


def imbalance_figure(load_history: dict[str, Any], lang: str = "en") -> go.Figure:
    """Max / mean expert load per MoE layer over training steps; 1.0 (dashed) is perfect balance."""
    if not load_history["steps"] or not load_history["share"]:
        return _message_figure(t("chart.no_steps", lang))
    keep = _thin(len(load_history["steps"]))
    steps = [load_history["steps"][s] for s in keep]
    fig = go.Figure([
        go.Scatter(x=steps, y=[_r(values[s]) for s in keep], mode="lines", name=name)
        for name, values in zip(_load_layer_names(load_history, lang), load_history["imbalance"])
    ])
    fig.add_hline(
        y=1.0, line_dash="dash", line_color="#555555",
        annotation_text=t("chart.imbalance.perfect", lang), annotation_position="bottom right",
    )
    fig.update_layout(
        title=t("chart.imbalance.title", lang),
        xaxis=dict(title=t("chart.step", lang)), yaxis=dict(title=t("chart.imbalance.y", lang), rangemode="tozero"),
        height=300, margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.3),
    )
    return fig
