"""Markdown of section 8 (the training recipe, swept): one table per corpus, every recipe's row."""

from __future__ import annotations

from typing import Any

from .report_format import fmt_int, fmt_num, md_table


def recipe_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    parts = [
        f"Preset `{s['preset']}` (the full model: MLA + MoE + MTP), each corpus split as `python -m dsmini train` "
        f"splits it; val loss in nats/char on the whole val split every {s['eval_every']} steps. *best*: the "
        f"lowest of those points (what a best-val checkpoint keeps), *final*: the last. Each row changes one "
        f"thing from `shipped` (the recipe of the shipped checkpoints), `combined` several. {s['workers']} "
        f"run(s) at a time, one torch thread each: the losses do not depend on the load, the seconds do."
    ]
    for corpus, c in s["corpora"].items():
        rows = [
            [f"`{r['recipe']}`" + (" **(best)**" if key == c["winner"] else ""), r["label"], fmt_int(r["train"]["steps"]),
             f"{r['dropout']:g}", fmt_num(r["best_val"], 3), fmt_int(r["best_step"]), fmt_num(r["final_val"], 3),
             _delta(r.get("best_vs_shipped")), fmt_int(r["train_seconds"])]
            for key, r in c["runs"].items()
        ]
        first = next(iter(c["runs"].values()))
        parts += [f"### {corpus}", f"{fmt_int(first['n_train'])} training names, {fmt_int(first['n_val'])} val names.",
                  md_table(["recipe", "what changes", "steps", "dropout", "best val", "at step", "final val",
                            "best vs shipped", "train s"], rows)]
    return "\n\n".join(parts)


def recipe_headline(s: dict[str, Any]) -> str:
    bits = []
    for corpus, c in s["corpora"].items():
        win, shipped = c["runs"][c["winner"]], c["runs"].get("shipped")
        was = f" (shipped recipe {shipped['best_val']:.3f})" if shipped else ""
        bits.append(f"`{corpus}` best val **{win['best_val']:.3f}** with `{c['winner']}`{was}")
    return "Training recipe sweep: " + "; ".join(bits) + "."


def _delta(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3f}"
