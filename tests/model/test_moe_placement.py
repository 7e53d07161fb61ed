"""MoE placement (ModelConfig.moe_layer_ids): first-k-dense (DeepSeek) and every k-th block (GShard
§2), which blocks are MoE, closed-form parameter counts, the routing order, the checkpoint."""

import pytest
import torch

from dsmini.charts.architecture import architecture_figure
from dsmini.checkpoint import load_checkpoint, save_checkpoint
from dsmini.config import ModelConfig, preset
from dsmini.data import CharTokenizer
from dsmini.model import DSMini, MoE
from dsmini.model.limits import count_params


def placed(**overrides) -> ModelConfig:
    return preset("tiny", **{**dict(vocab_size=20, block_size=8, n_layers=6), **overrides})


@pytest.mark.parametrize(("n_dense", "every", "moe"), [
    (1, 1, [1, 2, 3, 4, 5]),  # DeepSeek: all after the first dense layers (today's default)
    (0, 2, [1, 3, 5]),  # GShard: every other block
    (1, 2, [1, 3, 5]),
    (2, 2, [3, 5]),
    (0, 3, [2, 5]),
    (6, 2, []),
])
def test_which_blocks_are_moe(n_dense, every, moe):
    cfg = placed(n_dense_layers=n_dense, moe_every=every)
    model = DSMini(cfg)
    assert list(cfg.moe_layer_ids) == moe
    assert [i for i, block in enumerate(model.layers) if isinstance(block.ffn, MoE)] == moe
    assert isinstance(model.mtp[0].block.ffn, MoE)  # MTP blocks stay MoE
    assert [m.layer_id for m in model.moe_layers()] == cfg.moe_block_ids == [*moe, 6]
    assert count_params(cfg)["total"] == model.param_counts()["all"]["total"]
    with torch.no_grad():
        out = model(torch.randint(0, 20, (2, 8)), torch.randint(0, 20, (2, 8)))
    assert [r.layer for r in out.routing] == [*moe, 6]
    architecture_figure(cfg)  # the Home page's diagram draws the mixed stack


def test_every_other_block_halves_the_experts_parameters():
    every, all_after = DSMini(placed(n_dense_layers=0, moe_every=2)), DSMini(placed(n_dense_layers=0))
    assert every.param_counts()["routed_experts"]["total"] * 2 == all_after.param_counts()["routed_experts"]["total"]


@pytest.mark.parametrize("value", [0, 7, -1])
def test_moe_every_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match="ModelConfig.moe_every: must be in \\[1, n_layers=6\\]"):
        placed(moe_every=value)
    placed(moe_every=value, ffn_type="dense")  # a dense model ignores it


def test_checkpoint_round_trip_and_old_configs(tmp_path):
    tok = CharTokenizer.from_names(["Anna", "Boris"])
    cfg = placed(vocab_size=tok.vocab_size, n_dense_layers=0, moe_every=2)
    torch.manual_seed(0)
    model = DSMini(cfg).eval()
    save_checkpoint(tmp_path, "gshard", model, tok)
    loaded = load_checkpoint(tmp_path / "gshard")
    assert loaded.model_config == cfg
    idx = torch.tensor([tok.frame("Anna")])
    with torch.no_grad():
        assert torch.equal(loaded.model(idx).logits, model(idx).logits)
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "moe_every"}
    assert ModelConfig.from_dict(old).moe_layer_ids == ModelConfig().moe_layer_ids == range(1, 4)
