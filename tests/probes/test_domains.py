"""Domains and ablation modes: relative load and I(domain; expert) on constructed routings with known
answers; reroute vs drop vs top-r masking on a tiny model; the per-domain loss change and its ratio."""

import math

import pytest
import torch

from dsmini.charts.domains import domain_damage_figure, domain_map_figure, domain_mi_figure, spec_label
from dsmini.data import CharTokenizer
from dsmini.model import ExpertAblation, ForwardOptions, MoE
from dsmini.probes.ablation import DAMAGE_FLOOR, AblationSpec, ablate, domain_top_experts, expert_mask
from dsmini.probes.domains import domain_mi, domain_report, relative_load
from dsmini.probes.experts import RoutedTokens, letter_group
from dsmini.probes.specialisation import expert_analysis
from tests.helpers import tiny_model

RU = ["анна", "олег", "юлия", "иван", "пётр", "ян"]
EN = ["john", "mary", "anna", "jack", "lily", "bo"]
NAMES, DOMAINS = RU + EN, ["ru"] * len(RU) + ["en"] * len(EN)


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_names(NAMES)


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, seed=3, n_layers=3)  # MoE layers 1, 2


@pytest.fixture(scope="module")
def analysis(model, tok):
    return expert_analysis(model, tok, NAMES, DOMAINS)


def _routed(domain: list[int], indices: list[list[int]], n_experts: int = 4) -> RoutedTokens:
    n = len(domain)
    zeros = torch.zeros(n, dtype=torch.long)
    return RoutedTokens(
        vocab_size=2, n_experts=n_experts, top_k=len(indices[0]), n_shared_experts=1, n_names=n, ids=zeros,
        targets=zeros, positions=zeros, n_chars=zeros, context=zeros[:, None], loss=torch.zeros(n),
        indices={1: torch.tensor(indices)}, domain_labels=["a", "b"], domain=torch.tensor(domain),
    )


# ---------------------------------------------------------------------------------------------
# Measures with known answers


def test_perfect_split_has_one_bit_and_the_expected_relative_load():
    # domain a always to experts {0, 1}, domain b always to {2, 3}: two balanced domains, fully separated
    routed = _routed([0, 0, 1, 1], [[0, 1], [0, 1], [2, 3], [2, 3]])
    mixed = _routed([0, 0, 1, 1], [[0, 2], [1, 3], [0, 2], [1, 3]])  # every expert sees both domains equally
    report = domain_report(routed, mixed)
    assert report.mi[1] == pytest.approx(1.0) and report.mi_ceiling == pytest.approx(1.0)
    assert report.mi_initial[1] == pytest.approx(0.0, abs=1e-12)
    assert report.relative_load[1] == [[2.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 2.0]]  # share 1/2 / even 1/4
    assert report.relative_load_initial[1] == [[1.0] * 4, [1.0] * 4]
    assert report.top_experts[1]["a"][:2] == [0, 1] and report.top_experts[1]["b"][:2] == [2, 3]
    assert report.mi_ratio(1) == math.inf and report.clearest_layer == 1
    assert domain_mi(routed) == {1: pytest.approx(1.0)}


def test_relative_load_rows_average_to_one_and_empty_rows_are_zero():
    load = relative_load(torch.tensor([[3.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert load.tolist() == [[3.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert load[0].mean() == pytest.approx(1.0)


def test_letter_groups():
    assert [letter_group(c) for c in "|АяZq-"] == [
        "boundary", "cyrillic_upper", "cyrillic_lower", "latin_upper", "latin_lower", "other"]


def test_analysis_of_a_mixed_corpus(analysis):
    report = analysis.domains
    assert report.domains == ["en", "ru"] and report.layers == [1, 2]
    assert sum(report.domain_tokens) == analysis.routed.ids.numel() == sum(len(n) + 1 for n in NAMES)
    for layer in report.layers:
        for row in report.relative_load[layer] + report.relative_load_initial[layer]:
            assert sum(row) / len(row) == pytest.approx(1.0)  # shares times E average to 1
        assert 0 <= report.mi[layer] <= report.mi_ceiling + 1e-9
    groups = analysis.letters.letter_groups
    assert groups[0] == "boundary" and groups == sorted(groups, key=["boundary", "cyrillic_lower",
                                                                     "latin_lower"].index)


def test_unlabelled_names_have_no_domain_report(model, tok):
    assert expert_analysis(model, tok, NAMES).domains is None


# ---------------------------------------------------------------------------------------------
# Ablation modes on one MoE layer


@pytest.fixture(scope="module")
def moe(model):
    return next(m for m in model.modules() if isinstance(m, MoE) and m.layer_id == 1)


def _moe(moe, x, ablation=None):
    with torch.no_grad():
        return moe(x, ForwardOptions(ablation={} if ablation is None else {moe.layer_id: ablation}))


def test_drop_keeps_the_choice_and_removes_the_output_without_renormalising(moe):
    torch.manual_seed(0)
    x = torch.randn(1, 16, moe.gate.weight.size(1))
    y, routing = _moe(moe, x)
    blocked = expert_mask(4, [int(routing.indices[0, 0, 0])])
    y_drop, r_drop = _moe(moe, x, ExpertAblation(blocked=blocked, mode="drop"))
    assert torch.equal(r_drop.indices, routing.indices)  # the router chose exactly as before
    hit = blocked[routing.indices]  # (1, 16, k) assignments to the dropped expert
    assert hit.any()
    assert (r_drop.weights[hit] == 0).all()
    assert torch.allclose(r_drop.weights[~hit], routing.weights[~hit])  # not renormalised
    assert r_drop.load[blocked].sum() == 0
    untouched = ~hit.any(dim=-1)  # tokens that did not choose it are unchanged
    assert torch.allclose(y_drop[untouched], y[untouched], atol=1e-6)
    assert not torch.allclose(y_drop[~untouched], y[~untouched])


def test_drop_with_every_expert_blocked_leaves_only_the_shared_expert(moe):
    x = torch.randn(2, 5, moe.gate.weight.size(1))
    y, _ = _moe(moe, x, ExpertAblation(blocked=torch.ones(4, dtype=torch.bool), mode="drop"))
    with torch.no_grad():
        assert torch.allclose(y, moe.shared_experts(x), atol=1e-6)
    y_none, _ = _moe(moe, x, ExpertAblation(blocked=torch.ones(4, dtype=torch.bool), mode="drop", shared_off=True))
    assert torch.count_nonzero(y_none) == 0


def test_reroute_never_chooses_the_blocked_and_renormalises(moe):
    x = torch.randn(1, 16, moe.gate.weight.size(1))
    _, routing = _moe(moe, x, ExpertAblation(blocked=expert_mask(4, [0, 1]), mode="reroute"))
    assert set(routing.indices.flatten().tolist()) == {2, 3}
    assert torch.allclose(routing.weights.sum(dim=-1), torch.ones(1, 16))


def test_mask_top_r_removes_each_tokens_favourites(moe):
    x = torch.randn(1, 16, moe.gate.weight.size(1))
    _, plain = _moe(moe, x)
    _, masked = _moe(moe, x, ExpertAblation(mask_top=1))
    favourite = plain.indices.gather(-1, plain.weights.argmax(-1, keepdim=True))  # (1, 16, 1) top-1 choice
    assert not (masked.indices == favourite).any()
    # its old second choice moves up to first place
    second = plain.indices.gather(-1, plain.weights.argmin(-1, keepdim=True))
    assert (masked.indices == second).any(dim=-1).all()
    with pytest.raises(ValueError, match="top_k=2"):
        _moe(moe, x, ExpertAblation(mask_top=3))  # 4 experts - 3 masked < k
    with pytest.raises(ValueError, match="mode"):
        _moe(moe, x, ExpertAblation(blocked=expert_mask(4, [0]), mode="erase"))


# ---------------------------------------------------------------------------------------------
# Ablation results


def test_dropping_a_domains_top_experts_reports_per_domain_loss(model, tok, analysis):
    spec = domain_top_experts(analysis.domains, "ru", [1, 2], n=2)
    assert spec.layers == (1, 2) and all(len(e) == 2 for e in spec.experts) and spec.kind == "drop"
    result = ablate(model, tok, NAMES, analysis.routed, spec, DOMAINS, min_count=1)
    assert sorted(result.domains.labels) == ["en", "ru"]
    assert sum(result.domains.counts) == analysis.routed.ids.numel()  # every token counted in its domain
    assert result.blocked_chosen > 0  # drop: the experts are still chosen, their output removed
    ratio = result.damage_ratio("ru")
    ru, en = result.domains.delta_of("ru"), result.domains.delta_of("en")
    assert ratio == pytest.approx(ru / max(en, DAMAGE_FLOOR))
    assert result.others_delta("ru") == pytest.approx(en)
    assert len(result.names_on) == len(result.names_off) == 8
    fig = domain_damage_figure(result, "ru")
    assert [round(d, 3) for d in result.domains.delta] == list(fig.data[0].y)
    assert "убрать экспертов" in spec_label(spec, "ru")


def test_shared_expert_off_and_mask_top_specs(model, tok, analysis):
    shared = AblationSpec(layers=(1, 2), experts=((), ()), kind="drop", shared_off=True)
    result = ablate(model, tok, NAMES, analysis.routed, shared, DOMAINS, min_count=1)
    assert result.mean_off != pytest.approx(result.mean_on) and result.blocked_chosen == 0
    masked = ablate(model, tok, NAMES, analysis.routed, AblationSpec(layers=(2,), kind="mask_top", mask_top=1),
                    DOMAINS, min_count=1)
    assert masked.mean_off != pytest.approx(masked.mean_on)
    for bad, message in [
        (AblationSpec(layers=(1,), experts=((),), kind="drop"), "nothing is switched off"),
        (AblationSpec(layers=(1,), experts=((9,),), kind="drop"), "experts must be in"),
        (AblationSpec(layers=(1,), kind="mask_top"), "r >= 1"),
        (AblationSpec(layers=(1,), experts=((0,),), kind="explode"), "kind"),
        (AblationSpec(layers=(), experts=()), "at least one MoE layer"),
    ]:
        with pytest.raises(ValueError, match=message):
            bad.check([1, 2], 4)


def test_domain_figures(analysis):
    report = analysis.domains
    fig = domain_map_figure(report, "en")
    assert len(fig.data) == len(report.layers)
    assert [list(row) for row in fig.data[0].z] == [[round(v, 3) for v in row] for row in report.relative_load[1]]
    assert list(fig.data[0].y) == ["English", "Russian"]
    assert fig.layout.coloraxis.cmid == 1
    initial = domain_map_figure(report, "ru", initial=True)
    assert [list(row) for row in initial.data[1].z] == [[round(v, 3) for v in row]
                                                         for row in report.relative_load_initial[2]]
    assert list(initial.data[0].y) == ["английские", "русские"]
    mi = domain_mi_figure(report, "en")
    assert list(mi.data[0].y) == [round(report.mi[layer], 3) for layer in report.layers]
    assert list(mi.data[1].y) == [round(report.mi_initial[layer], 3) for layer in report.layers]
