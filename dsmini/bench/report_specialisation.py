"""Markdown of the benchmark's expert-specialisation section (7) and its headline bullet.

Three parts, each with its own reading aid: the router shoot-out (mean and range over seeds,
against the untrained model), the ablation of a domain's top experts on the shipped checkpoint
(damage ratios, reroute vs drop) and the Train page's time to specialise.
"""

from __future__ import annotations

from typing import Any

from dsmini.probes.ablation import DAMAGE_FLOOR

from .report_format import chart_link, fmt_num, md_table, met_or_missed


def _spread(x: dict[str, float], digits: int = 3) -> str:
    """mean (min–max) over seeds."""
    return f"{fmt_num(x['mean'], digits)} ({fmt_num(x['min'], digits)}–{fmt_num(x['max'], digits)})"


def _times(value: float, initial: float) -> str:
    return f"{value / initial:.1f}x" if initial > 0 else "–"


def _layers(layers: list[int]) -> str:
    return ", ".join(str(layer) for layer in layers)


def _shootout_md(s: dict[str, Any], preset: str) -> str:
    summary, verdict = s["summary"], s["verdict"]
    layers = next(iter(summary.values()))["layers"]
    rows = [
        [f"`{router}`", fmt_num(r["aux_loss_coef"], 2)] + [_spread(x) for x in r["mi"]]
        + [_spread(r["best_mi"]), fmt_num(r["best_mi_initial"]["mean"], 3),
           _times(r["best_mi"]["mean"], r["best_mi_initial"]["mean"]), _spread(r["val_loss"]),
           _spread(r["max_imbalance"], 2), fmt_num(r["train_seconds"]["mean"], 0)]
        for router, r in summary.items()
    ]
    run_rows = [[f"`{r['router']}`", str(r["seed"]), " / ".join(fmt_num(v, 3) for v in r["mi"]),
                 " / ".join(fmt_num(v, 3) for v in r["mi_initial"]), fmt_num(r["val_loss"], 3),
                 " / ".join(fmt_num(v, 2) for v in r["imbalance"]), fmt_num(r["train_seconds"], 0)] for r in s["runs"]]
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
        md_table(["router", "aux loss"] + [f"MI layer {layer}, bits" for layer in layers]
               + ["best layer MI", "untrained", "x untrained", "val loss", "max imbalance", "train s"], rows),
        f"**Most specialised: `{verdict['top']}`**, best-layer I(domain; expert) {_spread(top['best_mi'])} bits vs "
        + ", ".join(f"`{r}` {_spread(o['best_mi'])}" for r, o in zip(verdict["ranked"][1:], others))
        + f". It leads {how}.",
        md_table(["router", "seed", f"MI per layer ({_layers(layers)})", "untrained", "val loss", "imbalance per layer",
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
             "; ".join(_layers(e) for e in r["experts"]), fmt_num(r["delta_domain"], 3), fmt_num(r["delta_other"], 3),
             _damage(r)] for r in s["rows"]]
    overall = [f"{r['kind']} `{r['domain']}`: {_damage(r)}" for r in s["rows"] if r["layers"] == every]
    mi = ", ".join(f"layer {layer} {v:.3f} ({_times(v, v0)} untrained)"
                   for layer, v, v0 in zip(every, s["mi"], s["mi_initial"]))
    return "\n\n".join([
        "### Ablation on the shipped checkpoint",
        f"`checkpoints/{s['checkpoint']}` (router `{s['router']}`, {s['steps']:,} steps, val "
        f"{fmt_num(s['val_loss'], 3)}), its first {s['routed_names']} val names. I(domain; expert): {mi}. Each row "
        f"switches off domain D's top-{s['top_n']} experts by relative load in the given MoE layer(s) "
        f"(`domain_top_experts`) and reruns the same names: loss increase (nats/char) on D's names and on the other "
        f"domain's, and their ratio (`damage_ratio`: > 1 = it hurt D most; it counts the other domain's increase "
        f"as at least {DAMAGE_FLOOR} nats/char, and \"> \" marks where it did: a lower bound). *drop*: their output "
        f"is removed, nothing stands in; *reroute*: the router picks its next choices instead.",
        md_table(["kind", "domain D", "layers", "experts off", "Δ loss on D", "Δ loss on the other", "ratio"], rows),
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
    rows = [[str(p["step"]), fmt_num(p["seconds"], 1), fmt_num(p["val"], 3), " / ".join(fmt_num(v, 3) for v in p["mi"]),
             f"{max(v / v0 if v0 > 0 else float('inf') for v, v0 in zip(p['mi'], s['mi_initial'])):.1f}x"]
            for p in s["curve"]]
    reached, t = s["reached"], s["train_config"]
    first = (f"; already at the first eval point, so perhaps sooner: the page measures every {s['eval_every']} "
             f"steps" if reached and reached["step"] == s["curve"][0]["step"] else "")
    outcome = (f"**{reached['seconds']:.1f} s (step {reached['step']})** (target <= {s['target_seconds']:.0f} s: "
               f"{met_or_missed(reached['seconds'] <= s['target_seconds'])}{first})" if reached else
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
        f"(`domain_mi_initial`: {' / '.join(fmt_num(v, 3) for v in s['mi_initial'])} bits). Specialised: some layer "
        f">= {s['factor']:.0f}x its untrained value.",
        f"Start to specialised: {outcome}.",
        md_table(["step", "seconds since Start", "val loss", f"MI per layer ({_layers(s['layers'])})",
                  "best x untrained"], rows),
    ])


def specialisation_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    return "\n\n".join([
        f"Corpus `{s['corpus']}` (Russian and US names, domain = language), split as training splits it (seed 42). "
        f"I(domain; expert) in bits per MoE layer (`probes.domains.domain_mi`): 0 when the experts a token goes to say "
        f"nothing about its name's language, H(domain) (~1 bit) when they say all; always read beside the untrained "
        f"value. Load average (1/5/15 min) {s['load_at_start']} at the section's start, {s['load_at_end']} at its end "
        f"({s['seconds'] / 60:.1f} min).",
        _shootout_md(s["routers"], s["preset"]),
        chart_link("specialisation", "I(domain; expert) per layer and router, min–max over seeds"),
        _ablation_md(s["ablation"]),
        _page_run_md(s["page_run"]),
    ])


def specialisation_headline(s: dict[str, Any]) -> list[str]:
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
    return ["; ".join(parts) + "."]
