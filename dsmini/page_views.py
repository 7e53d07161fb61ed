"""Every explorer page's work in one registry: page (its file's stem in pages/) -> the probe the page
caches and lays out, with the page's default settings.

One source for three readers: the pages build their widgets' defaults from these settings and call
these views (through `pages/_ui.computed`), the benchmark (`dsmini/bench/responsiveness.py`) times
exactly these calls, and a test checks that every file in pages/ has an entry. `charts` lists the
figure calls of the page's default view, so the benchmark times those too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from dsmini.charts import architecture_figure, next_char_figure, next_char_heatmap, routing_figure
from dsmini.charts.attention import attention_grid_figure, score_split_figure
from dsmini.charts.attention_selection import selection_figure
from dsmini.charts.cache import cache_growth_figure, cache_table, scale_table
from dsmini.charts.compare import compare_figure
from dsmini.charts.domains import domain_map_figure, domain_mi_figure
from dsmini.charts.experts import (
    expert_load_figure,
    expert_profile_figure,
    letter_expert_figure,
    position_expert_figure,
    specialisation_figure,
)
from dsmini.charts.mtp import acceptance_by_letter_figure, acceptance_by_position_figure, draft_timeline_figure
from dsmini.charts.mtp_chain import chain_figure
from dsmini.checkpoint import Checkpoint
from dsmini.probes import lesson
from dsmini.probes.attention import AttentionSettings, AttentionTrace, attention_view
from dsmini.probes.cache import KVCacheView, kv_cache_view
from dsmini.probes.compare import COMPARE_DEFAULTS, DEFAULT_PAIR, CompareView, compare_view
from dsmini.probes.generation import (
    GenerateSettings,
    GenerateView,
    HomeSettings,
    HomeView,
    generate_view,
    home_names,
    home_view,
)
from dsmini.probes.mtp import MTPSettings, MTPView, draft_timeline, mtp_speed, mtp_view
from dsmini.probes.specialisation import ExpertAnalysis, experts_view
from dsmini.probes.training import corpus_view

LANG = "en"  # the charts the benchmark times
Call = tuple[Callable[..., Any], tuple[Any, ...]]  # a function and its arguments


@dataclass(frozen=True)
class PageWork:
    """`view(*inputs, settings)`: what a page computes on first load, its widgets at their defaults.

    inputs: "checkpoint" (the one picked in the sidebar), "pair" (it and a second one: Compare) or
    "corpus" (a corpus: the Train page's pick); model: the shipped checkpoint the page always uses
    instead of the picked one (the Lesson); settings None: the view takes none. requires: "moe" or
    "mtp" when the page only explains why a model without them has nothing to show.
    charts(checkpoint, result, settings): the figure calls of the default view. on_demand: probes
    behind a button, each with its default argument, called after the inputs. stored: whether the
    default view may be computed ahead on another machine and kept on disk (dsmini.probes.store); not
    for a view that measures the machine it runs on.
    """

    view: Callable[..., Any]
    settings: Any = None
    inputs: str = "checkpoint"
    model: str | None = None
    requires: str | None = None
    charts: Callable[[Checkpoint, Any, Any], list[Call]] | None = None
    on_demand: tuple[Call, ...] = ()
    stored: bool = True

    def not_shown(self, ckpt: Checkpoint) -> str | None:
        """Why the page only explains itself on this checkpoint (it `requires` what the model lacks), if it does."""
        cfg = ckpt.model_config
        if self.requires == "moe" and not cfg.n_moe_layers:
            return "no MoE layers: the page shows a message"
        if self.requires == "mtp" and not cfg.mtp_depth:
            return "no MTP module: the page shows a message"
        return None


def _home_charts(ckpt: Checkpoint, view: HomeView, _) -> list[Call]:
    return [(architecture_figure, (view.config, LANG))]


def _generate_charts(ckpt: Checkpoint, view: GenerateView, _) -> list[Call]:
    trace = view.trace
    return [(routing_figure, (trace, LANG)), (next_char_heatmap, (trace, LANG)), (next_char_figure, (trace, 0, LANG))]


def _experts_charts(ckpt: Checkpoint, analysis: ExpertAnalysis, _) -> list[Call]:
    """The page opens on the domains when the names have them, else on the letters."""
    if analysis.domains is not None:
        return [(domain_mi_figure, (analysis.domains, LANG)), (domain_map_figure, (analysis.domains, LANG))]
    letters = analysis.letters
    return [(letter_expert_figure, (letters, "allk", LANG)), (position_expert_figure, (letters, "allk", LANG)),
            (expert_load_figure, (letters, LANG)), (specialisation_figure, (letters, LANG)),
            (expert_profile_figure, (letters.profiles[letters.layers[0]][0], LANG))]


def _attention_charts(ckpt: Checkpoint, trace: AttentionTrace, _) -> list[Call]:
    split = [(score_split_figure, (trace, 0, 0, LANG))] if trace.has_split else []
    selection = [(selection_figure, (trace, 0, 0, LANG))] if trace.is_sparse else []
    return [(attention_grid_figure, (trace, LANG)), *split, *selection]


def _kv_cache_charts(ckpt: Checkpoint, view: KVCacheView, _) -> list[Call]:
    return [(cache_table, (view.rows, view.dims, LANG)),
            (cache_growth_figure, (view.growth, ckpt.model_config.attn_type, LANG)),
            *[(scale_table, (rows, dims, LANG)) for _, dims, rows in view.scale]]


def _mtp_charts(ckpt: Checkpoint, view: MTPView, settings: MTPSettings) -> list[Call]:
    stats = (view.greedy, view.sampled, settings.temperature, LANG)
    return [(acceptance_by_position_figure, stats), (acceptance_by_letter_figure, stats),
            (chain_figure, (view.chains, view.sampled, settings.temperature, LANG)),
            (draft_timeline_figure, (draft_timeline(view.greedy_runs[0], ckpt.tokenizer), LANG))]


def _compare_charts(ckpt: Checkpoint, view: CompareView, _) -> list[Call]:
    return [(compare_figure, (*view.facts, "A", "B", LANG))]


def _lesson_charts(ckpt: Checkpoint, view: GenerateView, _) -> list[Call]:
    return [(routing_figure, (view.trace, LANG))]


PAGES: dict[str, PageWork] = {
    "home": PageWork(home_view, charts=_home_charts, on_demand=((home_names, HomeSettings()),)),
    "lesson": PageWork(generate_view, lesson.NAMES, model=lesson.NAMES_MODEL, charts=_lesson_charts),
    "train": PageWork(corpus_view, inputs="corpus"),
    "generate": PageWork(generate_view, GenerateSettings(), charts=_generate_charts),
    "experts": PageWork(experts_view, requires="moe", charts=_experts_charts),
    "attention": PageWork(attention_view, AttentionSettings(), charts=_attention_charts),
    "kv_cache": PageWork(kv_cache_view, charts=_kv_cache_charts, stored=False),  # times this machine's decoding
    "mtp": PageWork(mtp_view, MTPSettings(), requires="mtp", charts=_mtp_charts,
                    on_demand=((mtp_speed, MTPSettings().n_prefixes),)),
    "compare": PageWork(compare_view, COMPARE_DEFAULTS, inputs="pair", charts=_compare_charts),
}


def default_calls(ckpt: Checkpoint, load: Callable[[str], Checkpoint | None]) -> Iterator[tuple[str, PageWork, tuple]]:
    """(page, its work, the view's arguments) of each page's default view on `ckpt`: the pages of the
    picked checkpoint (a page of one fixed model only on that model), and Compare when `ckpt` is A of
    the default pair (B from `load(name)`, None when it is not there). The Train page's corpus is no
    checkpoint's: it is not here."""
    for stem, work in PAGES.items():
        if work.model not in (None, ckpt.name) or work.not_shown(ckpt):
            continue
        if work.inputs == "checkpoint":
            inputs: tuple = (ckpt,)
        elif work.inputs == "pair" and ckpt.name == DEFAULT_PAIR[0] and (second := load(DEFAULT_PAIR[1])) is not None:
            inputs = (ckpt, second)
        else:
            continue
        yield stem, work, inputs + (() if work.settings is None else (work.settings,))
