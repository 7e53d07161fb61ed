"""Nothing crashes, nothing is lost: `python -m dsmini` against adversarial input, table-driven.

Each entry of CASES is one command line run in its own process, in a fresh copy of a workspace
(a tiny corpus, a trained checkpoint, a half-trained one, broken ones), with what it must answer:
its exit status and a fragment of its message; and what must not happen: a traceback, a file
written or changed outside the paths it may write, gigabytes allocated, or minutes spent saying no.

The processes are forked from one server that imported dsmini once: `python -m dsmini` spends
2-5 s importing torch before it reads its arguments, and the table holds dozens of cases. A forked
child runs the module's own entry point (`dsmini.cli.main.entry`) with its own file descriptors,
environment and working directory, and reports its real exit status. A few cases also run through
a real interpreter (`test_real_interpreter_agrees`), as do Ctrl-C and the closed pipe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import pytest
import torch

from dsmini.checkpoint import load_checkpoint
from dsmini.cli.main import main
from dsmini.config import PRESETS, ModelConfig, TrainConfig, preset
from dsmini.data import CharTokenizer, prepare_corpus, split_names
from dsmini.data.corpora import MAX_LINE_LEN, MAX_NAME_LEN, load_corpus, normalise_names
from dsmini.decoding import generate
from dsmini.model import DSMini
from dsmini.model.limits import (
    LIMITS,
    ResourceLimitError,
    check_sampling,
    check_training,
    count_params,
    estimate_training,
)
from dsmini.training import Trainer
from tests.helpers import ROOT

NAMES = ["Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Зоя", "Иван", "Кира", "Лев", "Мира"]
# the same number of distinct letters (25) as NAMES, other letters: a tokenizer with the same size
OTHER_ALPHABET = [name.translate(str.maketrans("АБВГДЕЖЗИКЛМ", "НОПРСТУФХЦЧШ")) for name in NAMES]
TINY = "--preset tiny --batch-size 4 --eval-every 2 --eval-batches 1 --sample-every 0 --threads 1"
TRAIN = f"train --corpus names.txt {TINY} --steps 2 --out ck"
RESUME = "train --corpus names.txt --out ck --name toy --resume"  # agrees with ck/toy in everything
SAMPLE = "sample --checkpoint ck/toy"
CASE_TIMEOUT = 60  # seconds before a case's process is killed (SIGALRM)
REFUSAL_SECONDS = 5.0  # a refusal checks configs, it builds nothing (n_layers 10,000 once took 76 s)
MAX_RSS_MB = 2_000  # the server with torch imported is ~400 MB; the bugs this guards against took many GB


def at_step(path: str, step: int) -> Callable[[Path], None]:
    """A `then` check: the checkpoint at `path` is at `step`."""
    def check(ws: Path) -> None:
        assert load_checkpoint(ws / path).step == step
    return check


def small_block(ws: Path) -> None:
    """The 100,000-character line was dropped, so block_size follows the real names."""
    assert load_checkpoint(ws / "ck" / "long").model_config.block_size == max(map(len, NAMES)) + 1


class Case(NamedTuple):
    id: str
    argv: str  # shlex-split; paths are relative to the workspace
    code: int  # expected exit status
    message: str  # must appear in stderr (and, for runs that save, in stdout + stderr)
    writes: tuple[str, ...] = ()  # the only workspace paths that may change; each must change
    env: dict[str, str] = {}
    stdout_closed: bool = False  # stdout is a pipe nobody reads (`| head` after it exited)
    then: Callable[[Path], None] | None = None  # a further check of the workspace afterwards


CASES = [
    # 1. resource bounds: refused before anything is allocated, naming the limit and its variable
    Case("d-model-huge", f"{TRAIN} --name new --d-model 1000000", 2,
         "over the limit of 20,000,000; set DSMINI_MAX_PARAMS"),
    Case("block-size-huge", f"{TRAIN} --name new --block-size 1000000000", 2,
         "over the limit of 256; set DSMINI_MAX_BLOCK_SIZE"),
    Case("layers-huge", f"{TRAIN} --name new --n-layers 10000", 2, "over the limit of 64; set DSMINI_MAX_LAYERS"),
    Case("experts-huge", f"{TRAIN} --name new --n-routed-experts 100000", 2, "set DSMINI_MAX_EXPERTS"),
    Case("batch-huge", f"{TRAIN} --name new --batch-size 100000000", 2, "estimated peak memory of this run is"),
    Case("n-samples-huge", f"{TRAIN} --name new --n-samples 100000", 2, "set DSMINI_MAX_SAMPLES"),
    Case("sample-n-huge", f"{SAMPLE} -n 10000000", 2,
         "-n is 10,000,000 names, over the limit of 10,000; set DSMINI_MAX_SAMPLES"),
    Case("params-limit-env", f"{TRAIN} --name new", 2, "over the limit of 1,000; set DSMINI_MAX_PARAMS",
         env={"DSMINI_MAX_PARAMS": "1000"}),
    Case("limit-env-garbage", f"{TRAIN} --name new", 2, "DSMINI_MAX_MEMORY_MB='lots': must be a whole number >= 1",
         env={"DSMINI_MAX_MEMORY_MB": "lots"}),
    Case("limit-raised-by-env", f"{TRAIN} --name big --block-size 300", 0, "completed; 2 steps", writes=("ck/big",),
         env={"DSMINI_MAX_BLOCK_SIZE": "512"}),
    Case("samples-raised-by-env", f"{SAMPLE} -n 10001 --seed 1", 0, "", env={"DSMINI_MAX_SAMPLES": "10001"}),
    Case("long-line-dropped", f"train --corpus long.txt {TINY} --steps 2 --out ck --name long", 0,
         "dropped 1 (1 too long)", writes=("ck/long",), then=small_block),
    Case("long-line-forced-block", f"train --corpus long.txt {TINY} --steps 2 --out ck --name long --block-size 100001",
         2, "DSMINI_MAX_BLOCK_SIZE"),
    Case("sample-max-len-huge", f"{SAMPLE} -n 2 --max-len 1000000000 --seed 1", 0, ""),
    # 1. every value finite and in range, naming the field
    Case("grad-clip-inf", f"{TRAIN} --name new --grad-clip inf", 2,
         "TrainConfig.grad_clip: must be a finite number, got inf"),
    Case("rope-theta-inf", f"{TRAIN} --name new --rope-theta inf", 2,
         "ModelConfig.rope_theta: must be a finite number"),
    Case("aux-loss-inf", f"{TRAIN} --name new --aux-loss-coef inf", 2,
         "ModelConfig.aux_loss_coef: must be a finite number"),
    Case("capacity-inf", f"{TRAIN} --name new --capacity-factor inf", 2,
         "ModelConfig.capacity_factor: must be a finite number"),
    Case("dropout-nan", f"{TRAIN} --name new --dropout nan", 2,
         "ModelConfig.dropout: must be a finite number, got nan"),
    Case("lr-nan", f"{TRAIN} --name new --lr nan", 2, "TrainConfig.lr: must be a finite number"),
    Case("lr-huge", f"{TRAIN} --name new --lr 1e38", 2, "TrainConfig.lr: must be <= 1.0"),
    Case("decay-flips-weights", f"{TRAIN} --name new --lr 0.5 --weight-decay 3", 2, "lr * weight_decay must be < 1"),
    Case("betas-out-of-range", f"{TRAIN} --name new --betas 0.9 1.5", 2,
         "TrainConfig.betas: must be two numbers in [0, 1)"),
    Case("seed-negative", f"{TRAIN} --name new --seed -1", 2, "TrainConfig.seed: must be in [0, 2^63)"),
    Case("block-size-zero", f"{TRAIN} --name new --block-size 0", 2, "ModelConfig.block_size: must be >= 1"),
    Case("n-samples-zero", f"{TRAIN} --name new --n-samples 0", 2, "TrainConfig.n_samples: must be >= 1"),
    # 2. everything a run needs, checked before step 1
    Case("name-escapes", f"{TRAIN} --name ../escape", 2, "checkpoint name '../escape' is not allowed"),
    Case("name-empty", f"{TRAIN} --name ''", 2, "it is empty"),
    Case("name-hidden", f"{TRAIN} --name .hidden", 2, "it starts with '.'"),
    Case("out-under-a-file", f"train --corpus names.txt {TINY} --steps 2 --out afile/ck --name new", 2,
         "afile is not a folder"),
    Case("out-not-writable", f"train --corpus names.txt {TINY} --steps 2 --out /proc/dsmini-ck --name new", 2,
         "is not writable"),
    Case("device-unknown", f"{TRAIN} --name new --device tpu", 2, "unknown device 'tpu'"),
    Case("threads-negative", f"{TRAIN} --name new --threads -1", 2, "--threads must be between 1 and"),
    Case("threads-zero", f"{TRAIN} --name new --threads 0", 2, "--threads must be between 1 and"),
    Case("threads-not-a-number", f"{TRAIN} --name new --threads abc", 2,
         "argument --threads: invalid int value: 'abc'"),
    Case("corpus-missing", f"train --corpus missing.txt {TINY} --out ck", 2, "no such file: missing.txt"),
    Case("corpus-binary", f"train --corpus binary.txt {TINY} --out ck", 2, "file looks binary"),
    # 3. nothing replaced that the user did not name for it; resume is explicit and safe
    Case("existing-name", f"{TRAIN} --name toy", 2, "ck/toy already exists: give --resume to continue it, --overwrite"),
    Case("overwrite", f"{TRAIN} --name toy --overwrite", 0, "completed; 2 steps",
         writes=("ck/toy",), then=at_step("ck/toy", 2)),
    Case("overwrite-not-a-checkpoint", f"{TRAIN} --name notes --overwrite", 2,
         "ck/notes exists and is not a dsmini checkpoint"),
    Case("overwrite-shipped", f"{TRAIN} --name shipped --overwrite", 2, "ships with dsmini and is read-only"),
    Case("resume-and-overwrite", f"{RESUME} --overwrite --steps 6", 2, "give one"),
    Case("resume-finished-without-steps", RESUME, 2, "nothing to do: it has finished the checkpoint's 4 steps"),
    Case("resume-steps-not-more", f"{RESUME} --steps 3", 2, "--steps 3 is not more than the checkpoint's 4 steps"),
    Case("resume-to-total", f"{RESUME} --steps 6", 0, "completed; 6 steps (2 in",
         writes=("ck/toy",), then=at_step("ck/toy", 6)),
    Case("resume-reporting-flags", f"{RESUME} --steps 6 --eval-every 3 --preset tiny --batch-size 4", 0,
         "completed; 6 steps", writes=("ck/toy",)),
    Case("resume-stopped-run", "train --corpus names.txt --out ck --name half --resume", 0, "resuming at step 2 of 4",
         writes=("ck/half",), then=at_step("ck/half", 4)),
    Case("resume-conflicting-lr", f"{RESUME} --steps 6 --lr 0.01", 2, "--lr: 0.003 (checkpoint) vs 0.01 (given)"),
    Case("resume-conflicts-listed", f"{RESUME} --steps 6 --d-model 64 --batch-size 8", 2,
         "--d-model: 32 (checkpoint) vs 64 (given); --batch-size: 4 (checkpoint) vs 8 (given)"),
    Case("resume-other-preset", f"{RESUME} --steps 6 --preset small", 2, "--preset small: d_model 32 vs 64"),
    Case("resume-split-seed", f"{RESUME} --steps 6 --split-seed 7", 2, "--split-seed: 42 (checkpoint) vs 7 (given)"),
    Case("resume-same-size-other-alphabet", "train --corpus other/names.txt --out ck --name toy --resume --steps 6", 2,
         "alphabet: the checkpoint's has 25 characters, this corpus's 25; only in the checkpoint's: АБВГДЕЖЗИКЛМ"),
    Case("resume-same-name-more-names", "train --corpus grown/names.txt --out ck --name toy --resume --steps 6", 2,
         "train/val names: (10, 1) (checkpoint) vs (11, 1) (given)"),
    Case("resume-same-name-other-split", "train --corpus changed/names.txt --out ck --name toy --resume --steps 6", 2,
         "validation names: not the checkpoint's"),
    Case("resume-renamed-corpus", "train --corpus renamed.txt --out ck --name toy --resume --steps 6", 2,
         "--corpus: 'names.txt' (checkpoint) vs 'renamed.txt' (given)"),
    Case("resume-lowercase", f"{RESUME} --steps 6 --lowercase", 2,
         "alphabet: the checkpoint's has 25 characters, this corpus's 18"),
    Case("resume-missing", "train --corpus names.txt --out ck --name nothing --resume --steps 6", 2,
         "no checkpoint at ck/nothing"),
    Case("resume-weights-only", "train --corpus names.txt --out ck --name weights-only --resume --steps 6", 2,
         "saved without optimizer state"),
    Case("resume-shipped", "train --corpus names.txt --out ck --name shipped --resume --steps 6", 2,
         "ships with dsmini and is read-only"),
    # 4. one line, never a traceback; sampling arguments; a closed pipe
    Case("top-p-underflows", f"{SAMPLE} --top-p 1e-300", 2, "top_p must be at least 1e-06"),
    Case("top-p-zero", f"{SAMPLE} --top-p 0", 2, "top_p must be in (0, 1]"),
    Case("top-p-above-one", f"{SAMPLE} --top-p 1.5", 2, "top_p must be in (0, 1]"),
    Case("temperature-underflows", f"{SAMPLE} --temperature 1e-300", 2,
         "temperature must be 0 (greedy) or at least 0.001"),
    Case("temperature-inf", f"{SAMPLE} --temperature inf", 2, "temperature must be a finite number"),
    Case("sample-n-zero", f"{SAMPLE} -n 0", 2, "n must be an integer >= 1"),
    Case("seed-overflows", f"{SAMPLE} --seed {2**70}", 2, "seed must be an integer in [-2^63, 2^64)"),
    Case("prefix-unknown-letters", f"{SAMPLE} --prefix Zq", 2, "characters not in this model's alphabet: 'Z', 'q'"),
    Case("checkpoint-missing", "sample --checkpoint ck/nothing", 2, "no checkpoint at ck/nothing"),
    Case("checkpoint-corrupt", "info --checkpoint ck/corrupt", 2, "truncated or corrupt"),
    Case("info-closed-pipe", "info --checkpoint ck/toy", 141, "", stdout_closed=True),
    Case("sample-closed-pipe", f"{SAMPLE} -n 2000", 141, "", stdout_closed=True),
    # 5. the adversary's findings: a message naming the real problem
    Case("corpus-a-directory", f"train --corpus other {TINY} --out ck", 2, "other is a directory, not a regular file"),
    Case("corpus-dev-null", f"train --corpus /dev/null {TINY} --out ck", 2,
         "/dev/null is a character device, not a regular file"),
    Case("eval-names-a-directory", "eval --checkpoint ck/toy --names other", 2,
         "other is a directory, not a regular file"),
    Case("line-numbers-as-editors-count", f"{TRAIN} --name new --val-file u2028.txt", 2,
         "u2028.txt line 1: 'Анна Борис' has ' '"),
    Case("test-frac-cuts-no-name", f"{TRAIN} --name new --test-frac 0.0001", 2,
         "--test-frac 0.0001 of 12 names cuts 0 test names: give at least 0.12 (one name), or 0"),
    Case("prefix-10000-characters", f"{SAMPLE} --prefix {'Ан' * 5000}", 2,
         "'... has 10,000 characters; names here have at most"),
    Case("eval-threads-zero", "eval --checkpoint ck/toy --names names.txt --threads 0", 2,
         "--threads must be between 1 and"),
    Case("sample-threads-zero", f"{SAMPLE} --threads 0", 2, "--threads must be between 1 and"),
    Case("info-threads-zero", "info --checkpoint ck/toy --threads 0", 2, "--threads must be between 1 and"),
    Case("save-every-negative", f"{TRAIN} --name new --save-every -1", 2, "--save-every is seconds between saves"),
    Case("serve-address-injects-a-directive",
         "serve --address '127.0.0.1:80; include /etc/passwd; #' --print-config", 2,
         "--address must be a host name or an IP address"),
    Case("serve-address-with-a-newline", "serve --address '127.0.0.1\n}' --print-config", 2,
         "--address must be a host name or an IP address"),
    Case("serve-upstream-injects-a-directive", "serve --upstream 'a:80;include x' --print-config", 2,
         "--upstream must be host:port"),
    Case("serve-replicas-unbounded", "serve --replicas 100000 --print-config", 2, "--replicas must be 1 to 64"),
    Case("serve-address-does-not-resolve", "serve --address no-such-host.invalid --port 8599", 2,
         "the name 'no-such-host.invalid' does not resolve"),
    Case("no-command", "", 2, "the following arguments are required: command"),
    Case("unknown-flag", "corpora --colour", 2, "unrecognized arguments: --colour"),
]


# ---------------------------------------------------------------------------------------------
# The workspace every case starts from

def _train_half() -> None:
    """A run of 4 steps that stopped after 2 (as Ctrl-C leaves it), built with the CLI's settings."""
    corpus = load_corpus("names.txt", max_len=MAX_NAME_LEN)
    data = prepare_corpus(corpus.names, max(map(len, corpus.names)) + 1, 42, corpus_name=corpus.name)
    model_cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    trainer = Trainer(model_cfg, TrainConfig(steps=4, batch_size=4, eval_every=2, eval_batches=1, sample_every=0), data)
    run = trainer.run()
    next(run), next(run)
    trainer.save("ck", "half")


def _changed_val_name() -> list[str]:
    """NAMES with the one validation name of the toy split (seed 42) replaced by a name of the same
    letters: same file name, alphabet and sizes, another split."""
    val = split_names(NAMES, 42).val[0]
    return [name + name[-1] if name == val else name for name in NAMES]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("robust-template")
    corpora = {
        "names.txt": NAMES, "renamed.txt": NAMES, "other/names.txt": OTHER_ALPHABET,
        "grown/names.txt": NAMES + ["Ванна"], "changed/names.txt": _changed_val_name(),
        "long.txt": NAMES[:6] + ["а" * 100_000] + NAMES[6:],
        # U+2028 breaks a line for str.splitlines, not for an editor: the editor's line 1 holds it (and a
        # line 2 and 3 do not exist)
        "u2028.txt": ["Анна\u2028Борис"],
    }
    for path, names in corpora.items():
        (ws / path).parent.mkdir(exist_ok=True)
        (ws / path).write_text("\n".join(names), encoding="utf-8")
    (ws / "binary.txt").write_bytes(b"\x00\x01binary")
    (ws / "afile").write_text("a file, not a folder")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ws)
        assert main(shlex.split(f"train --corpus names.txt {TINY} --steps 4 --out ck --name toy")) == 0
        assert main(shlex.split(
            f"train --corpus names.txt {TINY} --steps 2 --out ck --name weights-only --no-optimizer-state")) == 0
        _train_half()
    shipped = ws / "ck" / "shipped"
    shutil.copytree(ws / "ck" / "toy", shipped)
    meta = json.loads((shipped / "checkpoint.json").read_text(encoding="utf-8"))
    (shipped / "checkpoint.json").write_text(json.dumps({**meta, "shipped": True}), encoding="utf-8")
    shutil.copytree(ws / "ck" / "toy", ws / "ck" / "corrupt")
    model_file = ws / "ck" / "corrupt" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:100])
    (ws / "ck" / "notes").mkdir()
    (ws / "ck" / "notes" / "todo.txt").write_text("not a checkpoint")
    return ws


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones too) -> sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# The fork server: one process imports dsmini, every case is a child forked from it

SERVER = r"""
import json, os, signal, sys, time, traceback
import torch
torch.set_num_threads(1)
import dsmini.cli.main as cli

def child(req):
    os.chdir(req["cwd"])
    os.environ.update(req["env"])
    signal.alarm(req["timeout"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    if req["stdout_closed"]:
        read_end, write_end = os.pipe()
        os.close(read_end)
        os.dup2(write_end, 1)
    else:
        os.dup2(os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
    os.dup2(os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    sys.argv = ["python -m dsmini", *req["argv"]]
    try:
        code = cli.entry()
    except SystemExit as stop:  # argparse exits through here, always with a number
        code = stop.code
    except BaseException:
        traceback.print_exc()  # what the interpreter would print
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        print("Exception ignored on flushing sys.stdout: BrokenPipeError", file=sys.stderr)  # as the interpreter does
        code = 120
    sys.stderr.flush()
    os._exit(code)

for line in sys.stdin:
    req = json.loads(line)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        child(req)
    _, status, usage = os.wait4(pid, 0)
    reply = {"code": os.waitstatus_to_exitcode(status), "seconds": time.perf_counter() - start,
             "rss_mb": usage.ru_maxrss / 1024}
    print(json.dumps(reply), flush=True)
"""


def clean_env() -> dict[str, str]:
    """The environment of the cases: no limit overridden, no debug tracebacks, dsmini importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSMINI_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def server():
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=clean_env(), cwd=ROOT,
    )
    yield proc
    proc.stdin.close()
    proc.wait(timeout=30)


class Outcome(NamedTuple):
    code: int
    stdout: str
    stderr: str
    seconds: float
    rss_mb: float


def run_forked(server, ws: Path, case: Case) -> Outcome:
    request = {
        "argv": shlex.split(case.argv), "cwd": str(ws), "env": case.env, "timeout": CASE_TIMEOUT,
        "stdout_closed": case.stdout_closed, "stdout": str(ws.parent / "stdout"), "stderr": str(ws.parent / "stderr"),
    }
    server.stdin.write(json.dumps(request) + "\n")
    server.stdin.flush()
    reply = json.loads(server.stdout.readline())
    stdout = "" if case.stdout_closed else (ws.parent / "stdout").read_text(encoding="utf-8")
    return Outcome(reply["code"], stdout, (ws.parent / "stderr").read_text(encoding="utf-8"),
                   reply["seconds"], reply["rss_mb"])


@pytest.fixture
def workspace(template, tmp_path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(template, ws)
    return ws


def check_outcome(case: Case, out: Outcome, before: dict[str, str], after: dict[str, str]) -> None:
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    assert out.code == case.code, f"exit {out.code}, expected {case.code}; stderr: {out.stderr}"
    assert case.message in (out.stderr if case.code == 2 else out.stderr + out.stdout), out.stderr
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    stray = sorted(p for p in changed if not p.startswith(tuple(w + os.sep for w in case.writes)))
    assert not stray, f"changed outside {case.writes}: {stray}"
    for path in case.writes:
        assert any(p.startswith(path + os.sep) for p in changed), f"{path} was not written"
        assert not any(part.startswith(".") for p in changed for part in Path(p).parts), "a temporary file was left"
    if case.code == 2:
        assert len(out.stderr.strip().splitlines()) == 1, f"not one line: {out.stderr!r}"
        assert out.seconds < REFUSAL_SECONDS, f"took {out.seconds:.1f}s to say no"
    if case.code == 141:
        assert out.stderr == ""
    assert out.rss_mb < MAX_RSS_MB, f"peak memory {out.rss_mb:.0f} MB"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, server, workspace):
    before = snapshot(workspace)
    out = run_forked(server, workspace, case)
    check_outcome(case, out, before, snapshot(workspace))
    if case.then is not None:
        case.then(workspace)


def test_the_table_covers_every_bullet():
    assert len(CASES) >= 35 and len({c.id for c in CASES}) == len(CASES)
    assert {c.code for c in CASES} == {0, 2, 141}
    assert sum(c.code == 0 for c in CASES) >= 5 and sum(bool(c.writes) for c in CASES) >= 5


# ---------------------------------------------------------------------------------------------
# The real interpreter: the same answers, and what only a real process can show

def run_real(ws: Path, argv: str, stdout=subprocess.PIPE, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dsmini", *shlex.split(argv)], cwd=ws, stdout=stdout, stderr=subprocess.PIPE,
        text=True, env={**clean_env(), **(env or {})}, timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize("case_id", ["layers-huge", "existing-name", "top-p-underflows", "threads-not-a-number"])
def test_real_interpreter_agrees(case_id, workspace):
    case = next(c for c in CASES if c.id == case_id)
    before = snapshot(workspace)
    done = run_real(workspace, case.argv)
    check_outcome(case, Outcome(done.returncode, done.stdout, done.stderr, 0.0, 0.0), before, snapshot(workspace))


@pytest.mark.slow
def test_real_closed_pipe_ends_quietly(workspace):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = run_real(workspace, "sample --checkpoint ck/toy -n 3000", stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == ""


@pytest.mark.slow
def test_ctrl_c_finishes_the_step_and_saves_it(workspace):
    argv = f"train --corpus names.txt {TINY} --eval-every 1 --steps 1000000 --out ck --name interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dsmini", *shlex.split(argv)], cwd=workspace, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=clean_env(),
    )
    for line in proc.stderr:  # one line per evaluated step when stderr is not a terminal
        if " step " in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    assert "interrupted: finishing this step, then saving" in err and "stopped on request at step" in out
    ckpt = load_checkpoint(workspace / "ck" / "interrupted", load_optimizer=True)
    assert ckpt.step >= 1 and ckpt.optimizer_states is not None  # it can be resumed


# ---------------------------------------------------------------------------------------------
# A loss, a gradient or the weights that stop being finite, and errors mid-run (in process: the
# trainer is patched to misbehave at a chosen step)

def tiny_run(ws: Path, name: str, steps: int, extra: str = "") -> list[str]:
    return shlex.split(
        f"train --corpus {ws / 'names.txt'} {TINY} --steps {steps} --out {ws / 'ck'} --name {name} {extra}")


def at(step: int, real, bad):
    """A replacement method: `bad` when the trainer is about to do step `step`, else `real`."""
    def method(self, *args):
        return bad(self, *args) if self.step + 1 == step else real(self, *args)
    return method


def test_nan_gradient_saves_the_last_good_step(workspace, monkeypatch, capsys):
    monkeypatch.setattr(Trainer, "_clip_gradients", at(3, Trainer._clip_gradients, lambda self: math.nan))
    assert main(tiny_run(workspace, "nan-grad", 5)) == 1
    out = capsys.readouterr().out
    assert "gradient norm became nan at step 3; stopped, weights kept from step 2" in out and "saved" in out
    ckpt = load_checkpoint(workspace / "ck" / "nan-grad")
    assert ckpt.step == 2 and all(torch.isfinite(p).all() for p in ckpt.model.parameters())


def test_weights_that_are_not_finite_are_never_saved(workspace, monkeypatch, capsys):
    """What `--lr 1e38` did: an update leaves NaN in the weights, the next loss is NaN, and the
    checkpoint on disk (the one being resumed) must stay as it was."""
    real = Trainer._train_step

    def poisoning(self, start):
        metrics = real(self, start)
        with torch.no_grad():
            self.model.embed.weight.fill_(math.nan)
        return metrics

    monkeypatch.setattr(Trainer, "_train_step", at(5, real, poisoning))
    before = snapshot(workspace / "ck" / "toy")
    assert main(shlex.split(f"{RESUME} --steps 8 --out {workspace / 'ck'} --corpus {workspace / 'names.txt'}")) == 1
    err = capsys.readouterr().err
    assert "loss became nan at step 6" in err and "no longer finite (NaN/inf): nothing saved" in err
    assert snapshot(workspace / "ck" / "toy") == before


def test_an_error_mid_run_keeps_the_finished_steps(workspace, monkeypatch, capsys):
    def boom(self, start):
        raise RuntimeError("out of memory, say")

    monkeypatch.setattr(Trainer, "_train_step", at(3, Trainer._train_step, boom))
    assert main(tiny_run(workspace, "crashed", 5)) == 1
    out = capsys.readouterr().out
    assert "training failed at step 3: RuntimeError: out of memory, say" in out and "saved" in out
    assert load_checkpoint(workspace / "ck" / "crashed").step == 2


def test_a_failure_before_any_step_saves_nothing(workspace, monkeypatch, capsys):
    monkeypatch.setattr(Trainer, "_clip_gradients", lambda self: math.inf)
    before = snapshot(workspace)
    assert main(tiny_run(workspace, "never", 5)) == 1
    assert "no step finished, nothing saved" in capsys.readouterr().err
    assert snapshot(workspace) == before


def test_a_name_taken_during_the_run_saves_under_the_next_free_one(workspace, monkeypatch, capsys):
    """Another process took the name while this run trained: neither checkpoint is lost."""
    real = Trainer._train_step

    def take_the_name(self, start):
        shutil.copytree(workspace / "ck" / "toy", workspace / "ck" / "taken")
        return real(self, start)

    monkeypatch.setattr(Trainer, "_train_step", at(1, real, take_the_name))
    before = snapshot(workspace / "ck" / "toy")
    assert main(tiny_run(workspace, "taken", 2)) == 0
    assert "saving as 'taken-2' instead" in capsys.readouterr().err
    assert load_checkpoint(workspace / "ck" / "taken").step == 4
    assert load_checkpoint(workspace / "ck" / "taken-2").step == 2
    assert snapshot(workspace / "ck" / "toy") == before


def test_unexpected_errors_are_one_line_unless_debugging(workspace, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("dsmini.cli.main.load_checkpoint", broken)
    monkeypatch.delenv("DSMINI_DEBUG", raising=False)
    assert main(["info", "--checkpoint", str(workspace / "ck" / "toy")]) == 2
    assert capsys.readouterr().err == "error: unexpected KeyError: 'a bug'\n"
    monkeypatch.setenv("DSMINI_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["info", "--checkpoint", str(workspace / "ck" / "toy")])


# ---------------------------------------------------------------------------------------------
# The estimator and the limits

ESTIMATED = [
    ("tiny", {}), ("small", {}), ("medium", {}),
    ("small", {"attn_type": "mha"}), ("small", {"attn_type": "gqa"}), ("small", {"attn_type": "mqa", "head_dim": 8}),
    ("small", {"q_lora_rank": 24}), ("small", {"ffn_type": "dense", "mtp_depth": 0}),
    ("small", {"router": "noisy_topk", "mtp_depth": 2}), ("small", {"router": "softmax_topk", "n_shared_experts": 0}),
    ("small", {"n_dense_layers": 0, "n_layers": 3}), ("tiny", {"ffn_type": "dense", "mtp_depth": 3}),
]


@pytest.mark.parametrize("name, overrides", ESTIMATED)
def test_count_params_is_exact(name, overrides):
    cfg = preset(name, vocab_size=57, block_size=20, **overrides)
    counts = DSMini(cfg).param_counts()
    assert count_params(cfg) == {"main": counts["main"]["total"], "mtp": counts.get("mtp", {}).get("total", 0),
                                 "total": counts["all"]["total"]}


def test_estimates_are_instant_for_any_size():
    start = time.perf_counter()
    cfg = ModelConfig(n_layers=10**9, d_model=10**6, block_size=10**9)
    assert count_params(cfg)["total"] > 10**18
    assert estimate_training(cfg, batch_size=10**6, n_names=10**6).total > 10**20
    with pytest.raises(ResourceLimitError, match="DSMINI_MAX_BLOCK_SIZE"):
        check_training(cfg, TrainConfig(), 10)
    assert time.perf_counter() - start < 0.1


def test_memory_estimate_scales_with_batch_block_and_names():
    cfg = preset("small", vocab_size=60, block_size=24)
    base = estimate_training(cfg, 64, 1000)
    assert estimate_training(cfg, 128, 1000).activations == 2 * base.activations
    assert estimate_training(cfg, 64, 2000).data == 2 * base.data
    assert estimate_training(cfg, 64, 1000).weights == 5 * 4 * count_params(cfg)["total"]
    longer = estimate_training(dataclasses.replace(cfg, block_size=48), 64, 1000)
    assert longer.activations > 2 * base.activations  # attention scores grow with the square


def test_the_shipped_training_runs_fit_the_default_limits():
    """ru-names (200,478 names) on `small` with the default batch: what checkpoints/README.md trains."""
    for name in ("small", "medium"):
        check_training(preset(name, vocab_size=80, block_size=23), TrainConfig(), 200_478)


def test_limits_read_their_variables(monkeypatch):
    limit = LIMITS["params"]
    monkeypatch.delenv(limit.env, raising=False)
    assert limit.value == 20_000_000
    monkeypatch.setenv(limit.env, "50_000_000")
    assert limit.value == 50_000_000
    monkeypatch.setenv(limit.env, "1000")
    with pytest.raises(ResourceLimitError,
                       match="is 34,032 parameters, over the limit of 1,000; set DSMINI_MAX_PARAMS"):
        check_training(preset("tiny"), TrainConfig(), 100)
    for bad in ("0", "-5", "1e9", "many"):
        monkeypatch.setenv(limit.env, bad)
        with pytest.raises(ValueError, match=f"{limit.env}="):
            limit.value


def test_limit_messages_say_how_to_raise_them(monkeypatch):
    monkeypatch.setenv("DSMINI_MAX_MEMORY_MB", "10")
    with pytest.raises(ResourceLimitError,
                       match=r"over the limit of 10; set DSMINI_MAX_MEMORY_MB to raise it \(e\.g\. "):
        check_sampling(preset("medium", vocab_size=60, block_size=32), 5_000)
    with pytest.raises(ResourceLimitError, match="DSMINI_MAX_SAMPLES"):
        check_sampling(preset("tiny"), LIMITS["samples"].default + 1)


# ---------------------------------------------------------------------------------------------
# Config values, sampling arguments and corpus lines

FLOAT_FIELDS = [(cls, f.name) for cls in (ModelConfig, TrainConfig) for f in dataclasses.fields(cls)
                if f.type.startswith("float")]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("cls, field", FLOAT_FIELDS, ids=[f"{c.__name__}.{f}" for c, f in FLOAT_FIELDS])
def test_every_float_field_must_be_finite(cls, field, value):
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field}: "):
        cls(**{field: value})


@pytest.mark.parametrize("kwargs, message", [
    ({"d_model": 64.0}, "ModelConfig.d_model: must be a whole number"),
    ({"n_layers": True}, "ModelConfig.n_layers: must be a number"),
    ({"attn_type": 3}, "ModelConfig.attn_type: must be a string"),
    ({"capacity_factor": "1.5"}, "ModelConfig.capacity_factor: must be a number"),
])
def test_config_types_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_config_still_accepts_what_it_did():
    assert ModelConfig(rope_theta=10000, capacity_factor=None).rope_theta == 10000
    assert TrainConfig(betas=(0.0, 0.999), seed=2**63 - 1).betas == (0.0, 0.999)
    assert all(isinstance(cfg, ModelConfig) for cfg in PRESETS.values())


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 1e-300}, "at least 0.001"), ({"top_p": 1e-300}, "at least 1e-06"),
    ({"top_p": 0.0}, r"in \(0, 1\]"), ({"seed": 2**64}, r"seed must be an integer in \[-2\^63, 2\^64\)"),
])
def test_sampling_arguments_that_would_underflow_are_refused(kwargs, message):
    model = DSMini(preset("tiny", vocab_size=5, block_size=8))
    with pytest.raises(ValueError, match=message):
        generate(model, CharTokenizer(list("abcd")), n=2, **kwargs)


def test_greedy_in_disguise_is_still_accepted_at_the_edges():
    model = DSMini(preset("tiny", vocab_size=5, block_size=8))
    names = generate(model, CharTokenizer(list("abcd")), n=2, temperature=1e-3, top_p=1e-6, seed=0)
    assert len(names) == 2


def test_a_huge_line_is_dropped_before_it_is_normalised():
    names, dropped = normalise_names(["Анна", "а" * 100_000, " " * (MAX_LINE_LEN + 1) + "Вера"])
    assert names == ["Анна"] and dropped.too_long == 2
    names, dropped = normalise_names(["а" * MAX_LINE_LEN])  # at the limit: kept when max_len allows
    assert names == ["а" * MAX_LINE_LEN] and dropped.too_long == 0


def test_the_app_and_the_cli_cap_names_alike():
    from pages import _ui

    assert _ui.MAX_UPLOAD_NAME_LEN == MAX_NAME_LEN == 32
    assert LIMITS["block_size"].default > MAX_NAME_LEN + 1  # a capped name always fits
