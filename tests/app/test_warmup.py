"""The warm-up (pages/_warmup.py): what it prepares is exactly what the pages then ask for, so a page's
first load computes nothing; and it starts once per process, never when switched off."""

import dataclasses
import functools
import threading

from dsmini.page_views import LANG, PAGES
from pages import _ui as ui
from pages import _warmup

# the page shares it under its own function (pages/mtp.py timeline_figure: the picked run's timeline), which the
# registry in dsmini cannot name: the first session to open the page builds it
PER_SESSION_FIGURES = {"draft_timeline_figure"}


def _never(real):
    """Stands in for `real` under the same cache key (module and qualified name), and fails if called."""
    @functools.wraps(real)
    def spy(*args, **kwargs):
        raise AssertionError(f"{real.__qualname__} was computed again: the warm-up missed it")
    return spy


def test_after_the_warm_up_no_default_view_or_figure_is_computed_again():
    assert _warmup.warm(["en-names"]) > 0
    ckpt = ui.load_by_name("en-names")
    figures = 0
    for stem, work in PAGES.items():
        if work.inputs != "checkpoint" or work.model not in (None, ckpt.name) or work.not_shown(ckpt):
            continue
        # a page builds its own settings from its widgets: equal to the defaults, not the same object
        settings = () if work.settings is None else (dataclasses.replace(work.settings),)
        view = ui.computed(_never(work.view), ckpt, *settings)
        for chart, args in work.charts(ckpt, view, work.settings) if work.charts else ():
            if chart.__name__ in PER_SESSION_FIGURES:
                continue
            for lang in ("en", "ru"):
                # as a session in that language sees it (ui.figure: the session's language and text size)
                ui.shared_figure((lang, 1.0), _never(chart),
                                 *(lang if isinstance(a, str) and a == LANG else a for a in args))
                figures += 1
    assert figures >= 2 * 10  # home, generate, experts, attention, kv cache, mtp: their default figures


def test_it_starts_once_per_process_and_not_when_switched_off(monkeypatch):
    ran = []
    monkeypatch.setattr(_warmup, "warm", lambda: ran.append(threading.current_thread().name))
    monkeypatch.setattr(_warmup, "_started", False)
    monkeypatch.setenv(_warmup.WARMUP_ENV, "0")
    assert _warmup.start() is False
    monkeypatch.setenv(_warmup.WARMUP_ENV, "1")
    assert _warmup.start() is True and _warmup.start() is False
    for thread in threading.enumerate():
        if thread.name == "dsmini-warmup":
            thread.join(10)
    assert ran == ["dsmini-warmup"]
