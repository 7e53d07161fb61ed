"""Section 6: each explorer page's work on the shipped checkpoints, timed directly.

A page's work is its entry in `dsmini.page_views.PAGES`: the probe the page caches and lays out,
called with the page's default settings (its first load), then the figure calls of that default
view, each timed on its own, median of repeats. Probes behind a button (on demand) are timed once
each (the MTP speed button times decoding itself, for seconds), as notes outside the page's total.
dsmini never imports streamlit, so widget layout and the browser are not in these numbers; the
pages cache this work (`pages/_ui.computed`), so it is paid on a page's first load per checkpoint
and settings.

A page file without a registry entry, and a probe that fails, become notes in the report, never an error.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Any, Callable

from dsmini.checkpoint import Checkpoint, load_checkpoint
from dsmini.data import load_corpus
from dsmini.page_views import PAGES, PageWork

from .common import Plan, Progress, median, timed

# loaded for every page (the compare page shows two); ru-en-names has domains, so the Experts page's
# domain view is timed too. A missing one is left out.
CHECKPOINTS = ("en-names", "ru-names", "ru-en-names")
BUDGET_MS = 2000  # each page's main computation should take less on this CPU


def run(plan: Plan) -> dict[str, Any]:
    found = sorted(p.stem for p in plan.pages.glob("*.py") if not p.name.startswith("_"))
    pages = [stem for stem in found if plan.app_pages is None or stem in plan.app_pages]
    shipped = {n: load_checkpoint(plan.checkpoints / n) for n in CHECKPOINTS if (plan.checkpoints / n).exists()}
    timed_on = [n for n in plan.app_checkpoints if n in shipped]
    corpus = lru_cache(maxsize=None)(load_corpus)  # the app caches its corpora: not part of a page's time
    targets = {stem: _targets(PAGES.get(stem), timed_on) for stem in pages}
    progress = Progress("app", sum(len(names) for names in targets.values()))
    result: dict[str, dict[str, Any]] = {}
    for stem, names in targets.items():
        for name in names:
            result.setdefault(stem, {})[name] = time_page(stem, shipped.get(name), shipped, corpus, plan.app_repeats)
            progress.step(f"{stem} on {name}")
    progress.close()
    return {"budget_ms": BUDGET_MS, "repeats": plan.app_repeats, "checkpoints": timed_on, "pages": result,
            "not_run": sorted(set(found) - set(pages))}


def _targets(work: PageWork | None, timed_on: list[str]) -> list[str]:
    """A page that always uses one shipped model (the Lesson) is timed once, on it."""
    return [work.model] if work is not None and work.model else timed_on


class CallTimer:
    """`timer(fn, *args)`: runs fn `repeats` times, records the median ms, returns the last result."""

    def __init__(self, repeats: int):
        self.repeats = repeats
        self.calls: list[dict[str, Any]] = []

    def measure(self, fn: Callable, *args: Any) -> tuple[float, Any]:
        runs = [timed(partial(fn, *args)) for _ in range(self.repeats)]
        return 1000 * median([seconds for seconds, _ in runs]), runs[-1][1]

    def __call__(self, fn: Callable, *args: Any) -> Any:
        ms, result = self.measure(fn, *args)
        self.calls.append({"function": fn.__name__, "module": fn.__module__, "ms": ms})
        return result


def inputs(work: PageWork, ckpt: Checkpoint, shipped: dict[str, Checkpoint], corpus) -> tuple[Any, ...]:
    """What the page's view takes before its settings."""
    if work.inputs == "pair":  # the picked checkpoint (A) beside another shipped one (B)
        return ckpt, next((other for name, other in shipped.items() if name != ckpt.name), ckpt)
    if work.inputs == "corpus":  # the Train page's pick: the corpus this checkpoint was trained on
        return (corpus(ckpt.corpus.name),)
    return (ckpt,)


def _untimed(note: str) -> dict[str, Any]:
    return {"calls": [], "total_ms": None, "within_budget": None, "notes": [note]}


def time_page(stem: str, ckpt: Checkpoint | None, shipped: dict[str, Checkpoint], corpus, repeats: int
              ) -> dict[str, Any]:
    """The page's view with its default settings and its default figures, timed call by call; its
    on-demand probes as notes."""
    work = PAGES.get(stem)
    if work is None:
        return _untimed("no entry in dsmini/page_views.py: not timed")
    if ckpt is None:
        return _untimed(f"no shipped `{work.model}` checkpoint: not timed")
    reason = work.not_shown(ckpt)
    if reason:
        return _untimed(reason)
    timer = CallTimer(repeats)
    notes = []
    try:
        args = inputs(work, ckpt, shipped, corpus)
        settings = () if work.settings is None else (work.settings,)
        view = timer(work.view, *args, *settings)
        for fn, fn_args in work.charts(ckpt, view, work.settings) if work.charts else ():
            timer(fn, *fn_args)
        for fn, default in work.on_demand:
            ms, _ = CallTimer(1).measure(fn, *args, default)
            notes.append(f"`{fn.__name__}` (on demand, behind a button) {ms:.0f} ms, not in the total")
    except Exception as err:  # a probe mid-change: say so, keep benchmarking the others
        return {**_untimed(f"probe failed ({type(err).__name__}: {err}); see dsmini/page_views.py"),
                "calls": timer.calls}
    total = sum(c["ms"] for c in timer.calls)
    return {"calls": timer.calls, "total_ms": total, "within_budget": total < BUDGET_MS, "notes": notes}
