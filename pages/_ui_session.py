"""A browser session's state: entering a page, widget values kept across pages, and its training run in
the server's job registry.
"""


from __future__ import annotations

import secrets
import time
from typing import Any

import streamlit as st

from dsmini.jobs import JobRegistry, TrainingJob, run_grace_s
from dsmini.single_flight import SharedResults
from pages._ui_text import lang

_last_page_run = 0.0  # time.monotonic() of the latest page run of any session


_languages_used: set[str] = set()  # the languages pages have run in, in any session


def enter_page() -> None:
    """Call first on every page. A brand-new server's first request for a deep link (/train)
    runs the page file alone (Streamlit's legacy pages/ routing, before app.py ever called
    st.navigation): send that session through app.py, which installs the real navigation."""
    global _last_page_run
    _last_page_run = time.monotonic()
    _languages_used.add(lang())
    if not st.session_state.get("_shell"):
        st.switch_page("app.py")


def seconds_since_a_page_run() -> float:
    """How long no session has run a page: the warm-up leaves what no session needs yet to quiet moments."""
    return time.monotonic() - _last_page_run


def languages_used() -> set[str]:
    """The languages pages have run in so far: the warm-up prepares those first."""
    return set(_languages_used)


def keep(keys: list[str]) -> None:
    """Remember these widgets' values for the session, under keys no widget owns: Streamlit drops a
    widget's state when a run does not draw it, so leaving the page would reset the settings. Call at
    the top of the page (the values of its last run are still there); draw the widgets with `kept`."""
    for key in keys:
        if key in st.session_state:
            st.session_state[f"_kept_{key}"] = st.session_state[key]


def kept(key: str, default: Any) -> Any:
    """The default for widget `key`: the value this session last chose (see `keep`), else `default`."""
    return st.session_state.get(f"_kept_{key}", default)


def kept_index(key: str, options: list | tuple, default: Any) -> int:
    """`kept` for a selectbox: the index of the kept value among `options` (`default` if it is gone)."""
    value = kept(key, default)
    return list(options).index(value if value in options else default)


# Plain Python (dsmini.single_flight), not st.cache_resource: session_jobs' on_release runs outside any
# script run. Made on first use, so importing the pages' glue starts nothing.
_REGISTRY = SharedResults(max_entries=1)


def job_registry() -> JobRegistry:
    """Every training run of the server by run id (the Train page keeps the id in the URL)."""
    return _REGISTRY.get("jobs", lambda: JobRegistry(grace_s=run_grace_s()))


def _leave_run(session: dict) -> None:
    job_registry().leave(session["holder"])


@st.cache_resource(scope="session", on_release=_leave_run, show_spinner=False)
def session_jobs() -> dict[str, TrainingJob | str | None]:
    """This browser session's training run, its run id, and the session's holder id in the registry.

    A session ending (tab closed, or reloaded: a reload is a new session) does not stop the run: the
    registry gives it a grace period for a tab with its run id to claim it."""
    return {"job": None, "run": None, "holder": secrets.token_hex(8)}
