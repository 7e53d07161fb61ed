"""The session's language and text: translations, numbers in the language's marks, the large-text switch,
names shown, and the guard that turns an error into a message (no user ever sees a traceback).
"""


from __future__ import annotations

import contextlib
import logging

import plotly.graph_objects as go
import streamlit as st

from dsmini.charts.common import for_display
from dsmini.data import nfc
from dsmini.decoding import CUT_MARK
from dsmini.i18n import STRINGS, fmt_int, fmt_num, t

log = logging.getLogger("dsmini.app")


def lang() -> str:
    return st.session_state.get("lang", "en")


def tr(key: str, **fmt) -> str:
    """The current session's translation of a user-facing string."""
    return t(key, lang(), **fmt)
LARGE_TEXT_SCALE = 1.5  # chart fonts with the sidebar's large-text switch on: readable from the back of a room


# Metric labels wrap instead of ending in "…" (Russian labels are long); with large text, key labels grow too.
_LABEL_CSS = '[data-testid="stMetricLabel"] * {white-space: normal !important; overflow: visible !important;}'
_LARGE_CSS = ('[data-testid="stMetricLabel"] p {font-size: 1.25rem !important;}'
              '[data-testid="stMetricValue"] {font-size: 2.6rem !important;}'
              '[data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"] '
              '{font-size: 1.2rem !important;}')


def text_scale() -> float:
    return LARGE_TEXT_SCALE if st.session_state.get("large_text") else 1.0


def large_text_switch() -> None:
    """The sidebar's "large text / projector" switch, and the page styles it (and label wrapping) needs."""
    st.toggle(tr("ui.large_text"), key="large_text", help=tr("ui.large_text_help"))
    st.html(f"<style>{_LABEL_CSS}{_LARGE_CSS if text_scale() != 1.0 else ''}</style>")


def shown(fig: go.Figure) -> go.Figure:
    """A figure made for this session alone, in the session's number marks and text size (charts.for_display);
    shared figures go through `figure`, which keeps the result."""
    return for_display(fig, lang(), text_scale())


def num(x: float | None, digits: int = 0, *, sign: bool = False, style: str = "f") -> str:
    """A number as the session's language writes it (see dsmini.i18n.fmt_num); "-" for no value."""
    return "-" if x is None else fmt_num(x, digits, lang(), sign=sign, style=style)


def count(n: int) -> str:
    return fmt_int(n, lang())


def field_labels(rows) -> dict[str, str]:
    """ModelConfig field -> its words in the session's language (`cmp.field.*`) and its name in the code,
    "query latent rank (q_lora_rank)"; a field the catalogue does not name yet shows as itself."""
    return {row.key: f"{tr(f'cmp.field.{row.key}')} ({row.key})" for row in rows if f"cmp.field.{row.key}" in STRINGS}


def show_names(shown: list[str]) -> None:
    """Names in bold, one line; a legend when some were cut at the max length (see dsmini.decoding.generate.marked)."""
    st.markdown(" · ".join(f"**{name}**" for name in shown))
    if any(name.endswith(CUT_MARK) for name in shown):
        st.caption(tr("gen.cut_legend"))


def text_problem(tokenizer, text: str, max_len: int, page: str) -> str | None:
    """Why the model cannot read `text` (characters outside its alphabet, or too long), in the
    words of `page`'s strings (`<page>.oov`, `<page>.too_long`); None if it can. The text is read as the
    model reads it, NFC-normalised (as the CLI does): «e» + a combining accent is «é»."""
    text = nfc(text)
    unknown = tokenizer.unknown_chars(text)
    if unknown:
        return tr(f"{page}.oov", chars=", ".join(repr(c) for c in unknown))
    if len(text) > max_len:
        return tr(f"{page}.too_long", n=len(text), max_len=max_len)
    return None


@contextlib.contextmanager
def guard():
    """No user ever sees a traceback: errors become a message, details go to the server log.

    Streamlit's own control flow (st.stop, st.rerun) derives from BaseException and passes through.
    """
    try:
        yield
    except (ValueError, OSError) as err:  # bad input or files: the message says what is wrong
        st.error(str(err))
    except Exception as err:  # a bug: say so without the traceback
        log.exception("page failed")
        st.error(tr("ui.unexpected", error=f"{type(err).__name__}: {err}"))
