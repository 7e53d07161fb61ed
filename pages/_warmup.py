"""The warm-up: each shipped checkpoint's pages at their default settings, made ready once per server
process in a background thread, so the first students on a page find its view and figures ready.

A page's first load on a checkpoint pays its view (up to seconds: the Experts analysis, the MTP
drafts) and its figures; `ui.computed` and `ui.shared_figure` then share them with every session. Here
the same calls (`dsmini/page_views.py` `default_calls`: each page's view, default settings and default
figures, in both languages) are made ahead of time, the sessions' default checkpoints first; most views
are read from the files `python -m dsmini warm` stores beside the checkpoints (dsmini/probes/store.py).
app.py starts it after its first script run, so the first page never waits for it; `python -m dsmini
serve` makes that first run in each replica as it starts (Streamlit's script health check). Failures
only cost the head start: they are logged, and the page computes as it would have. DSMINI_WARMUP=0
turns it off (the tests do, so as not to share their cores with it).

It calls no Streamlit function (Streamlit warns on each call from a thread outside a script run), and
it ends with the process: at exit it stops between two computations and is joined before the
interpreter shuts down, since a thread still inside torch then aborts the process ("terminate called
without an active exception").
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time

from dsmini.i18n import LANGUAGES
from dsmini.page_views import LANG, default_calls
from pages import _ui as ui

WARMUP_ENV = "DSMINI_WARMUP"
EXIT_WAIT_S = 30.0  # at most one view's computation on a busy server
QUIET_S = 2.0  # no page run for this long: the server is free for the models no session opened yet
log = logging.getLogger("dsmini.app")
_LOCK = threading.Lock()
_STOP = threading.Event()
_started = False


class Stopped(Exception):
    """The process is exiting: the warm-up ends where it is."""


def start() -> bool:
    """Start the warm-up thread, once per process; False if it ran already or is switched off."""
    global _started
    if os.environ.get(WARMUP_ENV, "1") == "0":
        return False
    with _LOCK:
        if _started:
            return False
        _started = True
    thread = threading.Thread(target=warm, name="dsmini-warmup", daemon=True)
    thread.start()
    atexit.register(_stop_at_exit, thread)
    return True


def _stop_at_exit(thread: threading.Thread) -> None:
    """Let the thread finish its current computation and end, before the interpreter shuts down. A
    second Ctrl-C meanwhile is ignored: the process is already on its way out."""
    _STOP.set()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    thread.join(EXIT_WAIT_S)


def _check() -> None:
    if _STOP.is_set():
        raise Stopped


def _wait_for_quiet() -> None:
    """Until no session has run a page for QUIET_S: a class arriving at a fresh server opens the default
    models, and every other model's warm-up would only take the one core (the GIL) from them."""
    while ui.seconds_since_a_page_run() < QUIET_S:
        _STOP.wait(0.5)
        _check()


def _go_on(eager: bool) -> None:
    """Before each piece of work: what an arriving session needs goes on at once, the rest waits for quiet."""
    if eager:
        _check()
    else:
        _wait_for_quiet()


def warm(names: list[str] | None = None) -> float:
    """Make every page's default view and figures ready for the shipped checkpoints (or `names`); the
    seconds it took. Never raises: a failure is logged and leaves that page to compute when asked."""
    started = time.perf_counter()
    try:
        ui.device_name()  # the process's torch thread policy first: the pages' computations follow it
        shipped = [info.name for info in ui.checkpoints() if info.shipped]
        if names is not None:
            rounds = [(name, stored, list(LANGUAGES), True) for stored in (True, False) for name in names]
        else:
            # A class arriving opens the default model of the language the teacher's first page ran in, in that
            # language: that first. Other languages' models and figures, and every other model, only while the
            # server is quiet (what is ready by then is found at once in the second round).
            own = {ui.DEFAULT_CHECKPOINTS[lang]: lang for lang in sorted(ui.languages_used())
                   if ui.DEFAULT_CHECKPOINTS.get(lang) in shipped}
            defaults = [name for name in ui.DEFAULT_CHECKPOINTS.values() if name in shipped]
            ordered = [*own, *(name for name in defaults if name not in own),
                       *(n for n in shipped if n not in defaults)]
            rounds = [(name, stored, [lang], True) for stored in (True, False) for name, lang in own.items()]
            rounds += [(name, stored, list(LANGUAGES), False) for stored in (True, False) for name in ordered]
        for name, stored, langs, eager in rounds:  # in each, what is read from disk first; then what is computed
            _warm_checkpoint(name, shipped, stored, langs, eager)
    except Stopped:
        log.info("warm-up stopped: the process is exiting")
        return time.perf_counter() - started
    except Exception:  # a broken checkpoint folder: the pages will say what is wrong
        log.exception("warm-up failed")
    seconds = time.perf_counter() - started
    log.info("warm-up done in %.1f s", seconds)
    return seconds


def _warm_checkpoint(name: str, listed: list[str], stored: bool, langs: list[str], eager: bool) -> None:
    """The default views of `name` kept on disk (stored=True: cheap, and every page but one), or the others
    (computed here: seconds each on a busy server, so after every model's pages are ready), and their
    figures in `langs`. Not eager (what no arriving session opens): only while the server is quiet."""
    _go_on(eager)
    ckpt = ui.load_by_name(name)
    for stem, work, args in default_calls(ckpt, lambda other: ui.load_by_name(other) if other in listed else None):
        if work.stored != stored:
            continue
        try:
            _go_on(eager)
            view = ui.computed(work.view, *args)
            if work.inputs != "checkpoint":  # Compare's figure names the page's two models, not the benchmark's A and B
                continue
            for chart, chart_args in work.charts(ckpt, view, work.settings) if work.charts else ():
                for lang in langs:
                    _go_on(eager)
                    in_lang = (lang if isinstance(a, str) and a == LANG else a for a in chart_args)
                    ui.shared_figure((lang, 1.0), chart, *in_lang)
        except Stopped:
            raise
        except Exception:
            log.exception("warm-up of the %s page on %s failed", stem, name)
