"""Markdown of the benchmark's speed and size sections (1-6): throughput, quality, decoding, memory, MTP, app.

Each `<section>_md(results, plan)` turns that section's plain-dict results into its body text and
`<section>_headline(results)` into its headline bullets; `report.render_section` adds the title.
Sections 7-10 are long enough for a module each (`report_specialisation.py`, ...).
"""

from __future__ import annotations

from typing import Any

from .archs import BASELINE
from .report_format import arch_label, chart_link, fmt_int, fmt_num, md_table, met_or_missed


def throughput_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    archs, moe, targets = s["archs"], s["moe_layer"], s["targets"]
    rows = [
        [arch_label(k), a["attn_type"], a["ffn_type"], str(a["mtp_depth"]), fmt_int(a["params_active_main"]),
         fmt_int(a["params_active_all"]), fmt_int(a["params_total"]), fmt_int(a["tokens_per_sec"]),
         f"{a['ratio']:.2f}x"]
        for k, a in archs.items()
    ]
    full = archs["full"]["ratio"]
    sweep = s["thread_sweep"]
    by_arch = sweep.get("by_arch", {sweep["arch"]: sweep["threads"]})  # older results: the full model only
    counts = list(next(iter(by_arch.values())))
    thread_rows = [
        [arch_label(k), *(f"{fmt_int(t[n]['tokens_per_sec'])} ({t[n]['ratio']:.2f}x)" for n in counts)]
        for k, t in by_arch.items()
    ]
    mtp = s.get("mtp_block")
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
        md_table(["architecture", "attention", "FFN", "MTP", "active params", "active (with MTP)", "total params",
                "tokens/s", "vs dense"], rows),
        f"**Full model vs dense baseline: {full:.2f}x tokens/s** (target >= {targets['full_vs_dense']}: "
        f"{met_or_missed(full >= targets['full_vs_dense'])}).",
        "" if mtp is None else
        f"The MTP module (one more block, the shared head once more, its loss) takes "
        f"{100 * mtp['share_of_full_step']:.0f}% of a full-model step: without it the same model trains "
        f"{fmt_int(mtp['tokens_per_sec_without_mtp'])} tokens/s.",
        chart_link("throughput", "tokens/s per architecture"),
        _other_batches_md(s, targets),
        "### MoE layer vs a dense FFN of equal active size",
        f"Forward + backward of one layer on the same ({moe['tokens']}, {moe['d_model']}) input, "
        f"{plan['layer_calls']} calls per round, median of {plan['rounds']} rounds"
        + ("." if "real_tokens" not in moe else
           f", with the padding mask of a real training batch of {moe['batch_size']} names ({moe['real_tokens']} real "
           f"tokens of {moe['tokens']}): the dense FFN runs on every row, as it does in training, the MoE layer on "
           f"the real tokens only. Without the mask (every row real) the MoE layer is "
           f"{moe['ratio_all_rows']:.2f}x the dense FFN."),
        md_table(["layer", "fwd+bwd ms", "forward ms"], [
            [f"dense SwiGLU, hidden {moe['dense_hidden']}", fmt_num(moe["dense_ms"], 3),
             fmt_num(moe["dense_forward_ms"], 3)],
            [f"MoE: {moe['n_shared_experts']} shared + {moe['n_routed_experts']} routed (top-{moe['top_k']}), "
             f"hidden {moe['moe_inter_dim']} each", fmt_num(moe["moe_ms"], 3), fmt_num(moe["moe_forward_ms"], 3)],
        ]),
        f"**MoE layer overhead: {moe['ratio']:.2f}x** the dense FFN (target <= {targets['moe_overhead']}: "
        f"{met_or_missed(moe['ratio'] <= targets['moe_overhead'])}). Where the MoE forward goes: router "
        f"{fmt_num(moe['router_forward_ms'], 3)} ms, shared expert {fmt_num(moe['shared_forward_ms'], 3)} ms, "
        f"routed experts (gather, {moe['n_routed_experts']} expert calls, scatter) "
        f"{fmt_num(moe['routed_forward_ms'], 3)} ms"
        + ("." if "experts_forward_ms" not in moe else
           f", of which the experts' own SwiGLUs {fmt_num(moe['experts_forward_ms'], 3)} ms and the bookkeeping "
           f"around them (sort, gather, weighted scatter, loads) {fmt_num(moe['bookkeeping_forward_ms'], 3)} ms."),
        "### Threads",
        md_table(["architecture", *(f"tokens/s at {n} thread(s) (vs 1)" for n in counts)], thread_rows),
    ])


def _other_batches_md(s: dict[str, Any], targets: dict[str, float]) -> str:
    """The two ratios with a target at the other batch sizes measured, or nothing."""
    other = s.get("other_batches") or {}
    if not other:
        return ""
    rows = [[f"{s['batch_size']} (above)", f"{s['archs']['full']['ratio']:.2f}x", f"{s['moe_layer']['ratio']:.2f}x",
             f"{100 * s['mtp_block']['share_of_full_step']:.0f}%"]]
    rows += [[b, f"{o['full_vs_dense']:.2f}x", f"{o['moe_layer']:.2f}x", f"{100 * o['mtp_share']:.0f}%"]
             for b, o in other.items()]
    return "\n\n".join([
        f"At each batch size (same method; targets: full >= {targets['full_vs_dense']}x the dense baseline's "
        f"tokens/s, an MoE layer <= {targets['moe_overhead']}x a dense FFN):",
        md_table(["batch", "full vs dense tokens/s", "MoE layer vs dense FFN", "MTP share of a full step"], rows),
    ])


def throughput_headline(s: dict[str, Any]) -> list[str]:
    return [f"Full model (MLA + MoE + MTP) trains at **{s['archs']['full']['ratio']:.2f}x** the dense baseline's "
            f"tokens/s; one MoE layer costs **{s['moe_layer']['ratio']:.2f}x** a dense FFN of equal active size."]


def _quality_corpus_md(corpus: str, summary: dict[str, Any], index: int) -> str:
    runs = summary["runs"]
    first = next(iter(runs.values()))
    target = summary["target"]
    rows = []
    for key, r in runs.items():
        ttt = r["time_to_target"]
        rows.append([
            arch_label(key), str(r["steps_done"]), fmt_num(r["final_val"], 3), fmt_num(r["best_curve_val"], 3),
            fmt_num(r["val_at_budget"], 3), f"{ttt['seconds']:.1f} s (step {ttt['step']})" if ttt else "not reached",
            fmt_num(r["train_seconds"], 0), fmt_int(r["tokens_per_sec"]),
        ])
    return "\n\n".join([
        f"### {corpus}",
        f"{first['n_train']:,} train / {first['n_val']:,} val names; curve points on {first['curve_val_names']:,} "
        f"val names; dropout {first['dropout']}. Equal-time budget: {summary['budget_seconds']:.0f} s (the "
        f"fastest run's total). Target: {fmt_num(target, 3)} nats/char.",
        md_table(["architecture", "steps", "val after steps (whole split)", "best on curve",
                f"val at {summary['budget_seconds']:.0f} s", "time to target", "train s", "tokens/s"], rows),
        _dense_vs_full_md(summary.get("dense_vs_full")),
        chart_link(f"quality-{index}", f"{corpus} val loss vs training seconds"),
    ])


def _load_text(load: dict[str, Any]) -> str:
    if load["kind"] == "alone":
        return "both ran alone, one run at a time, nothing else of this benchmark running"
    group = ", ".join(f"`{k}`" for k in load["group"])
    if load["kind"] == "concurrent":
        return (f"both ran concurrently, in one group of {len(load['group'])} ({group}): started together "
                f"({load['start_gap_s']:.2f} s apart) and each kept the machine loaded until the whole group had "
                f"finished, so both trained under the same load from first step to last")
    return f"**not under the same load**: the group ({group}) did not start together or did not stay loaded"


def _reached(point: dict[str, Any] | None) -> str:
    return f"{point['seconds']:.1f} s (step {point['step']:,})" if point else "not reached"


def _first_answer(c: dict[str, Any]) -> tuple[str, str]:
    """("yes" | "no", "(x s vs y s)"): did the full model reach the dense baseline's final val loss
    in fewer training seconds than the dense baseline did? x is the full model's seconds, y dense's."""
    reach = c["time_to_dense_final"]
    full = f"{reach['full']['seconds']:.1f} s" if reach["full"] else "not reached"
    return ("yes" if c["full_first"] else "no"), f"({full} vs {reach['dense']['seconds']:.1f} s)"


def dense_vs_full_line(c: dict[str, Any]) -> str:
    """The headline's bullet for one corpus."""
    at = c["at_equal_time"]
    full, dense = (fmt_num(at[k]["val"], 3) if at[k] else "–" for k in ("full", "dense"))
    answer, times = _first_answer(c)
    load = f"same load: {c['load']['kind']}" if c["load"]["kind"] != "unequal" else "**NOT the same load**"
    return (f"val **{full}** (full) vs {dense} (dense) at {c['seconds']:.1f} training s; full model gets to the "
            f"dense baseline's final {c['target']:.3f} first: **{answer}** {times} ({load}).")


def _dense_vs_full_md(c: dict[str, Any] | None) -> str:
    """The issue's row: dense vs full at equal wall-clock, and who reaches dense's final loss first."""
    if c is None:
        return ""
    at, reach = c["at_equal_time"], c["time_to_dense_final"]
    point = [f"{fmt_num(p['val'], 3)} (step {p['step']:,}, {p['seconds']:.1f} s)" if p else "no point yet"
             for p in (at["dense"], at["full"])]
    return "\n\n".join([
        f"**Dense vs full at equal wall-clock**: {_load_text(c['load'])}. Both read at {c['seconds']:.1f} training s "
        f"(the shorter run's total; each run's last curve point at or before it), and the training seconds until "
        f"each curve first reaches the dense baseline's final val loss, {c['target']:.3f} (its last curve point, "
        f"on the same {c['target_names']:,} val names as every point).",
        md_table(["", arch_label(BASELINE), arch_label("full")], [
            [f"val at {c['seconds']:.1f} s", *point],
            [f"seconds to {c['target']:.3f}", _reached(reach["dense"]), _reached(reach["full"])],
        ]),
        "**Full model gets there first: {}** {}.".format(*_first_answer(c)),
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
        f"Runs went {s['workers']} at a time in worker processes with 1 torch thread each, in groups per corpus (the "
        f"dense baseline and the full model in the first): a group's runs start together and each keeps training, "
        f"unrecorded, until the whole group has finished, so every run shared the machine with the same others from "
        f"first step to last. Seconds compare between runs but are longer than a lone run's."
        if s["workers"] > 1 else f"Runs went one at a time with {s['threads_per_run']} torch thread(s)."
    )
    device = s.get("device", "cpu")  # older results have no device: they all ran on the CPU
    device = f" Models trained on `{device}`" + (" (bf16 autocast)." if device.startswith("cuda") else ".")
    ru = (f" `ru-names` trains {plan['ru_steps']:,} steps instead of {plan['steps']:,} to keep the full run under "
          "an hour." if "ru-names" in s["corpora"] and plan["ru_steps"] != plan["steps"] else "")
    parts = [
        f"Preset `{s['preset']}` per architecture, the shipped checkpoints' recipe (AdamW, lr 3e-3, batch "
        f"{s['batch_size']}, warmup then cosine), seeded split as in training (`prepare_corpus(names, "
        f"default_block_size(names), seed=42)`). Val loss in nats/char. *After steps*: the whole val split after the "
        f"last step. *Equal time*: each run's val curve (a point every {s['eval_every']} steps against training "
        f"seconds, evaluation excluded) read at the budget, the last point at or before it. *Time to target*: "
        f"training seconds until the curve first goes under the target (given, else the dense baseline's final "
        f"val + 5%). {parallel}{ru}{device}",
    ]
    parts += [_quality_corpus_md(c, summary, i) for i, (c, summary) in enumerate(s["corpora"].items())]
    parts.append(_reference_md(s))
    return "\n\n".join(p for p in parts if p)


def quality_headline(s: dict[str, Any]) -> list[str]:
    lines = []
    for corpus, summary in s["corpora"].items():
        full, base = summary["runs"].get("full"), summary["runs"].get(BASELINE)
        if full and base:
            lines.append(f"`{corpus}`: val loss after {full['steps_done']:,} steps **{full['final_val']:.3f}** "
                         f"nats/char (full) vs {base['final_val']:.3f} (dense baseline).")
        if summary.get("dense_vs_full"):
            lines.append(f"`{corpus}`, equal wall-clock: {dense_vs_full_line(summary['dense_vs_full'])}")
    return lines


def decoding_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    archs, lengths = s["archs"], s["prefix_lengths"]
    rows = [[str(n)] + [f"{fmt_num(c['cached_ms'][i], 3)} / {fmt_num(c['uncached_ms'][i], 3)}" for c in archs.values()]
            for i, n in enumerate(lengths)]
    growth = [
        f"{arch_label(k)}: cached {c['cached_ms'][-1] / c['cached_ms'][0]:.2f}x, no cache "
        f"{c['uncached_ms'][-1] / c['uncached_ms'][0]:.2f}x; cache speed-up at {lengths[-1]}: "
        f"{c['uncached_ms'][-1] / c['cached_ms'][-1]:.1f}x"
        for k, c in archs.items()
    ]
    mla = {k: c for k, c in archs.items() if "naive_cached_ms" in c}
    mla_rows = [[str(n)] + [f"{fmt_num(c['naive_cached_ms'][i], 3)} / {fmt_num(c['cached_ms'][i], 3)}"
                            for c in mla.values()]
                for i, n in enumerate(lengths)]
    b = s["batched"]
    batched = (f"`generate(n={b['n']:,})` on the shipped `ru-names` checkpoint (sampling, temperature 1, one batch): "
               f"**{b['names_per_sec']:,.0f} names/s** ({b['chars_per_sec']:,.0f} chars/s; {b['seconds']:.2f} s per "
               f"batch, median of {len(b['seconds_rounds'])})." if "skipped" not in b else b["skipped"])
    return "\n\n".join([
        f"ms per generated character, greedy, batch 1, random-initialised `{plan['preset']}` models (block "
        f"{s['block_size']}) on `{s.get('device', 'cpu')}` in fp32; each point times {s['decode_chars']} characters "
        f"after the prefix (clock read once the device is idle), median of "
        f"{s['repeats']}. *Cached*: one `decode_one_token` per character (absorbed MLA), prefill not counted. "
        f"*No cache*: one forward over the whole sequence per character, as `greedy_without_cache` does.",
        md_table(["prefix chars"] + [f"{arch_label(k)}: cached / no cache" for k in archs], rows),
        f"From {lengths[0]} to {lengths[-1]} prefix characters: " + "; ".join(growth) + ".",
        chart_link("decoding", "ms/char vs prefix length"),
        "### MLA: naive vs absorbed attention (cached decode, ms/char)",
        md_table(["prefix chars"] + [f"{arch_label(k)}: naive / absorbed" for k in mla], mla_rows),
        "### Batched generation",
        batched,
    ])


def memory_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    rows, ratios = [], []
    for name, by_attn in s["presets"].items():
        for attn, r in by_attn.items():
            rows.append([name, attn, str(r["n_layers"]), fmt_int(r["values_per_token"]),
                         fmt_int(r["formula_values_per_token"]), fmt_int(r["bytes_per_token"]), f"{r['vs_mha']:.1%}",
                         "yes" if r["equal"] else "**NO**"])
        ratios.append(f"preset `{name}`: **MLA/MHA = {by_attn['mla']['vs_mha']:.1%}**")
    ref = s["v2_reference"]
    return "\n\n".join([
        f"Measured: the tensors `model.new_cache({s['batch']}, max_len={s['max_len']})` allocates, per token. "
        f"Formula: `dsmini.model.cache.check_cache` (DeepSeek-V2 Table 1) x 4 bytes (fp32). Sizes, not speed: the same "
        f"on every device.",
        md_table(["preset", "attention", "layers", "values/token", "formula", "bytes/token", "vs MHA",
                "measured == formula"], rows),
        "; ".join(ratios) + f". DeepSeek-V2 itself: {ref['mla_values']} vs {ref['mha_values']:,} values per layer "
        f"and token ({ref['mla_values'] / ref['mha_values']:.1%}).",
        chart_link("memory", "bytes/token per attention type"),
    ])


def memory_headline(s: dict[str, Any]) -> list[str]:
    small = s["presets"].get("small") or next(iter(s["presets"].values()))
    return [f"MLA's KV cache is **{small['mla']['vs_mha']:.1%}** of MHA's per token."]


def mtp_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    rows, costs, batched = [], [], []
    for name, r in s["checkpoints"].items():
        if "skipped" in r:
            rows.append([name, r["skipped"]] + [""] * 10)
            continue
        for c in r["chains"]:
            by_depth = " / ".join(f"{v['rate']:.1%}" for v in c["acceptance_by_depth"].values())
            rows.append([name, str(c["depth"]), str(r["prefixes"]), f"{c['acceptance_rate']:.1%}", by_depth,
                         f"{c['chars_per_forward']:.2f}", fmt_num(r["greedy_ms_per_name"]),
                         fmt_num(c["speculative_ms_per_name"]), f"**{c['speedup']:.2f}x**",
                         f"{c['ceiling_speedup']:.2f}x", f"{c['bound_speedup']:.2f}x",
                         "yes (asserted)" if r["same_outputs"] else "**NO**"])
        pc = r["pass_costs"]
        main = " / ".join(fmt_num(v) for k, v in pc.items() if k.startswith("main_pass"))
        drafts = " / ".join(fmt_num(v) for k, v in pc.items() if k.startswith("mtp_step"))
        costs.append([name, str(r["mtp_depth"]), fmt_num(pc["prefill_ms"]), main, drafts])
        batched.append([name, fmt_num(r["batched_greedy_ms_per_name"]), fmt_num(r["batched_speculative_ms_per_name"]),
                        f"{r['batched_speedup']:.2f}x"])
    start, end = s.get("load_average", (None, None))
    return "\n\n".join([
        f"Greedy self-speculative decoding (`speculative_decode`: each round the MTP modules draft up to k characters "
        f"in a chain, module j the j-th past the newest, and one main pass verifies them all) vs plain greedy "
        f"`generate(n=1)`, both with the KV cache, at batch 1, on the first {plan['mtp_prefixes']} names of each "
        f"checkpoint's val split, each cut to its first {s['prefix_chars']} characters as the prefix. Wall-clock: the "
        f"whole set, the decoders taking turns name by name, median of {s['repeats']} sweeps. Plain greedy makes 1 "
        f"character per main-model pass. *Acceptance per depth*: a depth-j draft is checked only when the j - 1 drafts "
        f"before it in its round stood, so depth 2's rate is given depth 1's success.",
        md_table(["checkpoint", "drafts per round", "names", "acceptance", "per depth", "chars per main pass",
                  "greedy ms/name", "speculative ms/name", "speed-up", "ceiling", "bound", "same output as greedy"],
                 rows),
        f"Pass costs at batch 1, ms (median of 5 rounds of {s.get('cost_calls', 200)} calls, all in turns): the "
        "prefill of `[B]` + 2 characters, "
        "a main pass over the cache with 1, 2, ... new tokens (1 is plain greedy's; s tokens verify s - 1 drafts), one "
        "step of each MTP module. A plain name costs its prefill plus one 1-token pass per further character; a "
        "speculative one its prefill plus, per round, a (k + 1)-token verify pass and k MTP steps. *Ceiling*: those "
        "costs with the measured rounds; *bound*: the same rounds if a verify pass cost a plain one and drafting "
        "nothing.",
        md_table(["checkpoint", "MTP depth", "prefill", "main pass, 1 / 2 / ... tokens",
                  "MTP step, module 1 / 2 / ..."], costs),
        "All the names as one batch (`speculative_generate` with the full chain, each row accepting its own drafts; "
        "greedy output asserted equal to plain per row in tests/decoding/test_speculative.py) "
        "vs the same loop with drafting off, ms per name:",
        md_table(["checkpoint", "batched plain", "batched speculative", "speed-up"], batched),
        f"Load average (1/5/15 min) {start} at the section's start, {end} at its end." if start else "",
    ])


def mtp_headline(s: dict[str, Any]) -> list[str]:
    lines = []
    for name, r in s["checkpoints"].items():
        if "skipped" not in r:
            chained = f" (chained depth {r['mtp_depth']})" if r.get("mtp_depth", 1) > 1 else ""
            lines.append(f"MTP drafts on `{name}`{chained}: **{r['acceptance_rate']:.0%}** accepted, "
                         f"{r['chars_per_forward']:.2f} chars per forward pass, **{r['speedup']:.2f}x** wall-clock.")
    return lines


def app_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    rows, notes = [], []
    for page, by_ckpt in s["pages"].items():
        for ckpt, r in by_ckpt.items():
            calls = ", ".join(f"`{c['function']}` {c['ms']:.0f}" for c in r["calls"]) or "–"
            ok = {True: "yes", False: "**NO**", None: "–"}[r["within_budget"]]
            rows.append([f"`pages/{page}.py`", ckpt, calls, fmt_num(r["total_ms"], 0), ok])
            notes += [f"- `{page}` on {ckpt}: {note}" for note in r["notes"]]
    return "\n\n".join(p for p in [
        f"Each page's main computation: its view (the probe the page caches, `dsmini/page_views.py`) with the "
        f"page's default settings, then that view's figures, each timed directly, ms, median of {s['repeats']}. "
        f"Widget layout and the browser are not included; the pages cache this work, so it is paid once per "
        f"checkpoint and settings. Budget: {s['budget_ms'] / 1000:.0f} s.",
        md_table(["page", "checkpoint", "functions (ms)", "total ms", f"< {s['budget_ms'] / 1000:.0f} s"], rows),
        "Notes:\n" + "\n".join(notes) if notes else "",
        f"Pages not run (`--quick`): {', '.join(s['not_run'])}." if s["not_run"] else "",
    ] if p)
