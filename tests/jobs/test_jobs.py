"""Background training jobs: complete histories, stop/resume, the concurrency cap, failures, saving."""

import dataclasses
import errno
import io
import multiprocessing
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest
import torch

from dsmini.checkpoint import CheckpointError, load_checkpoint
from dsmini.config import TrainConfig, preset
from dsmini.data import prepare_corpus
from dsmini.jobs import JobError, TrainingJob
from dsmini.jobs.slots import configure_torch_threads, max_concurrent_jobs, set_max_concurrent_jobs
from tests.helpers import wait_until

NAMES = [
    "anna", "boris", "clara", "dmitri", "elena", "fedor", "galina", "igor", "katya", "lev",
    "maria", "nikita", "olga", "pavel", "raisa", "sergei", "tamara", "vadim", "yulia", "zoya",
]
FOREVER = 1_000_000  # a step budget no test reaches: such jobs end only by stop()


@pytest.fixture(scope="module")
def data():
    return prepare_corpus(NAMES, block_size=8, seed=0, corpus_name="toy")


@pytest.fixture(autouse=True)
def default_cap():
    yield
    set_max_concurrent_jobs(None)


@pytest.fixture
def make_job(data):
    """Build jobs on the tiny preset; every job is released (stopped and joined) at teardown."""
    jobs = []

    def make(snapshot_every=0.0, corpus=None, **train_overrides):
        model_cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
        base = dict(steps=6, batch_size=8, lr=1e-2, warmup_steps=2, eval_every=1000, eval_batches=1, sample_every=0)
        job = TrainingJob(model_cfg, TrainConfig(**{**base, **train_overrides}), corpus or data,
                          snapshot_every=snapshot_every)
        jobs.append(job)
        return job

    yield make
    for job in jobs:
        assert job.release(timeout=30), "a job thread outlived its test"



def steps_of(snap):
    return [h["step"] for h in snap.history]


@pytest.mark.parametrize("snapshot_every", [0.0, 60.0])
def test_job_completes_and_no_metric_is_dropped(make_job, snapshot_every):
    job = make_job(snapshot_every, steps=12, eval_every=5, sample_every=6, n_samples=2)
    assert job.snapshot().state == "created"
    job.start()
    while job.join(timeout=0.002) is False:  # every snapshot mid-run is consistent
        snap = job.snapshot()
        assert steps_of(snap) == list(range(1, snap.step + 1))
        assert snap.state in ("queued", "running", "completed")  # it may end between the two calls
    snap = job.snapshot()
    assert snap.state == "completed" and snap.message == "completed"
    assert steps_of(snap) == list(range(1, 13)) and snap.step == snap.total_steps == 12
    assert snap.last == snap.history[-1] and snap.last["step"] == 12
    assert [s for s, _ in snap.val_losses] == [5, 10, 12]
    assert len(snap.samples) == 2
    assert snap.finished and not snap.active and snap.queue_position is None
    assert snap.elapsed > 0 and not snap.saved


def test_stop_then_resume_continues_the_same_run(make_job, tmp_path):
    job = make_job(steps=FOREVER)
    job.start()
    wait_until(lambda: job.snapshot().step >= 3)
    with pytest.raises(JobError, match="only a stopped or completed job"):
        job.resume(5)
    with pytest.raises(JobError, match="cannot save while the job is running"):
        job.save(tmp_path, "busy")
    job.stop()
    assert job.join(timeout=30)
    snap = job.snapshot()
    stopped_at = snap.step
    assert snap.state == "stopped" and 3 <= stopped_at < snap.total_steps
    assert snap.message == f"stopped on request at step {stopped_at}"
    assert load_checkpoint(job.save(tmp_path, "stopped")).step == stopped_at  # the weights at rest

    job.resume(5)
    assert job.join(timeout=30)
    snap = job.snapshot()
    assert snap.state == "completed"
    assert snap.step == snap.total_steps == stopped_at + 5
    assert steps_of(snap) == list(range(1, stopped_at + 6))
    assert load_checkpoint(job.save(tmp_path, "resumed")).step == stopped_at + 5


def test_a_stopped_and_resumed_run_follows_the_uninterrupted_curve(make_job):
    """Each run is a separate process resuming from the job's saved state: weights, optimizer and
    RNGs must all carry over, or the losses would differ after the stop."""
    whole = make_job(steps=12)
    whole.start()
    assert whole.join(timeout=60)
    split = make_job(steps=12)
    split.start()
    wait_until(lambda: split.snapshot().step >= 2)
    split.stop()
    assert split.join(timeout=60)
    stopped_at = split.snapshot().step
    assert stopped_at < 12, "the run ended before the stop: nothing was tested"
    split.resume(12 - stopped_at)  # the same budget: the same LR schedule
    assert split.join(timeout=60)
    losses = [[h["loss"] for h in job.snapshot().history] for job in (whole, split)]
    assert len(losses[0]) == len(losses[1]) == 12 and losses[0] == losses[1]


def test_resume_after_completion_warm_restarts(make_job):
    job = make_job(steps=4)
    job.start()
    job.join(timeout=30)
    job.resume(3)
    job.join(timeout=30)
    snap = job.snapshot()
    assert snap.state == "completed" and steps_of(snap) == list(range(1, 8))
    assert job.train_cfg.steps == 7


def test_cap_queues_jobs_first_come_first_served(make_job):
    set_max_concurrent_jobs(1)
    first, second, third = make_job(steps=FOREVER), make_job(steps=3), make_job(steps=3)
    first.start()
    wait_until(lambda: first.snapshot().state == "running")
    second.start()
    third.start()
    wait_until(lambda: third.snapshot().queue_position == 2)
    assert second.snapshot().queue_position == 1
    time.sleep(0.2)
    assert second.snapshot().state == "queued" and second.snapshot().step == 0

    third.stop()  # leaves the queue without ever training
    assert third.join(timeout=10)
    snap = third.snapshot()
    assert snap.state == "stopped" and "queued" in snap.message
    assert snap.step == 0 and snap.history == [] and snap.elapsed == 0

    first.stop()
    assert second.join(timeout=30)
    assert second.snapshot().state == "completed" and steps_of(second.snapshot()) == [1, 2, 3]
    assert first.snapshot().state == "stopped"


def test_snapshot_is_a_copy(make_job):
    job = make_job(steps=3, sample_every=3, n_samples=2)
    job.start()
    job.join(timeout=30)
    before, snap = job.snapshot(), job.snapshot()
    snap.history[0]["loss"] = -1.0
    snap.history.append({"step": 99})
    snap.last["step"] = 99
    snap.samples.append("mallory")
    snap.val_losses.clear()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.state = "running"
    assert job.snapshot() == before
    assert isinstance(before.history[0]["expert_load"], tuple)  # nested values are immutable


def test_exception_in_training_fails_with_message(make_job, data, tmp_path):
    # every training input is an id the embedding lacks, so torch raises in the first forward pass (the
    # fused AdamW no longer raises on an overflowing lr: that run now ends by the NaN guard, tested below)
    bad_ids = torch.full_like(data.train.x, data.tokenizer.vocab_size)
    job = make_job(steps=10, corpus=dataclasses.replace(data, train=dataclasses.replace(data.train, x=bad_ids)))
    job.start()
    assert job.join(timeout=30)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.message.startswith("IndexError: ") and "out of range" in snap.message
    assert snap.step == 0 and snap.history == []
    with pytest.raises(JobError):
        job.resume(1)
    assert load_checkpoint(job.save(tmp_path, "failed")).step == 0


def test_nan_fails_with_reason_and_stays_downloadable(make_job, tmp_path):
    job = make_job(steps=10, lr=1e30, warmup_steps=0, grad_clip=0)  # the first update blows the weights up
    job.start()
    assert job.join(timeout=30)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.step == 1 and steps_of(snap) == [1]
    assert "loss became nan at step 2" in snap.message and "weights kept from step 1" in snap.message
    zipfile.ZipFile(io.BytesIO(job.download_bytes("nan-run"))).extractall(tmp_path)
    assert load_checkpoint(tmp_path / "nan-run").step == 1


def test_a_killed_training_process_fails_the_job_and_keeps_the_weights(make_job, tmp_path):
    job = make_job(steps=FOREVER)
    job.start()
    wait_until(lambda: job.snapshot().step >= 2)
    (child,) = [p for p in multiprocessing.active_children() if p.name == "dsmini-train"]
    os.kill(child.pid, signal.SIGKILL)
    assert job.join(timeout=30)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.step >= 2  # the steps it did are still shown
    assert "ended unexpectedly (exit code -9)" in snap.message and "kept from step 0" in snap.message
    assert load_checkpoint(job.save(tmp_path, "before-the-crash")).step == 0


def test_save_validates_name_and_survives_a_read_only_folder(make_job, tmp_path, monkeypatch):
    job = make_job(steps=3)
    job.start()
    job.join(timeout=30)
    with pytest.raises(CheckpointError, match="not allowed"):
        job.save(tmp_path, "../escape")

    read_only = tmp_path / "read-only"
    mkdir = os.mkdir

    def refuse(path, *args, **kwargs):  # the save's first write: its hidden temp folder (dsmini.checkpoint.atomic)
        if Path(path).parent == read_only:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(CheckpointError, match="Read-only file system.*can be downloaded"):
        job.save(read_only, "run")
    assert job.snapshot().saved_path is None

    data = job.download_bytes("run")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {"run/checkpoint.json", "run/model.safetensors"} <= set(zf.namelist())
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path / "uploads")
    assert load_checkpoint(tmp_path / "uploads" / "run").step == 3

    path = job.save(tmp_path / "checkpoints", "run")
    snap = job.snapshot()
    assert path == tmp_path / "checkpoints" / "run" and snap.saved_path == path and snap.saved


def test_release_stops_a_running_job_and_joins_its_worker(make_job):
    unused = make_job(steps=FOREVER)
    assert unused.release() and unused.snapshot().state == "created"  # never started: nothing to stop
    with pytest.raises(JobError, match="released"):  # but released is the end: its folder is gone
        unused.start()
    job = make_job(steps=FOREVER)
    job.start()
    wait_until(lambda: job.snapshot().step >= 1)
    assert job.release(timeout=30)
    assert job.snapshot().state == "stopped" and job.join(timeout=0)


def test_max_concurrent_jobs_policy(monkeypatch):
    monkeypatch.delenv("DSMINI_MAX_JOBS", raising=False)
    assert max_concurrent_jobs() == max(1, (os.cpu_count() or 1) // 2)
    monkeypatch.setenv("DSMINI_MAX_JOBS", "3")
    assert max_concurrent_jobs() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("DSMINI_MAX_JOBS", bad)
        with pytest.raises(ValueError, match="DSMINI_MAX_JOBS must be a positive integer"):
            max_concurrent_jobs()
    with pytest.raises(ValueError):
        set_max_concurrent_jobs(0)
    with pytest.raises(ValueError):
        configure_torch_threads(0)
    configure_torch_threads(1)
    assert torch.get_num_threads() == 1
