"""Which experts take which domain (e.g. Cyrillic vs Latin names): DeepSeek-V3's Fig. 9 measure.

A domain is a label on each name (`corpora.Corpus.domains`). For one MoE layer, count every routed
assignment of every input token by (its name's domain, the expert chosen), each of a token's k
choices counting 1/k (`experts.joint_counts`). Then:

  relative load of expert e on domain d = (share of d's assignments that went to e) / (1 / E)
      1 = an even share; 0 = the expert never serves that domain; E = it serves nothing else
      (DeepSeek-V3 §4.5.2 / Fig. 9 plot exactly this, per layer, for the Pile's domains)
  I(domain; expert) in bits = the mutual information of that table: 0 when the choice of expert
      says nothing about the domain, H(domain) (1 bit for two balanced domains) when it says all.

Why domains and not letters: a freshly initialised router already sends each *letter* to fixed
experts (its random weights hash the embedding), so letter MI is high before training and may fall
with it; domain MI starts near 0, so a rise is learned structure. Always read it beside the same
config untrained (`experts.initial_model`).

Axes: D domains, E routed experts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dsmini.config import ModelConfig
from dsmini.data import CorpusData
from dsmini.model import DSMini

from .experts import RoutedTokens, initial_model, joint_counts, mutual_information, route_names


@dataclass
class DomainReport:
    """Domain x expert statistics per main MoE layer, trained and untrained (plain data for charts).

    domains / domain_tokens: the labels (sorted) and how many input tokens each has.
    Per layer id (dicts keyed by layer):
      relative_load[l][d][e]   see the module docstring; relative_load_initial: the untrained model
      mi[l], mi_initial[l]     I(domain; expert) in bits
      top_experts[l][d]        experts ordered by relative load on domain d, highest first
    mi_ceiling = H(domain) in bits: the most I(domain; expert) can be.
    """

    domains: list[str]
    domain_tokens: list[int]
    n_experts: int
    top_k: int
    layers: list[int]
    relative_load: dict[int, list[list[float]]]
    relative_load_initial: dict[int, list[list[float]]]
    mi: dict[int, float]
    mi_initial: dict[int, float]
    mi_ceiling: float
    top_experts: dict[int, dict[str, list[int]]]

    def mi_ratio(self, layer: int) -> float:
        """How many times the untrained value the trained I(domain; expert) is (inf from 0)."""
        initial = self.mi_initial[layer]
        return self.mi[layer] / initial if initial > 0 else math.inf

    @property
    def clearest_layer(self) -> int:
        """The layer whose experts separate the domains most (highest trained MI)."""
        return max(self.layers, key=lambda layer: self.mi[layer])


def domain_counts(routed: RoutedTokens, layer: int) -> torch.Tensor:
    """(D, E) assignments per (domain, expert) in one layer, each token's k choices counting 1/k."""
    if routed.domain is None:
        raise ValueError("these names carry no domain labels")
    return joint_counts(routed.domain, routed.indices[layer], len(routed.domain_labels), routed.n_experts)


def relative_load(counts: torch.Tensor) -> torch.Tensor:
    """(D, E) counts -> (D, E) relative load: each row's shares times E (1 = even); empty rows 0."""
    totals = counts.sum(dim=1, keepdim=True)
    return torch.where(totals > 0, counts / totals.clamp_min(1e-12) * counts.size(1), torch.zeros_like(counts))


def domain_entropy(routed: RoutedTokens) -> float:
    """H(domain) in bits over the routed tokens: the ceiling of I(domain; expert)."""
    p = torch.bincount(routed.domain, minlength=len(routed.domain_labels)).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log2()).sum())


def domain_mi(routed: RoutedTokens) -> dict[int, float]:
    """I(domain; expert) in bits per main MoE layer (what the Train page's live curve plots)."""
    return {layer: mutual_information(domain_counts(routed, layer)) for layer in routed.layers}


# Val names routed on eval steps for the live I(domain; expert) curve. The plug-in MI estimate's bias
# is ~(D-1)(E-1) / (2 n ln 2) bits: < 0.005 bits for 2 domains, 8 experts and the ~1,400 tokens of
# 200 names, far below the ~0.05 bits of an untrained router. Cost (small preset, 2 CPU threads): ~50 ms
# a probe, less than one train step (~60 ms): < 1% of a run that evaluates every 100 steps.
DOMAIN_PROBE_NAMES = 200


def live_domain_mi(model_cfg: ModelConfig,
                   data: CorpusData) -> Callable[[DSMini], tuple[list[float], list[float]]] | None:
    """The live I(domain; expert) curve of a run (the Train page's, the CLI's, the benchmark's): pass it
    as the Trainer's `domain_mi`. For the run's config and data, a measure that takes the model on an eval
    step to (bits per main MoE layer in layer order, the same config untrained) over the first
    DOMAIN_PROBE_NAMES val names; None when there is nothing to measure: no MoE layer, or fewer than two
    domains to tell apart. Eval mode, no autograd: no RNG is drawn, so a run trains the same with it or
    without it."""
    names, domains = data.val.names[:DOMAIN_PROBE_NAMES], (data.val.domains or [])[:DOMAIN_PROBE_NAMES]
    if model_cfg.n_moe_layers == 0 or len(set(domains)) < 2:
        return None

    def bits(model: DSMini) -> list[float]:
        routed = route_names(model, data.tokenizer, names, max_names=len(names), domains=domains)
        return [b for _, b in sorted(domain_mi(routed).items())]

    initial: list[float] = []  # the Experts page's contrast (same config, seed-0 weights), on the first eval step

    def measure(model: DSMini) -> tuple[list[float], list[float]]:
        if not initial:  # `initial_model` seeds under fork_rng, so the training RNG stays where it was
            initial.extend(bits(initial_model(model_cfg)))
        return bits(model), list(initial)  # each step's metrics own their list

    return measure


def domain_report(routed: RoutedTokens, initial: RoutedTokens) -> DomainReport:
    """Count `routed` (trained) and `initial` (the same names, untrained model) by domain."""
    if routed.domain is None:
        raise ValueError("these names carry no domain labels")
    report = DomainReport(
        domains=list(routed.domain_labels),
        domain_tokens=torch.bincount(routed.domain, minlength=len(routed.domain_labels)).tolist(),
        n_experts=routed.n_experts, top_k=routed.top_k, layers=routed.layers,
        relative_load={}, relative_load_initial={}, mi={}, mi_initial={},
        mi_ceiling=domain_entropy(routed), top_experts={},
    )
    for layer in routed.layers:
        counts, counts_initial = domain_counts(routed, layer), domain_counts(initial, layer)
        load = relative_load(counts)
        report.relative_load[layer] = load.tolist()
        report.relative_load_initial[layer] = relative_load(counts_initial).tolist()
        report.mi[layer] = mutual_information(counts)
        report.mi_initial[layer] = mutual_information(counts_initial)
        report.top_experts[layer] = {
            domain: load[d].argsort(descending=True, stable=True).tolist() for d, domain in enumerate(report.domains)
        }
    return report
