"""What each explorer page computes on first load, written as the dsmini calls the page makes.

One function per page (the file's stem), mirroring `pages/<stem>.py` with its widgets at their
defaults; every dsmini call goes through `ctx.call`, which times it. Imports sit inside each
recipe on purpose: pages and their probes change while the app is built, and a missing or
renamed function must cost one page's row (the runner notes the error), not the whole benchmark.
When a page changes, change its recipe: the runner lists functions a page imports that its recipe
never calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..checkpoint import Checkpoint
from ..data import Corpus
from ..generate import generate

LANG = "en"
TEMPERATURE = 0.8  # the pages' default sampling temperature
# imported by a page but run only on demand, not on load
ON_DEMAND = {
    "time_decoding": "runs when the user presses the speed button",
    "alphabet_prefixes": "used only for a corpus that is not built in",
}


@dataclass
class PageContext:
    ckpt: Checkpoint  # the checkpoint picked in the sidebar
    shipped: dict[str, Checkpoint]  # every shipped checkpoint (the compare page shows two)
    corpus: Callable[[str], Corpus]  # a built-in corpus (cached by the app, so untimed)
    call: Callable[..., Any]  # call(fn, *args, **kwargs): timed, returns fn's result
    notes: list[str] = field(default_factory=list)


def home(c: PageContext) -> None:
    from ..charts import architecture_figure

    c.call(architecture_figure, c.ckpt.model_config, LANG)
    c.call(generate, c.ckpt.model, c.ckpt.tokenizer, n=10, temperature=TEMPERATURE)


def generate_page(c: PageContext) -> None:
    from ..charts import next_char_figure, next_char_heatmap, routing_figure
    from ..probes import trace_name

    model, tokenizer, cfg = c.ckpt.model, c.ckpt.tokenizer, c.ckpt.model_config
    names = c.call(generate, model, tokenizer, n=10, temperature=TEMPERATURE, max_len=cfg.block_size - 1, seed=0)
    trace = c.call(trace_name, model, tokenizer, next(g.text for g in names if g.text))
    c.call(routing_figure, trace, LANG)
    c.call(next_char_heatmap, trace, LANG)
    c.call(next_char_figure, trace, 0, LANG)


def train(c: PageContext) -> None:
    """The setup's corpus stats, then one redraw of the live view, fed a finished run's history."""
    from ..charts import expert_load_bars, imbalance_figure
    from ..data import corpus_stats
    from ..probes import expert_load_history, loss_frame

    c.call(corpus_stats, c.corpus(c.ckpt.corpus["name"]).names)
    c.call(loss_frame, c.ckpt.history)
    load = c.call(expert_load_history, c.ckpt.history, c.ckpt.model_config)
    if load["layers"]:
        c.call(expert_load_bars, load, LANG)
        c.call(imbalance_figure, load, LANG)


def experts(c: PageContext) -> None:
    """The analysis (trained + untrained routing), then the default view: domains when the corpus has
    them, else letters; and the one-click "drop a domain's top experts" ablation."""
    from ..charts.domains import ablation_figure, domain_damage_figure, domain_map_figure, domain_mi_figure
    from ..charts.experts import (
        expert_load_figure, expert_profile_figure, letter_expert_figure, position_expert_figure, specialisation_figure,
    )
    from ..checkpoint import checkpoint_validation_set
    from ..probes.ablation import ablate, domain_top_experts
    from ..probes.experts import MAX_NAMES
    from ..probes.specialisation import expert_analysis

    model, tokenizer, cfg = c.ckpt.model, c.ckpt.tokenizer, c.ckpt.model_config
    if cfg.n_moe_layers == 0:
        c.notes.append("no MoE layers: the page shows a message")
        return
    labelled = c.call(checkpoint_validation_set, c.ckpt, MAX_NAMES, load=c.corpus)
    analysis = c.call(expert_analysis, model, tokenizer, labelled.names, labelled.domains)
    report = analysis.domains
    if report is None:
        letters = analysis.letters
        c.call(letter_expert_figure, letters, "allk", LANG)
        c.call(position_expert_figure, letters, "allk", LANG)
        c.call(expert_load_figure, letters, LANG)
        c.call(specialisation_figure, letters, LANG)
        c.call(expert_profile_figure, letters.profiles[letters.layers[0]][0], LANG)
        return
    c.call(domain_mi_figure, report, LANG)
    c.call(domain_map_figure, report, LANG)
    spec = c.call(domain_top_experts, report, report.domains[0], report.layers, 2)
    result = c.call(ablate, model, tokenizer, analysis.names, analysis.routed, spec, analysis.name_domains)
    c.call(domain_damage_figure, result, LANG)
    c.call(ablation_figure, result, LANG)


def attention(c: PageContext) -> None:
    from ..charts.attention import attention_grid_figure, score_split_figure
    from ..probes.attention import sample_name, trace_attention

    name = c.call(sample_name, c.ckpt.tokenizer, c.ckpt.model_config.block_size)
    trace = c.call(trace_attention, c.ckpt.model, c.ckpt.tokenizer, name)
    c.call(attention_grid_figure, trace, LANG)
    if trace.has_split:
        c.call(score_split_figure, trace, 0, 0, LANG)


def kv_cache(c: PageContext) -> None:
    from ..cache import DEEPSEEK_V2, DEEPSEEK_V3, CacheDims
    from ..charts.cache import cache_growth_figure, cache_table, scale_table
    from ..probes.attention import sample_name
    from ..probes.cache import (
        attention_variants,
        cache_growth,
        measure_caches,
        scale_rows,
        time_absorbed_decode,
    )

    model, tokenizer, cfg = c.ckpt.model, c.ckpt.tokenizer, c.ckpt.model_config
    dims = CacheDims.from_config(cfg)
    variants, _ = c.call(attention_variants, model)
    rows = c.call(measure_caches, model, variants)
    growth = c.call(cache_growth, variants, 1024)
    c.call(cache_table, rows, dims, LANG)
    c.call(cache_growth_figure, growth, cfg.attn_type, LANG)
    for big in (DEEPSEEK_V2, DEEPSEEK_V3):
        c.call(scale_table, c.call(scale_rows, big), big, LANG)
    if cfg.attn_type == "mla":
        sample = c.call(sample_name, tokenizer, cfg.block_size)
        c.call(time_absorbed_decode, model, tokenizer, tuple(dict.fromkeys(sample[:i] for i in range(3))))


def mtp(c: PageContext) -> None:
    from ..charts.mtp import acceptance_by_letter_figure, acceptance_by_position_figure, draft_timeline_figure
    from ..probes.mtp import (
        acceptance_stats,
        check_mtp,
        draft_prefixes,
        draft_timeline,
        greedy_matches,
        run_drafts,
    )
    from ..checkpoint import checkpoint_validation_set

    model, tokenizer = c.ckpt.model, c.ckpt.tokenizer
    if c.ckpt.model_config.mtp_depth == 0:
        c.notes.append("no MTP module: the page shows a message")
        return
    c.call(check_mtp, model)
    names = c.call(checkpoint_validation_set, c.ckpt, load=c.corpus).names
    prefixes = tuple(c.call(draft_prefixes, names, 12, tokenizer))
    greedy_runs = c.call(run_drafts, model, tokenizer, prefixes)
    c.call(greedy_matches, model, tokenizer, prefixes, greedy_runs)
    sampled_runs = c.call(run_drafts, model, tokenizer, prefixes, TEMPERATURE, 0)
    greedy, sampled = c.call(acceptance_stats, greedy_runs), c.call(acceptance_stats, sampled_runs)
    c.call(acceptance_by_position_figure, greedy, sampled, TEMPERATURE, LANG)
    c.call(acceptance_by_letter_figure, greedy, sampled, TEMPERATURE, LANG)
    c.call(draft_timeline_figure, c.call(draft_timeline, greedy_runs[0], tokenizer), LANG)


def compare(c: PageContext) -> None:
    """The picked checkpoint (A) beside another shipped one (B), names from an empty prefix."""
    from ..charts.compare import compare_figure
    from ..probes.compare import config_rows, fact_rows, model_facts, rows_frame

    a = c.ckpt
    b = next((ck for name, ck in c.shipped.items() if name != a.name), a)
    columns = ("field", f"A: {a.name}", f"B: {b.name}", "differs")
    facts_a, facts_b = c.call(model_facts, a), c.call(model_facts, b)
    c.call(compare_figure, facts_a, facts_b, columns[1], columns[2], LANG)
    c.call(rows_frame, c.call(fact_rows, facts_a, facts_b), {}, columns)
    c.call(rows_frame, c.call(config_rows, a.model_config, b.model_config), {}, columns)
    for ckpt in (a, b):
        c.call(generate, ckpt.model, ckpt.tokenizer, "", n=8, temperature=TEMPERATURE, seed=0)


RECIPES: dict[str, Callable[[PageContext], None]] = {
    "home": home, "generate": generate_page, "train": train, "experts": experts, "attention": attention,
    "kv_cache": kv_cache, "mtp": mtp, "compare": compare,
}
