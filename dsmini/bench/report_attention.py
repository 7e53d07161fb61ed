"""Markdown of section 9 (attention types on full names): speed, quality and cache, then the gender cue."""

from __future__ import annotations

from typing import Any

from .report_format import fmt_int, fmt_num, md_table

LABELS = {
    "mla": "MLA (DeepSeek-V2, the default)",
    "dsa": "DSA (DeepSeek-V3.2: indexer top-k)",
    "moba": "MoBA (top blocks + own block)",
    "loglinear": "log-linear (Fenwick buckets)",
    "mha": "MHA (plain multi-head)",
}
SHORT = {"mla": "MLA", "dsa": "DSA", "moba": "MoBA", "loglinear": "log-linear", "mha": "MHA"}


def attention_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    runs = s["runs"]
    first = next(iter(runs.values()))
    load = (f"All {len(runs)} runs went at once ({s['workers']} worker processes, one torch thread each), started "
            f"together and kept the machine loaded until the last had finished, so each had the same load throughout"
            if s["workers"] >= len(runs) else
            f"Runs went {s['workers']} at a time, a group started together" if s["workers"] > 1 else
            "Runs went one at a time")
    parts = [
        f"Corpus `{s['corpus']}` ({fmt_int(first['n_train'])} training names, {fmt_int(first['n_val'])} val names, "
        f"28-40 characters). Preset `{s['preset']}`, the full model (MoE + MTP) with only the attention type changed, "
        f"the same seed and batches, {fmt_int(s['steps'])} steps of batch {s['batch_size']} (AdamW, lr 3e-3, cosine). "
        f"*Val after steps*: the whole val split after the last step. *Val at equal time*: each run's val curve "
        f"(a point every {s['eval_every']} steps against training seconds) read at "
        f"{fmt_num(s['budget_seconds'], 1)} s, "
        f"the fastest run's total (– : that run had no point yet). Tokens/s: training targets per second of "
        f"training. {load}: seconds compare between runs, not with a lone run's. Cache: bytes per token of the "
        f"real decoding cache (float32), the DSA row includes its indexer keys.",
        md_table(["attention", "params", "val after steps", "vs MLA", "val at equal time", "train s", "tokens/s",
                  "vs MLA", "cache B/token"], [_speed_row(k, r) for k, r in runs.items()]),
        "**Gender cue.** In «Фамилия Имя Отчество» the patronymic ends in «-ич» or «-на» by gender, and the cue is "
        "far back: the surname's and the first name's last letters. For the query that predicts the name's "
        "second-to-last letter, on the first val names: *ending right*: the model's most likely letter is the "
        "right one. For the sparse types, the share of (name, layer, head) whose selection (`AttnTrace.allowed`) "
        "includes the surname's last letter, the first name's last letter, either; *density*: the share of all "
        "earlier positions selected, what a selection blind to the cue would include. Log-linear allows every "
        "position but pools the old ones into buckets: its numbers in parentheses count a cue only when it is "
        "seen token by token.",
        md_table(["attention", "names", "ending right", "cue: surname end", "first-name end", "either", "density"],
                 [_cue_row(k, r) for k, r in runs.items()]),
    ]
    return "\n\n".join(parts)


def _speed_row(key: str, r: dict[str, Any]) -> list[str]:
    vs = r["vs_reference"]
    return [LABELS[key], fmt_int(r["params_total"]), fmt_num(r["final_val"], 3), f"{vs['final_val']:+.3f}",
            fmt_num(r["val_at_budget"], 3), fmt_int(r["train_seconds"]), fmt_int(r["tokens_per_sec"]),
            f"{vs['tokens_per_sec']:.2f}x", fmt_int(r["cache_bytes_per_token"])]


def _cue_row(key: str, r: dict[str, Any]) -> list[str]:
    def share(field: str) -> str:
        if field not in r:
            return "all (dense)"
        fine = r.get(f"fine_{field}")
        return f"{r[field]:.0%}" + ("" if fine is None else f" ({fine:.0%})")

    return [LABELS[key], fmt_int(r["cue_names"]), f"{r['ending_accuracy']:.1%}",
            *(share(f) for f in ("cue_surname", "cue_first", "cue_either", "density"))]


def attention_headline(s: dict[str, Any]) -> list[str]:
    runs = s["runs"]
    best = min(runs, key=lambda k: runs[k]["final_val"])
    vals = ", ".join(f"{SHORT[k]} {r['final_val']:.3f}" for k, r in runs.items())
    cue = "; ".join(f"{SHORT[k]} selects the gender cue for {runs[k]['cue_either']:.0%} of its decision queries' "
                    f"heads (density {runs[k]['density']:.0%})" for k in ("dsa", "moba") if k in runs)
    return [f"Attention types on `{s['corpus']}` after {s['steps']:,} steps: best val **{SHORT[best]}** "
            f"({vals}); {cue}."]
