"""What tests in several folders share: the repository's paths, and AppTest's way in and its readings.

Fixtures live in conftest.py; these are the plain constants and functions a test module imports."""

import json
import time
from pathlib import Path

import torch
from streamlit.runtime.caching import clear_session_resource_cache
from streamlit.testing.v1 import AppTest

from dsmini.config import preset
from dsmini.jobs.slots import set_max_concurrent_jobs
from dsmini.model import DSMini

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
SHIPPED = ROOT / "checkpoints"  # the shipped models, one folder each
# Twenty-four names a tiny model learns in a few dozen steps: the training tests' corpus.
NAMES = [
    "anna", "boris", "clara", "dmitri", "elena", "fedor", "galina", "igor", "katya", "lev", "maria", "nikita",
    "olga", "pavel", "raisa", "sergei", "tamara", "vadim", "yulia", "zoya", "alla", "denis", "inna", "oleg",
]

# Five names in two alphabets: the probes' tests trace a tiny model over them.
MIXED_NAMES = ["анна", "олег", "юлия", "john", "mary"]
# Ten Russian names a tiny model overfits: the decoding tests' corpus.
RU_NAMES = ["Анна", "Олег", "Мария", "Иван", "Пётр", "Ольга", "Нина", "Егор", "Лев", "Вера"]

# A page's first run on a shared two-core CI machine can take a minute (a cold view of a shipped model).
APP_TIMEOUT_S = 120
SESSION = "test session id"  # every AppTest runs as this one session (streamlit.testing's LocalScriptRunner)


def app_test() -> AppTest:
    """The app, not yet run: a test sets session state first, then calls run()."""
    return AppTest.from_file(APP, default_timeout=APP_TIMEOUT_S)


def end_session() -> None:
    """What Streamlit does when a tab's websocket goes (closed, or reloaded): clear the session's resources,
    whose on_release hands its run to the registry's grace period."""
    clear_session_resource_cache(SESSION)


def no_errors(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def charts(app: AppTest) -> list[dict]:
    """The page's Plotly figures as the browser gets them."""
    return [json.loads(c.proto.spec) for c in app.get("plotly_chart")]


def traces(figure: dict, kind: str) -> list[dict]:
    return [trace for trace in figure["data"] if trace["type"] == kind]


def run_until(app: AppTest, done, seconds: float) -> None:
    """run_every fragments do not rerun by themselves in AppTest: rerun the page until `done(app)`."""
    deadline = time.time() + seconds
    while time.time() < deadline and not done(app):
        time.sleep(0.3)
        app.run()
    assert done(app), "timed out"


def finished_run(lang: str) -> AppTest:
    """The Train page after a 10-step run of the tiny preset, its finished actions (save, downloads) shown."""
    set_max_concurrent_jobs(1)
    at = app_test()
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="train_preset").set_value("tiny")
    at.number_input(key="train_steps").set_value(10)
    at.button(key="train_start").click().run()
    run_until(at, lambda app: bool(app.get("download_button")), 90)
    assert not at.exception
    return at


def opened(app: AppTest, page: str, lang: str = "en", **state) -> AppTest:
    """`app` in `lang`, with `state` in its session, through app.py onto pages/`page`.py, checked for errors."""
    app.session_state["lang"] = lang
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    app.switch_page(f"pages/{page}.py").run()
    no_errors(app)
    return app


def tiny_model(tokenizer, seed: int = 0, **fields) -> DSMini:
    """An untrained tiny model for `tokenizer` (block 12), its weights drawn from `seed`, in eval mode."""
    torch.manual_seed(seed)
    return DSMini(preset("tiny", vocab_size=tokenizer.vocab_size, block_size=12, **fields)).eval()


def wait_until(predicate, timeout: float = 30.0) -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
