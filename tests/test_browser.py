"""The served app in a real headless Chromium: every page renders, no exception, charts appear.

Streamlit's own e2e recipe: start `streamlit run` on 127.0.0.1, wait for /_stcore/health, and
after each action wait until the app reports `data-test-script-state="notRunning"`.
Screenshots go to tests/artifacts/ (the README's screenshots are taken the same way).
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

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# url path -> plotly charts expected once the page has run (before any click)
PAGES = {
    "home": 1, "lesson": 1, "train": 0, "generate": 0, "experts": None, "attention": None, "kv-cache": None, "mtp": None,
    "compare": None,
}

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - requirements.txt installs it
    sync_playwright = None

if CHROMIUM is None or sync_playwright is None:
    print("browser test skipped: Debian chromium or playwright is not installed (.ci/run installs both)")
    pytestmark = pytest.mark.skip(reason="needs Debian chromium (apt-get install chromium) and playwright")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
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


@pytest.fixture(scope="module")
def page(server):
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield tab
        browser.close()


def settle(tab) -> None:
    """Wait until the script run triggered by the last action has finished."""
    tab.wait_for_timeout(300)  # let the rerun start before waiting for its end
    tab.wait_for_selector(IDLE, timeout=90_000)


def visit(tab, server, path: str) -> None:
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
    names_line = next(t for t in page.locator('[data-testid="stMarkdown"]').all_inner_texts() if " · " in t)
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


def _at_step(tab, step: int) -> None:
    """Wait for the lesson to show `step`: on a busy machine a click's rerun can start after `settle`
    has already seen the previous run's idle state."""
    tab.locator('[data-testid="stProgress"]', has_text=f"Step {step} of 7").wait_for(timeout=90_000)
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
    page.reload()
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    assert parse_qs(urlparse(page.url).query)["run"] == run_id
    after = _training_step_above(page, before)  # the same run, further on: nothing restarted at step 0
    _training_step_above(page, after)  # and it keeps going
    assert parse_qs(urlparse(page.url).query)["run"] == run_id
    assert page.locator('[data-testid="stException"]').count() == 0
    _click(page, "train_stop")  # leave the one training slot (DSMINI_MAX_JOBS=1) to the other tests
    page.locator('[data-testid="stProgress"]', has_text="Stopped at step").wait_for(timeout=60_000)
