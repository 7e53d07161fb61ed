"""The benchmark's sections, each registered once: what runs it, what renders it, what it adds to the
headline and which charts it draws.

Everything that goes through the sections reads `RUN_ORDER` below: the CLI (`--sections`, the run),
bench.json's order, the report (titles, bodies, headline) and the charts. A new section is one
more `Section` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import plotly.graph_objects as go

from . import attention, decoding, memory, mtp, peer, quality, recipe, responsiveness, specialisation, throughput
from .charts import decoding_figure, memory_figure, quality_figures, specialisation_figure, throughput_figure
from .common import Plan
from .report_attention import attention_headline, attention_md
from .report_peer import peer_headline, peer_md
from .report_recipe import recipe_headline, recipe_md
from .report_sections import (
    app_md,
    decoding_md,
    memory_headline,
    memory_md,
    mtp_headline,
    mtp_md,
    quality_headline,
    quality_md,
    throughput_headline,
    throughput_md,
)
from .report_specialisation import specialisation_headline, specialisation_md

Results = dict[str, Any]  # one section's plain-dict results, as bench.json holds them


def no_headline(section: Results) -> list[str]:
    return []


def no_charts(section: Results) -> dict[str, go.Figure]:
    return {}


def one_chart(name: str, figure: Callable[[Results], go.Figure]) -> Callable[[Results], dict[str, go.Figure]]:
    """A section's single figure, saved as `name` (the name its markdown links to)."""
    return lambda section: {name: figure(section)}


@dataclass(frozen=True)
class Section:
    name: str  # in `--sections` and bench.json
    number: int  # BENCHMARKS.md shows the sections by number
    title: str
    run: Callable[[Plan], Results]
    render: Callable[[Results, dict[str, Any]], str]  # (results, plan as a dict) -> the markdown under the title
    headline: Callable[[Results], list[str]] = no_headline  # its bullets in the document's headline
    charts: Callable[[Results], dict[str, go.Figure]] = no_charts  # by chart name (`charts.chart_file`)

    @property
    def heading(self) -> str:
        return f"{self.number}. {self.title}"


# In the order they run: throughput first, while nothing else of ours has run; the sections with parallel
# workers last.
RUN_ORDER = (
    # training tokens/s of four architectures at matched active parameters; MoE layer vs dense FFN; threads
    Section("throughput", 1, "Training throughput", throughput.run, throughput_md, throughput_headline,
            one_chart("throughput", throughput_figure)),
    # KV-cache bytes/token per attention type, measured == formula
    Section("memory", 4, "KV-cache memory", memory.run, memory_md, memory_headline, one_chart("memory", memory_figure)),
    # ms/char with and without the KV cache over prefix lengths; MLA naive vs absorbed; batched names/s
    Section("decoding", 3, "Decoding", decoding.run, decoding_md, charts=one_chart("decoding", decoding_figure)),
    # self-speculative decoding on the shipped checkpoints
    Section("mtp", 5, "MTP self-speculative decoding", mtp.run, mtp_md, mtp_headline),
    # each explorer page's main computation, timed directly
    Section("app", 6, "App responsiveness", responsiveness.run, app_md),
    # val loss after equal steps and equal wall-clock; time to a target loss
    Section("quality", 2, "Quality at a fixed budget", quality.run, quality_md, quality_headline, quality_figures),
    # routers compared by I(domain; expert); ablating a language's experts; the Train page's time to specialise
    Section("specialisation", 7, "Expert specialisation by domain", specialisation.run, specialisation_md,
            specialisation_headline, one_chart("specialisation", specialisation_figure)),
    # optimizers and batch sizes at equal wall-clock and equal steps
    Section("recipe", 8, "The training recipe, by the clock", recipe.run, recipe_md, recipe_headline),
    # MLA, DSA, MoBA, log-linear and MHA on full names: speed, quality, cache, the gender cue
    Section("attention", 9, "Attention types on full names", attention.run, attention_md, attention_headline),
    # dsmini's `train` defaults against a plain GPT: time to its final val loss
    Section("peer", 10, "Time to quality against a plain GPT", peer.run, peer_md, peer_headline),
)
REPORT_ORDER = tuple(sorted(RUN_ORDER, key=lambda s: s.number))
SECTION_NAMES = tuple(s.name for s in REPORT_ORDER)  # as bench.json and `--sections` list them
BY_NAME = {s.name: s for s in RUN_ORDER}
