"""One source per recipe: every path that trains resolves to exactly the settings it resolved to before
the recipes moved into `config.RECIPES` (the values below are those, written out)."""

import json

import pytest

from dsmini import jobs
from dsmini.bench.common import full_plan
from dsmini.bench.peer import DSMINI, PeerJob, dsmini_configs
from dsmini.bench.recipe import _trainer
from dsmini.bench.specialisation import page_train_config
from dsmini.bench.throughput import corpus_data
from dsmini.cli.main import main
from dsmini.config import PRESETS, RECIPES, SMALL_CORPUS, TrainConfig, preset
from dsmini.probes import live_domain_mi
from tests.helpers import app_test

# TrainConfig's own defaults: what every path below starts from
DEFAULTS = dict(steps=2000, batch_size=64, grad_accum=1, optimizer="adamw", qk_clip_tau=100.0, muon_params="all",
                lr=3e-3, weight_decay=0.01, betas=(0.9, 0.99), warmup_steps=100, min_lr_ratio=0.1, grad_clip=1.0,
                eval_every=100, eval_batches=4, sample_every=200, n_samples=8, seed=1337, split_seed=42, device="auto")
CLI_TRAIN = {**DEFAULTS, "optimizer": "muon", "muon_params": "dense", "steps": 3000}
PAGE_TRAIN = {**DEFAULTS, "steps": 600, "eval_every": 50, "eval_batches": 1, "sample_every": 100, "warmup_steps": 50}


def test_train_config_defaults_are_the_librarys():
    assert TrainConfig().to_dict() == {**DEFAULTS, "betas": (0.9, 0.99)}


@pytest.mark.parametrize(("corpus", "vocab_size", "block_size", "dropout"),
                         [("en-names", 53, 12, 0.1), ("ru-names", 63, 23, 0.0)])
def test_cli_resolves_muon_dense_3000_steps_and_dropout_below_20k(corpus, vocab_size, block_size, dropout, capsys):
    assert main(["train", "--corpus", corpus, "--print-config"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["train_config"] == {**CLI_TRAIN, "betas": [0.9, 0.99]}
    small = preset("small", vocab_size=vocab_size, block_size=block_size, dropout=dropout)
    assert resolved["model_config"] == small.to_dict()


def test_the_dropout_rule_is_the_recipes_and_a_field_given_wins():
    cli = RECIPES["cli"]
    assert cli.model(SMALL_CORPUS - 1).dropout == 0.1 and cli.model(SMALL_CORPUS).dropout == 0.0
    assert cli.model(10, dropout=0.3).dropout == 0.3
    assert cli.model(10, "tiny") == preset("tiny", dropout=0.1)
    assert RECIPES["page"].model(10, "medium") == PRESETS["medium"]  # the page has no dropout rule
    with pytest.raises(ValueError, match="unknown preset"):
        cli.model(10, "huge")


def test_train_page_starts_its_job_with_the_page_recipe(monkeypatch):
    """The page's widgets default to the page recipe, and Start hands the job exactly it (and the live
    domain-MI probe); the job itself is replaced by one that records what it was given."""
    started = []

    class Recorded(Exception):
        pass

    def record(model_cfg, train_cfg, data, **options):
        started.append((model_cfg, train_cfg, data, options))
        raise Recorded

    monkeypatch.setattr(jobs, "TrainingJob", record)
    at = app_test()
    at.run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="train_corpus").set_value("en-names").run()
    assert at.selectbox(key="train_preset").value == "small"
    at.button(key="train_start").click().run()
    [(model_cfg, train_cfg, data, options)] = started
    assert train_cfg.to_dict() == {**PAGE_TRAIN, "betas": (0.9, 0.99)}
    assert options == {"domain_mi": live_domain_mi}
    assert model_cfg == preset("small", vocab_size=data.tokenizer.vocab_size, block_size=12)  # no dropout rule


def test_bench_recipe_section_builds_the_cli_recipes_model():
    trainer = _trainer("en-names", TrainConfig(steps=1, device="cpu"), "tiny")
    assert trainer.model_cfg == preset("tiny", vocab_size=53, block_size=12, dropout=0.1)


def test_bench_peer_trains_dsmini_as_train_does():
    data = corpus_data("en-names")
    model_cfg, train_cfg = dsmini_configs(PeerJob(DSMINI, "en-names", None, 100, 256), data)
    assert model_cfg == preset("small", vocab_size=53, block_size=12, dropout=0.1)
    assert train_cfg.to_dict() == {**CLI_TRAIN, "betas": (0.9, 0.99)}
    _, short = dsmini_configs(PeerJob(DSMINI, "en-names", 40, 100, 256), data)
    assert short.to_dict() == {**CLI_TRAIN, "steps": 40, "betas": (0.9, 0.99)}


def test_bench_page_run_trains_the_page_recipe_as_it_was_measured():
    train_cfg = page_train_config(full_plan(device="cpu"))
    # 4 x 256 val names an evaluation, as the section's numbers were measured (the page reads 1 x 256)
    assert train_cfg.to_dict() == {**PAGE_TRAIN, "eval_batches": 4, "device": "cpu", "betas": (0.9, 0.99)}
