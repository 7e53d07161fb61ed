"""The served app in a real headless Chromium: every page renders, no exception, charts appear, and the
browser console stays clean (no warning or error, no failed request) on every page in both languages.

Streamlit's own e2e recipe: start `streamlit run` on 127.0.0.1, wait for /_stcore/health, and
after each action wait until the app reports `data-test-script-state="notRunning"`.
Screenshots go to tests/artifacts/. The README's screenshots (tests/screenshots/en/ and ru/) are taken by
test_readme_screenshots; it writes them there only when asked:

    DSMINI_SCREENSHOTS=1 python -m pytest -q tests/system/test_browser.py -k readme
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from dsmini.i18n import LANGUAGES, t
from tests.helpers import ROOT

ARTIFACTS = ROOT / "tests" / "artifacts"
README_SHOTS = ROOT / "tests" / "screenshots"  # README.md shows {en,ru}/<name>.png from here
WRITE_README_SHOTS = os.environ.get("DSMINI_SCREENSHOTS") == "1"
VIEWPORT = {"width": 1280, "height": 900}  # a classroom projector's width: no label may clip at it
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# url path -> plotly charts expected once the page has run (before any click)
PAGES = {
    "home": 1, "lesson": 1, "train": 1, "generate": 0, "experts": None, "attention": None, "kv-cache": None,
    "mtp": None, "compare": None,
}

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - requirements.txt installs it
    sync_playwright = None

MISSING = ("needs Debian chromium (apt-get install chromium) and playwright"
           if CHROMIUM is None or sync_playwright is None else None)
pytestmark = [pytest.mark.browser]
if MISSING and os.environ.get("CI") != "true":  # in CI the fixture below fails instead: .ci/run installs both
    print(f"browser test skipped: {MISSING} (.ci/run installs both)")
    pytestmark.append(pytest.mark.skip(reason=MISSING))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if MISSING:
        pytest.fail(f"{MISSING} (CI must run the browser test: .ci/run installs chromium)")
    port = free_port()
    env = {**os.environ, "DSMINI_MAX_JOBS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not become healthy: {proc.stdout.read().decode()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def base_path_probes(server: str) -> set[str]:
    """The two requests that answer 404 whenever a page is opened on its own URL (http://host/experts), in
    every multipage Streamlit app: Streamlit's frontend does not know the app's base path, so it tries the
    page's path first (GET /experts/_stcore/health and /experts/_stcore/host-config, `getPossibleBaseUris`)
    and then the root, where it connects. A two-page app with nothing else in it gets the same two 404s
    (Streamlit 1.67; streamlit/streamlit#7074, open), no setting turns the probe off, and a server that
    answered it would make the browser take the page's path for the app's base. The only allow-list entry."""
    return {f"{server}/{path}/_stcore/{probe}" for path in PAGES if path != "home"
            for probe in ("health", "host-config")}


class BrowserLog:
    """Every console warning or error, HTTP error (>= 400) and failed request of the tab, as lines of text;
    and the requests still under way, so the test leaves a page only once it has loaded what it asked for
    (leaving earlier aborts them, as the test's own doing, not the app's)."""

    def __init__(self, tab, server: str):
        self.problems: list[str] = []
        self.pending: set = set()
        self.allowed = base_path_probes(server)
        tab.on("console", self._console)
        tab.on("response", self._response)
        tab.on("request", lambda request: request.resource_type != "websocket" and self.pending.add(request))
        tab.on("requestfinished", lambda request: self.pending.discard(request))
        tab.on("requestfailed", self._failed)

    def _console(self, message) -> None:
        where = message.location.get("url", "")
        if message.type not in ("warning", "error"):
            return
        if where in self.allowed and message.text.startswith("Failed to load resource"):  # the probe's 404, again
            return
        self.problems.append(f"console {message.type}: {message.text[:300]} ({where})")

    def _response(self, response) -> None:
        if response.status >= 400 and response.url not in self.allowed:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def _failed(self, request) -> None:
        self.pending.discard(request)
        self.problems.append(f"failed ({request.failure}): {request.url}")

    def wait_until_loaded(self, tab, timeout_s: float = 30) -> None:
        deadline = time.time() + timeout_s
        while self.pending and time.time() < deadline:
            tab.wait_for_timeout(100)
        assert not self.pending, f"still loading after {timeout_s} s: {sorted(r.url for r in self.pending)}"


LOGS: dict = {}  # tab -> its BrowserLog


@pytest.fixture(scope="module")
def browser(server):
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        tab = browser.new_page(viewport=VIEWPORT)
        LOGS[tab] = BrowserLog(tab, server)
        yield tab, LOGS[tab]
        browser.close()


@pytest.fixture
def page(browser):
    """The tab; the test fails if the browser reported any problem while it ran."""
    tab, log = browser
    log.problems.clear()
    yield tab
    tab.wait_for_timeout(500)  # a chart mounts just after its script run: let its messages arrive in this test
    assert not log.problems, "the browser reported:\n" + "\n".join(log.problems)


def settle(tab) -> None:
    """Wait until the script run triggered by the last action has finished."""
    tab.wait_for_timeout(300)  # let the rerun start before waiting for its end
    tab.wait_for_selector(IDLE, timeout=90_000)


def visit(tab, server, path: str) -> None:
    LOGS[tab].wait_until_loaded(tab)
    tab.goto(f"{server}/{path}")
    tab.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    settle(tab)


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_without_exception(page, server, path):
    visit(page, server, "" if path == "home" else path)  # home first: the session enters through app.py
    assert page.locator('[data-testid="stException"]').count() == 0
    expected = PAGES[path]
    charts = page.locator('[data-testid="stPlotlyChart"]')
    if expected != 0:  # Plotly mounts lazily, just after the script run ends
        charts.nth((expected or 1) - 1).wait_for(timeout=30_000)
    charts = charts.count()
    if expected is None:
        assert charts >= 1
    else:
        assert charts == expected
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{path}.png", full_page=True)


def test_generate_click_shows_names_and_charts(page, server):
    visit(page, server, "")
    visit(page, server, "generate")
    page.locator(".st-key-gen_prefix input").fill("Ma")
    page.get_by_role("button", name="Generate").click()
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.locator('[data-testid="stPlotlyChart"]').nth(2).wait_for(timeout=30_000)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 3
    names_line = next(text for text in page.locator('[data-testid="stMarkdown"]').all_inner_texts() if " · " in text)
    assert all(name.strip().startswith("Ma") for name in names_line.split(" · "))
    page.screenshot(path=ARTIFACTS / "generate-names.png", full_page=True)


def _charts_shown(tab, n: int) -> None:
    """Wait until `n` Plotly charts are mounted (they appear just after the script run ends)."""
    charts = tab.locator('[data-testid="stPlotlyChart"]')
    if n:
        charts.nth(n - 1).wait_for(timeout=30_000)
    assert charts.count() == n
    assert tab.locator('[data-testid="stException"]').count() == 0


def _click(tab, key: str) -> None:
    tab.locator(f".st-key-{key} button").click()
    settle(tab)


def _at_step(tab, step: int, lang: str = "en") -> None:
    """Wait for the lesson to show `step`: on a busy machine a click's rerun can start after `settle`
    has already seen the previous run's idle state."""
    progress = t("lesson.progress", lang, step=step, total=7)
    tab.locator('[data-testid="stProgress"]', has_text=progress).wait_for(timeout=90_000)
    settle(tab)


def test_lesson_walks_every_step_and_opens_the_full_pages(page, server):
    """Next through the seven steps (each with its chart), one step-through press, Back once; then the
    last step's and the third step's buttons open the Experts page on their model and section."""
    folder = Path(os.environ.get("DSMINI_CHECKPOINTS", ROOT / "checkpoints"))
    meta = json.loads((folder / "ru-en-names" / "checkpoint.json").read_text())
    curve = any(meta["history"].get("domain_mi") or ())  # shipped before the field: step 6 shows a note
    expected = {1: 1, 2: 1, 3: 2, 4: 1, 5: 1, 6: int(curve), 7: 1}
    visit(page, server, "")
    visit(page, server, "lesson")
    for step, n_charts in expected.items():
        _at_step(page, step)
        _charts_shown(page, n_charts)
        if step == 2:
            walked = page.locator('[data-testid="stMarkdown"]', has_text="|Крас").first
            before = walked.inner_text()
            _click(page, "lesson_step_next")
            page.wait_for_function("([el, n]) => el.innerText.length === n", arg=[walked.element_handle(),
                                                                                   len(before) + 1], timeout=60_000)
            _charts_shown(page, 1)
        page.screenshot(path=ARTIFACTS / f"lesson-{step}.png", full_page=True)
        if step < 7:
            _click(page, "lesson_next")
    assert page.locator(".st-key-lesson_next button").is_disabled()
    _click(page, "lesson_back")
    _at_step(page, 6)
    _click(page, "lesson_next")
    _click(page, "lesson_open_7")
    assert page.url.endswith("/experts")
    assert page.locator(".st-key-checkpoint input").input_value() == "ru-names"
    _charts_shown(page, 5)  # the letters view
    page.locator('[data-testid="stSidebarNav"] a[href$="/lesson"]').click()  # same session: the lesson kept its step
    settle(page)
    _at_step(page, 7)
    for _ in range(4):
        _click(page, "lesson_back")
    _click(page, "lesson_open_3")  # the Experts page ran before in this session: its section is set anew
    assert page.url.endswith("/experts")
    assert page.locator(".st-key-checkpoint input").input_value() == "ru-en-names"
    _charts_shown(page, 2)  # the domains view: I(domain; expert) and the domain map


def _training_step(tab) -> int:
    """The step the live panel shows, once it shows a running run ("Training: step N/M")."""
    bar = tab.locator('[data-testid="stProgress"]', has_text="Training: step")
    bar.first.wait_for(timeout=60_000)
    return int(bar.first.inner_text().split("step")[1].split("/")[0])


def _training_step_above(tab, step: int, timeout_s: float = 60) -> int:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        now = _training_step(tab)
        if now > step:
            return now
        tab.wait_for_timeout(500)
    pytest.fail(f"the run stayed at step {step}")


def test_a_reload_finds_the_run_still_training(page, server):
    """F5 is a new websocket session: the run id in the URL brings the same run back, still training."""
    visit(page, server, "")
    visit(page, server, "train")
    steps = page.locator(".st-key-train_steps input")
    steps.fill("20000")
    steps.press("Enter")
    settle(page)
    _click(page, "train_start")
    before = _training_step_above(page, 0)
    run_id = parse_qs(urlparse(page.url).query)["run"]
    LOGS[page].wait_until_loaded(page)
    page.reload()
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    assert parse_qs(urlparse(page.url).query)["run"] == run_id
    after = _training_step_above(page, before)  # the same run, further on: nothing restarted at step 0
    _training_step_above(page, after)  # and it keeps going
    assert parse_qs(urlparse(page.url).query)["run"] == run_id
    assert page.locator('[data-testid="stException"]').count() == 0
    _click(page, "train_stop")  # leave the one training slot (DSMINI_MAX_JOBS=1) to the other tests
    page.locator('[data-testid="stProgress"]', has_text="Stopped at step").wait_for(timeout=60_000)


# The README's screenshots: the pages as a user walks them through the sidebar (one session, as a class
# would), in each language on that language's shipped model. Page pictured -> whether the picture starts at its
# first chart (the Experts page opens with a long introduction: its maps would be out of the picture).
README_PAGES = {"home": False, "experts": True, "attention": False, "kv-cache": False, "mtp": False}
README_MODEL = {"en": "en-names", "ru": "ru-names"}
README_PREFIX = {"en": "Ma", "ru": "Ма"}


def _shot(tab, lang: str, name: str, at_first_chart: bool = False) -> None:
    """One README picture: the viewport only (a full page of charts is several MB), once its charts drew."""
    folder = README_SHOTS / lang if WRITE_README_SHOTS else ARTIFACTS / f"readme-{lang}"
    folder.mkdir(parents=True, exist_ok=True)
    if at_first_chart:  # with the heading above it in the picture too
        tab.locator('[data-testid="stPlotlyChart"]').first.evaluate(
            "chart => { chart.scrollIntoView({block: 'start'}); document.querySelector('[data-testid=\"stMain\"]')"
            ".scrollBy(0, -200) }")
    tab.mouse.move(0, VIEWPORT["height"] - 1)  # no hover label over a chart
    tab.wait_for_timeout(500)
    tab.screenshot(path=folder / f"{name}.png")


def _open_from_sidebar(tab, path: str) -> None:
    """A page by its sidebar link: the same session, so the language and the model picked stay."""
    tab.locator(f'[data-testid="stSidebarNav"] a[href$="/{"" if path == "home" else path}"]').first.click()
    tab.wait_for_url(lambda url: urlparse(url).path == f"/{'' if path == 'home' else path}", timeout=30_000)
    settle(tab)
    if PAGES[path] is None:  # how many depends on the model
        tab.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)
    else:
        _charts_shown(tab, PAGES[path])


def _pick_language_and_model(tab, lang: str) -> None:
    if lang != "en":
        tab.locator(".st-key-lang button", has_text=LANGUAGES[lang]).click()
        settle(tab)
    if tab.locator(".st-key-checkpoint input").input_value() != README_MODEL[lang]:
        tab.locator(".st-key-checkpoint").click()
        tab.get_by_role("option", name=README_MODEL[lang], exact=True).click()
        settle(tab)
    assert tab.locator(".st-key-checkpoint input").input_value() == README_MODEL[lang]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_readme_screenshots(page, server, lang):
    """Every page in `lang` through the sidebar, with a clean console (the `page` fixture), and the README's
    pictures of it: the pages as they open, names generated from a prefix, the lesson's steps 3 and 4."""
    visit(page, server, "")
    _pick_language_and_model(page, lang)
    for path in PAGES:
        _open_from_sidebar(page, path)
        if path in README_PAGES:
            _shot(page, lang, path, README_PAGES[path])
    _open_from_sidebar(page, "generate")
    page.locator(".st-key-gen_prefix input").fill(README_PREFIX[lang])
    page.get_by_role("button", name=t("gen.button", lang), exact=True).click()
    settle(page)
    _charts_shown(page, 3)
    _shot(page, lang, "generate-names")
    _open_from_sidebar(page, "lesson")
    _at_step(page, 1, lang)  # a new session starts the lesson at its first step
    for step, name, n_charts in ((3, "lesson-domains", 2), (4, "lesson-drop", 1)):
        while not page.locator('[data-testid="stProgress"]',
                               has_text=t("lesson.progress", lang, step=step, total=7)).count():
            _click(page, "lesson_next")
        _at_step(page, step, lang)
        _charts_shown(page, n_charts)
        _shot(page, lang, name)
