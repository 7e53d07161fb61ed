"""Classroom load test: N simultaneous browser sessions against a real `streamlit run` server.

    python tests/loadtest.py --sessions 30 --trainers 5 --benchmarks BENCHMARKS.md

Each session is a headless-Chromium context (one browser, many contexts): it opens the app,
generates names, visits other pages; `--trainers` of them also start a small live training run.
We time every page run (action -> the app reports `notRunning`), count errors (a Streamlit
exception on the page, or a run that does not finish in time), and sample the server's RSS.
Only 127.0.0.1 is contacted; the test is bounded in sessions and time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SECTION_START, SECTION_END = "<!-- loadtest:start -->", "<!-- loadtest:end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, max_jobs: int) -> subprocess.Popen:
    env = {**os.environ, "DSMINI_MAX_JOBS": str(max_jobs)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit server did not become healthy in 90 s")


def rss_mb(pid: int) -> float:
    """Resident memory of the server process (Linux /proc)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


class Recorder:
    def __init__(self):
        self.latencies: list[float] = []
        self.errors: list[str] = []

    async def run(self, tab, label: str, action, timeout_s: float) -> None:
        """Do `action`, then wait for the app's script run to end; time it and check for errors."""
        start = time.perf_counter()
        try:
            await action()
            await tab.wait_for_timeout(200)
            await tab.wait_for_selector(IDLE, timeout=timeout_s * 1000)
            self.latencies.append(time.perf_counter() - start)
            if await tab.locator('[data-testid="stException"]').count():
                self.errors.append(f"{label}: exception shown")
        except Exception as err:  # timeouts and browser failures are errors of the run
            self.errors.append(f"{label}: {type(err).__name__}: {str(err)[:120]}")


async def session(browser, url: str, index: int, trains: bool, rec: Recorder, timeout_s: float, ramp_s: float) -> None:
    await asyncio.sleep(ramp_s * index)  # a class arrives within a few seconds, not in one microsecond
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(timeout_s * 1000)
    tab = await context.new_page()

    def go(path: str = ""):  # the app's own run is what we wait for, not the browser's load event
        return tab.goto(f"{url}{path}", wait_until="commit")

    try:
        await rec.run(tab, f"s{index} open", go, timeout_s)
        await rec.run(tab, f"s{index} generate page", lambda: go("/generate"), timeout_s)
        prefix = tab.locator(".st-key-gen_prefix input")
        await prefix.fill("Ma" if index % 2 else "")
        await rec.run(tab, f"s{index} generate", lambda: tab.get_by_role("button", name="Generate", exact=True).click(), timeout_s)
        if trains:
            await rec.run(tab, f"s{index} train page", lambda: go("/train"), timeout_s)
            await rec.run(tab, f"s{index} start", lambda: tab.locator(".st-key-train_start button").click(), timeout_s)
        await rec.run(tab, f"s{index} home", go, timeout_s)
        if await tab.locator('[data-testid="stPlotlyChart"]').count() == 0:
            await tab.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=timeout_s * 1000)
    except Exception as err:
        rec.errors.append(f"s{index}: {type(err).__name__}: {str(err)[:120]}")
    finally:
        await context.close()


async def drive(url: str, sessions: int, trainers: int, timeout_s: float, ramp_s: float, server_pid: int) -> dict:
    from playwright.async_api import async_playwright

    rec = Recorder()
    rss: list[float] = []

    async def sample_rss():
        while True:
            rss.append(rss_mb(server_pid))
            await asyncio.sleep(0.5)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        warm = await browser.new_page()  # the first run of app.py imports torch: not a user's latency
        await warm.goto(url)
        await warm.wait_for_selector(IDLE, timeout=120_000)
        await warm.close()
        sampler = asyncio.create_task(sample_rss())
        started = time.perf_counter()
        await asyncio.gather(*(session(browser, url, i, i < trainers, rec, timeout_s, ramp_s) for i in range(sessions)))
        wall = time.perf_counter() - started
        sampler.cancel()
        await browser.close()
    lat = sorted(rec.latencies)
    return {
        "sessions": sessions, "trainers": trainers, "ramp_s": ramp_s, "page_runs": len(lat), "errors": len(rec.errors),
        "error_samples": rec.errors[:10], "p50_s": statistics.median(lat) if lat else None,
        "p95_s": lat[int(0.95 * (len(lat) - 1))] if lat else None, "max_s": lat[-1] if lat else None,
        "wall_s": wall, "server_rss_mb_max": max(rss) if rss else None, "server_rss_mb_start": rss[0] if rss else None,
    }


def markdown(result: dict, command: str) -> str:
    return "\n".join([
        SECTION_START,
        "## Classroom load test",
        "",
        f"`{command}` — {result['sessions']} simultaneous headless-Chromium sessions against one "
        f"`streamlit run` server on 127.0.0.1 (this 2-core CPU, which also runs all {result['sessions']} browser "
        f"tabs, so latencies include the browsers' own rendering), starting {result['ramp_s']} s apart; each opens "
        "the app, generates names, "
        f"returns home; {result['trainers']} of them also start a live training run (the global cap queues "
        "the runs beyond it).",
        "",
        "| page runs | errors | p50 page run | p95 page run | max | wall time | server RSS start → max |",
        "|---|---|---|---|---|---|---|",
        f"| {result['page_runs']} | {result['errors']} | {result['p50_s']:.2f} s | {result['p95_s']:.2f} s | "
        f"{result['max_s']:.2f} s | {result['wall_s']:.1f} s | {result['server_rss_mb_start']:.0f} → "
        f"{result['server_rss_mb_max']:.0f} MB |",
        SECTION_END,
    ])


def write_section(path: Path, section: str) -> None:
    """Replace the load-test section of BENCHMARKS.md (or append it), written atomically."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END), re.S)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30, help="simultaneous browser sessions (max 60)")
    parser.add_argument("--trainers", type=int, default=5, help="sessions that also start a training run")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one page run may take")
    parser.add_argument("--ramp", type=float, default=0.2, help="seconds between session starts")
    parser.add_argument("--max-jobs", type=int, default=1, help="DSMINI_MAX_JOBS for the server")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--benchmarks", type=Path, help="update this BENCHMARKS.md's load-test section")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 60 or not 0 <= args.trainers <= args.sessions:
        parser.error("need 1 <= sessions <= 60 and 0 <= trainers <= sessions")
    port = free_port()
    server = start_server(port, args.max_jobs)
    try:
        result = asyncio.run(
            drive(f"http://127.0.0.1:{port}", args.sessions, args.trainers, args.timeout, args.ramp, server.pid)
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.benchmarks:
        command = "python tests/loadtest.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.benchmarks, markdown(result, command))
    return result


if __name__ == "__main__":
    main()
