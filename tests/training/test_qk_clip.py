"""MuonClip (dsmini/qk_clip.py; Kimi K2 §2.1): the per-head max logit comes from the training forward
pass, QK-clip brings every head over τ to exactly τ and leaves the others alone, and the trainer's
"muonclip" clips, records it, and equals plain Muon when nothing is over τ."""

import json

import pytest
import torch

from dsmini.checkpoint import load_checkpoint
from dsmini.checkpoint.schema import meta_problem
from dsmini.config import TrainConfig, preset
from dsmini.data import prepare_corpus
from dsmini.model import DSMini
from dsmini.model.attention_types import build_attention
from dsmini.model.rope import rope_angles
from dsmini.training import Trainer
from dsmini.training.qk_clip import qk_clip, track_max_logits
from tests.helpers import NAMES

T = 10


@pytest.fixture(scope="module")
def data():
    return prepare_corpus(NAMES, block_size=8, seed=0, corpus_name="toy")


def module_and_input(attn_type: str, **overrides):
    cfg = preset("tiny", attn_type=attn_type, vocab_size=20, block_size=T, **overrides)
    torch.manual_seed(0)
    attn = build_attention(cfg).train()
    with torch.no_grad():  # large logits, as a long Muon run makes them
        for p in attn.parameters():
            p.mul_(6.0)
    rope = rope_angles(cfg.qk_rope_head_dim if cfg.latent_attention else cfg.mha_head_dim, T)
    return attn, torch.randn(2, T, cfg.d_model), rope


def max_logits(attn, x, rope) -> torch.Tensor:
    track_max_logits(attn)
    with torch.no_grad():
        attn(x, rope)
    return attn.max_logit.clone()


@pytest.mark.parametrize(("attn_type", "overrides"), [
    ("mla", {}), ("mla", {"q_lora_rank": 8}), ("mha", {}), ("gqa", {"n_heads": 4, "n_kv_heads": 2}), ("mqa", {}),
    ("dsa", {"dsa_top_k": 4}), ("moba", {"moba_block_size": 3, "moba_top_blocks": 1}), ("loglinear", {}),
])
def test_clipped_heads_reach_tau_exactly_and_the_others_keep_their_logits(attn_type, overrides):
    attn, x, rope = module_and_input(attn_type, **overrides)
    before = max_logits(attn, x, rope)
    tau = float(before.median())  # some heads over τ, at least one not
    over = before > tau
    assert over.any() and not over.all()
    report = qk_clip(attn, tau)
    assert attn.max_logit is None  # forgotten: the next step starts afresh
    assert report.clipped == int(over.sum()) and report.heads == before.numel()
    assert report.max_logit == pytest.approx(float(before.max()))
    assert report.min_gamma == pytest.approx(tau / float(before.max()))
    after = max_logits(attn, x, rope)
    assert torch.allclose(after[over], torch.full_like(after[over], tau), rtol=1e-4)  # ≤ τ: exactly τ
    assert torch.allclose(after[~over], before[~over], rtol=1e-5)


def test_mla_leaves_the_shared_rotary_key_and_the_values_alone():
    attn, x, rope = module_and_input("mla")
    kv_a, wkv_b = attn.wkv_a.weight.clone(), attn.wkv_b.weight.clone()
    max_logits(attn, x, rope)
    qk_clip(attn, 1e-3)  # every head clipped
    assert torch.equal(attn.wkv_a.weight, kv_a)  # latent and shared k_rope rows
    per_head = wkv_b.view(attn.n_heads, attn.nope + attn.v_dim, -1)
    now = attn.wkv_b.weight.view(attn.n_heads, attn.nope + attn.v_dim, -1)
    assert torch.equal(now[:, attn.nope :], per_head[:, attn.nope :])  # value rows
    assert not torch.equal(now[:, : attn.nope], per_head[:, : attn.nope])  # k_nope rows rescaled


def test_the_kept_max_is_the_largest_score_of_the_forward_pass():
    cfg = preset("tiny", vocab_size=20, block_size=T)
    torch.manual_seed(1)
    model = DSMini(cfg).train()
    idx = torch.randint(0, 20, (3, T))
    track_max_logits(model)
    with torch.no_grad():
        out = model(idx, need_weights=True)
    for layer, trace in zip(model.layers, out.attn):
        scores = (trace.scores_nope + trace.scores_rope).nan_to_num(nan=float("-inf"))  # (b, h, s, t)
        assert torch.allclose(layer.attn.max_logit, scores.amax(dim=(0, 2, 3)), atol=1e-5)
    assert all(m.block.attn.max_logit is None for m in model.mtp)  # no targets: the MTP module did not run


def run(data, optimizer: str, tau: float = 100.0, steps: int = 6):
    cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    train_cfg = TrainConfig(steps=steps, batch_size=16, lr=3e-2, warmup_steps=0, eval_every=3, eval_batches=1,
                            sample_every=0, optimizer=optimizer, qk_clip_tau=tau, device="cpu")
    trainer = Trainer(cfg, train_cfg, data)
    return trainer, list(trainer.run())


def test_muonclip_with_a_tiny_tau_clips_every_step_and_records_it(data, tmp_path):
    trainer, history = run(data, "muonclip", tau=0.02)  # init logits are ~0.05
    assert all(m.qk_clipped > 0 and m.qk_max_logit > 0.02 and 0 < m.qk_min_gamma < 1 for m in history)
    assert all(m.qk_min_gamma == pytest.approx(0.02 / m.qk_max_logit) for m in history)
    path = trainer.save(tmp_path, "clipped")
    meta = json.loads((path / "checkpoint.json").read_text(encoding="utf-8"))
    assert meta_problem(meta) is None
    assert load_checkpoint(path).history[-1]["qk_clipped"] == history[-1].qk_clipped


def test_muonclip_under_tau_is_plain_muon(data):
    clip, clip_history = run(data, "muonclip", tau=1e6)
    muon, muon_history = run(data, "muon")
    assert all(m.qk_clipped == 0 and m.qk_max_logit is not None for m in clip_history)
    assert all(m.qk_max_logit is None for m in muon_history)  # plain Muon tracks nothing
    for a, b in zip(clip.model.parameters(), muon.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_tau_must_be_positive():
    with pytest.raises(ValueError, match="TrainConfig.qk_clip_tau: must be > 0"):
        TrainConfig(optimizer="muonclip", qk_clip_tau=0.0)
