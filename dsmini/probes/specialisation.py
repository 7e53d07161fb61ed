"""The Experts page's computation: route a checkpoint's validation names once, trained and untrained,
and count them by letter and (when the corpus has them) by domain.

`experts_view` (`expert_analysis` of a checkpoint's validation names) is what the page caches per
checkpoint version and the benchmark times; the ablations and the router shoot-out take that
analysis instead of routing the names again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dsmini.checkpoint import Checkpoint, checkpoint_validation_set
from dsmini.data import CharTokenizer
from dsmini.model import DSMini

from .ablation import AblationResult, AblationSpec, ablate
from .domains import DomainReport, domain_report
from .experts import MAX_NAMES, ExpertReport, RoutedTokens, expert_report, initial_model, route_names


@dataclass
class ExpertAnalysis:
    """One model's routing of `names` and what it shows.

    routed / initial: the names routed by the model and by the same config freshly initialised
    (None for a dense model); letters: the letter report; domains: the domain report (None when the
    names carry no domain labels or the model has no MoE layer).
    """

    names: list[str]
    name_domains: list[str] | None  # the domain of each of `names` (not the distinct labels)
    routed: RoutedTokens
    initial: RoutedTokens | None
    letters: ExpertReport
    domains: DomainReport | None


def expert_analysis(model: DSMini, tokenizer: CharTokenizer, names: Sequence[str],
                    domains: Sequence[str] | None = None, max_names: int = MAX_NAMES) -> ExpertAnalysis:
    """Route the first `max_names` names (with their `domains`, one label per name) through the model
    and through `initial_model` of its config, then count letters and domains."""
    names = list(names)[:max_names]
    domains = list(domains)[:max_names] if domains is not None else None
    routed = route_names(model, tokenizer, names, max_names=max_names, domains=domains)
    initial = (route_names(initial_model(model.cfg), tokenizer, names, max_names=max_names, domains=domains)
               if routed.layers else None)
    by_domain = domain_report(routed, initial) if initial is not None and routed.domain is not None else None
    return ExpertAnalysis(names=names, name_domains=domains, routed=routed, initial=initial,
                          letters=expert_report(routed, tokenizer, initial), domains=by_domain)


def experts_view(ckpt: Checkpoint) -> ExpertAnalysis:
    """The Experts page's analysis: the checkpoint's first MAX_NAMES validation names (CorpusError
    when they cannot be had), routed trained and untrained."""
    labelled = checkpoint_validation_set(ckpt.corpus, MAX_NAMES)
    return expert_analysis(ckpt.model, ckpt.tokenizer, labelled.names, labelled.domains)


def ablation_view(ckpt: Checkpoint, spec: AblationSpec, analysis: ExpertAnalysis | None = None) -> AblationResult:
    """Loss per letter and domain, and names, with `spec` switched off; `analysis`: the checkpoint's
    `experts_view`, when it was computed already."""
    analysis = analysis or experts_view(ckpt)
    return ablate(ckpt.model, ckpt.tokenizer, analysis.names, analysis.routed, spec, analysis.name_domains)


# ---------------------------------------------------------------------------------------------
# Router shoot-out: checkpoints trained on one corpus, one per router


@dataclass
class RouterRun:
    """One checkpoint of the shoot-out: its router, val loss and what its experts learned.

    imbalance[l]: max / mean expert load on the validation names in layer l (1 = perfectly even).
    """

    name: str
    router: str
    aux_loss_coef: float
    steps: int
    val_loss: float | None
    layers: list[int]
    mi: dict[int, float]
    mi_initial: dict[int, float]
    imbalance: dict[int, float]
    domains: DomainReport | None


@dataclass
class RouterShootout:
    runs: list[RouterRun]

    @property
    def has_domains(self) -> bool:
        return all(run.domains is not None for run in self.runs)


def router_run(name: str, ckpt: Checkpoint, analysis: ExpertAnalysis) -> RouterRun:
    """Summarise one checkpoint's analysis; domain MI when the names have domains, else letter MI."""
    cfg, letters = ckpt.model_config, analysis.letters
    by_domain = analysis.domains
    load = {layer: max(shares) / (sum(shares) / len(shares)) for layer, shares in letters.load.items()}
    return RouterRun(
        name=name, router=cfg.router, aux_loss_coef=cfg.aux_loss_coef, steps=ckpt.step,
        val_loss=ckpt.summary.get("val_loss"), layers=letters.layers,
        mi=dict(by_domain.mi if by_domain else letters.mi),
        mi_initial=dict(by_domain.mi_initial if by_domain else letters.mi_initial or {}),
        imbalance=load, domains=by_domain,
    )


def router_shootout(entries: Sequence[tuple[str, Checkpoint, ExpertAnalysis]]) -> RouterShootout:
    """Checkpoints (name, checkpoint, its `expert_analysis`) side by side, in the order given."""
    return RouterShootout([router_run(name, ckpt, analysis) for name, ckpt, analysis in entries])


def shootout_view(ckpts: Sequence[Checkpoint], analyses: Sequence[ExpertAnalysis] | None = None) -> RouterShootout:
    """The shoot-out of `ckpts`, in this order; `analyses`: their `experts_view`s, when computed already."""
    analyses = analyses or [experts_view(ckpt) for ckpt in ckpts]
    return router_shootout([(ckpt.name, ckpt, analysis) for ckpt, analysis in zip(ckpts, analyses, strict=True)])
