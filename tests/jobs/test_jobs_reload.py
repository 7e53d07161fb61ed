"""Runs outlive their sessions: the registry's grace period and reclaiming by id, periodic saves that a
killed run falls back to, and job folders deleted when a run is released."""

import multiprocessing
import os
import signal
import time

import pytest

from dsmini.checkpoint import load_checkpoint
from dsmini.config import TrainConfig, preset
from dsmini.data import prepare_corpus
from dsmini.jobs import JobError, TrainingJob
from dsmini.jobs.registry import GRACE_S, JobRegistry, run_grace_s
from dsmini.jobs.slots import set_max_concurrent_jobs
from tests.helpers import wait_until

NAMES = ["anna", "boris", "clara", "dmitri", "elena", "fedor", "galina", "igor", "katya", "lev", "maria", "olga"]
FOREVER = 1_000_000  # such jobs end only by stop()
AUTOSAVE_S = 0.3


@pytest.fixture(scope="module")
def data():
    return prepare_corpus(NAMES, block_size=8, seed=0, corpus_name="toy")


@pytest.fixture
def make_job(data):
    jobs = []

    def make(steps=FOREVER, autosave_every=AUTOSAVE_S):
        model_cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
        cfg = TrainConfig(steps=steps, batch_size=8, lr=1e-2, warmup_steps=2, eval_every=1000, eval_batches=1,
                          sample_every=0)
        job = TrainingJob(model_cfg, cfg, data, autosave_every=autosave_every)
        jobs.append(job)
        return job

    yield make
    set_max_concurrent_jobs(None)
    for job in jobs:
        assert job.release(timeout=30), "a job thread outlived its test"



def autosaves(job):
    """The periodic saves written completely (not a save's hidden temporary folder), oldest first."""
    return sorted((p.name for p in job.folder.iterdir() if p.name.startswith("run-") and "-at-" in p.name),
                  key=lambda name: int(name.rsplit("-", 1)[1]))


def test_a_run_survives_its_session_for_the_grace_period_and_is_reclaimed_by_id(make_job):
    registry = JobRegistry(grace_s=1.0, keep_s=60)
    job = make_job()
    job.start()
    run_id = registry.add(job, "tab-1")
    wait_until(lambda: job.snapshot().step >= 1)
    registry.leave("tab-1")  # F5: the old session ends...
    time.sleep(0.5)
    registry.sweep()
    before = job.snapshot().step
    assert job.snapshot().state == "running"
    assert registry.claim(run_id, "tab-2") is job  # ...and the new one brings the id in the URL
    time.sleep(1.2)  # past the grace period: claimed, so nothing stops it
    registry.sweep()
    snap = job.snapshot()
    assert snap.state == "running" and snap.step > before and not snap.unattended
    assert registry.claim("no-such-run", "tab-3") is None


def test_a_second_holder_keeps_the_run_when_the_first_leaves_late(make_job):
    """A reload's new session may claim the run before the old session's release arrives."""
    registry = JobRegistry(grace_s=0.2, keep_s=60)
    job = make_job()
    job.start()
    run_id = registry.add(job, "old")
    assert registry.claim(run_id, "new") is job
    registry.leave("old")
    time.sleep(0.4)
    registry.sweep()
    assert job.snapshot().state == "running"


def test_unclaimed_run_stops_after_grace_with_weights_at_the_last_periodic_save(make_job, tmp_path):
    registry = JobRegistry(grace_s=1.5, keep_s=60)
    job = make_job()
    job.start()
    run_id = registry.add(job, "tab-1")
    wait_until(lambda: autosaves(job))  # a periodic save exists
    registry.leave("tab-1")
    time.sleep(0.5)
    registry.sweep()
    assert job.snapshot().state == "running"  # inside the grace period
    wait_until(lambda: job.snapshot().state == "stopped", timeout=10)  # the leave's timer swept it
    snap = job.snapshot()
    assert snap.unattended and snap.message == f"stopped on request at step {snap.step}"
    saved = load_checkpoint(job.save(tmp_path, "kept"))
    assert saved.step == snap.step > 0
    assert autosaves(job) == []  # the run ended: its periodic saves are deleted with it
    assert registry.claim(run_id, "tab-later") is job  # a tab coming back later still finds it


def test_a_killed_run_keeps_the_weights_of_its_last_periodic_save(make_job, tmp_path):
    job = make_job()
    job.start()
    wait_until(lambda: autosaves(job))
    wait_until(lambda: len(autosaves(job)) >= 1 and job.snapshot().step > int(autosaves(job)[-1].rsplit("-", 1)[1]))
    (child,) = [p for p in multiprocessing.active_children() if p.name == "dsmini-train"]
    os.kill(child.pid, signal.SIGKILL)
    assert job.join(timeout=30)
    snap = job.snapshot()
    saved_step = load_checkpoint(job.save(tmp_path, "after-the-crash")).step
    assert snap.state == "failed" and 0 < saved_step <= snap.step
    assert f"kept from step {saved_step}, the last periodic save" in snap.message
    assert [p.name for p in job.folder.iterdir()] == [f"run-1-at-{saved_step}"]  # nothing half-written left


def test_release_deletes_the_job_folder(make_job, tmp_path):
    job = make_job(steps=5, autosave_every=0)
    job.start()
    assert job.join(timeout=30)
    folder = job.folder
    assert folder.is_dir() and [p.name for p in folder.iterdir()] == ["run-1"]
    assert job.release()
    assert not folder.exists()
    with pytest.raises(JobError, match="released"):
        job.save(tmp_path, "too-late")
    with pytest.raises(JobError, match="released"):
        job.resume(5)


def test_registry_releases_unclaimed_runs_after_keep_and_forgets_them(make_job):
    registry = JobRegistry(grace_s=0.1, keep_s=0.5)
    job = make_job()
    job.start()
    run_id = registry.add(job, "tab-1")
    registry.leave("tab-1")
    # the leave's timers stop it, then forget and release it (the release, outside the registry's lock, ends last)
    wait_until(lambda: len(registry) == 0 and not job.folder.exists(), timeout=10)
    assert job.snapshot().state == "stopped"
    assert registry.claim(run_id, "tab-2") is None


def test_a_holder_holds_one_run_and_the_cap_still_queues(make_job):
    set_max_concurrent_jobs(1)
    registry = JobRegistry(grace_s=0.1, keep_s=60)
    first, second = make_job(), make_job()
    first.start()
    registry.add(first, "tab")
    wait_until(lambda: first.snapshot().state == "running")
    second.start()
    registry.add(second, "tab")  # the tab's new run: the first is left to the grace period
    assert second.snapshot().state == "queued"  # the registry does not bypass the cap
    wait_until(lambda: first.snapshot().state == "stopped", timeout=10)
    assert first.snapshot().unattended
    wait_until(lambda: second.snapshot().state == "running", timeout=10)


def test_registry_refuses_a_grace_longer_than_it_keeps_runs():
    with pytest.raises(ValueError):
        JobRegistry(grace_s=10, keep_s=5)


def test_grace_period_policy(monkeypatch):
    monkeypatch.delenv("DSMINI_RUN_GRACE_S", raising=False)
    assert run_grace_s() == GRACE_S == 120
    monkeypatch.setenv("DSMINI_RUN_GRACE_S", "0")  # a load test: runs stop with their sessions
    assert run_grace_s() == 0
    for bad in ("-1", "soon", "1e9"):
        monkeypatch.setenv("DSMINI_RUN_GRACE_S", bad)
        with pytest.raises(ValueError, match="DSMINI_RUN_GRACE_S"):
            run_grace_s()


def test_a_run_over_the_documented_limits_is_refused_before_a_model_is_built(monkeypatch):
    """The app's widgets allow the medium preset with 64 experts (~50M parameters): over DSMINI_MAX_PARAMS."""
    from dsmini.config import TrainConfig, preset
    from dsmini.data import prepare_corpus
    from dsmini.jobs import TrainingJob
    from dsmini.model import ResourceLimitError

    data = prepare_corpus(["anna", "boris", "clara", "dmitri", "elena"], 8, 0)
    big = preset("medium", vocab_size=data.tokenizer.vocab_size, block_size=8, n_routed_experts=64, d_model=256)
    import importlib

    built = []  # the module, not the `train` function that dsmini re-exports under the same name
    monkeypatch.setattr(importlib.import_module("dsmini.training.trainer"), "DSMini", lambda cfg: built.append(cfg))
    with pytest.raises(ResourceLimitError, match="DSMINI_MAX_PARAMS"):
        TrainingJob(big, TrainConfig(steps=10), data)
    assert built == []  # refused from the config alone
