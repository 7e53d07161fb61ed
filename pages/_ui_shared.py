"""What every session shares in one server process: the device, loaded checkpoints, computed views and
built figures, each made once while other sessions asking for it wait (dsmini.single_flight).
"""


from __future__ import annotations

from typing import Any, Callable, TypeVar

import plotly.graph_objects as go

from dsmini.charts.common import for_display
from dsmini.checkpoint import Checkpoint
from dsmini.jobs import configure_torch_threads, prepare_for_training
from dsmini.probes.store import stored_view
from dsmini.single_flight import SharedResults
from dsmini.training import pick_device
from pages._ui_text import lang, text_scale

Result = TypeVar("Result")


def _startup() -> str:
    """Once per process: torch thread policy and training's one-time costs (see dsmini.jobs.slots and
    dsmini.jobs.process), and the device in use."""
    configure_torch_threads()
    prepare_for_training()
    return str(pick_device())


# The process's shared results: plain Python (dsmini.single_flight), not st.cache_*, so the warm-up
# thread fills them outside any script run (Streamlit warns on every st.cache call there), and each is
# computed once while the other sessions asking for it wait (a class arriving at a fresh server).
_ONCE = SharedResults(max_entries=1)
_RESULTS = SharedResults(max_entries=256)
MAX_FIGURES = 512  # a figure is tens of kB: at most tens of MB, however many sessions ask
_FIGURES = SharedResults(MAX_FIGURES)


def device_name() -> str:
    """Where training runs (TrainConfig.device "auto": CUDA, then MPS, then CPU)."""
    return _ONCE.get("startup", _startup)


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
