"""Switch experts off and measure what breaks: loss per letter and per domain, names before/after.

Three kinds (`dsmini.model.moe.ExpertAblation` holds the mechanics and why each exists):
  reroute    the chosen experts can no longer be picked; the router takes its next choice
  drop       they are picked as before but their weighted output is removed, nothing replaces it,
             the other experts' weights are not renormalised: what they contributed
  mask_top   each token loses its r favourite experts and chooses top-k from the rest
             (DeepSeekMoE §4.5, which masks the top experts to test how much they are needed)
Any kind can also switch the shared expert off.

The names are the ones `experts.route_names` routed with every expert on (`base`); the ablated run
covers the same tokens in the same order, so the two losses compare token by token. The model is
never written to: the ablation travels with the forward call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from dsmini.data import CharTokenizer
from dsmini.decoding import generate
from dsmini.model import DSMini, ExpertAblation

from .domains import DomainReport
from .experts import RoutedTokens, route_names

ABLATION_KINDS = ("reroute", "drop", "mask_top")
MIN_LETTER_TOKENS = 10  # letters rarer than this as targets are left out (too noisy)
DAMAGE_FLOOR = 1e-3  # nats/char: the smallest loss change reported (losses are shown to 3 decimals)
GENERATED_NAMES, GENERATION_SEED, GENERATION_TEMPERATURE = 8, 0, 0.8  # names with experts on and off


@dataclass(frozen=True)
class AblationSpec:
    """One ablation as plain, hashable settings (what the page's widgets give).

    layers: the MoE layers it acts on; experts[i]: the routed experts switched off in layers[i]
    (reroute and drop); mask_top: r (mask_top only); shared_off: the shared experts off as well.
    """

    layers: tuple[int, ...]
    experts: tuple[tuple[int, ...], ...] = ()
    kind: str = "drop"
    mask_top: int = 0
    shared_off: bool = False

    def check(self, moe_layers: Sequence[int], n_experts: int) -> None:
        """ValueError naming what is wrong; a spec that switches nothing off is wrong too."""
        if self.kind not in ABLATION_KINDS:
            raise ValueError(f"ablation kind must be one of {ABLATION_KINDS}, got {self.kind!r}")
        if not self.layers:
            raise ValueError("pick at least one MoE layer")
        unknown = [layer for layer in self.layers if layer not in moe_layers]
        if unknown:
            raise ValueError(f"layer {unknown[0]} is not a MoE layer of this model (MoE layers: {list(moe_layers)})")
        if self.kind == "mask_top":
            if self.experts or self.mask_top < 1:
                raise ValueError("mask_top takes r >= 1 and no expert list (it masks each token's own favourites)")
        else:
            if len(self.experts) != len(self.layers):
                raise ValueError(
                    f"give one expert list per layer: {len(self.layers)} layers, {len(self.experts)} lists"
                )
            bad = sorted({e for group in self.experts for e in group if not 0 <= e < n_experts})
            if bad:
                raise ValueError(f"experts must be in [0, {n_experts - 1}], got {bad}")
            if not any(self.experts) and not self.shared_off:
                raise ValueError("nothing is switched off: pick at least one expert or the shared expert")

    def to_model(self, n_experts: int) -> dict[int, ExpertAblation]:
        """{layer: ExpertAblation}: what `DSMini.forward(ablation=...)` and `generate` take."""
        if self.kind == "mask_top":
            return {layer: ExpertAblation(mask_top=self.mask_top, shared_off=self.shared_off) for layer in self.layers}
        return {
            layer: ExpertAblation(blocked=expert_mask(n_experts, experts), mode=self.kind, shared_off=self.shared_off)
            for layer, experts in zip(self.layers, self.experts)
        }


def expert_mask(n_experts: int, experts: Sequence[int]) -> torch.Tensor:
    """(E,) bool, True for `experts`: the blocked-expert mask of an `ExpertAblation`."""
    bad = [e for e in experts if not 0 <= e < n_experts]
    if bad:
        raise ValueError(f"expert must be in [0, {n_experts - 1}], got {bad}")
    mask = torch.zeros(n_experts, dtype=torch.bool)
    mask[list(experts)] = True
    return mask


def domain_top_experts(report: DomainReport, domain: str, layers: Sequence[int], n: int, kind: str = "drop",
                       ) -> AblationSpec:
    """The one-click ablation "the top-n experts of `domain`", in each of `layers`, by relative load."""
    if domain not in report.domains:
        raise ValueError(f"unknown domain {domain!r}; this model's domains: {report.domains}")
    if not 1 <= n <= report.n_experts:
        raise ValueError(f"n must be in [1, {report.n_experts}], got {n}")
    return AblationSpec(layers=tuple(layers), experts=tuple(tuple(sorted(report.top_experts[layer][domain][:n]))
                                                            for layer in layers), kind=kind)


@dataclass
class LossChange:
    """Mean next-character loss (nats) per group, with the experts on and off; sorted by `delta`, largest first."""

    labels: list[str]
    counts: list[int]
    loss_on: list[float]
    loss_off: list[float]
    delta: list[float]

    def delta_of(self, label: str) -> float:
        return self.delta[self.labels.index(label)]


@dataclass
class AblationResult:
    """What switching `spec` off did to the same names (see the module docstring).

    letters: by *target* letter (the character being predicted; "|" = the end of the name), letters
    with at least `min_count` tokens. domains: by the name's domain (empty for an unlabelled corpus).
    blocked_chosen: assignments to the switched-off experts in the ablated run (0 when rerouting:
    the mask works); share_before: share of tokens that had one of them among their k, all experts on.
    """

    spec: AblationSpec
    mean_on: float
    mean_off: float
    letters: LossChange
    domains: LossChange
    blocked_chosen: int
    share_before: float
    names_on: list[str]
    names_off: list[str]

    def others_delta(self, domain: str) -> float:
        """The mean loss change of the domains other than `domain`."""
        others = [d for label, d in zip(self.domains.labels, self.domains.delta) if label != domain]
        if not others:
            raise ValueError(f"need another domain than {domain!r} to compare with")
        return sum(others) / len(others)

    def damage_ratio(self, domain: str) -> float:
        """Loss increase on `domain` / the mean increase on the other domains (> 1: it hurt `domain` most).

        The other domains' increase counts as at least DAMAGE_FLOOR: when switching experts off leaves
        them unchanged (or slightly better), a bare ratio would be a division by ~0 (hundreds, or inf).
        """
        return self.domains.delta_of(domain) / max(self.others_delta(domain), DAMAGE_FLOOR)


def loss_change(on: RoutedTokens, off: RoutedTokens, groups: torch.Tensor, labels: list[str],
                min_count: int = 1) -> LossChange:
    """Mean loss per group (groups: (n,) index into `labels` per token) on and off, largest increase first."""
    n = len(labels)
    counts = torch.bincount(groups, minlength=n)  # (G,)
    mean_on = torch.bincount(groups, weights=on.loss.double(), minlength=n) / counts.clamp_min(1)
    mean_off = torch.bincount(groups, weights=off.loss.double(), minlength=n) / counts.clamp_min(1)
    delta = mean_off - mean_on
    keep = [i for i in delta.argsort(descending=True, stable=True).tolist() if counts[i] >= max(min_count, 1)]
    return LossChange(
        labels=[labels[i] for i in keep], counts=[int(counts[i]) for i in keep],
        loss_on=[float(mean_on[i]) for i in keep], loss_off=[float(mean_off[i]) for i in keep],
        delta=[float(delta[i]) for i in keep],
    )


def ablation_effect(on: RoutedTokens, off: RoutedTokens, tokenizer: CharTokenizer, spec: AblationSpec,
                    min_count: int = MIN_LETTER_TOKENS) -> AblationResult:
    """Compare two routings of the same names (all on, `spec` off); names are left empty."""
    if not torch.equal(on.targets, off.targets):
        raise ValueError("the two runs did not route the same names")
    vocab_labels = [tokenizer.label(i) for i in range(on.vocab_size)]
    domains = (loss_change(on, off, on.domain, on.domain_labels) if on.domain is not None
               else LossChange([], [], [], [], []))
    blocked = spec.to_model(on.n_experts)

    def hits(routed: RoutedTokens) -> list[torch.Tensor]:  # (n, k) bool per layer: a switched-off expert
        return [a.blocked[routed.indices[layer]] for layer, a in blocked.items() if a.blocked is not None]

    before = hits(on)
    return AblationResult(
        spec=spec, mean_on=float(on.loss.mean()), mean_off=float(off.loss.mean()),
        letters=loss_change(on, off, on.targets, vocab_labels, min_count), domains=domains,
        blocked_chosen=sum(int(h.sum()) for h in hits(off)),
        share_before=float(torch.stack([h.any(dim=-1) for h in before]).any(dim=0).float().mean()) if before else 0.0,
        names_on=[], names_off=[],
    )


def ablate(model: DSMini, tokenizer: CharTokenizer, names: Sequence[str], base: RoutedTokens, spec: AblationSpec,
           domains: Sequence[str] | None = None, min_count: int = MIN_LETTER_TOKENS) -> AblationResult:
    """Rerun `names` (and their `domains`) with `spec` switched off, compare with `base` (the same names
    routed with everything on), and generate names with the same seed both ways."""
    spec.check(base.layers, base.n_experts)
    ablation = spec.to_model(base.n_experts)
    off = route_names(model, tokenizer, names, ablation, max_names=base.n_names, domains=domains)
    result = ablation_effect(base, off, tokenizer, spec, min_count)
    result.names_on, result.names_off = (
        [g.text for g in generate(model, tokenizer, n=GENERATED_NAMES, temperature=GENERATION_TEMPERATURE,
                                  seed=GENERATION_SEED, ablation=switched)]
        for switched in (None, ablation)
    )
    return result
