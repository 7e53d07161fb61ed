"""Experts probes and charts: routing counted over many names, MI, expert profiles, the ablation,
and `generate(ablation=...)`. Tiny random models: the invariants do not need training."""

import math

import plotly.graph_objects as go
import pytest
import torch

from dsmini.charts.domains import ablation_figure
from dsmini.charts.experts import (
    expert_load_figure,
    expert_profile_figure,
    letter_expert_figure,
    position_expert_figure,
    specialisation_figure,
)
from dsmini.config import preset
from dsmini.data import BOUNDARY_ID, CharTokenizer, prepare_corpus, validation_set
from dsmini.decoding import generate
from dsmini.i18n import t
from dsmini.model import DSMini, MoE
from dsmini.probes.ablation import AblationSpec, ablate, ablation_effect, expert_mask
from dsmini.probes.experts import POSITION_CATEGORIES, initial_model, joint_counts, mutual_information, route_names
from dsmini.probes.specialisation import expert_analysis as analyse

NAMES = ["анна", "олег", "юлия", "john", "mary", "я", "ян", "александра"]


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_names(NAMES)


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(1)  # not initial_model's seed: that model must differ from this one
    return DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=12, n_layers=3)).eval()  # MoE layers 1, 2


def expert_analysis(model, tok, names):
    """(trained routing, letter report): the two parts of the analysis these tests read."""
    result = analyse(model, tok, names)
    return result.routed, result.letters


@pytest.fixture(scope="module")
def analysis(model, tok):
    return expert_analysis(model, tok, NAMES)


def off(layer, *experts):
    return AblationSpec(layers=(layer,), experts=(experts,), kind="reroute")


# ---------------------------------------------------------------------------------------------
# Mutual information and counting


def test_mutual_information_of_known_tables():
    perfect = torch.eye(4) * 25  # 4 equally frequent letters, each always to its own expert
    assert mutual_information(perfect) == pytest.approx(2.0)
    independent = torch.outer(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 1.0, 5.0, 2.0]))
    assert mutual_information(independent) == pytest.approx(0.0, abs=1e-12)
    two_of_four = [[1, 1, 0, 0], [0, 0, 1, 1]]  # all-k with k=2: each letter to its own pair of 4
    assert mutual_information(two_of_four) == pytest.approx(1.0)  # the ceiling log2(E/k)
    assert mutual_information(torch.zeros(3, 3)) == 0.0


def test_joint_counts_split_each_token_over_its_k_experts():
    rows = torch.tensor([0, 0, 1])
    indices = torch.tensor([[0, 2], [0, 1], [3, 2]])
    counts = joint_counts(rows, indices, n_rows=2, n_experts=4)
    assert counts.tolist() == [[1.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.5, 0.5]]
    assert counts.sum(dim=1).tolist() == [2.0, 1.0]  # every token adds exactly 1 to its row


# ---------------------------------------------------------------------------------------------
# Routing many names


def test_route_names_counts_real_tokens_only(model, tok):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    routed = route_names(model, tok, NAMES, batch_size=3)  # several batches, each cut to its longest name
    n = sum(len(name) + 1 for name in NAMES)  # the boundary + each character; padding is not a token
    assert routed.ids.shape == routed.targets.shape == routed.loss.shape == (n,)
    assert routed.layers == [1, 2]
    for layer in routed.layers:
        indices = routed.indices[layer]
        assert indices.shape == (n, model.cfg.top_k)
        assert ((indices >= 0) & (indices < model.cfg.n_routed_experts)).all()
        assert (indices == routed.top1[layer][:, None]).any(dim=-1).all()  # top-1 is one of the k
        assert routed.n_dropped[layer] == 0
    assert (routed.ids[routed.positions == 0] == BOUNDARY_ID).all()
    assert int((routed.targets == BOUNDARY_ID).sum()) == len(NAMES)  # each name ends once
    categories = routed.categories.bincount(minlength=4).tolist()
    assert categories == [len(NAMES), len(NAMES), n - 2 * len(NAMES) - 7, 7]  # "я" has no last letter
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_routing_does_not_depend_on_the_batch(model, tok):
    """Sorting by length and cutting padding must not change any token's experts or loss."""
    together = route_names(model, tok, NAMES, batch_size=len(NAMES))
    alone = route_names(model, tok, ["анна"])
    ids = together.ids.tolist()
    start = next(i for i in range(len(ids)) if ids[i : i + 5] == alone.ids.tolist())  # "анна" in the flat list
    for layer in alone.layers:
        assert torch.equal(together.indices[layer][start : start + 5], alone.indices[layer])
    assert torch.allclose(together.loss[start : start + 5], alone.loss, atol=1e-5)


def test_initial_model_is_fresh_seeded_and_leaves_the_global_rng(model):
    state = torch.random.get_rng_state()
    a, b = initial_model(model.cfg), initial_model(model.cfg)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not a.training
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.embed.weight, model.embed.weight)


def test_validation_names_match_prepare_corpus():
    names = [a + b for a in "абвгдежзик" for b in "лмнопрстуф"]
    names.append("оченьдлинноеимя")  # too long for block_size 6: both must drop it before splitting
    data = prepare_corpus(names, block_size=6, seed=7)
    assert validation_set(names, 6, 7).names == data.val.names
    assert validation_set(names, 6, 7, max_names=3).names == data.val.names[:3]


# ---------------------------------------------------------------------------------------------
# The report


def test_report_shares_rows_and_mi(analysis, model):
    routed, report = analysis
    cfg = model.cfg
    assert report.layers == [1, 2] and report.n_experts == cfg.n_routed_experts and report.top_k == cfg.top_k
    assert report.letters[0] == "|" and report.letter_counts[0] == len(NAMES)
    assert sum(report.letter_counts) == report.n_tokens == routed.ids.numel()
    assert report.categories == list(POSITION_CATEGORIES)
    assert report.mi_ceiling == pytest.approx(math.log2(cfg.n_routed_experts / cfg.top_k))
    for layer in report.layers:
        for matrices, n_rows in ((report.allk, len(report.letters)), (report.top1, len(report.letters)),
                                 (report.position_allk, 4), (report.position_top1, 4)):
            rows = matrices[layer]
            assert len(rows) == n_rows and all(len(r) == cfg.n_routed_experts for r in rows)
            assert all(sum(r) == pytest.approx(1.0) for r in rows)
        assert max(max(r) for r in report.allk[layer]) <= 1 / cfg.top_k + 1e-9  # 1/k per choice
        assert sum(report.load[layer]) == pytest.approx(1.0)
        assert 0.0 <= report.mi[layer] <= report.mi_ceiling + 1e-9
        assert 0.0 <= report.mi_initial[layer] <= report.mi_ceiling + 1e-9
        # the boundary "|" is always the same input at position 0: always the same k experts
        assert sorted(report.allk[layer][0]) == [0.0] * (cfg.n_routed_experts - cfg.top_k) + [0.5] * cfg.top_k


def test_report_mi_matches_the_joint_counts(analysis, tok):
    routed, report = analysis
    for layer in report.layers:
        joint = joint_counts(routed.ids, routed.indices[layer], tok.vocab_size, report.n_experts)
        assert report.mi[layer] == pytest.approx(mutual_information(joint))


def test_expert_profiles_letters_and_contexts(model, tok):
    _, report = expert_analysis(model, tok, ["анна"])
    for layer in report.layers:
        profiles = report.profiles[layer]
        assert sum(p.n_tokens for p in profiles) == 5 * report.top_k  # each token to k distinct experts
        contexts = {ctx for p in profiles for ctx, *_ in p.contexts}
        assert contexts == {"|", "|а", "|ан", "…анн", "…нна"}  # up to 2 previous chars + the current one
        for p in profiles:
            assert sum(c for _, c, _, _ in p.letters) == p.n_tokens
            assert all(0 < share <= 1 and 0 < of_letter <= 1 for _, _, share, of_letter in p.letters)
            nexts = {ctx: nxt for ctx, _, _, nxt, _ in p.contexts}
            assert nexts.get("…нна", "|") == "|" and nexts.get("|", "а") == "а"  # what followed


def test_dense_model_has_no_routing(tok):
    dense = DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=12, ffn_type="dense")).eval()
    routed, report = expert_analysis(dense, tok, NAMES)
    assert routed.layers == [] and not report.has_moe and report.mi_initial is None
    for figure in (letter_expert_figure(report), position_expert_figure(report), expert_load_figure(report),
                   specialisation_figure(report)):
        assert figure.layout.annotations[0].text == t("chart.no_moe", "en")


def test_route_names_rejects_no_names(model, tok):
    with pytest.raises(ValueError, match="no names"):
        route_names(model, tok, [])


# ---------------------------------------------------------------------------------------------
# Ablation


def test_disabled_expert_is_never_chosen_and_loss_changes(model, tok, analysis):
    routed, _ = analysis
    rerouted = route_names(model, tok, NAMES, off(1, 2).to_model(4))
    assert not (rerouted.indices[1] == 2).any()
    assert (routed.indices[1] == 2).any()  # it was chosen with every expert on
    assert torch.equal(rerouted.targets, routed.targets)
    ablation = ablate(model, tok, NAMES, routed, off(1, 2), min_count=1)
    letters = ablation.letters
    assert ablation.blocked_chosen == 0 and ablation.share_before > 0
    assert ablation.mean_off != pytest.approx(ablation.mean_on, abs=1e-7)
    assert letters.delta == sorted(letters.delta, reverse=True)
    assert all(d == pytest.approx(b - a) for a, b, d in zip(letters.loss_on, letters.loss_off, letters.delta))
    assert set(letters.labels) <= set(tok.chars) | {"|"}
    few = ablation_effect(routed, rerouted, tok, off(1, 2), min_count=len(NAMES))  # only "|" (the end) occurs 8 times
    assert few.letters.labels == ["|"] and few.letters.counts == [len(NAMES)]


def test_ablation_arguments_are_checked(model, tok, analysis):
    routed, _ = analysis
    with pytest.raises(ValueError, match="expert must be"):
        expert_mask(4, [4])
    with pytest.raises(ValueError, match="not a MoE layer"):
        ablate(model, tok, NAMES, routed, off(0, 1))
    with pytest.raises(ValueError, match="same names"):
        ablation_effect(routed, route_names(model, tok, NAMES[:3]), tok, off(1, 0))


def test_generate_passes_the_ablation_to_every_forward(model, tok):
    chosen: list[torch.Tensor] = []
    moe = next(m for m in model.modules() if isinstance(m, MoE) and m.layer_id == 1)
    hook = moe.gate.register_forward_hook(lambda mod, args, out: chosen.append(out[1]))
    try:
        plain = generate(model, tok, n=6, seed=3)
        n_plain = len(chosen)
        assert any((c == 0).any() for c in chosen)
        chosen.clear()
        ablated = generate(model, tok, n=6, seed=3, ablation=off(1, 0).to_model(4))
    finally:
        hook.remove()
    assert len(chosen) > 1  # prefill and every decode step went through the gate
    assert not any((c == 0).any() for c in chosen)
    assert n_plain > 1 and len(plain) == len(ablated) == 6


# ---------------------------------------------------------------------------------------------
# Charts


def _heatmaps(fig):
    return [trace for trace in fig.data if isinstance(trace, go.Heatmap)]


@pytest.mark.parametrize("view", ["allk", "top1"])
def test_letter_and_position_maps(analysis, view):
    _, report = analysis
    fig = letter_expert_figure(report, view, "ru")
    maps = _heatmaps(fig)
    assert len(maps) == len(report.layers)
    for trace, layer in zip(maps, report.layers):
        assert len(trace.z) == len(report.letters) and all(len(row) == report.n_experts for row in trace.z)
        assert all(sum(row) == pytest.approx(1.0, abs=0.01) for row in trace.z)
        assert all(v == round(v, 3) for row in trace.z for v in row)
        assert trace.customdata[0][0] == ["|", len(NAMES)]
    assert fig.layout.coloraxis.cmax == (0.5 if view == "allk" else 1.0)
    assert fig.layout.title.text == t(f"chart.experts.letters_title_{view}", "ru", k=2)
    assert list(fig.layout.yaxis.ticktext) == report.letters
    assert fig.layout.height > 15 * len(report.letters)
    positions = position_expert_figure(report, view, "en")
    assert [len(trace.z) for trace in _heatmaps(positions)] == [4] * len(report.layers)
    assert list(positions.layout.yaxis.ticktext) == [t(f"chart.experts.cat_{c}", "en") for c in POSITION_CATEGORIES]
    with pytest.raises(ValueError, match="view"):
        letter_expert_figure(report, "top2")


def test_load_and_specialisation_figures(analysis):
    _, report = analysis
    load = expert_load_figure(report, "en")
    assert len(load.data) == len(report.layers)
    assert all(len(bar.y) == report.n_experts and sum(bar.y) == pytest.approx(1.0, abs=0.01) for bar in load.data)
    assert load.layout.shapes[0].y0 == pytest.approx(1 / report.n_experts, abs=1e-3)
    assert "0" in load.layout.title.text  # dropped: 0
    mi = specialisation_figure(report, "ru")
    assert [bar.name for bar in mi.data] == [t("chart.experts.trained", "ru"), t("chart.experts.initial", "ru")]
    assert list(mi.data[0].y) == [round(report.mi[layer], 3) for layer in report.layers]
    assert list(mi.data[1].y) == [round(report.mi_initial[layer], 3) for layer in report.layers]
    assert mi.layout.shapes[0].y0 == pytest.approx(report.mi_ceiling)


def test_profile_and_ablation_figures(analysis, model, tok):
    routed, report = analysis
    profile = next(p for p in report.profiles[1] if p.n_tokens)
    fig = expert_profile_figure(profile, "en")
    letters, contexts = fig.data
    assert len(letters.y) == len(profile.letters) <= 10 and len(contexts.y) == len(profile.contexts) <= 10
    assert list(letters.x) == [round(s, 3) for _, _, s, _ in profile.letters]
    assert list(fig.layout.yaxis2.ticktext) == [ctx for ctx, *_ in profile.contexts]
    ablation = ablate(model, tok, NAMES, routed, off(1, profile.expert), min_count=1)
    bars = ablation_figure(ablation, "ru").data[0]
    assert list(bars.y) == [round(d, 3) for d in ablation.letters.delta]
    assert list(bars.y) == sorted(bars.y, reverse=True)
    ablation.letters.labels, ablation.letters.delta = [], []
    assert ablation_figure(ablation, "en").layout.annotations[0].text == t("chart.experts.ablation_empty", "en")
