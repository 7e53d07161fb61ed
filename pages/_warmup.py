"""The warm-up: each shipped checkpoint's pages at their default settings, computed once per server
process in a background thread, so the first students on a page find its view and figures ready.

A page's first load on a checkpoint pays its view (up to seconds: the Experts analysis, the MTP
drafts) and its figures; `ui.computed` and `ui.figure` then share them with every session. Here the
same calls (`dsmini/probes/pages.py`: each page's view, default settings and default figures, in
both languages) are made ahead of time, the sessions' default checkpoints first. app.py starts it
after its first script run, so the first page never waits for it; `python -m dsmini serve` makes
that first run in each replica as it starts (Streamlit's script health check). Failures only cost
the head start: they are logged, and the page computes as it would have. DSMINI_WARMUP=0 turns it
off (the tests do, so as not to share their cores with it).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from dsmini.i18n import LANGUAGES
from dsmini.probes.pages import LANG, PAGES
from pages import _ui as ui

WARMUP_ENV = "DSMINI_WARMUP"
log = logging.getLogger("dsmini.app")
_LOCK = threading.Lock()
_started = False


def start() -> bool:
    """Start the warm-up thread, once per process; False if it ran already or is switched off."""
    global _started
    if os.environ.get(WARMUP_ENV, "1") == "0":
        return False
    with _LOCK:
        if _started:
            return False
        _started = True
    threading.Thread(target=warm, name="dsmini-warmup", daemon=True).start()
    return True


def warm(names: list[str] | None = None) -> float:
    """Compute every page's default view and figures for the shipped checkpoints (or `names`); the
    seconds it took. Never raises: a failure is logged and leaves that page to compute when asked."""
    started = time.perf_counter()
    try:
        ui.device_name()  # the process's torch thread policy first: the pages' computations follow it
        shipped = [info.name for info in ui.checkpoints() if info.shipped]
        first = [name for name in ui.DEFAULT_CHECKPOINTS.values() if name in shipped]
        for name in names if names is not None else first + [n for n in shipped if n not in first]:
            _warm_checkpoint(name)
    except Exception:  # a broken checkpoint folder: the pages will say what is wrong
        log.exception("warm-up failed")
    seconds = time.perf_counter() - started
    log.info("warm-up done in %.1f s", seconds)
    return seconds


def _warm_checkpoint(name: str) -> None:
    ckpt = ui.load_by_name(name)
    for stem, work in PAGES.items():
        # "pair" and "corpus" pages depend on a second pick; a page of one fixed model only on that model
        if work.inputs != "checkpoint" or work.model not in (None, name) or work.not_shown(ckpt):
            continue
        try:
            view = ui.computed(work.view, ckpt, *(() if work.settings is None else (work.settings,)))
            for chart, args in work.charts(ckpt, view, work.settings) if work.charts else ():
                for lang in LANGUAGES:
                    ui.figure(chart, *(lang if isinstance(arg, str) and arg == LANG else arg for arg in args))
        except Exception:
            log.exception("warm-up of the %s page on %s failed", stem, name)
