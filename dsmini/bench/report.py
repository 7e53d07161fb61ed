"""bench results (plain dicts) -> BENCHMARKS.md text. Pure: no measuring, no files.

`render_section` is also what the CLI prints after each section, so the terminal and the file
show the same tables.
"""

from __future__ import annotations

from typing import Any

from .archs import ARCH_BY_KEY, BASELINE
from .charts import RESULTS_DIR, chart_file
from ..probes.ablation import DAMAGE_FLOOR
from .common import SECTIONS

TITLES = {
    "throughput": "1. Training throughput",
    "quality": "2. Quality at a fixed budget",
    "decoding": "3. Decoding",
    "memory": "4. KV-cache memory",
    "mtp": "5. MTP self-speculative decoding",
    "app": "6. App responsiveness",
    "specialisation": "7. Expert specialisation by domain",
}


# ---------------------------------------------------------------------------------------------
# Formatting


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _int(x: float | None) -> str:
    return "–" if x is None else f"{round(x):,}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _chart(name: str, what: str) -> str:
    return f"Chart: [{what}]({chart_file(name)}) (interactive Plotly HTML)."


def _label(key: str) -> str:
    return ARCH_BY_KEY[key].label


# ---------------------------------------------------------------------------------------------
# Sections


def throughput_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    archs, moe, targets = s["archs"], s["moe_layer"], s["targets"]
    rows = [
        [_label(k), a["attn_type"], a["ffn_type"], str(a["mtp_depth"]), _int(a["params_active_main"]),
         _int(a["params_active_all"]), _int(a["params_total"]), _int(a["tokens_per_sec"]), f"{a['ratio']:.2f}x"]
        for k, a in archs.items()
    ]
    full = archs["full"]["ratio"]
    threads = s["thread_sweep"]["threads"]
    thread_rows = [[n, _int(t["tokens_per_sec"]), f"{t['ratio']:.2f}x"] for n, t in threads.items()]
    return "\n\n".join([
        f"Training tokens/s counts real target tokens (padding excluded) over whole optimizer steps of "
        f"`Trainer.run` (forward, backward, clipping, AdamW, router-bias update): batches of "
        f"{s['batch_size']} `{s['corpus']}` names (block {s['block_size']}), identical for every "
        f"architecture, {s['threads']} torch thread(s). {plan['rounds']} interleaved rounds of "
        f"{plan['steps_per_round']} steps after {plan['warmup_steps']} warm-up steps; the table shows "
        f"medians, and the ratio is the median of per-round ratios to the dense baseline.",
        f"Matched active parameters: every dense FFN has hidden size (n_shared + top_k) x moe_inter_dim = "
        f"{archs[BASELINE]['active_ffn_dim']}, the experts one token runs through in an MoE layer. "
        f"`active (with MTP)` adds the MTP module, which the full model trains alongside.",
        _table(["architecture", "attention", "FFN", "MTP", "active params", "active (with MTP)", "total params",
                "tokens/s", "vs dense"], rows),
        f"**Full model vs dense baseline: {full:.2f}x tokens/s** (target >= {targets['full_vs_dense']}: "
        f"{_verdict(full >= targets['full_vs_dense'])}).",
        _chart("throughput", "tokens/s per architecture"),
        "### MoE layer vs a dense FFN of equal active size",
        f"Forward + backward of one layer on the same ({moe['tokens']}, {moe['d_model']}) input, "
        f"{plan['layer_calls']} calls per round, median of {plan['rounds']} rounds.",
        _table(["layer", "fwd+bwd ms", "forward ms"], [
            [f"dense SwiGLU, hidden {moe['dense_hidden']}", _num(moe["dense_ms"], 3), _num(moe["dense_forward_ms"], 3)],
            [f"MoE: {moe['n_shared_experts']} shared + {moe['n_routed_experts']} routed (top-{moe['top_k']}), "
             f"hidden {moe['moe_inter_dim']} each", _num(moe["moe_ms"], 3), _num(moe["moe_forward_ms"], 3)],
        ]),
        f"**MoE layer overhead: {moe['ratio']:.2f}x** the dense FFN (target <= {targets['moe_overhead']}: "
        f"{_verdict(moe['ratio'] <= targets['moe_overhead'])}). Where the MoE forward goes: router "
        f"{_num(moe['router_forward_ms'], 3)} ms, shared expert {_num(moe['shared_forward_ms'], 3)} ms, "
        f"routed experts (gather, {moe['n_routed_experts']} expert calls, scatter) "
        f"{_num(moe['routed_forward_ms'], 3)} ms.",
        "### Threads (full model)",
        _table(["torch threads", "tokens/s", "vs 1 thread"], thread_rows),
    ])


def _quality_corpus_md(corpus: str, summary: dict[str, Any], index: int) -> str:
    runs = summary["runs"]
    first = next(iter(runs.values()))
    target = summary["target"]
    rows = []
    for key, r in runs.items():
        ttt = r["time_to_target"]
        rows.append([
            _label(key), str(r["steps_done"]), _num(r["final_val"], 3), _num(r["best_curve_val"], 3),
            _num(r["val_at_budget"], 3), f"{ttt['seconds']:.1f} s (step {ttt['step']})" if ttt else "not reached",
            _num(r["train_seconds"], 0), _int(r["tokens_per_sec"]),
        ])
    return "\n\n".join([
        f"### {corpus}",
        f"{first['n_train']:,} train / {first['n_val']:,} val names; curve points on {first['curve_val_names']:,} "
        f"val names; dropout {first['dropout']}. Equal-time budget: {summary['budget_seconds']:.0f} s (the "
        f"fastest run's total). Target: {_num(target, 3)} nats/char.",
        _table(["architecture", "steps", "val after steps (whole split)", "best on curve",
                f"val at {summary['budget_seconds']:.0f} s", "time to target", "train s", "tokens/s"], rows),
        _chart(f"quality-{index}", f"{corpus} val loss vs training seconds"),
    ])


def _reference_md(s: dict[str, Any]) -> str:
    ref = s["reference"]
    summary = s["corpora"].get(ref["corpus"])
    if summary is None or "full" not in summary["runs"]:
        return ""
    full = summary["runs"]["full"]
    beats = full["final_val"] < ref["val_at_steps"] and full["best_curve_val"] < ref["best_val"]
    return (
        f"**Reference** ({ref['source']}): ~{ref['val_at_steps']} nats/char after {ref['steps']:,} steps, "
        f"~{ref['best_val']} at best. dsmini's full model on `{ref['corpus']}`: {full['final_val']:.3f} after "
        f"{full['steps_done']:,} steps, {full['best_curve_val']:.3f} at best: "
        f"{'beats it' if beats else '**does not beat it**'}. Caveat: makemore's names.txt (32K names) is not our "
        f"`en-names` (the 1990 census list, 5.5K names), so the comparison is indicative, not exact."
    )


def quality_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    parallel = (
        f"Runs went {s['workers']} at a time in worker processes with 1 torch thread each, so every run shared the "
        f"CPU with one other: seconds are comparable between runs but longer than a lone run's."
        if s["workers"] > 1 else f"Runs went one at a time with {s['threads_per_run']} torch thread(s)."
    )
    ru = (f" `ru-names` trains {plan['ru_steps']:,} steps instead of {plan['steps']:,} to keep the full run under an hour."
          if "ru-names" in s["corpora"] and plan["ru_steps"] != plan["steps"] else "")
    parts = [
        f"Preset `{s['preset']}` per architecture, the shipped checkpoints' recipe (AdamW, lr 3e-3, batch "
        f"{s['batch_size']}, warmup then cosine), seeded split as in training (`prepare_corpus(names, "
        f"default_block_size(names), seed=42)`). Val loss in nats/char. *After steps*: the whole val split after the "
        f"last step. *Equal time*: each run's val curve (a point every {s['eval_every']} steps against training "
        f"seconds, evaluation excluded) read at the budget, the last point at or before it. *Time to target*: "
        f"training seconds until the curve first goes under the target (given, else the dense baseline's final "
        f"val + 5%). {parallel}{ru}",
    ]
    parts += [_quality_corpus_md(c, summary, i) for i, (c, summary) in enumerate(s["corpora"].items())]
    parts.append(_reference_md(s))
    return "\n\n".join(p for p in parts if p)


def decoding_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    archs, lengths = s["archs"], s["prefix_lengths"]
    rows = [[str(n)] + [f"{_num(c['cached_ms'][i], 3)} / {_num(c['uncached_ms'][i], 3)}" for c in archs.values()]
            for i, n in enumerate(lengths)]
    growth = [
        f"{_label(k)}: cached {c['cached_ms'][-1] / c['cached_ms'][0]:.2f}x, no cache "
        f"{c['uncached_ms'][-1] / c['uncached_ms'][0]:.2f}x; cache speed-up at {lengths[-1]}: "
        f"{c['uncached_ms'][-1] / c['cached_ms'][-1]:.1f}x"
        for k, c in archs.items()
    ]
    mla = {k: c for k, c in archs.items() if "naive_cached_ms" in c}
    mla_rows = [[str(n)] + [f"{_num(c['naive_cached_ms'][i], 3)} / {_num(c['cached_ms'][i], 3)}" for c in mla.values()]
                for i, n in enumerate(lengths)]
    b = s["batched"]
    batched = (f"`generate(n={b['n']:,})` on the shipped `ru-names` checkpoint (sampling, temperature 1, one batch): "
               f"**{b['names_per_sec']:,.0f} names/s** ({b['chars_per_sec']:,.0f} chars/s; {b['seconds']:.2f} s per "
               f"batch, median of {len(b['seconds_rounds'])})." if "skipped" not in b else b["skipped"])
    return "\n\n".join([
        f"ms per generated character, greedy, batch 1, random-initialised `{plan['preset']}` models (block "
        f"{s['block_size']}); each point times {s['decode_chars']} characters after the prefix, median of "
        f"{s['repeats']}. *Cached*: one `decode_one_token` per character (absorbed MLA), prefill not counted. "
        f"*No cache*: one forward over the whole sequence per character, as `greedy_without_cache` does.",
        _table(["prefix chars"] + [f"{_label(k)}: cached / no cache" for k in archs], rows),
        f"From {lengths[0]} to {lengths[-1]} prefix characters: " + "; ".join(growth) + ".",
        _chart("decoding", "ms/char vs prefix length"),
        "### MLA: naive vs absorbed attention (cached decode, ms/char)",
        _table(["prefix chars"] + [f"{_label(k)}: naive / absorbed" for k in mla], mla_rows),
        "### Batched generation",
        batched,
    ])


def memory_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    rows, ratios = [], []
    for name, by_attn in s["presets"].items():
        for attn, r in by_attn.items():
            rows.append([name, attn, str(r["n_layers"]), _int(r["values_per_token"]), _int(r["formula_values_per_token"]),
                         _int(r["bytes_per_token"]), f"{r['vs_mha']:.1%}", "yes" if r["equal"] else "**NO**"])
        ratios.append(f"preset `{name}`: **MLA/MHA = {by_attn['mla']['vs_mha']:.1%}**")
    ref = s["v2_reference"]
    return "\n\n".join([
        f"Measured: the tensors `model.new_cache({s['batch']}, max_len={s['max_len']})` allocates, per token. "
        f"Formula: `dsmini.cache.check_cache` (DeepSeek-V2 Table 1) x 4 bytes (fp32).",
        _table(["preset", "attention", "layers", "values/token", "formula", "bytes/token", "vs MHA",
                "measured == formula"], rows),
        "; ".join(ratios) + f". DeepSeek-V2 itself: {ref['mla_values']} vs {ref['mha_values']:,} values per layer "
        f"and token ({ref['mla_values'] / ref['mha_values']:.1%}).",
        _chart("memory", "bytes/token per attention type"),
    ])


def mtp_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    rows = []
    for name, r in s["checkpoints"].items():
        if "skipped" in r:
            rows.append([name, r["skipped"]] + [""] * 6)
            continue
        rows.append([name, str(r["prefixes"]), f"{r['acceptance_rate']:.1%}", f"{r['chars_per_forward']:.2f}",
                     _num(r["greedy_ms_per_name"]), _num(r["speculative_ms_per_name"]), f"{r['speedup']:.2f}x",
                     "yes (asserted)" if r["same_outputs"] else "**NO**"])
    return "\n\n".join([
        f"Greedy self-speculative decoding (`speculative_decode`: the depth-1 MTP head drafts the next-but-one "
        f"character, the main model verifies it in the same pass) vs plain greedy `generate(n=1)`, both with the KV "
        f"cache, on the first {plan['mtp_prefixes']} names of each checkpoint's val split, each cut to its first "
        f"{s['prefix_chars']} characters as the prefix. Wall-clock: the whole set, the two taking turns, median of "
        f"{s['repeats']}. Plain greedy makes 1 character per main-model forward pass.",
        _table(["checkpoint", "names", "draft acceptance", "chars per main forward", "greedy ms/name",
                "speculative ms/name", "speed-up", "same output as greedy"], rows),
    ])


def app_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    rows, notes = [], []
    for page, by_ckpt in s["pages"].items():
        for ckpt, r in by_ckpt.items():
            calls = ", ".join(f"`{c['function']}` {c['ms']:.0f}" for c in r["calls"]) or "–"
            ok = {True: "yes", False: "**NO**", None: "–"}[r["within_budget"]]
            rows.append([f"`pages/{page}.py`", ckpt, calls, _num(r["total_ms"], 0), ok])
            notes += [f"- `{page}` on {ckpt}: {note}" for note in r["notes"]]
    return "\n\n".join(p for p in [
        f"Each page's main computation: the dsmini calls the page makes on first load with its widgets at their "
        f"defaults (`dsmini/bench/page_recipes.py`), each timed directly, ms, median of {s['repeats']}. Widget "
        f"layout and the browser are not included; the pages cache this work, so it is paid once per checkpoint. "
        f"Budget: {s['budget_ms'] / 1000:.0f} s.",
        _table(["page", "checkpoint", "functions (ms)", "total ms", f"< {s['budget_ms'] / 1000:.0f} s"], rows),
        "Notes:\n" + "\n".join(notes) if notes else "",
        f"Pages not run (`--quick`): {', '.join(s['not_run'])}." if s["not_run"] else "",
    ] if p)


def _spread(x: dict[str, float], digits: int = 3) -> str:
    """mean (min–max) over seeds."""
    return f"{_num(x['mean'], digits)} ({_num(x['min'], digits)}–{_num(x['max'], digits)})"


def _times(value: float, initial: float) -> str:
    return f"{value / initial:.1f}x" if initial > 0 else "–"


def _layers(layers: list[int]) -> str:
    return ", ".join(str(layer) for layer in layers)


def _shootout_md(s: dict[str, Any], preset: str) -> str:
    summary, verdict = s["summary"], s["verdict"]
    layers = next(iter(summary.values()))["layers"]
    rows = [
        [f"`{router}`", _num(r["aux_loss_coef"], 2)] + [_spread(x) for x in r["mi"]]
        + [_spread(r["best_mi"]), _num(r["best_mi_initial"]["mean"], 3),
           _times(r["best_mi"]["mean"], r["best_mi_initial"]["mean"]), _spread(r["val_loss"]),
           _spread(r["max_imbalance"], 2), _num(r["train_seconds"]["mean"], 0)]
        for router, r in summary.items()
    ]
    run_rows = [[f"`{r['router']}`", str(r["seed"]), " / ".join(_num(v, 3) for v in r["mi"]),
                 " / ".join(_num(v, 3) for v in r["mi_initial"]), _num(r["val_loss"], 3),
                 " / ".join(_num(v, 2) for v in r["imbalance"]), _num(r["train_seconds"], 0)] for r in s["runs"]]
    top, others = summary[verdict["top"]], [summary[r] for r in verdict["ranked"][1:]]
    how = " and ".join(f"`{r}` on every seed (its lowest seed above that router's highest)" if apart
                       else f"`{r}` on average only (their seeds' ranges overlap)"
                       for r, apart in verdict["separated"].items())
    first = s["runs"][0]
    return "\n\n".join([
        "### Router shoot-out",
        f"Preset `{preset}`, {s['steps']:,} steps, batch {s['batch_size']}, seeds {', '.join(map(str, s['seeds']))} "
        f"for every router, the same split ({first['n_train']:,} train / {first['n_val']:,} val names) and recipe "
        f"otherwise. I(domain; expert) on the first {first['routed_names']} val names (ceiling "
        f"{first['mi_ceiling']:.3f} bits: H(domain)), mean (min–max) over seeds; *untrained*: the same config "
        f"freshly initialised (`initial_model`), at each run's best layer. Val loss on the whole val split. "
        f"Imbalance: max / mean expert load on the routed names, the worst layer. Runs went {s['workers']} at a "
        f"time, 1 torch thread each; train s counts the steps only, and compares between runs only on a quiet "
        f"machine (see the load average above).",
        _table(["router", "aux loss"] + [f"MI layer {layer}, bits" for layer in layers]
               + ["best layer MI", "untrained", "x untrained", "val loss", "max imbalance", "train s"], rows),
        f"**Most specialised: `{verdict['top']}`**, best-layer I(domain; expert) {_spread(top['best_mi'])} bits vs "
        + ", ".join(f"`{r}` {_spread(o['best_mi'])}" for r, o in zip(verdict["ranked"][1:], others))
        + f". It leads {how}.",
        _table(["router", "seed", f"MI per layer ({_layers(layers)})", "untrained", "val loss", "imbalance per layer",
                "train s"], run_rows),
    ])


def _damage(row: dict[str, Any]) -> str:
    """The damage ratio; "> " when `damage_ratio` counted the other domain's increase as DAMAGE_FLOOR (it
    barely moved, or fell), so the ratio is a lower bound."""
    if row["delta_domain"] < DAMAGE_FLOOR and row["delta_other"] < DAMAGE_FLOOR:
        return "neither hurt"
    return f"{'> ' if row['delta_other'] < DAMAGE_FLOOR else ''}{row['ratio']:.1f}x"


def _ablation_md(s: dict[str, Any]) -> str:
    if "skipped" in s:
        return f"### Ablation on the shipped checkpoint\n\nSkipped: {s['skipped']}."
    every = s["layers"]
    rows = [[r["kind"], f"`{r['domain']}`", "all" if r["layers"] == every else _layers(r["layers"]),
             "; ".join(_layers(e) for e in r["experts"]), _num(r["delta_domain"], 3), _num(r["delta_other"], 3),
             _damage(r)] for r in s["rows"]]
    overall = [f"{r['kind']} `{r['domain']}`: {_damage(r)}" for r in s["rows"] if r["layers"] == every]
    mi = ", ".join(f"layer {layer} {v:.3f} ({_times(v, v0)} untrained)"
                   for layer, v, v0 in zip(every, s["mi"], s["mi_initial"]))
    return "\n\n".join([
        "### Ablation on the shipped checkpoint",
        f"`checkpoints/{s['checkpoint']}` (router `{s['router']}`, {s['steps']:,} steps, val "
        f"{_num(s['val_loss'], 3)}), its first {s['routed_names']} val names. I(domain; expert): {mi}. Each row "
        f"switches off domain D's top-{s['top_n']} experts by relative load in the given MoE layer(s) "
        f"(`domain_top_experts`) and reruns the same names: loss increase (nats/char) on D's names and on the other "
        f"domain's, and their ratio (`damage_ratio`: > 1 = it hurt D most; it counts the other domain's increase "
        f"as at least {DAMAGE_FLOOR} nats/char, and \"> \" marks where it did: a lower bound). *drop*: their output "
        f"is removed, nothing stands in; *reroute*: the router picks its next choices instead.",
        _table(["kind", "domain D", "layers", "experts off", "Δ loss on D", "Δ loss on the other", "ratio"], rows),
        "All MoE layers at once: " + "; ".join(overall) + ".",
        _reroute_vs_drop(s),
    ])


def _reroute_vs_drop(s: dict[str, Any]) -> str:
    """Does letting the router pick stand-ins hide what dropping shows? Compared on D, all MoE layers."""
    every = {(r["kind"], r["domain"]): r["delta_domain"] for r in s["rows"] if r["layers"] == s["layers"]}
    pairs = [(d, every[("reroute", d)], every[("drop", d)]) for d in s["domains"]]
    worse = [reroute > drop for _, reroute, drop in pairs]
    reading = ("rerouting hurts D more than dropping: the stand-ins the router picks do worse than no expert, so "
               "rerouting does not hide the specialisation here" if all(worse) else
               "rerouting hurts D less than dropping: the stand-ins make up for part of what the dropped experts did"
               if not any(worse) else "rerouting hurts D more than dropping for some domains, less for others")
    return ("Reroute vs drop, all MoE layers, loss increase on D: "
            + ", ".join(f"`{d}` {reroute:+.3f} vs {drop:+.3f}" for d, reroute, drop in pairs) + f": {reading}.")


def _page_run_md(s: dict[str, Any]) -> str:
    rows = [[str(p["step"]), _num(p["seconds"], 1), _num(p["val"], 3), " / ".join(_num(v, 3) for v in p["mi"]),
             f"{max(v / v0 if v0 > 0 else float('inf') for v, v0 in zip(p['mi'], s['mi_initial'])):.1f}x"]
            for p in s["curve"]]
    reached, t = s["reached"], s["train_config"]
    first = (f"; already at the first eval point, so perhaps sooner: the page measures every {s['eval_every']} "
             f"steps" if reached and reached["step"] == s["curve"][0]["step"] else "")
    outcome = (f"**{reached['seconds']:.1f} s (step {reached['step']})** (target <= {s['target_seconds']:.0f} s: "
               f"{_verdict(reached['seconds'] <= s['target_seconds'])}{first})" if reached else
               f"**not within {s['steps']:,} steps** (target <= {s['target_seconds']:.0f} s: **MISSED**)")
    return "\n\n".join([
        "### Time to specialise (Train page defaults)",
        f"The Train page's defaults (`pages/train.py`): preset `{s['preset']}`, router `{s['router']}`, "
        f"{s['steps']} steps, batch {t['batch_size']}, lr {t['lr']}, {t['optimizer']}, warmup {t['warmup_steps']}, "
        f"eval every {s['eval_every']} steps, samples every {t['sample_every']}, one torch thread (as a job trains), "
        f"timed from Start: corpus split and model build ({s['build_seconds']:.1f} s) included, "
        f"torch._dynamo already imported (the app does it at startup), in this process, not a job's child. At each "
        f"eval point the trainer measures I(domain; expert) on the first {s['routed_names']} val names for the "
        f"page's live curve (`StepMetrics.domain_mi`, in the clock too), against the same config untrained "
        f"(`domain_mi_initial`: {' / '.join(_num(v, 3) for v in s['mi_initial'])} bits). Specialised: some layer "
        f">= {s['factor']:.0f}x its untrained value.",
        f"Start to specialised: {outcome}.",
        _table(["step", "seconds since Start", "val loss", f"MI per layer ({_layers(s['layers'])})", "best x untrained"],
               rows),
    ])


def specialisation_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    return "\n\n".join([
        f"Corpus `{s['corpus']}` (Russian and US names, domain = language), split as training splits it (seed 42). "
        f"I(domain; expert) in bits per MoE layer (`probes.domains.domain_mi`): 0 when the experts a token goes to say "
        f"nothing about its name's language, H(domain) (~1 bit) when they say all; always read beside the untrained "
        f"value. Load average (1/5/15 min) {s['load_at_start']} at the section's start, {s['load_at_end']} at its end "
        f"({s['seconds'] / 60:.1f} min).",
        _shootout_md(s["routers"], s["preset"]),
        _chart("specialisation", "I(domain; expert) per layer and router, min–max over seeds"),
        _ablation_md(s["ablation"]),
        _page_run_md(s["page_run"]),
    ])


RENDERERS = {"throughput": throughput_md, "quality": quality_md, "decoding": decoding_md, "memory": memory_md,
             "mtp": mtp_md, "app": app_md, "specialisation": specialisation_md}


def render_section(name: str, section: dict[str, Any], plan: dict[str, Any]) -> str:
    body = f"Failed: `{section['error']}`" if "error" in section else RENDERERS[name](section, plan)
    return f"## {TITLES[name]}\n\n{body}\n"


# ---------------------------------------------------------------------------------------------
# The document


def headline(sections: dict[str, Any]) -> list[str]:
    """The key ratios, one bullet each, for whichever sections ran."""
    ok = {k: v for k, v in sections.items() if "error" not in v}
    lines = []
    if "throughput" in ok:
        t = ok["throughput"]
        lines.append(f"Full model (MLA + MoE + MTP) trains at **{t['archs']['full']['ratio']:.2f}x** the dense "
                     f"baseline's tokens/s; one MoE layer costs **{t['moe_layer']['ratio']:.2f}x** a dense FFN of "
                     f"equal active size.")
    if "quality" in ok:
        for corpus, summary in ok["quality"]["corpora"].items():
            full = summary["runs"].get("full")
            base = summary["runs"].get(BASELINE)
            if full and base:
                lines.append(f"`{corpus}`: val loss after {full['steps_done']:,} steps **{full['final_val']:.3f}** "
                             f"nats/char (full) vs {base['final_val']:.3f} (dense baseline).")
    if "memory" in ok:
        small = ok["memory"]["presets"].get("small") or next(iter(ok["memory"]["presets"].values()))
        lines.append(f"MLA's KV cache is **{small['mla']['vs_mha']:.1%}** of MHA's per token.")
    if "mtp" in ok:
        for name, r in ok["mtp"]["checkpoints"].items():
            if "skipped" not in r:
                lines.append(f"MTP drafts on `{name}`: **{r['acceptance_rate']:.0%}** accepted, "
                             f"{r['chars_per_forward']:.2f} chars per forward pass, **{r['speedup']:.2f}x** wall-clock.")
    if "specialisation" in ok:
        lines.append(_specialisation_headline(ok["specialisation"]))
    return [f"- {line}" for line in lines]


def _specialisation_headline(s: dict[str, Any]) -> str:
    summary, verdict = s["routers"]["summary"], s["routers"]["verdict"]
    top = summary[verdict["top"]]
    parts = [
        f"Experts by language (`{s['corpus']}`): **`{verdict['top']}`** specialises most, best-layer I(domain; expert) "
        f"**{top['best_mi']['mean']:.3f}** bits ({_times(top['best_mi']['mean'], top['best_mi_initial']['mean'])} "
        f"untrained) vs " + ", ".join(
            f"`{r}` {summary[r]['best_mi']['mean']:.3f} ({'below it on every seed' if apart else 'seeds overlap'})"
            for r, apart in verdict["separated"].items())
        + f", {len(s['routers']['seeds'])} seeds"
    ]
    ablation = s["ablation"]
    if "skipped" not in ablation:
        every = [r for r in ablation["rows"] if r["layers"] == ablation["layers"]]
        parts.append(f"switching a language's top-{ablation['top_n']} experts off in every MoE layer, damage ratio "
                     + ", ".join(f"{r['kind']} **{_damage(r)}** (`{r['domain']}`)" for r in every))
    reached = s["page_run"]["reached"]
    parts.append(f"a Train-page run specialises in **{reached['seconds']:.0f} s** (step {reached['step']})" if reached
                 else "a Train-page run did **not** specialise within its steps")
    return "; ".join(parts) + "."


def render_markdown(results: dict[str, Any]) -> str:
    """The whole BENCHMARKS.md from `{"meta": ..., "sections": {name: dict}}`."""
    meta, sections = results["meta"], results["sections"]
    plan = meta["plan"]
    load_end = meta.get("load_at_end")
    machine = _table(["", ""], [
        ["CPU", f"{meta['cpu']} ({meta['cores']} logical cores)"],
        ["RAM", f"{meta['ram_gb']} GB" if meta["ram_gb"] else "–"],
        ["GPU", meta["gpu"] or "none (CPU only)"],
        ["software", f"Python {meta['python']}, torch {meta['torch']}, {meta['platform']}"],
        ["torch threads", str(meta["threads"])],
        ["load average (1/5/15 min)", f"{meta['load_at_start']} at start, {load_end} at end"],
        ["commit", meta["commit"] or "–"],
        ["date", meta["date"]],
        ["duration", f"{meta['seconds'] / 60:.1f} min" if meta.get("seconds") else "–"],
    ])
    parts = [
        "# dsmini benchmarks",
        f"Produced by `{meta['command']}` (raw numbers: `{RESULTS_DIR}/bench.json`). Run it again to refresh.",
    ]
    if plan["quick"]:
        parts.append("> **Quick mode**: tiny sizes that exercise every measurement in seconds; the numbers mean nothing.")
    summary = headline(sections)
    if summary:
        parts += ["## Headline", "\n".join(summary)]
    parts += [
        "## Machine", machine,
        "Method: medians of repeated runs; variants measured side by side in one process with the same threads and "
        "data, interleaved in rounds (A B C D A B C D ...) so drift in the machine's speed hits all alike. "
        "Nothing else of this benchmark runs during the throughput section.",
    ]
    parts += [render_section(name, sections[name], plan) for name in SECTIONS if name in sections]
    return "\n\n".join(p.rstrip() for p in parts) + "\n"
