"""A teacher's terminal: `streamlit run app.py` with the warm-up on, every page opened, then Ctrl-C twice
(0.5 s apart, as an impatient user presses it) or SIGTERM. The server's output holds Streamlit's banner
and nothing of ours: no warning, no traceback, no "missing ScriptRunContext" from our threads, and the
process exits 0, never aborted ("terminate called without an active exception", SIGABRT)."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers import ROOT
from tests.loadtest import free_port
from tests.st_client import StreamlitClient

PAGES = ["", "lesson", "train", "generate", "experts", "attention", "kv-cache", "mtp", "compare"]
# what Streamlit itself prints on start and stop
BANNER = ("You can now view your Streamlit app", "URL:", "Stopping...", "Local URL", "Network URL")
BAD = ("warning", "error", "traceback", "terminate called", "scriptruncontext", "exception")


def _serve() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1"],
        cwd=ROOT, env={**os.environ, "DSMINI_WARMUP": "1", "DSMINI_MAX_JOBS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"streamlit did not become healthy: {proc.communicate()[0][-2000:]}")


async def _open_every_page(url: str) -> list[str]:
    problems = []
    async with StreamlitClient(url, 120) as app:
        for page in PAGES:
            run = await app.run(page=page)
            problems += [f"{page or 'home'}: {p}" for p in run.problems]
    return problems


def _ours(output: str) -> list[str]:
    """The lines of `output` that are not Streamlit's banner and say something is wrong."""
    return [line for line in output.splitlines()
            if line.strip() and not line.strip().startswith(BANNER) and any(word in line.lower() for word in BAD)]


@pytest.mark.serve
@pytest.mark.parametrize("stop", ["two-ctrl-c", "sigterm-during-warm-up"])
def test_a_served_app_is_quiet_and_exits_cleanly(stop):
    proc, url = _serve()
    try:
        problems = asyncio.run(_open_every_page(url)) if stop == "two-ctrl-c" else []
        if stop == "two-ctrl-c":
            time.sleep(2)  # the warm-up computes meanwhile
            proc.send_signal(signal.SIGINT)
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
        else:  # right after the first page run: the warm-up has just started
            asyncio.run(_first_run(url))
            proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=90)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not problems
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{output[-3000:]}"
    assert not _ours(output), "\n".join(_ours(output))


async def _first_run(url: str) -> None:
    async with StreamlitClient(url, 120) as app:
        await app.run(page="")


@pytest.mark.slow
def test_a_process_driving_the_app_exits_cleanly_while_the_warm_up_computes():
    """AppTest, as the test suite drives the app: the first run starts the warm-up, and the process ends at once."""
    script = "from streamlit.testing.v1 import AppTest; AppTest.from_file('app.py', default_timeout=60).run()"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "DSMINI_WARMUP": "1"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "terminate called" not in done.stderr
