"""Probes: traces are plain data with the routing invariants, and tracing never touches the model; each
page's view (dsmini.page_views) on the shipped checkpoints."""

import math

import pytest
import torch

from app import PAGES as APP_PAGES
from dsmini.checkpoint import checkpoint_validation_set, load_checkpoint
from dsmini.config import preset
from dsmini.data import BOUNDARY_SYMBOL, CharTokenizer, UnknownCharacterError, load_corpus
from dsmini.model import DSMini
from dsmini.page_views import PAGES
from dsmini.probes import expert_load_history, loss_curves, trace_name
from dsmini.probes.ablation import GENERATED_NAMES, domain_top_experts
from dsmini.probes.attention import AttentionSettings, attention_view, sample_name
from dsmini.probes.cache import (
    ATTN_ORDER,
    DEEPSEEK_V2,
    DEEPSEEK_V3,
    CacheDims,
    kv_cache_view,
    scale_rows,
    values_per_token,
)
from dsmini.probes.compare import COMPARE_DEFAULTS, compare_view, model_facts
from dsmini.probes.experts import MAX_NAMES
from dsmini.probes.generation import GenerateSettings, HomeSettings, generate_view, home_names, home_view, name_trace
from dsmini.probes.mtp import MTPSettings, acceptance_stats, mtp_view
from dsmini.probes.specialisation import ablation_view, experts_view, shootout_view
from dsmini.probes.training import corpus_view
from tests.helpers import MIXED_NAMES as NAMES
from tests.helpers import ROOT, SHIPPED, tiny_model


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_names(NAMES)


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok)


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
    assert cfg.moe_block_ids == [1, 2]
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


def test_loss_curves():
    curves = loss_curves(_history())
    # aux is all zero: left out; val second, though first seen at step 3
    assert list(curves) == ["train", "val", "mtp-1"]
    assert curves["val"] == ([3], [2.9]) and curves["train"][0] == [1, 2, 3]
    with_aux = _history()
    with_aux[0]["aux_loss"], with_aux[1]["main_loss"] = 0.01, float("nan")
    curves = loss_curves(with_aux)
    assert list(curves)[-1] == "aux" and curves["aux"] == ([1, 2, 3], [0.01, 0.0, 0.0])
    assert curves["train"] == ([1, 3], [2.9, 2.7])  # the NaN step is left out, not drawn
    assert loss_curves([]) == {}
    assert loss_curves([{"step": 1, "main_loss": float("inf")}]) == {}
    ru = loss_curves(_history(), "ru")  # the legend's entries are in the page's language
    assert list(ru) == ["обучение", "валидация", "MTP-1"]


# ---------------------------------------------------------------------------------------------
# The pages' views (dsmini.page_views), on the shipped checkpoints



@pytest.fixture(scope="module")
def shipped():
    return {name: load_checkpoint(SHIPPED / name) for name in ("en-names", "ru-names", "ru-en-names")}


def test_every_page_has_a_registry_entry():
    stems = {p.stem for p in (ROOT / "pages").glob("*.py") if not p.name.startswith("_")}
    assert set(PAGES) == stems == {name for name, _, _ in APP_PAGES}
    for work in PAGES.values():
        assert work.inputs in ("checkpoint", "pair", "corpus") and work.requires in (None, "moe", "mtp")


def test_mtp_view_greedy_runs_all_match_plain_greedy(shipped):
    ckpt, settings = shipped["en-names"], MTPSettings()
    view = mtp_view(ckpt, settings)
    assert view.source == "val" and len(view.prefixes) == settings.n_prefixes == len(set(view.prefixes))
    assert view.matches == len(view.prefixes) == len(view.greedy_runs) == len(view.sampled_runs)
    assert view.greedy == acceptance_stats(view.greedy_runs) and view.greedy.n_names == len(view.prefixes)
    assert [r.text[: len(p)] for p, r in zip(view.prefixes, view.sampled_runs)] == list(view.prefixes)
    assert mtp_view(ckpt, settings).sampled_runs == view.sampled_runs  # seeded: replays exactly


def test_kv_cache_view_rows_match_the_formula(shipped):
    ckpt = shipped["en-names"]
    view = kv_cache_view(ckpt)
    assert view.dims == CacheDims.from_config(ckpt.model_config)
    assert [r.attn_type for r in view.rows] == [a for a in ATTN_ORDER if a not in view.skipped]
    assert all(r.matches and r.measured == r.analytic for r in view.rows)
    (loaded,) = [r for r in view.rows if r.loaded]
    assert loaded.analytic == values_per_token(ckpt.model_config.attn_type, view.dims)
    assert [g.attn_type for g in view.growth] == [r.attn_type for r in view.rows]
    assert [(label, dims) for label, dims, _ in view.scale] == [("v2", DEEPSEEK_V2), ("v3", DEEPSEEK_V3)]
    assert all(rows == scale_rows(dims) for _, dims, rows in view.scale)
    assert view.timing is not None and view.timing.same_logits and 1 <= len(view.timing_prefixes) <= 3


def test_generate_view_names_and_the_first_names_trace(shipped):
    ckpt = shipped["ru-names"]
    view = generate_view(ckpt, GenerateSettings(prefix="Крас", n=5))
    assert len(view.names) == 5 and all(name.startswith("Крас") for name in view.names)
    assert view.picked == view.names[0] and view.trace == name_trace(ckpt, view.picked)
    assert len(view.trace.labels) == len(view.picked) + 1
    assert generate_view(ckpt, GenerateSettings(prefix="Крас", n=5)).names == view.names  # seeded
    short = generate_view(ckpt, GenerateSettings(prefix="Крас", n=20, max_len=6))
    assert len(short.finished) == 20 and all(len(name) <= 6 for name in short.names)
    assert all(done or len(name) == 6 for name, done in zip(short.names, short.finished))  # a cut name is full
    assert not all(short.finished)  # Крас + 2 letters: most names do not end by then


def test_home_view_is_the_checkpoints_card(shipped):
    ckpt = shipped["en-names"]
    card = home_view(ckpt)
    assert (card.config, card.param_counts, card.corpus) == (ckpt.model_config, ckpt.param_counts, "en-names")
    assert card.val_loss == ckpt.summary["val_loss"]
    assert len(home_names(ckpt, HomeSettings(n=3))) == 3
    # a cut name is shown with the mark: the model's limit is 15 characters, few names reach it
    assert all(len(name) <= ckpt.model_config.block_size - 1 or name.endswith("…") for name in home_names(ckpt))


def test_attention_view_opens_on_the_sample_name(shipped):
    ckpt = shipped["en-names"]
    trace = attention_view(ckpt)
    assert trace.name == sample_name(ckpt.tokenizer, ckpt.model_config.block_size)
    assert attention_view(ckpt, AttentionSettings("Anna")).name == "Anna"
    with pytest.raises(ValueError):
        attention_view(ckpt, AttentionSettings("Жанна"))


def test_compare_view_names_only_for_a_model_that_reads_the_prefix(shipped):
    en, ru = shipped["en-names"], shipped["ru-names"]
    view = compare_view(en, ru, GenerateSettings(prefix="Ж", n=3))
    names_en, names_ru = view.names
    assert names_en is None and len(names_ru) == 3 and all(n.startswith("Ж") for n in names_ru)
    assert view.facts == (model_facts(en), model_facts(ru))
    same = compare_view(en, en)
    assert not any(row.differs for row in same.config_rows + same.fact_rows)
    assert same.names[0] == same.names[1] and len(same.names[0]) == COMPARE_DEFAULTS.n


def test_corpus_view_counts_the_picked_corpus():
    corpus = load_corpus("ru-en-names")
    view = corpus_view(corpus)
    assert view.stats.count == len(corpus.names) and view.examples == corpus.names[:8]
    assert set(view.domain_counts) == {"en", "ru"} and sum(view.domain_counts.values()) == len(corpus.names)


def test_experts_views_reuse_one_analysis(shipped):
    mixed = shipped["ru-en-names"]
    analysis = experts_view(mixed)
    labelled = checkpoint_validation_set(mixed.corpus, MAX_NAMES)
    assert analysis.names == labelled.names and analysis.name_domains == labelled.domains
    assert analysis.domains is not None and analysis.domains.domains == ["en", "ru"]
    spec = domain_top_experts(analysis.domains, "ru", analysis.domains.layers, 2)
    result = ablation_view(mixed, spec, analysis)
    assert len(result.names_on) == len(result.names_off) == GENERATED_NAMES and result.damage_ratio("ru") > 1
    shootout = shootout_view([mixed, mixed], [analysis, analysis])
    assert [run.name for run in shootout.runs] == ["ru-en-names"] * 2 and shootout.has_domains
