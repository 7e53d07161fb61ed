"""Streamlit glue shared by app.py and the pages: caching, session state, language, error guard.

Everything that knows about Streamlit and is used by more than one page lives here; the model,
data and charts live in `dsmini/` and know nothing of Streamlit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import plotly.graph_objects as go
import streamlit as st

from dsmini.charts.common import for_display
from dsmini.checkpoint import Checkpoint, CheckpointInfo, CheckpointListing, load_checkpoint, scan_checkpoints
from dsmini.config import ModelConfig
from dsmini.data import MAX_NAME_LEN, Corpus, CorpusData, corpus_from_bytes, load_corpus, nfc, prepare_corpus
from dsmini.decoding import CUT_MARK
from dsmini.export import architecture, unsupported
from dsmini.i18n import STRINGS, fmt_int, fmt_num, t
from dsmini.jobs import JobRegistry, TrainingJob, configure_torch_threads, prepare_for_training, run_grace_s
from dsmini.probes.store import stored_view
from dsmini.single_flight import SharedResults
from dsmini.training import pick_device

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = Path(os.environ.get("DSMINI_CHECKPOINTS", ROOT / "checkpoints"))
MAX_UPLOAD_NAME_LEN = MAX_NAME_LEN  # the CLI's cap too; longer lines are dropped (and counted): block size follows the longest name
log = logging.getLogger("dsmini.app")
Result = TypeVar("Result")


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
              '[data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"] {font-size: 1.2rem !important;}')


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


def _startup() -> str:
    """Once per process: torch thread policy and training's one-time costs (see dsmini.jobs.slots and
    dsmini.jobs.process), and the device in use."""
    configure_torch_threads()
    prepare_for_training()
    return str(pick_device())


# The explorer's models: tiny, one name or a few hundred at a time, shared read-only by every session;
# on a CPU each call costs less than a GPU's launch and copy overhead would, so pages stay there.
EXPLORER_DEVICE = "cpu"


# The process's shared results: plain Python (dsmini.single_flight), not st.cache_*, so the warm-up
# thread fills them outside any script run (Streamlit warns on every st.cache call there), and each is
# computed once while the other sessions asking for it wait (a class arriving at a fresh server).
_ONCE = SharedResults(max_entries=1)
_LOADED = SharedResults(max_entries=16)
_LISTINGS = SharedResults(max_entries=4)
_RESULTS = SharedResults(max_entries=256)
MAX_FIGURES = 512  # a figure is tens of kB: at most tens of MB, however many sessions ask
_FIGURES = SharedResults(MAX_FIGURES)


def device_name() -> str:
    """Where training runs (TrainConfig.device "auto": CUDA, then MPS, then CPU)."""
    return _ONCE.get("startup", _startup)


def _load(path: str, mtime: float, best: bool = False) -> Checkpoint:
    """Shared by every user and thread, so read-only: eval mode, caches made per call.
    Keyed by mtime so a re-saved checkpoint is reloaded; best: its best-validation weights."""
    return _LOADED.get((path, mtime, best), lambda: load_checkpoint(path, device=EXPLORER_DEVICE, best=best))


def computed(view: Callable[..., Result], *args: Any, **given: Any) -> Result:
    """`view(*args, **given)` (a probe of dsmini.probes), once per process for every session: the
    results are read-only, so all share one. A view stored beside its checkpoint for this very
    checkpoint and code (dsmini.probes.store) is read instead of computed.

    Keyed by the function, each checkpoint's path and mtime (a re-saved checkpoint is computed
    again; a list of checkpoints keys each) and the other arguments: settings dataclasses, plain
    values. `given` is left out of the key, so it may only hold what the keyed arguments already
    determine: a result computed before (the checkpoint's analysis), passed so it is not redone.
    """
    key = (f"{view.__module__}.{view.__qualname__}", tuple(_key(arg) for arg in args))
    return _RESULTS.get(key, lambda: _stored_or_computed(view, args, given))


def _stored_or_computed(view: Callable[..., Result], args: tuple, given: dict) -> Result:
    stored = stored_view(view, args)
    return view(*args, **given) if stored is None else stored


def _key(arg: Any) -> Any:
    if isinstance(arg, Checkpoint):
        return str(arg.path), arg.mtime, arg.weights
    if isinstance(arg, (list, tuple)):
        return tuple(_key(item) for item in arg)
    return arg


def figure(chart: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
    """`chart(*args, **kwargs)` once per process for the same inputs, shared by every session.

    A page's figure is a pure function of its view, which `computed` shares across sessions, and
    building one costs 5-45 ms: a class of 100 would pay it 100 times. Hashable inputs (language,
    layer, a frozen config) are keyed by value, the rest (a view's parts) by identity; an entry keeps
    its inputs alive, so an identity is never reused while it is cached. Pages never modify a figure.
    Only call it with inputs every session shares: a per-session object would never be found again.
    """
    return shared_figure((lang(), text_scale()), chart, *args, **kwargs)


def shared_figure(display: tuple[str, float], chart: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
    """`figure` for a given display (language, text scale: what for_display makes of it), outside any
    session too (the warm-up)."""
    key = (chart.__module__, chart.__qualname__, tuple(map(_figure_key, args)),
           tuple((name, _figure_key(value)) for name, value in sorted(kwargs.items())), *display)

    def build() -> tuple[Any, tuple, dict]:
        built = chart(*args, **kwargs)
        return (frozen(for_display(built, *display)) if isinstance(built, go.Figure) else built), args, kwargs

    return _FIGURES.get(key, build)[0]


class FrozenFigure(go.Figure):
    """A figure every session shows and none changes. `st.plotly_chart` serialises a figure through its
    `to_dict()`, which deep-copies every trace and base64-encodes its arrays on every call: two thirds of
    a shared chart's cost in a page run under a class's load (BENCHMARKS, "Classroom load test"). This
    one makes that dict once; Streamlit only reads it."""

    def to_dict(self) -> dict:
        return self._shown_dict


def frozen(fig: go.Figure) -> FrozenFigure:
    """`fig` itself, its `to_dict()` made once (a new go.Figure would validate every property again)."""
    fig.__class__ = FrozenFigure
    fig._shown_dict = go.Figure.to_dict(fig)
    return fig


def _figure_key(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:  # a view's lists and dataclasses with tensors: the shared object itself
        return ("id", id(value))
    return ("value", type(value).__qualname__, value)


@st.cache_resource(max_entries=8, show_spinner=False)
def corpus(name: str, upload: bytes | None) -> Corpus:
    """A built-in corpus by name, or an uploaded file's bytes, one name or `name<TAB>domain` per line
    (validated: CorpusError says why)."""
    if upload is None:
        return load_corpus(name)
    return corpus_from_bytes(upload, name=name, max_len=MAX_UPLOAD_NAME_LEN)


@st.cache_resource(max_entries=8, show_spinner=False)
def prepared(name: str, upload: bytes | None, block_size: int, seed: int) -> CorpusData:
    """Tokenizer, seeded split and tensors (with domain labels); shared read-only by every run on the
    same corpus."""
    chosen = corpus(name, upload)
    return prepare_corpus(
        chosen.names, block_size, seed, corpus_name=name, domains=chosen.domains, builtin=chosen.builtin
    )


def checkpoint_listing() -> CheckpointListing:
    """The checkpoints, and the folders that could not be read with why. Every script run of every
    session asks (the sidebar picker); the answer changes only when a checkpoint is saved, which
    changes the folder's mtime."""
    folder = Path(CHECKPOINTS)
    mtime = folder.stat().st_mtime if folder.exists() else 0.0
    return _LISTINGS.get((str(folder), mtime), lambda: scan_checkpoints(folder))


def checkpoints() -> list[CheckpointInfo]:
    """The readable checkpoints, sorted by name."""
    return checkpoint_listing().good


DEFAULT_CHECKPOINTS = {"en": "en-names", "ru": "ru-names"}  # a new session opens on its language's shipped model


def checkpoint_choice(infos: list[CheckpointInfo]) -> str | None:
    """The session's pick while it is listed; else the shipped model of the UI's language, else any
    shipped one, else the first (never just the alphabetically first: a student's run named
    "a-test" must not become what every new session opens on); None when nothing is listed."""
    names = [info.name for info in infos]
    picked = st.session_state.get("checkpoint")
    if picked in names:
        return picked
    shipped = [info.name for info in infos if info.shipped]
    preferred = DEFAULT_CHECKPOINTS.get(lang())
    return preferred if preferred in shipped else next(iter(shipped or names), None)


def selected_checkpoint() -> Checkpoint | None:
    """The checkpoint picked in the sidebar, loaded once per process; None if there is none."""
    infos = {info.name: info for info in checkpoints()}
    name = checkpoint_choice(list(infos.values()))
    if name is None:
        return None
    info = infos[name]
    return _load(str(info.path), info.mtime, info.has_best and st.session_state.get("weights") == "best")


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


def field_labels(rows) -> dict[str, str]:
    """ModelConfig field -> its words in the session's language (`cmp.field.*`) and its name in the code,
    "query latent rank (q_lora_rank)"; a field the catalogue does not name yet shows as itself."""
    return {row.key: f"{tr(f'cmp.field.{row.key}')} ({row.key})" for row in rows if f"cmp.field.{row.key}" in STRINGS}


def checkpoint_identity(ckpt: Checkpoint) -> tuple[str, float]:
    """Which model, and which save of it: what a page's kept results (generated names, a step-through
    walk) are keyed by, so none is ever shown under another model, or a re-saved one."""
    return ckpt.name, ckpt.mtime


def show_names(shown: list[str]) -> None:
    """Names in bold, one line; a legend when some were cut at the max length (see dsmini.decoding.generate.marked)."""
    st.markdown(" · ".join(f"**{name}**" for name in shown))
    if any(name.endswith(CUT_MARK) for name in shown):
        st.caption(tr("gen.cut_legend"))


def load_by_name(name: str, best: bool = False) -> Checkpoint:
    """A listed checkpoint by name; best: its best-validation weights when it has them."""
    info = {i.name: i for i in checkpoints()}[name]
    return _load(str(info.path), info.mtime, best and info.has_best)


def require_checkpoint() -> Checkpoint:
    """State guard at the top of a page: stop with a hint when no model exists yet."""
    ckpt = selected_checkpoint()
    if ckpt is None:
        st.info(tr("ui.no_checkpoint"))
        st.page_link("pages/train.py", label=tr("nav.train"), icon=":material/model_training:")
        st.stop()
    return ckpt


def downloads(cfg: ModelConfig, stem: str, checkpoint: Callable[[], bytes], transformers: Callable[[], bytes], key: str) -> None:
    """The dsmini checkpoint and, beside it, the same model as a transformers folder, both zips built on
    click; a model transformers cannot express gets the reason instead of the second button."""
    left, right = st.columns(2)
    left.download_button(tr("export.checkpoint"), data=checkpoint, file_name=f"{stem}.zip", mime="application/zip",
                         key=f"{key}_download")
    problem = unsupported(cfg)
    if problem is not None:
        right.info(tr("export.refused", setting=problem.setting))
        return
    right.download_button(tr("export.download"), data=transformers, file_name=f"{stem}-transformers.zip",
                          mime="application/zip", key=f"{key}_transformers", help=tr("export.download_help", arch=architecture(cfg)))


# A plain module global, not st.cache_resource: session_jobs' on_release runs outside any script run.
# Python imports this module once per server process, so every session shares this one registry.
_REGISTRY = JobRegistry(grace_s=run_grace_s())


def job_registry() -> JobRegistry:
    """Every training run of the server by run id (the Train page keeps the id in the URL)."""
    return _REGISTRY


def _leave_run(session: dict) -> None:
    job_registry().leave(session["holder"])


@st.cache_resource(scope="session", on_release=_leave_run, show_spinner=False)
def session_jobs() -> dict[str, TrainingJob | str | None]:
    """This browser session's training run, its run id, and the session's holder id in the registry.

    A session ending (tab closed, or reloaded: a reload is a new session) does not stop the run: the
    registry gives it a grace period for a tab with its run id to claim it."""
    return {"job": None, "run": None, "holder": secrets.token_hex(8)}


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
