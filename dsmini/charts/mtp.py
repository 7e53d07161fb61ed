"""MTP draft acceptance (from probes.mtp): by position and by drafted letter against DeepSeek-V3's
85–90% band, and one generation drawn draft by draft, each accepted draft coloured by the depth
that drafted it."""

from __future__ import annotations

import plotly.graph_objects as go

from dsmini.data import BOUNDARY_SYMBOL
from dsmini.i18n import t
from dsmini.probes.mtp import SOURCES, V3_ACCEPTANCE, DraftStats, DraftTimeline, Tally, TimelineCell

from .common import message_figure, rounded, show_char

GREEDY_COLOR, SAMPLED_COLOR = "#1f77b4", "#ff7f0e"
BAND_COLOR, BAND_LINE = "rgba(44,160,44,0.15)", "#2ca02c"
SOURCE_COLORS = {"prefix": "#d9d9d9", "main": "#9ecae1", "accepted": "#74c476", "rejected": "#fb6a4a"}
DEEPER_COLORS = ("#238b45", "#00441b", "#003d2b")  # accepted drafts of depth 2, 3, 4: darker greens


def _series(greedy: DraftStats, sampled: DraftStats | None, temperature: float,
            lang: str) -> list[tuple[str, str, DraftStats]]:
    runs = [(t("chart.mtp.greedy", lang), GREEDY_COLOR, greedy)]
    if sampled is not None:
        runs.append((t("chart.mtp.sampled", lang, temperature=rounded(temperature)), SAMPLED_COLOR, sampled))
    return runs


def _bars(name: str, color: str, keys: list, tallies: dict, lang: str) -> go.Bar:
    """Acceptance rate per key (missing keys: no bar), accepted/proposed as text and hover."""
    cells = [tallies.get(k, Tally()) for k in keys]
    return go.Bar(
        name=name, x=list(range(len(keys))), y=[rounded(c.rate) if c.proposed else None for c in cells],
        marker_color=color, text=[f"{c.accepted}/{c.proposed}" if c.proposed else "" for c in cells],
        textposition="outside", cliponaxis=False,
        hovertext=[
            t("chart.mtp.hover", lang, series=name, accepted=c.accepted, proposed=c.proposed, rate=round(100 * c.rate))
            for c in cells
        ],
        hovertemplate="%{hovertext}<extra></extra>",
    )


def _acceptance_figure(runs: list[tuple[str, str, DraftStats]], keys: list, ticktext: list[str], attr: str,
                       title: str, x_title: str, lang: str) -> go.Figure:
    """Grouped bars per key for each run, the V3 band across them (with a legend key), y = acceptance in [0, 1]."""
    fig = go.Figure([_bars(name, color, keys, getattr(stats, attr), lang) for name, color, stats in runs])
    low, high = V3_ACCEPTANCE
    # above the bars, faint, so the reference shows through wherever a bar reaches it
    fig.add_hrect(y0=low, y1=high, fillcolor=BAND_COLOR, line=dict(color=BAND_LINE, width=1, dash="dot"), layer="above")
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=t("chart.mtp.v3_band", lang), hoverinfo="skip",
                             marker=dict(symbol="square", size=12, color=BAND_COLOR,
                                         line=dict(color=BAND_LINE, width=1))))
    fig.update_layout(
        title=title, barmode="group",
        xaxis=dict(title=x_title, tickmode="array", tickvals=list(range(len(keys))), ticktext=ticktext),
        yaxis=dict(title=t("chart.mtp.acceptance", lang), range=[0, 1.12], tickformat=".0%"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right"),
        height=360, margin=dict(l=10, r=10, t=80, b=40),
    )
    return fig


def acceptance_by_position_figure(greedy: DraftStats, sampled: DraftStats | None = None,
                                  temperature: float = 0.0, lang: str = "en") -> go.Figure:
    """Acceptance per position of the drafted character (1 = the name's first), greedy and sampled
    side by side, over the DeepSeek-V3 85–90% band."""
    runs = _series(greedy, sampled, temperature, lang)
    keys = sorted({p for _, _, s in runs for p in s.by_position})
    if not keys:
        return message_figure(t("chart.mtp.no_drafts", lang))
    return _acceptance_figure(runs, keys, [str(p) for p in keys], "by_position",
                              t("chart.mtp.by_position_title", lang), t("chart.mtp.position", lang), lang)


def acceptance_by_letter_figure(greedy: DraftStats, sampled: DraftStats | None = None,
                                temperature: float = 0.0, lang: str = "en") -> go.Figure:
    """Acceptance per drafted character (the end of name last), greedy and sampled side by side."""
    runs = _series(greedy, sampled, temperature, lang)
    keys = list(dict.fromkeys(c for _, _, s in runs for c in s.by_letter))
    keys.sort(key=lambda c: (c == BOUNDARY_SYMBOL, c))
    if not keys:
        return message_figure(t("chart.mtp.no_drafts", lang))
    fig = _acceptance_figure(runs, keys, [show_char(c) for c in keys], "by_letter",
                             t("chart.mtp.by_letter_title", lang), t("chart.mtp.letter", lang), lang)
    # many narrow bars: counts would overlap (they stay in the hover)
    fig.update_traces(text=None, selector=dict(type="bar"))
    return fig


def _cell_hover(cell: TimelineCell, lang: str) -> tuple[str, str]:
    """Hover texts of (the draft row, the kept row) at one position."""
    char = show_char(cell.char)
    kept = t(f"chart.mtp.hover_{cell.source}", lang, pos=cell.position, char=char, draft=show_char(cell.draft or ""))
    if cell.draft is None:
        return "", kept
    return t("mtp.chain.hover_draft", lang, pos=cell.position, draft=show_char(cell.draft), depth=cell.depth,
             verdict=t(f"chart.mtp.{cell.source}", lang)), kept


def _legend(cells: list[TimelineCell], lang: str) -> list[tuple[str, str, str]]:
    """(key, legend name, colour) per colour band: the four sources, then one band per deeper depth
    with an accepted draft, so a chained run shows which characters the second module gave."""
    bands = [(source, t(f"chart.mtp.{source}", lang), SOURCE_COLORS[source]) for source in SOURCES]
    deepest = max((c.depth for c in cells if c.source == "accepted"), default=1)
    bands += [(f"accepted_{k}", t("mtp.chain.accepted_depth", lang, depth=k), DEEPER_COLORS[k - 2])
              for k in range(2, deepest + 1)]
    return bands


def draft_timeline_figure(timeline: DraftTimeline, lang: str = "en") -> go.Figure:
    """One name as two rows of cells: top, what the MTP modules drafted at each position (green =
    accepted, darker for deeper modules; red = rejected); bottom, the character kept there,
    coloured by where it came from. A rejected draft sits right above the main model's correction."""
    cells = timeline.cells
    bands = _legend(cells, lang)
    code = {key: i + 1 for i, (key, _, _) in enumerate(bands)}

    def band(cell: TimelineCell) -> int:
        deeper = cell.source == "accepted" and cell.depth and cell.depth > 1
        return code[f"accepted_{cell.depth}"] if deeper else code[cell.source]

    n = len(cells)
    draft_z = [band(c) if c.draft is not None else None for c in cells]
    kept_z = [code["main"] if c.source == "rejected" else band(c) for c in cells]
    hovers = [_cell_hover(c, lang) for c in cells]
    steps = len(bands)
    scale = []
    for i, (_, _, color) in enumerate(bands):  # one flat band per colour: z = 1..steps over [0.5, steps + 0.5]
        scale += [[i / steps, color], [(i + 1) / steps, color]]
    fig = go.Figure(go.Heatmap(
        z=[draft_z, kept_z], x=list(range(n)), y=[0, 1], zmin=0.5, zmax=steps + 0.5, colorscale=scale,
        showscale=False, xgap=2, ygap=2,
        text=[[show_char(c.draft) if c.draft is not None else "" for c in cells], [show_char(c.char) for c in cells]],
        texttemplate="%{text}", textfont=dict(size=16),
        hovertext=[[h[0] for h in hovers], [h[1] for h in hovers]], hovertemplate="%{hovertext}<extra></extra>",
    ))
    for _, name, color in bands:  # legend entries: a heatmap has none of its own
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(symbol="square", size=12, color=color)))
    per_pass = timeline.generated_tokens / timeline.forward_passes if timeline.forward_passes else 0.0
    fig.update_layout(
        title=t("chart.mtp.timeline_title", lang, name=timeline.text, tokens=timeline.generated_tokens,
                passes=timeline.forward_passes, per_pass=rounded(per_pass), accepted=timeline.accepted,
                proposed=timeline.proposed),
        xaxis=dict(title=t("chart.mtp.position", lang), tickmode="array", tickvals=list(range(n)),
                   ticktext=[str(c.position) for c in cells], showgrid=False, zeroline=False),
        yaxis=dict(tickmode="array", tickvals=[0, 1], autorange="reversed", showgrid=False, zeroline=False,
                   ticktext=[t("chart.mtp.row_draft", lang), t("chart.mtp.row_kept", lang)]),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"),
        plot_bgcolor="rgba(0,0,0,0)", height=280, margin=dict(l=10, r=10, t=80, b=40),
    )
    return fig
