"""Training loop: learning, reproducibility, exact resume, stop and NaN handling, optimizers."""

import copy
import dataclasses
import math
import threading

import pytest
import torch

from dsmini.config import TrainConfig, preset
from dsmini.data import prepare_corpus
from dsmini.jobs.slots import THREADS, configure_torch_threads
from dsmini.model import DSMini
from dsmini.probes import live_domain_mi
from dsmini.training.trainer import Trainer, build_optimizers, evaluate, lr_at, train
from tests.helpers import NAMES


@pytest.fixture(scope="module")
def data():
    return prepare_corpus(NAMES, block_size=8, seed=0, corpus_name="toy")


def configs(data, **train_overrides):
    model_cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    base = dict(steps=30, batch_size=16, lr=1e-2, warmup_steps=5, eval_every=10, eval_batches=1, sample_every=0)
    return model_cfg, TrainConfig(**{**base, **train_overrides})


def test_loss_decreases_and_metrics_are_complete(data):
    model_cfg, train_cfg = configs(data, steps=60, sample_every=30, n_samples=3)
    metrics = list(train(model_cfg, train_cfg, data))
    assert [m.step for m in metrics] == list(range(1, 61))
    first, last = metrics[0], metrics[-1]
    assert last.main_loss < first.main_loss - 0.5
    assert math.isclose(first.main_loss, math.log(data.tokenizer.vocab_size), abs_tol=0.3)
    evals = [m for m in metrics if m.val_loss is not None]
    assert [m.step for m in evals] == [10, 20, 30, 40, 50, 60]
    samples = [m for m in metrics if m.samples]
    assert [m.step for m in samples] == [30, 60] and len(samples[-1].samples) == 3
    assert len(first.mtp_losses) == model_cfg.mtp_depth
    assert len(first.expert_load) == model_cfg.n_moe_layers + model_cfg.mtp_depth
    # every real target token is routed to top_k experts in each main MoE layer; MTP depth 1
    # has one position fewer per name (nothing to predict two steps past the end)
    *main_loads, mtp_load = first.expert_load
    assert all(sum(load) == first.tokens * model_cfg.top_k for load in main_loads)
    assert sum(mtp_load) == (first.tokens - 16) * model_cfg.top_k
    shortest, longest = min(map(len, NAMES)) + 1, max(map(len, NAMES)) + 1  # + end token
    assert first.tokens_per_sec > 0 and 16 * shortest <= first.tokens <= 16 * longest


def test_same_seed_same_run(data):
    model_cfg, train_cfg = configs(data, steps=10)
    a = [m.loss for m in train(model_cfg, train_cfg, data)]
    b = [m.loss for m in train(model_cfg, train_cfg, data)]
    c = [m.loss for m in train(model_cfg, dataclasses.replace(train_cfg, seed=7), data)]
    assert a == b and a != c


@pytest.mark.parametrize("router", ["sigmoid_bias", "noisy_topk"])
@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_continues_the_same_curve_exactly(data, tmp_path, router, optimizer):
    model_cfg, train_cfg = configs(data, steps=12, optimizer=optimizer)
    model_cfg = dataclasses.replace(model_cfg, router=router)
    straight = [m.loss for m in Trainer(model_cfg, train_cfg, data).run()]

    first = Trainer(model_cfg, train_cfg, data)
    run = first.run()
    head = [next(run).loss for _ in range(5)]
    first.save(tmp_path, "half")
    resumed = Trainer.resume(tmp_path / "half", data)
    tail = [m.loss for m in resumed.run()]
    assert head + tail == straight
    assert resumed.step == 12 and len(resumed.state.history) == 12


def _unfused_adamw(trainer: Trainer) -> None:
    """Swap the trainer's AdamW for the unfused one the app used before (same groups and settings)."""
    fused = trainer.optimizers["adamw"]
    groups = [{k: v for k, v in g.items() if k not in ("fused", "foreach")} for g in fused.param_groups]
    trainer.optimizers["adamw"] = torch.optim.AdamW(groups, lr=fused.defaults["lr"], betas=fused.defaults["betas"])


def test_adamw_is_fused_on_cpu_and_resumes_from_an_unfused_state(data, tmp_path):
    """A state saved by the unfused AdamW (older checkpoints) resumes into the fused one: the
    moments carry over, the run stays fused, and the curve follows the unfused run's closely."""
    model_cfg, train_cfg = configs(data, steps=12)
    assert all(g["fused"] for g in Trainer(model_cfg, train_cfg, data).optimizers["adamw"].param_groups)
    unfused = Trainer(model_cfg, train_cfg, data)
    _unfused_adamw(unfused)
    straight = [m.loss for m in unfused.run()]

    first = Trainer(model_cfg, train_cfg, data)
    _unfused_adamw(first)
    run = first.run()
    head = [next(run).loss for _ in range(5)]
    saved = first.save(tmp_path, "half")
    resumed = Trainer.resume(saved, data)
    adamw = resumed.optimizers["adamw"]
    assert all(g["fused"] and not g["foreach"] for g in adamw.param_groups)
    saved_state = first.optimizers["adamw"].state_dict()["state"]
    for i, moments in adamw.state_dict()["state"].items():
        torch.testing.assert_close(moments["exp_avg"], saved_state[i]["exp_avg"], rtol=0, atol=0)
        assert float(moments["step"]) == 5
    tail = [m.loss for m in resumed.run()]
    assert head == straight[:5]
    assert tail == pytest.approx(straight[5:], rel=1e-4)  # another kernel, the same update rule


def test_metrics_read_once_per_step_match_the_model_outputs(data):
    """The losses and loads gathered as tensors and read once per step are the per-layer numbers."""
    model_cfg, train_cfg = configs(data, steps=2, grad_accum=2)
    trainer = Trainer(model_cfg, train_cfg, data)
    (first, second) = list(trainer.run())
    assert isinstance(first.expert_load[0][0], int) and isinstance(first.loss, float)
    assert len(first.expert_load) == len(trainer.model.moe_layers()) == len(first.dropped)
    assert first.dropped == [0] * len(first.dropped)
    *main_loads, _ = first.expert_load  # both micro-batches' assignments, every real token top_k times
    assert all(sum(load) == first.tokens * model_cfg.top_k for load in main_loads)
    assert math.isclose(first.loss, first.main_loss + model_cfg.mtp_lambda * sum(first.mtp_losses) + first.aux_loss,
                        rel_tol=1e-5)


def test_stop_request_ends_cleanly(data):
    model_cfg, train_cfg = configs(data, steps=1000)
    trainer = Trainer(model_cfg, train_cfg, data)
    seen = 0
    for m in trainer.run():
        seen += 1
        if m.step == 3:
            trainer.request_stop()
    assert seen == 3 and trainer.step == 3
    assert trainer.state.stop_reason == "stopped on request at step 3"


def test_stop_event_from_another_thread(data):
    model_cfg, train_cfg = configs(data, steps=100000)
    stop = threading.Event()
    trainer = Trainer(model_cfg, train_cfg, data)
    threading.Timer(0.3, stop.set).start()
    steps = sum(1 for _ in trainer.run(stop))
    assert 0 < steps < 100000 and "stopped on request" in trainer.state.stop_reason


def test_nan_loss_stops_with_reason_and_applies_no_update_after_it(data):
    model_cfg, train_cfg = configs(data, steps=20)
    trainer = Trainer(model_cfg, train_cfg, data)
    run = trainer.run()
    for _ in range(4):
        next(run)
    with torch.no_grad():
        trainer.model.embed.weight[1:, 0] = float("nan")  # poison: the next forward gives NaN
        poisoned = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert list(run) == []
    assert trainer.step == 4
    assert "loss became nan at step 5" in trainer.state.stop_reason
    assert "weights kept from step 4" in trainer.state.stop_reason
    for k, v in trainer.model.state_dict().items():  # no update was applied after the NaN
        assert torch.allclose(v, poisoned[k], rtol=0, atol=0, equal_nan=True), k


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(55, cfg) == pytest.approx(0.55)
    assert lr_at(100, cfg) == pytest.approx(0.1)


def test_optimizer_groups(data):
    model_cfg, train_cfg = configs(data)
    from dsmini.model import DSMini

    model = DSMini(model_cfg)
    adamw = build_optimizers(model, train_cfg)["adamw"]
    decay, no_decay = adamw.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"]} >= {"embed.weight", "norm.weight"}
    both = build_optimizers(model, dataclasses.replace(train_cfg, optimizer="muon"))
    muon_names = {names[id(p)] for p in both["muon"].param_groups[0]["params"]}
    assert "layers.0.attn.wkv_a.weight" in muon_names
    assert not muon_names & {"embed.weight", "head.weight"}
    assert all(".gate." not in n for n in muon_names)


def test_sigmoid_bias_updated_once_per_optimizer_step(data):
    model_cfg, train_cfg = configs(data, steps=1, grad_accum=3)
    model_cfg = dataclasses.replace(model_cfg, bias_update_speed=0.5)
    trainer = Trainer(model_cfg, train_cfg, data)
    (m,) = list(trainer.run())
    bias = trainer.model.moe_layers()[0].gate.bias
    # one update of +-gamma (or 0 for an expert exactly at the mean), not three
    assert set(bias.abs().tolist()) <= {0.0, 0.5}
    load = torch.tensor(m.expert_load[0], dtype=torch.float32)
    torch.testing.assert_close(bias, 0.5 * torch.sign(load.mean() - load))


def test_mismatched_vocab_is_refused(data):
    model_cfg, train_cfg = configs(data)
    with pytest.raises(ValueError, match="vocab_size"):
        Trainer(dataclasses.replace(model_cfg, vocab_size=5), train_cfg, data)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_is_deterministic_and_gives_the_mode_back(data, training):
    torch.manual_seed(0)
    model_cfg, _ = configs(data)
    model = DSMini(dataclasses.replace(model_cfg, router="noisy_topk", dropout=0.5)).train(training)
    first = evaluate(model, data.val)
    assert model.training == training
    assert evaluate(model, data.val) == first  # eval mode: no router noise, no dropout
    assert not any(p.grad is not None for p in model.parameters())


# Live I(domain; expert): measured on eval steps of a corpus with domains -------------------------------

CYRILLIC = [
    "анна", "борис", "вера", "глеб", "дарья", "егор", "жанна", "зоя", "иван", "кира", "лев", "мария",
    "нина", "олег", "павел", "рита", "семён", "таня", "ульяна", "фёдор", "юлия", "яков", "инна", "денис",
]


def labelled_corpus(domains: bool = True):
    """Latin ("en") and Cyrillic ("ru") names; the same split with or without the labels."""
    labels = ["en"] * len(NAMES) + ["ru"] * len(CYRILLIC) if domains else None
    return prepare_corpus(NAMES + CYRILLIC, block_size=8, seed=0, corpus_name="toy-mixed", val_frac=0.25,
                          domains=labels)


@pytest.fixture(scope="module")
def labelled():
    data = labelled_corpus()
    assert set(data.val.domains) == {"en", "ru"}  # both domains among the probed val names
    return data


def token_domain_entropy(split) -> float:
    """H(domain) in bits over the input tokens (boundary + letters) of the split's names."""
    tokens = {"en": 0, "ru": 0}
    for name, domain in zip(split.names, split.domains):
        tokens[domain] += len(name) + 1
    total = sum(tokens.values())
    return -sum(n / total * math.log2(n / total) for n in tokens.values() if n)


def test_domain_mi_on_eval_steps_only(labelled):
    from dsmini.probes.domains import domain_mi
    from dsmini.probes.experts import initial_model, route_names

    model_cfg, train_cfg = configs(labelled, steps=30, eval_every=10)
    model_cfg = dataclasses.replace(model_cfg, n_layers=3)  # two main MoE layers
    metrics = list(train(model_cfg, train_cfg, labelled, domain_mi=live_domain_mi))
    measured = [m for m in metrics if m.domain_mi is not None]
    assert [m.step for m in measured] == [10, 20, 30]
    assert all(m.domain_mi_initial is None for m in metrics if m.domain_mi is None)
    ceiling = token_domain_entropy(labelled.val)
    for m in measured:
        assert len(m.domain_mi) == len(m.domain_mi_initial) == model_cfg.n_moe_layers == 2
        assert all(0 <= bits <= ceiling + 1e-9 for bits in m.domain_mi + m.domain_mi_initial)
    assert measured[0].domain_mi_initial == measured[1].domain_mi_initial == measured[2].domain_mi_initial
    assert measured[0].domain_mi != measured[2].domain_mi  # the trained router moved
    # the untrained value is the Experts page's contrast: the same names through initial_model
    untrained = route_names(initial_model(model_cfg), labelled.tokenizer, labelled.val.names,
                            domains=labelled.val.domains)
    assert measured[0].domain_mi_initial == pytest.approx(list(domain_mi(untrained).values()))


def test_no_domain_mi_without_domains_or_experts(data, labelled):
    model_cfg, train_cfg = configs(data, steps=10)
    assert all(m.domain_mi is None and m.domain_mi_initial is None
               for m in train(model_cfg, train_cfg, data, domain_mi=live_domain_mi))
    dense_cfg, train_cfg = configs(labelled, steps=10)
    dense_cfg = dataclasses.replace(dense_cfg, ffn_type="dense")
    assert all(m.domain_mi is None for m in train(dense_cfg, train_cfg, labelled, domain_mi=live_domain_mi))
    moe_cfg, train_cfg = configs(labelled, steps=10)
    assert all(m.domain_mi is None for m in train(moe_cfg, train_cfg, labelled))  # nobody asked for the curve


def test_domain_probe_draws_no_rng_and_leaves_train_mode(labelled):
    """Same split, labels on vs off: the probe runs only with labels, and the noisy router's noise
    (the global RNG) and the batches come out the same, so the losses are identical."""
    unlabelled = labelled_corpus(domains=False)
    assert unlabelled.train.names == labelled.train.names
    model_cfg, train_cfg = configs(labelled, steps=12, eval_every=3)
    model_cfg = dataclasses.replace(model_cfg, router="noisy_topk")
    with_probe = Trainer(model_cfg, train_cfg, labelled, domain_mi=live_domain_mi)
    losses = [m.loss for m in with_probe.run()]
    assert with_probe.model.training
    assert sum(h["domain_mi"] is not None for h in with_probe.state.history) == 4
    assert losses == [m.loss for m in Trainer(model_cfg, train_cfg, unlabelled).run()]


def test_resume_with_domain_mi_is_exact(labelled, tmp_path):
    model_cfg, train_cfg = configs(labelled, steps=12, eval_every=4)
    model_cfg = dataclasses.replace(model_cfg, router="noisy_topk")
    straight = [m.to_dict() for m in Trainer(model_cfg, train_cfg, labelled, domain_mi=live_domain_mi).run()]

    first = Trainer(model_cfg, train_cfg, labelled, domain_mi=live_domain_mi)
    run = first.run()
    for _ in range(5):
        next(run)
    first.save(tmp_path, "half")
    resumed = Trainer.resume(tmp_path / "half", labelled, domain_mi=live_domain_mi)
    list(resumed.run())
    keys = ("loss", "domain_mi", "domain_mi_initial")
    # the history went through checkpoint.json and back
    assert [[h[k] for k in keys] for h in resumed.state.history] == [[h[k] for k in keys] for h in straight]
    assert [h["step"] for h in straight if h["domain_mi"]] == [4, 8, 12]


def test_thread_policy_per_role():
    """Both roles default to the measured policy (dsmini/job_slots.py); an explicit count wins."""
    previous = torch.get_num_threads()
    try:
        assert configure_torch_threads(role="training") == THREADS["training"] == torch.get_num_threads()
        assert configure_torch_threads(role="server") == THREADS["server"] == torch.get_num_threads()
        assert configure_torch_threads(2, role="training") == 2 == torch.get_num_threads()
        with pytest.raises(ValueError, match="role"):
            configure_torch_threads(role="page")
    finally:
        torch.set_num_threads(previous)


def _per_expert_copy(model: DSMini) -> DSMini:
    """`model` as dsmini built it before stacked experts: each layer's routed experts an nn.ModuleList
    of `Expert`s holding the slices of the stacked weights."""
    from dsmini.model import Expert

    legacy = copy.deepcopy(model)
    for moe in legacy.moe_layers():
        stacked = moe.experts
        experts = torch.nn.ModuleList(Expert(stacked.w1.size(2), stacked.w1.size(1)) for _ in range(stacked.w1.size(0)))
        with torch.no_grad():
            for e, expert in enumerate(experts):
                for name in ("w1", "w2", "w3"):
                    getattr(expert, name).weight.copy_(getattr(stacked, name)[e])
        moe.experts = experts
    return legacy


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_an_optimizer_state_saved_per_expert_resumes_stacked(data, optimizer):
    """A run saved before experts were stacked resumes with each expert's moments in its slice of the
    stack; an expert that never had a gradient gets zeros, and the stack's step is the largest."""
    model_cfg, train_cfg = configs(data, optimizer=optimizer)
    trainer = Trainer(model_cfg, train_cfg, data)
    legacy = _per_expert_copy(trainer.model)
    old_optimizers = build_optimizers(legacy, train_cfg)
    idle = "layers.1.ffn.experts.2."
    for step in range(2):
        for name, p in legacy.named_parameters():
            p.grad = None if name.startswith(idle) or (step and ".experts.0." in name) else torch.randn_like(p)
        for opt in old_optimizers.values():
            opt.step()
    trainer.restore({name: opt.state_dict() for name, opt in old_optimizers.items()}, None)
    old_params = dict(legacy.named_parameters())
    key = "exp_avg" if optimizer == "adamw" else "momentum_buffer"
    opt = trainer.optimizers[optimizer]
    experts = ((n, m) for n, m in trainer.model.named_modules() if n.endswith(".experts") and hasattr(m, "w1"))
    for moe_name, moe in experts:
        for w in ("w1", "w2", "w3"):
            stacked_state = opt.state[getattr(moe, w)]
            for e in range(getattr(moe, w).size(0)):
                old = old_optimizers[optimizer].state.get(old_params[f"{moe_name}.{e}.{w}.weight"])
                expected = torch.zeros_like(stacked_state[key][e]) if old is None else old[key]
                torch.testing.assert_close(stacked_state[key][e], expected, rtol=0, atol=0)
            if optimizer == "adamw":
                assert float(stacked_state["step"]) == 2.0
    assert not opt.state[trainer.model.layers[1].ffn.experts.w1][key][2].any()  # the idle expert
    others = {n: p for n, p in trainer.model.named_parameters() if ".experts." not in n}
    for name, p in others.items():
        if p in opt.state:
            torch.testing.assert_close(opt.state[p][key], old_optimizers[optimizer].state[old_params[name]][key])
    next(trainer.run())  # and it trains on
