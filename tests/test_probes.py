"""Probes: traces are plain data with the routing invariants, and tracing never touches the model."""

import math

import pytest
import torch

from dsmini.config import preset
from dsmini.data import BOUNDARY_SYMBOL, CharTokenizer, UnknownCharacterError
from dsmini.model import DSMini
from dsmini.probes import expert_load_history, loss_frame, moe_layer_ids, trace_name

NAMES = ["анна", "олег", "юлия", "john", "mary"]


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_names(NAMES)


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=12)).eval()


def test_trace_routing_invariants(model, tok):
    trace = trace_name(model, tok, "анна")
    cfg = model.cfg
    assert trace.labels == [BOUNDARY_SYMBOL, "а", "н", "н", "а"]
    assert trace.layers == [i for i in range(cfg.n_layers) if cfg.is_moe_layer(i)] == [1]
    assert (trace.n_routed_experts, trace.n_shared_experts, trace.top_k) == (4, 1, 2)
    for layer in trace.layers:
        assert len(trace.experts[layer]) == len(trace.gate_weights[layer]) == len(trace.labels)
        for experts, weights, probs in zip(trace.experts[layer], trace.gate_weights[layer], trace.router_probs[layer]):
            assert len(set(experts)) == cfg.top_k and all(0 <= e < cfg.n_routed_experts for e in experts)
            assert math.isclose(sum(weights), 1.0, rel_tol=1e-5)
            assert weights == sorted(weights, reverse=True)
            assert len(probs) == cfg.n_routed_experts and math.isclose(sum(probs), 1.0, rel_tol=1e-5)


def test_trace_next_chars(model, tok):
    trace = trace_name(model, tok, "анна")
    assert [c for c, _ in trace.next_actual] == ["а", "н", "н", "а", BOUNDARY_SYMBOL]
    for top, (actual, p) in zip(trace.next_top, trace.next_actual):
        probs = [q for _, q in top]
        assert len(top) == 5 and probs == sorted(probs, reverse=True) and 0 < p <= 1
        assert isinstance(p, float) and all(isinstance(c, str) for c, _ in top)
        if actual in dict(top):
            assert math.isclose(dict(top)[actual], p)


def test_trace_leaves_model_untouched(tok):
    torch.manual_seed(1)
    model = DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=12, router="noisy_topk"))
    model.train()  # e.g. the trainer's model mid-run: tracing must give train mode back
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = trace_name(model, tok, "олег")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert trace_name(model, tok, "олег") == first  # eval mode: no router noise, deterministic


def test_trace_rejects_bad_names(model, tok):
    with pytest.raises(UnknownCharacterError) as err:
        trace_name(model, tok, "анnаz")
    assert err.value.chars == ["z"] and "'z'" in str(err.value)
    with pytest.raises(ValueError, match="at most 11"):
        trace_name(model, tok, "а" * 12)
    assert len(trace_name(model, tok, "а" * 11).labels) == 12


def test_trace_reads_nfc_and_refuses_another_tokenizer(model):
    yod = CharTokenizer.from_names(["йод"])
    yod_model = DSMini(preset("tiny", vocab_size=yod.vocab_size, block_size=12)).eval()
    trace = trace_name(yod_model, yod, "и\u0306од")  # "й" typed as "и" + combining breve
    assert trace.name == "йод" and trace.labels == [BOUNDARY_SYMBOL, "й", "о", "д"]
    with pytest.raises(ValueError, match="tokenizer vocab_size"):
        trace_name(model, yod, "йод")


def test_trace_dense_model(tok):
    model = DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=12, ffn_type="dense"))
    trace = trace_name(model, tok, "mary")
    assert not trace.has_moe and trace.layers == [] and trace.experts == {}
    assert trace.n_routed_experts == 0 and len(trace.next_top) == 5


def _history(n_moe=2, n_exp=4, steps=3):
    return [
        {
            "step": s, "main_loss": 3.0 - s / 10, "mtp_losses": [3.1 - s / 10], "aux_loss": 0.0,
            "val_loss": 2.9 if s == steps else None,
            "expert_load": [[s + e + j for e in range(n_exp)] for j in range(n_moe)],
        }
        for s in range(1, steps + 1)
    ]


def test_expert_load_history():
    cfg = preset("tiny")  # 1 MoE main layer (block 1) + the MTP block (block 2)
    assert moe_layer_ids(cfg) == [1, 2]
    load = expert_load_history(_history(), cfg)
    assert load["steps"] == [1, 2, 3] and load["layers"] == [1, 2] and load["n_layers"] == 2
    assert len(load["share"]) == 2 and all(len(layer) == 3 for layer in load["share"])
    for layer, imbalance in zip(load["share"], load["imbalance"]):
        for row, imb in zip(layer, imbalance):
            assert len(row) == 4 and math.isclose(sum(row), 1.0)
            assert math.isclose(imb, max(row) / (sum(row) / len(row)))
    assert expert_load_history(_history(n_moe=0))["share"] == []
    assert expert_load_history(_history())["layers"] is None
    with pytest.raises(ValueError, match="2 MoE layers"):
        expert_load_history(_history(n_moe=2), preset("tiny", n_dense_layers=0))


def test_loss_frame():
    frame = loss_frame(_history())
    assert list(frame.columns) == ["step", "series", "value"]
    assert not frame.isna().any().any()
    assert set(frame["series"]) == {"train", "val", "mtp-1"}  # aux is all zero: left out
    assert frame[frame["series"] == "val"]["step"].tolist() == [3]
    with_aux = _history()
    with_aux[0]["aux_loss"], with_aux[1]["main_loss"] = 0.01, float("nan")
    frame = loss_frame(with_aux)
    assert "aux" in set(frame["series"]) and not frame["value"].isna().any()
    assert frame[frame["series"] == "train"]["step"].tolist() == [1, 3]
    assert loss_frame([]).empty
