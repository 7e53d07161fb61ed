"""`train` loses nothing: it saves every --save-every seconds (a killed run resumes from its last save),
a resume holds its checkpoint for the whole run, and a save never puts older weights over newer ones."""

import os
import signal
import subprocess
import sys
import time

import pytest

from dsmini.checkpoint import atomic, load_checkpoint
from dsmini.checkpoint.errors import CheckpointAheadError
from dsmini.cli.main import main
from tests.helpers import ROOT

NAMES = ["Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Зоя", "Иван", "Кира", "Лев", "Мира"]
TINY = ["--preset", "tiny", "--batch-size", "4", "--eval-every", "2", "--eval-batches", "1", "--sample-every", "0",
        "--threads", "1"]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    (tmp_path / "names.txt").write_text("\n".join(NAMES), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--corpus", "names.txt", *TINY, "--steps", "2", "--out", "ck", "--name", "toy"]) == 0
    return tmp_path


def test_a_resume_is_refused_while_another_run_holds_the_checkpoint(ws, capsys):
    with atomic.claimed(ws / "ck", "toy"):
        assert main(["train", "--corpus", "names.txt", "--out", "ck", "--name", "toy", "--resume", "--steps", "4"]) == 2
    assert "ck/toy is being trained by another run" in capsys.readouterr().err
    assert load_checkpoint(ws / "ck" / "toy").step == 2
    # released (and its file removed): the next resume runs
    assert main(["train", "--corpus", "names.txt", "--out", "ck", "--name", "toy", "--resume", "--steps", "4"]) == 0
    assert load_checkpoint(ws / "ck" / "toy").step == 4 and not list((ws / "ck").glob(".*"))


def test_a_save_never_replaces_a_later_step(ws):
    from dsmini.data import prepare_corpus
    from dsmini.training import Trainer

    ckpt = load_checkpoint(ws / "ck" / "toy")
    data = prepare_corpus(NAMES, ckpt.model_config.block_size, ckpt.train_config.split_seed)
    behind = Trainer(ckpt.model_config, ckpt.train_config, data)  # step 0: the checkpoint is at step 2
    with pytest.raises(CheckpointAheadError, match="is at step 2 now, past this run's 0"):
        behind.save(ws / "ck", "toy", overwrite=True, forward_only=True)
    assert load_checkpoint(ws / "ck" / "toy").step == 2
    behind.save(ws / "ck", "toy", overwrite=True)  # an explicit new run over it (--overwrite) still may
    assert load_checkpoint(ws / "ck" / "toy").step == 0


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_periodic_save(ws):
    run = subprocess.Popen(
        [sys.executable, "-m", "dsmini", "train", "--corpus", "names.txt", *TINY, "--steps", "1000000",
         "--eval-every", "1000", "--out", "ck", "--name", "long", "--save-every", "0.5"],
        cwd=ws, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    meta = ws / "ck" / "long" / "checkpoint.json"
    deadline = time.monotonic() + 60
    while not meta.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # a later save replaces the first
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    saved = load_checkpoint(ws / "ck" / "long", load_optimizer=True)
    assert saved.step > 0 and saved.optimizer_states is not None
    code = main(["train", "--corpus", "names.txt", "--out", "ck", "--name", "long", "--resume",
                 "--steps", str(saved.step + 2), "--save-every", "0"])
    assert code == 0 and load_checkpoint(ws / "ck" / "long").step == saved.step + 2


def test_save_every_must_not_be_negative(ws, capsys):
    assert main(["train", "--corpus", "names.txt", *TINY, "--steps", "2", "--out", "ck", "--name", "new",
                 "--save-every", "-1"]) == 2
    assert "--save-every is seconds between saves" in capsys.readouterr().err
