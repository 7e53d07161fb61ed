"""Markdown of section 8 (the training recipe, judged by the clock): one table per corpus."""

from __future__ import annotations

from typing import Any

from .recipe import EQUAL_STEPS, EQUAL_TIME, REFERENCE
from .report_format import fmt_int, fmt_num, md_table


def recipe_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    parts = [
        f"Preset `{s['preset']}` (the full model: MLA + MoE + MTP), each corpus split as `python -m dsmini train` "
        f"splits it, with its dropout rule; val loss in nats/char on the whole val split at {s['evals']} points "
        f"along each schedule. *best*: the lowest point (what a best-val checkpoint keeps), *final*: the last. "
        f"**Equal wall-clock**: the step of every recipe was timed side by side, interleaved in one process (one "
        f"torch thread); `{REFERENCE}` trains {fmt_int(s['reference_steps'])} steps and every other recipe the "
        f"steps its speed buys in the same seconds, its warm-up and cosine fitted to them. **Equal steps**: every "
        f"recipe {fmt_int(s['reference_steps'])} steps. *optimizer share*: of a training step, the time inside the "
        f"optimizers' `step()`. The runs went {s['workers']} at a time: their losses do not depend on the load."
    ]
    for corpus, c in s["corpora"].items():
        rows = []
        for key, r in c["rows"].items():
            t, n = r[EQUAL_TIME], r[EQUAL_STEPS]
            ref = c["rows"][REFERENCE]
            rows.append([
                f"`{key}`", r["label"], f"{1000 * r['step_s']:.1f} ({r['step_s'] / ref['step_s']:.2f}x)",
                f"{r['optimizer_share']:.0%}", fmt_int(t["steps"]),
                _marked(fmt_num(t["best_val"], 3), key == c[f"winner_{EQUAL_TIME}"]), fmt_num(t["final_val"], 3),
                _marked(fmt_num(n["best_val"], 3), key == c[f"winner_{EQUAL_STEPS}"]), fmt_num(n["final_val"], 3),
            ])
        first = c["rows"][REFERENCE][EQUAL_TIME]
        parts += [
            f"### {corpus}",
            f"{fmt_int(first['n_train'])} training names, {fmt_int(first['n_val'])} val names, dropout "
            f"{first['dropout']:g}; the budget: {c['budget_seconds']:.1f} s of training steps at the timed speed.",
            md_table(["recipe", "what", "ms/step (vs adamw)", "optimizer share", "steps in the budget",
                      "best val, equal time", "final, equal time", "best val, equal steps", "final, equal steps"],
                     rows),
        ]
    return "\n\n".join(parts)


def recipe_headline(s: dict[str, Any]) -> list[str]:
    bits = []
    for corpus, c in s["corpora"].items():
        win_t, win_n = c[f"winner_{EQUAL_TIME}"], c[f"winner_{EQUAL_STEPS}"]
        share = c["rows"][win_t]["optimizer_share"]
        bits.append(f"`{corpus}` at equal wall-clock **`{win_t}`** "
                    f"({c['rows'][win_t][EQUAL_TIME]['best_val']:.3f}, optimizer share {share:.0%}), at equal steps "
                    f"`{win_n}` ({c['rows'][win_n][EQUAL_STEPS]['best_val']:.3f})")
    return ["Training recipe by the clock: " + "; ".join(bits) + "."]


def _marked(text: str, best: bool) -> str:
    return f"**{text}**" if best else text
