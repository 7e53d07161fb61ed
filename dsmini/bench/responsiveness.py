"""Section 6: each explorer page's main computation on the shipped checkpoints, timed directly.

A page's main computation is the dsmini calls its recipe makes (`page_recipes`: the page's first
load, widgets at their defaults), each timed on its own, median of repeats. dsmini never imports
streamlit, so widget layout and the browser are not in these numbers; the pages cache most of
this work (`st.cache_data`), so it is paid on a page's first load per checkpoint.

Pages change while the app is built: a page without a recipe, a recipe that fails, and functions
a page imports (read from its source with `ast`) that its recipe never calls become notes in the
report, never an error.
"""

from __future__ import annotations

import ast
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable

from ..checkpoint import Checkpoint, load_checkpoint
from ..corpora import load_corpus
from .common import Plan, Progress, median, timed
from .page_recipes import ON_DEMAND, RECIPES, PageContext

FAMILIES = ("dsmini.probes", "dsmini.charts", "dsmini.generate")  # where a page's main computation lives
# loaded for every page (the compare page shows two); ru-en-names has domains, so the Experts page's
# domain view is timed too. A missing one is left out.
CHECKPOINTS = ("en-names", "ru-names", "ru-en-names")
BUDGET_MS = 2000  # each page's main computation should take less on this CPU


def run(plan: Plan) -> dict[str, Any]:
    found = {p.stem: p for p in sorted(plan.pages.glob("*.py")) if not p.name.startswith("_")}
    pages = {stem: p for stem, p in found.items() if plan.app_pages is None or stem in plan.app_pages}
    shipped = {n: load_checkpoint(plan.checkpoints / n) for n in CHECKPOINTS if (plan.checkpoints / n).exists()}
    timed_on = [n for n in plan.app_checkpoints if n in shipped]
    corpus = lru_cache(maxsize=None)(load_corpus)
    progress = Progress("app", len(pages) * len(timed_on))
    result: dict[str, dict[str, Any]] = {}
    for ckpt in (shipped[n] for n in timed_on):
        for stem, path in pages.items():
            result.setdefault(stem, {})[ckpt.name] = time_page(stem, path, ckpt, shipped, corpus, plan.app_repeats)
            progress.step(f"{stem} on {ckpt.name}")
    progress.close()
    return {"budget_ms": BUDGET_MS, "repeats": plan.app_repeats, "checkpoints": timed_on, "pages": result,
            "not_run": sorted(set(found) - set(pages))}


def page_functions(path: Path) -> set[str]:
    """Functions (lower-case names: not classes, not constants) a page imports from dsmini's
    probes, charts and generation modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(FAMILIES)
        for alias in node.names
        if alias.name[:1].islower()
    }


class CallTimer:
    """`timer(fn, *args, **kwargs)`: runs fn `repeats` times, records the median ms, returns the last result."""

    def __init__(self, repeats: int):
        self.repeats = repeats
        self.calls: list[dict[str, Any]] = []

    def __call__(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        runs = [timed(partial(fn, *args, **kwargs)) for _ in range(self.repeats)]
        self.calls.append({"function": fn.__name__, "module": fn.__module__,
                           "ms": 1000 * median([seconds for seconds, _ in runs])})
        return runs[-1][1]


def time_page(
    stem: str, path: Path, ckpt: Checkpoint, shipped: dict[str, Checkpoint], corpus, repeats: int
) -> dict[str, Any]:
    """The page's recipe, timed call by call, with notes on whatever it could not time."""
    recipe = RECIPES.get(stem)
    if recipe is None:
        return {"calls": [], "total_ms": None, "within_budget": None,
                "notes": ["no recipe in dsmini/bench/page_recipes.py: not timed"]}
    timer = CallTimer(repeats)
    ctx = PageContext(ckpt, shipped, corpus, timer)
    failed = None
    try:
        recipe(ctx)
    except Exception as err:  # a page or probe mid-change: say so, keep benchmarking the others
        failed = f"recipe failed ({type(err).__name__}: {err}); update dsmini/bench/page_recipes.py"
    called = {c["function"] for c in timer.calls}
    notes = [failed] if failed else []
    notes += ctx.notes
    notes += [
        f"`{name}` not timed: {ON_DEMAND.get(name, 'imported by the page, never called by its recipe')}"
        for name in sorted(page_functions(path) - called)
    ]
    total = None if failed else sum(c["ms"] for c in timer.calls)
    return {"calls": timer.calls, "total_ms": total, "within_budget": None if total is None else total < BUDGET_MS,
            "notes": notes}
