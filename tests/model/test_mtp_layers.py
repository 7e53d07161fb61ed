"""MTP modules of several blocks (`mtp_layers`) and two depths end to end: the loss over both depths,
layer ids and MoE bookkeeping, the drafting cache, speculative decoding, parameter counts, the
checkpoint, and the teacher-forced accuracy per depth the MTP page shows."""

import dataclasses
import math

import pytest
import torch

from dsmini.checkpoint import checkpoint_validation_set, corpus_reference, load_checkpoint, save_checkpoint
from dsmini.config import ModelConfig, TrainConfig, preset
from dsmini.data import prepare_corpus
from dsmini.decoding import generate, speculative_decode
from dsmini.i18n import t
from dsmini.model import DSMini, MoE
from dsmini.model.cache import StackCache
from dsmini.model.limits import count_params
from dsmini.probes.mtp import depth_accuracy
from dsmini.training import Trainer
from pages import _ui_models as ui_models
from tests.helpers import NAMES, SHIPPED, app_test


def deep(**overrides) -> ModelConfig:
    return preset("tiny", **{**dict(vocab_size=20, block_size=12, mtp_depth=2, mtp_layers=2), **overrides})


@pytest.fixture(scope="module")
def data():
    return prepare_corpus(NAMES, block_size=8, seed=0, corpus_name="toy")


@pytest.mark.parametrize("overrides", [{}, {"ffn_type": "dense"}, {"attn_type": "mha", "mtp_layers": 3},
                                       {"attn_type": "dsa", "mtp_depth": 1}])
def test_closed_form_params_equal_the_built_model(overrides):
    cfg = deep(**overrides)
    model = DSMini(cfg)
    assert count_params(cfg)["total"] == model.param_counts()["all"]["total"]
    assert count_params(cfg)["mtp"] == model.param_counts()["mtp"]["total"]
    one = DSMini(dataclasses.replace(cfg, mtp_layers=1))
    assert model.param_counts()["mtp"]["total"] > one.param_counts()["mtp"]["total"]  # the stacks really add blocks


def test_every_mtp_block_has_its_own_layer_id_and_is_moe():
    cfg = deep()
    model = DSMini(cfg)
    assert [len(m.blocks) for m in model.mtp] == [2, 2]
    ids = [moe.layer_id for moe in model.moe_layers()]
    assert ids == cfg.moe_block_ids == [*cfg.moe_layer_ids, 2, 3, 4, 5]
    assert [b.ffn.layer_id for b in model.mtp[1].blocks] == [cfg.mtp_block_id(2, 0), cfg.mtp_block_id(2, 1)] == [4, 5]
    with pytest.raises(ValueError, match="ModelConfig.mtp_layers: must be >= 1"):
        deep(mtp_layers=0)


def test_the_loss_weighs_both_depths():
    torch.manual_seed(0)
    model = DSMini(deep()).eval()
    idx = torch.randint(0, 20, (3, 12))
    with torch.no_grad():
        out = model(idx, idx)
    assert len(out.mtp_losses) == len(out.mtp_logits) == 2
    assert [lg.shape[1] for lg in out.mtp_logits] == [11, 10]  # depth k predicts t_{i+k+1}
    assert len(out.routing) == 1 + 4  # one main MoE layer, then every MTP block
    expected = out.main_loss + out.aux_loss + model.cfg.mtp_lambda / 2 * (out.mtp_losses[0] + out.mtp_losses[1])
    assert torch.allclose(out.loss, expected)


def test_drafting_with_a_stacked_module_through_the_cache_equals_the_full_pass():
    torch.manual_seed(1)
    model = DSMini(deep()).eval()
    idx = torch.randint(0, 20, (2, 10))
    cache = model.new_cache(2, with_mtp=True)
    assert isinstance(cache.mtp, StackCache) and len(cache.mtp.blocks) == 2
    with torch.no_grad():
        hidden = model(idx).hidden
        full = model.mtp_draft(hidden[:, :-1], idx[:, 1:])
        steps = [model.mtp_draft(hidden[:, :4], idx[:, 1:5], cache)]
        steps += [model.mtp_draft(hidden[:, i : i + 1], idx[:, i + 1 : i + 2], cache) for i in range(4, 9)]
        assert cache.mtp.length == 9 and all(block.length == 9 for block in cache.mtp.blocks)
        cache.mtp.length = 3  # rejected drafts are forgotten in every block
        assert [block.length for block in cache.mtp.blocks] == [3, 3]
    assert (torch.cat(steps, dim=1) - full).abs().max() < 1e-5


def test_greedy_speculative_decoding_with_two_depths_of_two_blocks_equals_greedy(data):
    torch.manual_seed(2)
    model = DSMini(deep(vocab_size=data.tokenizer.vocab_size)).eval()
    for prefix in ("a", "ol", ""):
        plain = generate(model, data.tokenizer, prefix, n=1, temperature=0.0)[0]
        assert speculative_decode(model, data.tokenizer, prefix).ids == plain.ids


@pytest.fixture(scope="module")
def trained_deep(data, tmp_path_factory):
    """Two depths of two blocks trained 150 steps on the toy names, saved with its corpus."""
    cfg = deep(vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    torch.manual_seed(0)
    untrained = DSMini(cfg).eval()
    train_cfg = TrainConfig(steps=150, batch_size=32, lr=1e-2, warmup_steps=5, eval_every=50, eval_batches=1,
                            sample_every=0, device="cpu")
    trainer = Trainer(cfg, train_cfg, data)
    history = list(trainer.run())
    root = tmp_path_factory.mktemp("deep")
    save_checkpoint(root, "deep", trainer.model, data.tokenizer, train_config=train_cfg,
                    corpus=corpus_reference(data), history=history, step=150)
    return untrained, history, load_checkpoint(root / "deep")


@pytest.mark.slow
def test_training_both_depths_then_a_checkpoint_round_trip(data, trained_deep):
    untrained, history, ckpt = trained_deep
    assert all(len(m.mtp_losses) == 2 and all(math.isfinite(v) for v in m.mtp_losses) for m in history)
    assert history[-1].mtp_losses[1] < history[0].mtp_losses[1] - 0.5  # depth 2 learns
    assert len(history[-1].expert_load) == 1 + 4
    assert ckpt.model_config.mtp_layers == 2 and ckpt.model_config.mtp_depth == 2
    names = data.train.names[:64]
    before, after = depth_accuracy(untrained, data.tokenizer, names), depth_accuracy(ckpt.model, ckpt.tokenizer, names)
    assert [d.depth for d in after] == [0, 1, 2]
    for d in after:  # each depth counts every real target it has: k fewer per name
        assert d.total == sum(len(n) + 1 - d.depth for n in names)
    assert after[2].rate > before[2].rate + 0.2  # module 2 learnt to see two characters ahead


@pytest.mark.slow
def test_mtp_page_shows_depth_two_beside_depth_one(trained_deep, monkeypatch):


    _, _, ckpt = trained_deep
    monkeypatch.setattr(ui_models, "CHECKPOINTS", ckpt.path.parent)
    at = app_test()
    at.session_state["lang"], at.session_state["checkpoint"] = "ru", "deep"
    at.run()
    at.switch_page("pages/mtp.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    table = at.dataframe[0].value
    val = checkpoint_validation_set(ckpt.corpus).names
    expected = depth_accuracy(ckpt.model, ckpt.tokenizer, val)
    assert list(table.iloc[:, 0]) == [t("mtp.depth_main", "ru"),
                                      *(t("mtp.depth_module", "ru", depth=k) for k in (1, 2))]
    assert list(table.iloc[:, 2]) == [f"{d.rate:.1%}" for d in expected]
    assert list(table.iloc[:, 3]) == [d.total for d in expected] and expected[2].total > 0
    assert t("mtp.depth_caption", "ru", n=len(val)) in [c.value for c in at.caption]


def test_configs_saved_before_stacks_existed_load_with_one_block():
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "mtp_layers"}
    assert ModelConfig.from_dict(old).mtp_layers == 1
    shipped = load_checkpoint(SHIPPED / "en-names")
    assert shipped.model_config.mtp_layers == 1 and len(shipped.model.mtp[0].blocks) == 1
    assert isinstance(shipped.model.mtp[0].block.ffn, MoE)
