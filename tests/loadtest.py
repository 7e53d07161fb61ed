"""Classroom load test: N simultaneous sessions against a real `streamlit run` server on 127.0.0.1.

    python -m tests.loadtest --sessions 30 --trainers 5 --benchmarks BENCHMARKS.md
    python -m tests.loadtest --url http://host:8501 --sessions 30   # a deployment that is already running

Each session is a browserless websocket client (tests/st_client.py) speaking the browser's protocol, so
the figures are the server's: it opens the app, generates names from a prefix, visits every page;
`--trainers` of them first start the default live training run and watch it (the live fragment reruns
every second) for `--watch` seconds, and keep it running while they browse. We time every script run
(request -> script finished), count errors (an exception or error message on a page, a missing widget,
a run slower than `--timeout`, a dropped connection), sample the server's RSS and CPU, and check that
the server goes quiet once every session has closed (their training runs stop with their sessions).
Only 127.0.0.1 is contacted unless `--url` names a running deployment (then nothing is started, and the
server's CPU and memory, which it cannot see, are not reported); the test is bounded in sessions and time
and stops by itself. Behind `python -m dsmini serve` each session gets its own sticky cookie, as each
browser would, so the class spreads over the replicas; the result counts the sessions per replica.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.st_client import Run, StreamlitClient, text, trigger

ROOT = Path(__file__).resolve().parent.parent
BROWSED_PAGES = ["experts", "attention", "kv-cache", "mtp", "compare"]
IDLE_WINDOW_S = 5.0
SECTION_START, SECTION_END = "<!-- loadtest:start -->", "<!-- loadtest:end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, max_jobs: int) -> subprocess.Popen:
    # grace 0: a run stops as its session ends (a classroom's run waits 120 s for a reload), so
    # "idle after close" measures the server, not a run waiting to be reclaimed
    env = {**os.environ, "DSMINI_MAX_JOBS": str(max_jobs), "DSMINI_RUN_GRACE_S": "0"}
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
    """Resident memory of one process, 0 if it has exited (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time one process has used so far, 0 if it has exited (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants: the server, the fork server it starts, the training runs forked from that."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except OSError:  # exited while we looked
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


async def tree_cpu_seconds_over(pid: int, seconds: float) -> float:
    """CPU the whole process tree uses in the next `seconds`: ~0 once nothing trains or runs a page."""
    before = {p: cpu_seconds(p) for p in process_tree(pid)}
    await asyncio.sleep(seconds)
    return sum(cpu_seconds(p) - before.get(p, 0.0) for p in process_tree(pid))


class Recorder:
    """Every script run's latency by step, every error, and each trainer's last progress line."""

    def __init__(self):
        self.latencies: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.progress: list[str] = []
        self.replicas: dict[str, int] = {}  # replica (behind dsmini serve) -> sessions it served

    async def run(self, app: StreamlitClient, session: int, step: str, **request) -> Run | None:
        try:
            run = await app.run(**request)
        except Exception as err:  # a timeout or a dropped connection is an error of the run
            self.errors.append(f"s{session} {step}: {type(err).__name__}: {str(err)[:120]}")
            return None
        self.latencies.setdefault(step, []).append(run.seconds)
        self.errors.extend(f"s{session} {step}: {problem}" for problem in run.problems)
        return run

    def require(self, found, session: int, what: str):
        if found is None:
            self.errors.append(f"s{session}: {what} not found on the page")
        return found


async def watch_training(app: StreamlitClient, index: int, rec: Recorder, watch_s: float) -> None:
    """Start the default live run and watch it like the browser does: the live fragment reruns every second."""
    page = await rec.run(app, index, "train page", page="train")
    start = page and rec.require(page.find("button", "train_start"), index, "the Start button")
    if not start or not await rec.run(app, index, "start training", widgets=[trigger(start.id)]):
        return
    fragment = rec.require(next(iter(app.fragment_intervals), None), index, "the live-run fragment")
    deadline = time.perf_counter() + watch_s
    last = None
    while fragment and time.perf_counter() < deadline:
        await asyncio.sleep(app.fragment_intervals[fragment])
        last = await rec.run(app, index, "live-run poll", fragment_id=fragment) or last
    progress = last and rec.require(last.find("progress"), index, "the progress bar")
    if progress:
        rec.progress.append(progress.text)


async def session(url: str, index: int, trains: bool, rec: Recorder, timeout_s: float, ramp_s: float,
                  watch_s: float) -> None:
    """One student: open the app, generate names from a prefix, (start a run and watch it), visit every page."""
    await asyncio.sleep(ramp_s * index)  # a class arrives within a few seconds, not in one microsecond
    try:
        async with StreamlitClient(url, timeout_s) as app:
            if app.replica:
                rec.replicas[app.replica] = rec.replicas.get(app.replica, 0) + 1
            await rec.run(app, index, "open", page="")
            form = await rec.run(app, index, "generate page", page="generate")
            prefix = form and rec.require(form.find("text_input", "gen_prefix"), index, "the prefix box")
            submit = form and rec.require(form.find("button", is_form_submitter=True), index, "the Generate button")
            if prefix and submit:
                names = await rec.run(app, index, "generate names",
                                      widgets=[text(prefix.id, "Ma" if index % 2 else ""), trigger(submit.id)])
                if names:
                    rec.require(names.find("selectbox", "gen_pick"), index, "the generated names")
            if trains:
                await watch_training(app, index, rec, watch_s)
            for page in BROWSED_PAGES:
                await rec.run(app, index, page, page=page)
            await rec.run(app, index, "home", page="")
    except Exception as err:  # the connection itself failed
        rec.errors.append(f"s{index}: {type(err).__name__}: {str(err)[:120]}")


def quantiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50_s": None, "p95_s": None, "max_s": None}
    values = sorted(values)
    return {"n": len(values), "p50_s": statistics.median(values), "p95_s": values[int(0.95 * (len(values) - 1))],
            "max_s": values[-1]}


def secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def amount(value: float | None, spec: str, unit: str) -> str:
    """`value` formatted with `spec` and its unit; "-" for what a remote deployment does not show."""
    return "-" if value is None else f"{value:{spec}} {unit}"


async def drive(url: str, sessions: int, trainers: int, timeout_s: float, ramp_s: float, watch_s: float,
                server_pid: int | None, settle_s: float = 0.0) -> dict:
    """Run the class, then check that every process goes quiet; the figures as a dict (see markdown()).
    `server_pid` None: a deployment this machine cannot look into, so only the sessions' figures."""
    rec = Recorder()
    rss: list[float] = []  # the server process
    tree_rss: list[float] = []  # with the fork server and the training processes

    async def sample_rss():
        while True:
            rss.append(rss_mb(server_pid))
            tree_rss.append(sum(rss_mb(p) for p in process_tree(server_pid)))
            await asyncio.sleep(0.5)

    async with StreamlitClient(url, 120) as warm:  # the first run imports torch, loads models: no user waits for it
        await warm.run(page="")
    await asyncio.sleep(settle_s)  # the server's head start: a class arrives some time after it started
    local = server_pid is not None
    sampler = asyncio.create_task(sample_rss()) if local else None
    cpu_start, started = cpu_seconds(server_pid) if local else None, time.perf_counter()
    await asyncio.gather(*(session(url, i, i < trainers, rec, timeout_s, ramp_s, watch_s) for i in range(sessions)))
    wall = time.perf_counter() - started
    cpu_busy = cpu_seconds(server_pid) - cpu_start if local else None
    cpu_after_close = None
    if local:
        sampler.cancel()
        # Every session has closed: their training runs must stop with them, so every process goes quiet.
        await asyncio.sleep(2.0)
        cpu_after_close = await tree_cpu_seconds_over(server_pid, IDLE_WINDOW_S)
    page_runs = [s for step, values in rec.latencies.items() if step != "live-run poll" for s in values]
    return {
        "sessions": sessions, "trainers": trainers, "ramp_s": ramp_s, "watch_s": watch_s,
        "page_runs": quantiles(page_runs),
        "polls": quantiles(rec.latencies.get("live-run poll", [])),
        "steps": {step: quantiles(values) for step, values in rec.latencies.items()},
        "errors": len(rec.errors), "error_samples": rec.errors[:10], "trainer_progress": rec.progress,
        "sessions_per_replica": dict(sorted(rec.replicas.items())),
        "wall_s": wall, "server_cpu_s": cpu_busy, "cpu_s_after_close": cpu_after_close,
        "server_rss_mb_start": rss[0] if rss else None, "server_rss_mb_max": max(rss) if rss else None,
        "all_processes_rss_mb_max": max(tree_rss) if tree_rss else None,
    }


def markdown(result: dict, command: str) -> str:
    pages, polls = result["page_runs"], result["polls"]
    rows = [f"| {step} | {q['n']} | {secs(q['p50_s'])} | {secs(q['p95_s'])} | {secs(q['max_s'])} |"
            for step, q in result["steps"].items()]
    cap = f"`DSMINI_MAX_JOBS={result['max_jobs']}` here" if result["max_jobs"] else "as the deployment sets it"
    return "\n".join([
        SECTION_START,
        "## Classroom load test",
        "",
        f"`{command}`: {result['sessions']} simultaneous sessions against "
        + (f"the deployment at {result['url']}" if result.get("url") else
           "one `streamlit run` server on 127.0.0.1 (this 2-core CPU)")
        + f", starting {result['ramp_s']} s apart. Each session is a websocket client "
        "speaking the browser's protocol (`tests/st_client.py`, no rendering, so the times are the server's): "
        f"it opens the app, generates names from a prefix and visits {', '.join(BROWSED_PAGES)} and home. "
        f"{result['trainers']} of them first start the default live training run and watch it for "
        f"{result['watch_s']:.0f} s (the live chart reruns every second), then browse while it trains; the "
        f"global cap ({cap}) queues the other runs. A page run is one "
        "script run, from the request to the server's `script_finished`.",
        "",
        "| page runs | errors | p50 page run | p95 page run | max | live-chart polls p50 / p95 | wall time | "
        "server CPU | server RSS start → max | with training processes, max | "
        "CPU of all of them in the 5 s after the last session closed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {pages['n']} | {result['errors']} | {secs(pages['p50_s'])} | {secs(pages['p95_s'])} | "
        f"{secs(pages['max_s'])} | {secs(polls['p50_s'])} / {secs(polls['p95_s'])} ({polls['n']}) | "
        f"{result['wall_s']:.1f} s | {amount(result['server_cpu_s'], '.0f', 's')} | "
        f"{amount(result['server_rss_mb_start'], '.0f', 'MB')} → {amount(result['server_rss_mb_max'], '.0f', 'MB')} | "
        f"{amount(result['all_processes_rss_mb_max'], '.0f', 'MB')} | "
        f"{amount(result['cpu_s_after_close'], '.2f', 's')} |",
        "",
        "| step | runs | p50 | p95 | max |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Trainers' runs when they stopped watching: " + "; ".join(result["trainer_progress"]) + ".",
        *(["Sessions per replica (behind `python -m dsmini serve`): "
           + ", ".join(f"{replica}: {n}" for replica, n in result["sessions_per_replica"].items()) + "."]
          if result["sessions_per_replica"] else []),
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
    parser.add_argument("--sessions", type=int, default=30, help="simultaneous sessions (max 100)")
    parser.add_argument("--trainers", type=int, default=5, help="sessions that also start a training run")
    parser.add_argument("--watch", type=float, default=30.0, help="seconds a trainer watches its live run")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one script run may take")
    parser.add_argument("--ramp", type=float, default=0.2, help="seconds between session starts")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between the first visit and the class (the pages' warm-up's head start)")
    parser.add_argument("--max-jobs", type=int, default=1, help="DSMINI_MAX_JOBS for the server it starts")
    parser.add_argument("--url", help="a running deployment (http://host:port, e.g. a proxy in front of several "
                                      "app processes) instead of a server started here")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--benchmarks", type=Path, help="update this BENCHMARKS.md's load-test section")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 100 or not 0 <= args.trainers <= args.sessions or not 0 < args.watch <= 600 \
            or not 0 <= args.settle <= 600:
        parser.error("need 1 <= sessions <= 100, 0 <= trainers <= sessions, 0 < watch <= 600 and 0 <= settle <= 600")
    if args.url is not None and not re.fullmatch(r"https?://[^/\s]+/?", args.url):
        parser.error(f"--url must be http://host:port or https://host:port, got {args.url!r}")
    if args.url:
        result = asyncio.run(drive(args.url.rstrip("/"), args.sessions, args.trainers, args.timeout, args.ramp,
                                   args.watch, server_pid=None, settle_s=args.settle))
    else:
        port = free_port()
        server = start_server(port, args.max_jobs)
        try:
            result = asyncio.run(drive(f"http://127.0.0.1:{port}", args.sessions, args.trainers, args.timeout,
                                       args.ramp, args.watch, server.pid, args.settle))
        finally:
            server.terminate()
            server.wait(timeout=30)
    result["url"], result["max_jobs"] = args.url, None if args.url else args.max_jobs
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.benchmarks:
        command = "python -m tests.loadtest " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.benchmarks, markdown(result, command))
    return result


if __name__ == "__main__":
    main()
