"""`python -m dsmini serve`: the generated nginx config, the command's refusals, a real deployment of two
replicas behind nginx, and what the replicas share (the training cap, the checkpoint names), each
contended for by real processes.

The deployment tests need Debian's nginx: skipped with the reason locally when it is missing, a
failure in CI (`CI=true`), where `.ci/run` installs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from dsmini.checkpoint import CheckpointExistsError, copy_checkpoint
from dsmini.cli.main import main as cli
from dsmini.cli.serve import COOKIE, find_nginx, nginx_config
from dsmini.config import TrainConfig, preset
from dsmini.data import prepare_corpus
from dsmini.jobs import TrainingJob
from dsmini.jobs.slots import SLOTS, SLOTS_DIR_ENV, set_max_concurrent_jobs
from tests.helpers import ROOT, SHIPPED
from tests.loadtest import free_port
from tests.st_client import StreamlitClient

UPSTREAMS = ["127.0.0.1:9001", "10.0.0.5:8501", "[::1]:8502"]


@pytest.fixture
def nginx() -> str:
    try:
        return find_nginx(None)
    except ValueError as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (CI must run the serve tests: .ci/run installs nginx)")
        pytest.skip(f"needs Debian nginx: {missing}")


# the generated config ---------------------------------------------------------------------------


def test_config_is_sticky_by_cookie_proxies_websockets_and_lists_every_upstream():
    config = nginx_config(UPSTREAMS, 8080, "0.0.0.0")
    directives = "\n".join(line.split("#")[0] for line in config.splitlines())
    assert "ip_hash" not in directives  # a class behind one NAT address must spread
    assert f"map $cookie_{COOKIE} $dsmini_sticky" in config and '"" $request_id;' in config
    assert "hash $dsmini_sticky consistent;" in config
    assert f'"" "{COOKIE}=$request_id; Path=/; HttpOnly; SameSite=Lax";' in config  # set once, on the first visit
    assert "add_header Set-Cookie $dsmini_new_cookie always;" in config
    for header in ("proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $connection_upgrade;",
                   "proxy_http_version 1.1;", "proxy_read_timeout 1d;", "proxy_set_header Host $http_host;"):
        assert header in config
    assert re.findall(r"^\s*server (\S+) ", config, re.M) == UPSTREAMS
    assert "listen 0.0.0.0:8080;" in config and "daemon off;" in config
    # nothing outside nginx's prefix folder (`nginx -p DIR`): runs as any user, from any folder
    paths = re.findall(r"^\s*(?:pid|error_log|\w+_temp_path) (\S+?)[; ]", config, re.M)
    assert len(paths) == 7 and not [p for p in paths if p.startswith("/")]


@pytest.mark.serve
def test_nginx_accepts_the_config_as_the_current_user(nginx, tmp_path):
    (tmp_path / "nginx.conf").write_text(nginx_config(UPSTREAMS, free_port()))
    checked = subprocess.run([nginx, "-t", "-p", f"{tmp_path}/", "-c", "nginx.conf", "-e", "error.log"],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_print_config_prints_the_upstreams_and_starts_nothing(capsys):
    assert cli(["serve", "--upstream", "10.0.0.5:8501", "--upstream", "10.0.0.6:8501", "--port", "80",
                "--print-config"]) == 0
    out = capsys.readouterr().out
    assert out == nginx_config(["10.0.0.5:8501", "10.0.0.6:8501"], 80)


@pytest.mark.parametrize("argv, message", [
    (["--replicas", "0"], "--replicas must be 1 to 64 (about one per core), got 0"),
    (["--port", "70000"], "--port must be 1 to 65535, got 70000"),
    (["--nginx", "/nonexistent/nginx"], "install it: apt-get install nginx"),
])
def test_refusals_are_one_line(capsys, argv, message):
    assert cli(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.serve
def test_a_taken_port_is_refused_before_anything_starts(nginx, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli(["serve", "--replicas", "1", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "choose another with --port" in err


def test_a_bad_upstream_is_refused(capsys):
    with pytest.raises(SystemExit) as refused:
        cli(["serve", "--upstream", "no-port"])
    assert refused.value.code == 2 and "--upstream must be host:port" in capsys.readouterr().err


# a real deployment ------------------------------------------------------------------------------


def _get(url: str, cookie: str | None = None) -> tuple[bytes, dict]:
    request = urllib.request.Request(url, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read(), response.headers


def _set_cookies(headers) -> str:
    return "; ".join(headers.get_all("Set-Cookie") or ())


def _groups_alive(pgids: set[int]) -> list[int]:
    """Processes still in these process groups (Linux /proc)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


class Served:
    """`python -m dsmini serve` in a child, its output collected line by line."""

    def __init__(self, *argv: str):
        self.process = subprocess.Popen([sys.executable, "-m", "dsmini", "serve", *argv], cwd=ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(self.process.stdout.readline, "")), daemon=True).start()

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            assert self.process.poll() is None, "serve exited:\n" + "".join(self.lines)
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} from serve in {timeout} s:\n" + "".join(self.lines))


@pytest.mark.serve
def test_two_replicas_behind_nginx_sticky_sessions_and_a_clean_stop(nginx):
    port = free_port()
    served = Served("--replicas", "2", "--port", str(port))
    try:
        ready = served.wait_for(r"ready on (\S+): nginx \(pid (\d+)\) in front of (.*); runtime files in (\S+)")
        url, nginx_pid, runtime = ready.group(1), int(ready.group(2)), Path(ready.group(4))
        replicas = {f"127.0.0.1:{p}": int(pid) for p, pid in
                    re.findall(r"replica \d: http://127.0.0.1:(\d+) \(pid (\d+)\)", "".join(served.lines))}
        assert url == f"http://127.0.0.1:{port}" and set(ready.group(3).split(", ")) == set(replicas)

        body, headers = _get(f"{url}/_stcore/health")  # through the proxy, with no cookie yet: it is given one
        assert body == b"ok"
        cookie = re.search(rf"{COOKIE}=(\w+)", _set_cookies(headers)).group(1)
        first = headers["X-Dsmini-Replica"]
        assert {_get(f"{url}/_stcore/health", cookie)[1]["X-Dsmini-Replica"] for _ in range(4)} == {first}
        assert COOKIE not in _set_cookies(_get(f"{url}/", cookie)[1])  # kept, not replaced
        spread = {_get(f"{url}/_stcore/health", f"student{i}")[1]["X-Dsmini-Replica"] for i in range(16)}
        assert spread == set(replicas)  # different browsers land on different replicas

        async def one_session():
            async with StreamlitClient(url, 90) as app:
                home = await app.run(page="")
                return app, home

        app, home = asyncio.run(one_session())  # a whole session: page load, websocket, a script run
        assert home.problems == [] and home.find("plotly_chart") is not None
        assert app.replica == _get(f"{url}/_stcore/health", app.cookies[COOKIE])[1]["X-Dsmini-Replica"]

        dead = app.replica
        os.kill(replicas[dead], signal.SIGKILL)
        served.wait_for(rf"replica \d \({re.escape(dead)}\) stopped with exit status -9", timeout=10)
        after = _get(f"{url}/_stcore/health", app.cookies[COOKIE])  # its browsers move to the other replica
        assert after[0] == b"ok" and after[1]["X-Dsmini-Replica"] != dead

        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=30) == 0
        assert _groups_alive({nginx_pid, *replicas.values()}) == []  # nginx, replicas, their fork servers
        assert not runtime.exists()
    finally:
        if served.process.poll() is None:  # a failed assertion: stop it all the same way
            served.process.terminate()
            served.process.wait(timeout=30)


# what the replicas share ------------------------------------------------------------------------

HOLD_A_SLOT = """
import sys, threading
from dsmini.jobs.slots import SLOTS
held = SLOTS.acquire(object(), 1, threading.Event())
print("held", flush=True)
sys.stdin.readline()
SLOTS.release(held)
print("released", flush=True)
sys.stdin.readline()
"""


def _slot_holder(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_SLOT], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE,
                              env={**os.environ, SLOTS_DIR_ENV: str(folder), "DSMINI_MAX_JOBS": "1"})
    assert holder.stdout.readline() == "held\n"
    return holder


@pytest.fixture
def shared_slots(tmp_path, monkeypatch):
    monkeypatch.setenv(SLOTS_DIR_ENV, str(tmp_path / "slots"))
    set_max_concurrent_jobs(1)
    yield tmp_path / "slots"
    set_max_concurrent_jobs(None)


@pytest.mark.slow
def test_a_run_waits_while_another_process_holds_the_only_slot(shared_slots):
    data = prepare_corpus(["anna", "boris", "clara", "dmitri", "elena", "fedor"], block_size=8, seed=0,
                          corpus_name="toy")
    cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    job = TrainingJob(cfg, TrainConfig(steps=3, batch_size=4, eval_every=1000, eval_batches=1, sample_every=0), data)
    holder = _slot_holder(shared_slots)
    try:
        job.start()
        time.sleep(1.5)
        snap = job.snapshot()
        assert snap.state == "queued" and snap.queue_position == 1 and snap.step == 0
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "released\n"
        assert job.join(timeout=60) and job.snapshot().state == "completed"
    finally:
        holder.kill()
        holder.wait()
        job.release()


def test_a_killed_process_gives_its_slot_back(shared_slots):
    holder = _slot_holder(shared_slots)
    got = []
    waiter = threading.Thread(target=lambda: got.append(SLOTS.acquire(object(), 1, threading.Event())))
    waiter.start()
    waiter.join(1.0)
    assert waiter.is_alive()  # the other process holds it
    holder.kill()  # no release: the kernel drops the lock with the process
    holder.wait()
    waiter.join(10)
    assert not waiter.is_alive() and got and got[0].count == 1
    SLOTS.release(got[0])


SAVE_AT_GO = """
import json, os, sys, time
from dsmini.checkpoint import copy_checkpoint
from dsmini.checkpoint.errors import CheckpointExistsError
source, root, go = sys.argv[1:]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
try:
    copy_checkpoint(source, root, "my-run")
    print(json.dumps({"saved": source}))
except CheckpointExistsError as err:
    print(json.dumps({"taken": str(err), "free": err.free_name}))
"""


def test_two_processes_saving_one_name_at_once_the_second_is_told_it_is_taken(tmp_path):
    root, go = tmp_path / "checkpoints", tmp_path / "go"
    savers = [subprocess.Popen([sys.executable, "-c", SAVE_AT_GO, str(SHIPPED / name), str(root), str(go)],
                               cwd=ROOT, text=True, stdout=subprocess.PIPE) for name in ("en-names", "ru-names")]
    assert [saver.stdout.readline() for saver in savers] == ["ready\n"] * 2  # both imported, both polling
    go.touch()
    results = [json.loads(saver.communicate(timeout=60)[0]) for saver in savers]
    winners = [r["saved"] for r in results if "saved" in r]
    losers = [r for r in results if "taken" in r]
    assert len(winners) == 1 and len(losers) == 1
    assert "already exists" in losers[0]["taken"] and losers[0]["free"] == "my-run-2"
    saved = json.loads((root / "my-run" / "checkpoint.json").read_text())  # the winner's, complete
    assert saved["corpus"] == json.loads((Path(winners[0]) / "checkpoint.json").read_text())["corpus"]
    assert sorted(p.name for p in root.iterdir()) == ["my-run"]  # no half-written leftovers


def test_a_name_taken_where_the_folder_lock_does_not_reach_is_refused_not_replaced(tmp_path, monkeypatch):
    """Machines sharing the folder whose locks are local: another machine's save lands between this one's
    check and its rename; the rename refuses (a directory is only renamed onto an empty one)."""
    import shutil

    from dsmini.checkpoint import atomic

    root = tmp_path / "checkpoints"

    def other_machine_saves(step: str) -> None:
        if step == "filled":
            shutil.copytree(SHIPPED / "ru-names", root / "my-run")

    monkeypatch.setattr(atomic, "on_step", other_machine_saves)
    with pytest.raises(CheckpointExistsError) as taken:
        copy_checkpoint(SHIPPED / "en-names", root, "my-run")
    assert taken.value.free_name == "my-run-2"
    meta = json.loads((root / "my-run" / "checkpoint.json").read_text())
    assert meta["corpus"]["name"] == "ru-names"  # the other machine's save, untouched
    assert sorted(p.name for p in root.iterdir()) == ["my-run"]
