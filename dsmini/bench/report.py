"""bench results (plain dicts) -> BENCHMARKS.md text. Pure: no measuring, no files.

This module assembles the document: the headline, the machine table and each section under its
title. The sections' own markdown is in `report_sections.py` (1-6) and `report_specialisation.py`
(7), the shared number and table formatting in `report_format.py`.

`render_section` is also what the CLI prints after each section, so the terminal and the file
show the same tables.
"""

from __future__ import annotations

from typing import Any

from .archs import BASELINE
from .charts import RESULTS_DIR
from .common import SECTIONS
from .report_attention import attention_headline, attention_md
from .report_format import md_table
from .report_peer import peer_headline, peer_md
from .report_recipe import recipe_headline, recipe_md
from .report_sections import app_md, decoding_md, dense_vs_full_line, memory_md, mtp_md, quality_md, throughput_md
from .report_specialisation import specialisation_headline, specialisation_md

TITLES = {
    "throughput": "1. Training throughput",
    "quality": "2. Quality at a fixed budget",
    "decoding": "3. Decoding",
    "memory": "4. KV-cache memory",
    "mtp": "5. MTP self-speculative decoding",
    "app": "6. App responsiveness",
    "specialisation": "7. Expert specialisation by domain",
    "recipe": "8. The training recipe, by the clock",
    "attention": "9. Attention types on full names",
    "peer": "10. Time to quality against a plain GPT",
}
RENDERERS = {"throughput": throughput_md, "quality": quality_md, "decoding": decoding_md, "memory": memory_md,
             "mtp": mtp_md, "app": app_md, "specialisation": specialisation_md,
             "recipe": recipe_md, "attention": attention_md, "peer": peer_md}


def render_section(name: str, section: dict[str, Any], plan: dict[str, Any]) -> str:
    body = f"Failed: `{section['error']}`" if "error" in section else RENDERERS[name](section, plan)
    kept = f"\n_Kept from an earlier run, measured {section['measured']}._\n" if "measured" in section else ""
    return f"## {TITLES[name]}\n\n{body}\n{kept}"


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
            if summary.get("dense_vs_full"):
                lines.append(f"`{corpus}`, equal wall-clock: {dense_vs_full_line(summary['dense_vs_full'])}")
    if "memory" in ok:
        small = ok["memory"]["presets"].get("small") or next(iter(ok["memory"]["presets"].values()))
        lines.append(f"MLA's KV cache is **{small['mla']['vs_mha']:.1%}** of MHA's per token.")
    if "mtp" in ok:
        for name, r in ok["mtp"]["checkpoints"].items():
            if "skipped" not in r:
                chained = f" (chained depth {r['mtp_depth']})" if r.get("mtp_depth", 1) > 1 else ""
                lines.append(f"MTP drafts on `{name}`{chained}: **{r['acceptance_rate']:.0%}** accepted, "
                             f"{r['chars_per_forward']:.2f} chars per forward pass, **{r['speedup']:.2f}x** wall-clock.")
    if "specialisation" in ok:
        lines.append(specialisation_headline(ok["specialisation"]))
    if "recipe" in ok:
        lines.append(recipe_headline(ok["recipe"]))
    if "attention" in ok:
        lines.append(attention_headline(ok["attention"]))
    if "peer" in ok:
        lines.append(peer_headline(ok["peer"]))
    return [f"- {line}" for line in lines]



def render_markdown(results: dict[str, Any]) -> str:
    """The whole BENCHMARKS.md from `{"meta": ..., "sections": {name: dict}}`."""
    meta, sections = results["meta"], results["sections"]
    plan = meta["plan"]
    load_end = meta.get("load_at_end")
    machine = md_table(["", ""], [
        ["CPU", f"{meta['cpu']} ({meta['cores']} logical cores)"],
        ["RAM", f"{meta['ram_gb']} GB" if meta["ram_gb"] else "–"],
        ["GPU", meta["gpu"] or "none (CPU only)"],
        ["models ran on", f"`{meta.get('device', 'cpu')}` ({meta.get('device_name') or meta['cpu']})"],
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
