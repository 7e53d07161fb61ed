"""Markdown of section 10 (time to quality against a plain GPT): both runs, the target, the ratio."""

from __future__ import annotations

from typing import Any

from .peer import DSMINI, PEER
from .report_format import fmt_int, fmt_num, md_table

TARGET_RATIO = 0.5  # dsmini reaches the plain GPT's final val in at most half its time


def peer_md(s: dict[str, Any], plan: dict[str, Any]) -> str:
    runs = s["runs"]
    peer, ours = runs[PEER], runs[DSMINI]
    rows = []
    for key, label in ((PEER, "plain GPT (makemore's shape)"), (DSMINI, "dsmini, `train` defaults")):
        r = runs[key]
        reach = r["time_to_target"]
        recipe = r["recipe"]
        rows.append([label, f"{recipe['optimizer']}, lr {recipe['lr']:g}, batch {recipe['batch_size']}, "
                     f"dropout {recipe['dropout']:g}", fmt_int(recipe["params"]), fmt_int(r["steps"]),
                     fmt_int(r["tokens_per_sec"]), fmt_num(r["best_val"], 3), fmt_num(r["curve"][-1]["val"], 3),
                     "not reached" if reach is None else f"{reach['seconds']:.1f} s (step {fmt_int(reach['step'])})"])
    ratio = s["time_ratio"]
    verdict = "–" if ratio is None else f"**{ratio:.2f}x** the plain GPT's time (target <= {TARGET_RATIO}: " + (
        "met" if ratio <= TARGET_RATIO else "**MISSED**") + ")"
    load = ("the two trained at once, one torch thread each, and the first to finish kept its core busy until the "
            "other had" if s["concurrent"] else "one run after the other, each alone")
    return "\n\n".join([
        f"Corpus `{peer['corpus']}`, split as `python -m dsmini train` splits it. Val loss in nats/char on the first "
        f"{fmt_int(peer['curve_val_names'])} val names every {plan['eval_every']} steps, against training seconds "
        f"(evaluation excluded); {load}. The target is the plain GPT's val after its last step, "
        f"**{s['target']:.3f}**.",
        md_table(["model", "recipe", "params", "steps", "tokens/s", "best val", "final val",
                  "time to the GPT's final val"], rows),
        f"**dsmini reaches it in {verdict}**; best val {ours['best_val']:.3f} vs {peer['best_val']:.3f} "
        f"({'better' if s['best_better'] else 'not better'}).",
    ])


def peer_headline(s: dict[str, Any]) -> list[str]:
    ratio = s["time_ratio"]
    when = "never reach its final val" if ratio is None else f"reach its final val in **{ratio:.2f}x** its time"
    return [f"Against a plain GPT on `{s['runs'][PEER]['corpus']}`: dsmini's `train` defaults {when}; best val "
            f"**{s['runs'][DSMINI]['best_val']:.3f}** vs {s['runs'][PEER]['best_val']:.3f}."]
