"""The live I(domain; expert) curve of the Train page: history -> plot data -> figure, and old histories."""

import math

import pytest

from dsmini import charts
from dsmini.checkpoint import load_checkpoint
from dsmini.config import TrainConfig, preset
from dsmini.data import prepare_corpus
from dsmini.i18n import t
from dsmini.probes import domain_mi_history, live_domain_mi
from dsmini.training import Trainer


def row(step, mi=None, initial=None):
    """A history entry as StepMetrics.to_dict() writes it (only the fields this probe reads)."""
    return {"step": step, "val_loss": 2.0 if mi else None, "domain_mi": mi, "domain_mi_initial": initial}


HISTORY = [
    {"step": 1},  # written before the fields existed
    row(2),
    row(3, [0.05, 0.1], [0.04, 0.05]),
    row(4),
    row(5, (0.3, 0.2), (0.04, 0.05)),  # job snapshots freeze lists into tuples
]


def test_domain_mi_history_collects_eval_steps_per_layer():
    cfg = preset("tiny", n_layers=3)  # main MoE blocks 1 and 2, then the MTP block 3
    split = domain_mi_history(HISTORY, cfg)
    assert split["steps"] == [3, 5]
    assert split["mi"] == [[0.05, 0.3], [0.1, 0.2]]
    assert split["initial"] == [0.04, 0.05]
    assert split["layers"] == [1, 2]  # MTP blocks do not run at inference: never probed
    assert split["best"] == 0 and split["ratio"] == pytest.approx(0.3 / 0.04)
    assert domain_mi_history(HISTORY)["layers"] is None


def test_domain_mi_history_empty_zero_and_mismatched():
    none = domain_mi_history([row(1), {"step": 2}], preset("tiny"))
    assert none["steps"] == [] and none["mi"] == [] and none["best"] is None and none["ratio"] is None
    assert domain_mi_history([row(1, [0.2], [0.0])])["ratio"] == math.inf
    with pytest.raises(ValueError, match="config has 1"):
        domain_mi_history(HISTORY, preset("tiny"))
    with pytest.raises(ValueError, match="step 3"):
        domain_mi_history([row(3, [0.1], [0.1]), row(5, [0.1, 0.2], [0.1, 0.1])])


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_domain_mi_curve_one_line_per_layer_and_untrained_dashed(lang):
    fig = charts.domain_mi_curve(domain_mi_history(HISTORY, preset("tiny", n_layers=3)), lang)
    *layers, untrained = fig.data
    assert [line.name for line in layers] == [t("chart.layer", lang, layer=1), t("chart.layer", lang, layer=2)]
    assert [list(line.x) for line in fig.data] == [[3, 5]] * 3
    assert list(layers[0].y) == [0.05, 0.3] and list(layers[1].y) == [0.1, 0.2]
    assert list(untrained.y) == [0.05, 0.05] and untrained.line.dash == "dash"  # the highest untrained layer
    assert untrained.name == t("chart.domain_mi.initial", lang)
    assert fig.layout.title.text == t("chart.domain_mi.title", lang)
    assert fig.layout.yaxis.title.text == t("chart.experts.bits", lang)
    unnamed = charts.domain_mi_curve(domain_mi_history(HISTORY))
    assert [line.name for line in unnamed.data[:2]] == ["MoE layer #1", "MoE layer #2"]


def test_domain_mi_curve_empty():
    fig = charts.domain_mi_curve(domain_mi_history([row(1)]), "ru")
    assert not fig.data and fig.layout.annotations[0].text == t("chart.domain_mi.no_steps", "ru")


def test_history_from_before_the_fields_loads_resumes_and_plots(tmp_path):
    latin = ["anna", "boris", "clara", "dmitri", "elena", "fedor", "galina", "igor", "katya", "maria"]
    cyrillic = ["анна", "борис", "вера", "глеб", "дарья", "егор", "жанна", "иван", "кира", "мария"]
    data = prepare_corpus(latin + cyrillic, block_size=8, seed=0, val_frac=0.3,
                          domains=["en"] * len(latin) + ["ru"] * len(cyrillic))
    assert set(data.val.domains) == {"en", "ru"}
    model_cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=8)
    train_cfg = TrainConfig(steps=4, batch_size=8, warmup_steps=1, eval_every=2, eval_batches=1, sample_every=0)
    old = Trainer(model_cfg, train_cfg, data)
    list(old.run())
    old.state.history = [{k: v for k, v in h.items() if not k.startswith("domain_mi")} for h in old.state.history]
    old.save(tmp_path, "old")
    assert "domain_mi" not in load_checkpoint(tmp_path / "old").history[0]

    resumed = Trainer.resume(tmp_path / "old", data, steps=8, domain_mi=live_domain_mi)
    list(resumed.run())
    resumed.save(tmp_path, "new")
    history = load_checkpoint(tmp_path / "new").history
    assert [h["domain_mi"] is not None for h in history] == [False] * 5 + [True, False, True]
    split = domain_mi_history(history, model_cfg)
    assert split["steps"] == [6, 8] and len(split["mi"]) == model_cfg.n_moe_layers
    assert len(charts.domain_mi_curve(split).data) == model_cfg.n_moe_layers + 1
