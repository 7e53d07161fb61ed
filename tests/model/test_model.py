"""Invariants of the model (DESIGN §6): the facts other implementations get wrong."""

import dataclasses
import math

import pytest
import torch

from dsmini.config import PRESETS, ModelConfig, preset
from dsmini.model import DSMini, ForwardOptions, cache_values_per_token, check_cache, new_model_cache
from dsmini.model.moe import ExpertAblation, MoE, over_capacity

V = 24
ATTN_TYPES = ["mla", "mha", "gqa", "mqa"]


def tiny(**overrides) -> ModelConfig:
    # 4 heads so that MHA (4), GQA (2) and MQA (1) differ
    base = dict(vocab_size=V, block_size=16, n_heads=4, n_kv_heads=2, head_dim=8)
    return preset("tiny", **{**base, **overrides})


def make(seed=0, **overrides) -> DSMini:
    torch.manual_seed(seed)
    return DSMini(tiny(**overrides)).eval()


# config ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(top_k=5, n_routed_experts=4), "top_k"),
        (dict(attn_type="mha", head_dim=0, d_model=30, n_heads=4), "d_model"),
        (dict(qk_rope_head_dim=5), "qk_rope_head_dim"),
        (dict(attn_type="gqa", n_heads=4, n_kv_heads=3), "n_kv_heads"),
        (dict(router="magic"), "router"),
        (dict(capacity_factor=0.0), "capacity_factor"),
        (dict(n_dense_layers=9), "n_dense_layers"),
        (dict(attn_type="xla"), "attn_type"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        tiny(**overrides)


def test_config_presets_json_round_trip_and_replace():
    small = PRESETS["small"]
    assert (small.n_layers, small.n_heads, small.d_model) == (4, 4, 64)  # makemore's transformer shape
    for cfg in PRESETS.values():
        assert ModelConfig.from_json(cfg.to_json()) == cfg
    mha = dataclasses.replace(small, attn_type="mha")
    assert mha.attn_type == "mha" and small.attn_type == "mla"
    with pytest.raises(ValueError, match="unknown ModelConfig fields: nope"):
        ModelConfig.from_dict({**small.to_dict(), "nope": 1})


# attention and caches -------------------------------------------------------------------

@pytest.mark.parametrize("attn_type", ATTN_TYPES)
@pytest.mark.parametrize("absorb", [False, True])
def test_cached_decode_equals_full_forward(attn_type, absorb):
    model = make(attn_type=attn_type)
    idx = torch.randint(0, V, (3, 12))
    with torch.no_grad():
        full = model(idx).logits
        cache = model.new_cache(batch=3)
        steps = [model(idx[:, :5], cache=cache, absorb=absorb).logits]  # prefill 5, then one at a time
        steps += [model(idx[:, i : i + 1], cache=cache, absorb=absorb).logits for i in range(5, 12)]
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)


def test_chunked_prefill_after_cache_uses_causal_offset():
    model = make()
    idx = torch.randint(0, V, (2, 10))
    with torch.no_grad():
        full = model(idx).logits
        cache = model.new_cache(batch=2)
        first = model(idx[:, :4], cache=cache).logits
        second = model(idx[:, 4:], cache=cache).logits  # 6 new queries over 10 keys
    torch.testing.assert_close(torch.cat([first, second], dim=1), full, atol=1e-5, rtol=1e-4)


def test_absorbed_mla_equals_naive_with_query_compression():
    model = make(q_lora_rank=12)
    idx = torch.randint(0, V, (2, 9))
    with torch.no_grad():
        naive = model(idx, absorb=False, need_weights=True)
        absorbed = model(idx, absorb=True, need_weights=True)
    torch.testing.assert_close(absorbed.logits, naive.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(absorbed.attn[0].probs, naive.attn[0].probs, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("attn_type", ATTN_TYPES)
def test_causality_future_chars_do_not_change_past_logits(attn_type):
    model = make(attn_type=attn_type)
    idx = torch.randint(0, V, (1, 10))
    changed = idx.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % V
    with torch.no_grad():
        a, b = model(idx).logits, model(changed).logits
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


@pytest.mark.parametrize(
    "attn_type, per_layer",
    [
        ("mla", lambda c: c.kv_lora_rank + c.qk_rope_head_dim),
        ("mha", lambda c: 2 * c.n_heads * c.mha_head_dim),
        ("gqa", lambda c: 2 * c.n_kv_heads * c.mha_head_dim),
        ("mqa", lambda c: 2 * c.mha_head_dim),
    ],
)
def test_cache_size_matches_deepseek_v2_table_1(attn_type, per_layer):
    model = make(attn_type=attn_type)
    cfg = model.cfg
    cache = model.new_cache(batch=2, max_len=10)
    expected = per_layer(cfg) * cfg.n_layers
    assert cache_values_per_token(cfg) == expected
    assert cache.values_per_token() == expected
    assert cache.numel() == expected * 2 * 10
    assert cache.nbytes() == expected * 2 * 10 * 4  # float32


def test_check_cache_weighs_a_real_cache_against_table_1():
    cfg = tiny(attn_type="gqa")
    fp32 = check_cache(new_model_cache(cfg, batch=2, max_len=10), cfg)
    assert fp32.equal and fp32.formula_values == 2 * 2 * 8 * cfg.n_layers
    assert fp32.formula_bytes == 4 * fp32.formula_values
    bf16 = check_cache(new_model_cache(cfg, batch=1, dtype=torch.bfloat16), cfg)
    assert bf16.equal and bf16.measured_bytes == 2 * bf16.measured_values
    wrong = check_cache(new_model_cache(cfg, batch=2, max_len=10), tiny(attn_type="mqa"))  # a layout bug
    assert not wrong.equal and wrong.measured_values == 2 * wrong.formula_values


def test_model_cache_allocation_checks_its_length_and_mtp():
    cfg = tiny(mtp_depth=0)
    assert new_model_cache(cfg, batch=1, with_mtp=True).mtp is None  # nothing to draft with
    assert new_model_cache(tiny(), batch=3, max_len=5, with_mtp=True).mtp is not None
    assert new_model_cache(tiny(), batch=3, max_len=5).slots == 15
    for bad in (0, cfg.block_size + 1):
        with pytest.raises(ValueError, match="max_len"):
            new_model_cache(cfg, batch=1, max_len=bad)
    assert make().has_mtp and not make(mtp_depth=0).has_mtp


def test_mtp_depth_options_see_the_shifted_positions_without_attention_maps():
    valid = torch.tensor([[True, True, True, False]])
    opts = ForwardOptions(need_weights=True, absorb=True, ablation={1: ExpertAblation(mask_top=1)}, valid=valid)
    depth2 = opts.for_mtp_depth(2)
    assert depth2.valid.tolist() == [[True, False]] and not depth2.need_weights
    assert depth2.absorb and depth2.ablation is opts.ablation
    assert ForwardOptions().for_mtp_depth(1).valid is None


def test_mla_cache_holds_only_latent_and_shared_rope_key():
    model = make()
    cache = model.new_cache(batch=1, max_len=8)
    c_kv, k_rope = cache.layers[0].tensors()
    assert c_kv.shape == (1, 8, model.cfg.kv_lora_rank)
    assert k_rope.shape == (1, 8, model.cfg.qk_rope_head_dim)  # no heads axis: shared by all heads


def test_mla_score_parts_sum_to_the_attention_scores():
    model = make()
    idx = torch.randint(0, V, (1, 7))
    with torch.no_grad():
        trace = model(idx, need_weights=True).attn[1]
    scores = trace.scores_nope + trace.scores_rope
    probs = torch.nan_to_num(scores, nan=float("-inf")).softmax(dim=-1)
    torch.testing.assert_close(probs, trace.probs, atol=1e-6, rtol=1e-5)
    assert torch.isnan(trace.scores_rope[0, 0, 0, 1:]).all()  # masked future is NaN


def test_sequence_longer_than_block_size_is_refused():
    model = make()
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


# MoE --------------------------------------------------------------------------------------

def moe_layer(**overrides) -> MoE:
    torch.manual_seed(0)
    cfg = tiny(**overrides)
    return MoE(cfg, layer_id=1)


@pytest.mark.parametrize("router, norm_topk_prob", [
    ("sigmoid_bias", None), ("softmax_topk", True), ("noisy_topk", None), ("sigmoid_bias", False),
    ("softmax_topk", None),
])
def test_gate_chooses_k_distinct_experts_with_weights_summing_to_one(router, norm_topk_prob):
    """...when renormalised over the k; else (DeepSeek-V2's softmax, the default) the chosen scores as they are."""
    moe = moe_layer(router=router, norm_topk_prob=norm_topk_prob, n_routed_experts=6, top_k=3).train()
    x = torch.randn(40, moe_layer().gate.weight.size(1))
    weights, indices, probs = moe.gate(x)
    assert indices.shape == (40, 3)
    assert all(len(set(row.tolist())) == 3 for row in indices)
    if norm_topk_prob is False or (router == "softmax_topk" and norm_topk_prob is None):
        scores = probs if router == "softmax_topk" else torch.sigmoid(x @ moe.gate.weight.t())
        torch.testing.assert_close(weights, scores.gather(1, indices))
    else:
        torch.testing.assert_close(weights.sum(-1), torch.ones(40))
    torch.testing.assert_close(probs.sum(-1), torch.ones(40))
    assert (weights > 0).all()


def test_sigmoid_bias_changes_choice_but_never_weights():
    moe = moe_layer(router="sigmoid_bias", n_routed_experts=4, top_k=2).eval()
    x = torch.randn(64, 32)
    _, before, _ = moe.gate(x)
    scores = torch.sigmoid(x @ moe.gate.weight.t())
    moe.gate.bias[:] = torch.tensor([10.0, 10.0, 0.0, 0.0])  # force experts 0 and 1
    weights, after, _ = moe.gate(x)
    assert not torch.equal(before.sort(-1).values, after.sort(-1).values)
    assert (after.sort(-1).values == torch.tensor([0, 1])).all()
    chosen = scores.gather(1, after)  # weights come from the unbiased scores
    torch.testing.assert_close(weights, chosen / chosen.sum(-1, keepdim=True))


def test_bias_update_moves_load_toward_uniform():
    moe = moe_layer(router="sigmoid_bias", n_routed_experts=4, top_k=1, bias_update_speed=0.01).eval()
    torch.manual_seed(0)
    x = torch.randn(512, 32) + 0.3
    with torch.no_grad():
        moe.gate.weight.normal_(std=0.1)
        moe.gate.weight[0] += 0.05  # expert 0 is most tokens' favourite

    def load():
        return moe(x[None])[1].load.float()

    start = load()
    for _ in range(100):
        moe.gate.update_bias(load())
    end = load()
    assert start.max() / start.mean() > 1.5
    assert end.max() / end.mean() < 1.2
    assert moe.gate.bias[0] < 0  # the overloaded expert was pushed down


def test_noise_only_in_training():
    moe = moe_layer(router="noisy_topk")
    x = torch.randn(32, 32)
    moe.eval()
    a, b = moe.gate(x), moe.gate(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    moe.train()
    torch.manual_seed(1)
    c = moe.gate(x)
    torch.manual_seed(2)
    d = moe.gate(x)
    assert not torch.equal(c[0], d[0])


def test_shared_experts_always_applied():
    moe = moe_layer().eval()
    x = torch.randn(1, 5, 32)
    all_off = torch.ones(moe.n_experts, dtype=torch.bool)
    # with every routed expert's output zeroed, what is left is exactly the shared expert
    torch.nn.init.zeros_(moe.experts.w2)
    y, _ = moe(x)
    torch.testing.assert_close(y, moe.shared_experts(x))
    assert all_off.all()


def test_capacity_drops_counted_exactly_on_crafted_batch():
    # 6 tokens all choose experts {0, 1} (k=2 of E=4); capacity = ceil(1.0 * 6 * 2 / 4) = 3
    indices = torch.tensor([[0, 1]] * 6)
    weights = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.55, 0.45], [0.5, 0.5]])
    keep = torch.ones(6, 2, dtype=torch.bool)
    over = over_capacity(indices, weights, keep, capacity=3, n_experts=4)
    assert over.sum() == 6  # each expert got 6, kept 3
    assert over[:, 0].tolist() == [False, False, False, True, True, True]  # expert 0 keeps the 3 strongest
    assert over[:, 1].tolist() == [True, True, True, False, False, False]  # expert 1: the last 3 are strongest


def test_capacity_in_layer_drops_and_counts():
    moe = moe_layer(capacity_factor=0.5, n_routed_experts=4, top_k=2).train()
    x = torch.randn(1, 16, 32)
    assert moe.eval()(x)[1].n_dropped == 0  # no dropping at inference: outputs never depend on the batch
    _, routing = moe.train()(x)
    capacity = math.ceil(0.5 * 16 * 2 / 4)
    assert (routing.load <= capacity).all()
    assert routing.n_dropped == 16 * 2 - routing.load.sum().item()
    assert routing.n_dropped == routing.dropped.sum().item() > 0
    assert (routing.weights[routing.dropped] == 0).all()


def test_padding_is_not_routed():
    moe = moe_layer().eval()
    valid = torch.tensor([[True] * 5 + [False] * 3])
    _, routing = moe(torch.randn(1, 8, 32), ForwardOptions(valid=valid))
    assert routing.load.sum() == 5 * moe.top_k


def test_aux_loss_is_minimal_for_uniform_routing():
    moe = moe_layer(aux_loss_coef=0.1, n_routed_experts=4, top_k=1)
    uniform_idx = torch.arange(4).repeat(8)[:, None]
    uniform_probs = torch.full((32, 4), 0.25)
    skewed_idx = torch.zeros(32, 1, dtype=torch.long)
    skewed_probs = torch.tensor([[0.7, 0.1, 0.1, 0.1]]).repeat(32, 1)
    uniform = moe._aux_loss(uniform_idx, uniform_probs)
    assert uniform.item() == pytest.approx(0.1)  # alpha * 1
    assert moe._aux_loss(skewed_idx, skewed_probs) > uniform


def test_gradients_reach_every_expert_that_received_tokens():
    model = DSMini(tiny(router="softmax_topk", aux_loss_coef=0.01)).train()
    idx = torch.randint(0, V, (4, 12))
    out = model(idx, targets=torch.randint(0, V, (4, 12)))
    out.loss.backward()
    for moe, routing in zip(model.moe_layers(), out.routing):
        assert moe.gate.weight.grad.abs().sum() > 0
        grad = moe.experts.w1.grad  # (E, h, d): an expert without tokens gets zeros
        for e in range(moe.n_experts):
            assert bool(grad[e].abs().sum() > 0) == bool(routing.load[e] > 0)


def _moe_outputs_and_grads(moe: MoE, x: torch.Tensor, opts: ForwardOptions):
    """y, routing and every gradient (None where a parameter got none) of one fwd+bwd."""
    moe.zero_grad(set_to_none=True)
    xi = x.clone().requires_grad_()
    y, routing = moe(xi, opts)
    y.square().sum().backward()
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in moe.named_parameters()}
    return y, routing, xi.grad, grads


@pytest.mark.parametrize("capacity_factor", [None, 0.6])
def test_grouped_experts_equal_the_per_expert_loop(monkeypatch, capacity_factor):
    """The CPU grouped_mm path and the any-device loop: same outputs, loads and gradients, and an
    expert that got no tokens gets a zero gradient on both (the stacked layout's rule)."""
    moe = moe_layer(capacity_factor=capacity_factor).train()
    with torch.no_grad():
        moe.gate.bias[3] = -10.0  # expert 3 is never chosen
    x = torch.randn(3, 8, 32)
    valid = torch.ones(3, 8, dtype=torch.bool)
    valid[1, 5:] = valid[2, 2:] = False  # padding, as in a training batch
    opts = ForwardOptions(valid=valid)
    assert moe.experts._grouped_mm_fits(x.flatten(0, 1))
    grouped = _moe_outputs_and_grads(moe, x, opts)
    monkeypatch.setattr("dsmini.model.moe.GROUPED_EXPERTS", False)
    assert not moe.experts._grouped_mm_fits(x.flatten(0, 1))
    looped = _moe_outputs_and_grads(moe, x, opts)
    torch.testing.assert_close(grouped[0], looped[0])
    torch.testing.assert_close(grouped[1].load, looped[1].load)
    assert grouped[1].load[3] == 0 and grouped[1].load.sum() == (valid.sum() * moe.top_k - grouped[1].n_dropped)
    torch.testing.assert_close(grouped[2], looped[2])
    for name, grad in grouped[3].items():
        torch.testing.assert_close(grad, looped[3][name], msg=name)
        if name.startswith("experts."):
            assert not grad[3].any() and grad[:3].abs().sum() > 0, name


def test_no_padding_mask_routes_exactly_like_an_all_valid_mask():
    """Without padding the layer skips building masks; the result must not change."""
    moe = moe_layer(aux_loss_coef=0.1).train()
    x = torch.randn(2, 8, 32)
    y_none, r_none = moe(x)
    y_all, r_all = moe(x, ForwardOptions(valid=torch.ones(2, 8, dtype=torch.bool)))
    torch.testing.assert_close(y_none, y_all, rtol=0, atol=0)
    torch.testing.assert_close(r_none.load, r_all.load)
    torch.testing.assert_close(r_none.aux_loss, r_all.aux_loss)
    assert r_none.valid.all() and not r_none.dropped.any() and r_none.n_dropped == 0


def test_dense_layers_first_then_moe():
    model = make(n_layers=3, n_dense_layers=2)
    kinds = [type(block.ffn).__name__ for block in model.layers]
    assert kinds == ["Expert", "Expert", "MoE"]
    assert type(make(ffn_type="dense").layers[-1].ffn).__name__ == "Expert"


def test_moe_layer_ids_are_the_main_layers_after_the_dense_ones():
    assert list(tiny(n_layers=3, n_dense_layers=2).moe_layer_ids) == [2]
    assert tiny(n_layers=3, n_dense_layers=0).n_moe_layers == 3
    assert list(tiny(ffn_type="dense").moe_layer_ids) == []


# MTP --------------------------------------------------------------------------------------

def test_mtp_targets_aligned_to_token_after_next():
    model = make(mtp_depth=2)
    idx = torch.randint(0, V, (2, 10))
    targets = torch.randint(0, V, (2, 10))
    out = model(idx, targets)
    for k, logits in enumerate(out.mtp_logits, start=1):
        assert logits.shape == (2, 10 - k, V)
        aligned = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets[:, k:].flatten())
        shifted = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, k + 1 :].flatten())
        assert out.mtp_losses[k - 1].item() == pytest.approx(aligned.item())
        assert out.mtp_losses[k - 1].item() != pytest.approx(shifted.item())


def test_mtp_depth_sees_the_token_it_conditions_on_but_not_its_target():
    model = make(mtp_depth=1)
    idx = torch.randint(0, V, (1, 8))
    targets = torch.randint(0, V, (1, 8))
    base = model(idx, targets).mtp_logits[0]
    changed = idx.clone()
    changed[0, 4] = (changed[0, 4] + 1) % V  # t_4 is the embedding input at position 3
    after = model(changed, targets).mtp_logits[0]
    torch.testing.assert_close(after[:, :3], base[:, :3])
    assert not torch.allclose(after[:, 3], base[:, 3])


def test_mtp_loss_weighting_and_depth_zero_is_plain_model():
    model = make(mtp_depth=2, mtp_lambda=0.3)
    idx, targets = torch.randint(0, V, (2, 10)), torch.randint(0, V, (2, 10))
    out = model(idx, targets)
    expected = out.main_loss + out.aux_loss + 0.3 / 2 * (out.mtp_losses[0] + out.mtp_losses[1])
    torch.testing.assert_close(out.loss, expected)
    plain = make(mtp_depth=0)
    out0 = plain(idx, targets)
    assert out0.mtp_losses == [] and len(plain.mtp) == 0
    torch.testing.assert_close(out0.loss, out0.main_loss + out0.aux_loss)


def test_mtp_draft_matches_training_path():
    model = make(mtp_depth=1)
    idx = torch.randint(0, V, (1, 9))
    with torch.no_grad():
        out = model(idx, torch.zeros_like(idx))
        draft = model.mtp_draft(out.hidden[:, :-1], idx[:, 1:])
    torch.testing.assert_close(draft, out.mtp_logits[0])


# whole model ------------------------------------------------------------------------------

def test_initial_loss_is_about_ln_vocab():
    model = make()
    idx = torch.randint(0, V, (8, 12))
    loss = model(idx, torch.randint(0, V, (8, 12))).main_loss.item()
    assert abs(loss - math.log(V)) < 0.1


def test_tiny_model_overfits_ten_names():
    torch.manual_seed(0)
    names = ["anna", "boris", "clara", "dmitri", "elena", "fedor", "galina", "igor", "katya", "lev"]
    chars = sorted(set("".join(names)))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    x = torch.zeros(10, 8, dtype=torch.long)
    y = torch.full((10, 8), -1)
    for row, name in enumerate(names):
        ids = [stoi[c] for c in name]
        x[row, 1 : len(ids) + 1] = torch.tensor(ids)
        y[row, : len(ids) + 1] = torch.tensor(ids + [0])
    model = DSMini(preset("tiny", vocab_size=len(chars) + 1, block_size=8)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        out = model(x, y)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    # memorised: only the first letter stays a 1-in-10 guess, so the floor is 10 ln 10 / #targets
    floor = 10 * math.log(10) / (y != -1).sum().item()
    assert out.main_loss.item() < floor + 0.05


def test_param_counts_equal_hand_computation():
    cfg = preset(
        "tiny", vocab_size=10, d_model=8, n_layers=2, n_heads=2, kv_lora_rank=4, qk_nope_head_dim=4,
        qk_rope_head_dim=2, v_head_dim=4, d_ff=12, n_routed_experts=4, n_shared_experts=1, top_k=2,
        moe_inter_dim=6, n_dense_layers=1, mtp_depth=1, router="sigmoid_bias",
    )
    d, h = 8, 2
    attention = d * h * 6 + d * (4 + 2) + 4 + 4 * h * (4 + 4) + h * 4 * d  # wq, wkv_a, kv_norm, wkv_b, wo
    expert = 3 * d * 6
    dense_ffn = 3 * d * 12
    norms_per_block = 2 * d
    counts = DSMini(cfg).param_counts()
    assert counts["embedding"]["total"] == 10 * d
    assert counts["head"]["total"] == 10 * d
    assert counts["attention"]["total"] == 2 * attention
    assert counts["dense_ffn"]["total"] == dense_ffn
    assert counts["routed_experts"] == {"total": 4 * expert, "active": 2 * expert}
    assert counts["shared_experts"]["total"] == expert
    assert counts["router"]["total"] == 4 * d
    mtp_block = attention + norms_per_block + 4 * expert + expert + 4 * d
    assert counts["mtp"]["total"] == 3 * d + 2 * d * d + mtp_block  # enorm, hnorm, norm, eh_proj
    main_total = 2 * 10 * d + 2 * attention + dense_ffn + 4 * expert + expert + 4 * d + 2 * norms_per_block + d
    assert counts["main"]["total"] == main_total
    assert counts["main"]["active"] == main_total - 2 * expert
    assert counts["all"]["total"] == main_total + counts["mtp"]["total"]
    assert counts["all"]["total"] == sum(p.numel() for p in DSMini(cfg).parameters())


def test_rope_rotates_each_pair_by_its_angle_and_scores_depend_on_offset_only():
    from dsmini.model.rope import apply_rope, rope_angles

    rotations = rope_angles(dim=8, max_len=10, theta=100.0)  # (t, p, 2)
    x = torch.randn(2, 3, 10, 12)[..., 4:]  # a non-contiguous slice, as MLA's split makes
    out = apply_rope(x, rotations)
    cos, sin = rotations[..., 0], rotations[..., 1]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    assert torch.allclose(out[..., 0::2], x0 * cos - x1 * sin, atol=1e-6)
    assert torch.allclose(out[..., 1::2], x0 * sin + x1 * cos, atol=1e-6)
    q, k = torch.randn(8), torch.randn(8)
    scores = [  # q at position i + 3 against k at position i: the same for every i
        (apply_rope(q.expand(10, 8), rotations)[i + 3] * apply_rope(k.expand(10, 8), rotations)[i]).sum()
        for i in range(7)
    ]
    assert torch.allclose(torch.stack(scores), scores[0].expand(7), atol=1e-5)
    assert apply_rope(x.bfloat16(), rotations).dtype == torch.bfloat16


def test_padding_costs_no_expert_work_and_real_tokens_are_unchanged():
    """With a padding mask neither the shared nor the routed experts run on padding (its FFN output
    is zero: the residual passes through); every real token gets exactly what it gets unmasked."""
    moe = moe_layer().train()
    x = torch.randn(2, 7, 32)
    valid = torch.tensor([[True] * 4 + [False] * 3, [True] * 7])
    masked, _ = moe(x, ForwardOptions(valid=valid))
    unmasked, _ = moe(x)
    torch.testing.assert_close(masked[valid], unmasked[valid])
    assert not masked[~valid].any()
    calls = []
    moe.shared_experts.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    moe(x, ForwardOptions(valid=valid))
    assert calls == [int(valid.sum())]


def test_a_seed_draws_the_model_it_drew_before_experts_were_stacked():
    """Stacked experts initialise slice by slice in the order separate Expert modules were drawn, so a
    seeded run (and the benchmark's and the Experts page's untrained twins) starts from the same weights.
    The number is the one dsmini computed with one nn.Module per expert."""
    torch.manual_seed(1337)
    model = DSMini(preset("small", vocab_size=30, block_size=12))
    total = sum(float(p.double().abs().sum()) for p in model.state_dict().values())
    assert total == pytest.approx(8413.093474103456, rel=1e-12)
