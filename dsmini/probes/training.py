"""Training history -> what the live Train page plots: loss curves, expert load and I(domain; expert)
over time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dsmini.config import ModelConfig
from dsmini.data import Corpus, CorpusStats, Dropped, corpus_stats
from dsmini.i18n import DEFAULT_LANGUAGE, t


def expert_load_history(history: list[dict[str, Any]], cfg: ModelConfig | None = None) -> dict[str, Any]:
    """Per MoE layer, each step's share of routed assignments per expert, and how uneven it is.

    Returns a dict:
      steps      [step, ...] of the rows that carry expert load
      share      share[j] is a steps x E matrix for the j-th MoE layer; each row sums to 1
      imbalance  imbalance[j][s] = max load / mean load: 1 is perfect balance, E is one expert
                 taking everything
      layers     block ids of the MoE layers (`ModelConfig.moe_block_ids`) if `cfg` is given, else None:
                 the history alone does not say which blocks its load lists belong to
      n_layers   cfg.n_layers (ids from there on are MTP blocks), or None
    """
    rows = [h for h in history if h.get("expert_load")]
    n_moe = len(rows[0]["expert_load"]) if rows else 0
    layers = cfg.moe_block_ids if cfg is not None else None
    if layers is not None and rows and len(layers) != n_moe:
        raise ValueError(f"history has load for {n_moe} MoE layers but the config has {len(layers)}")
    share: list[list[list[float]]] = [[] for _ in range(n_moe)]
    for h in rows:
        if len(h["expert_load"]) != n_moe:
            raise ValueError(f"step {h['step']} has load for {len(h['expert_load'])} MoE layers, not {n_moe}")
        for j, load in enumerate(h["expert_load"]):
            share[j].append(_shares(load))
    return {
        "steps": [h["step"] for h in rows],
        "share": share,
        "imbalance": [[max(row) * len(row) for row in layer] for layer in share],  # max/mean = max share * E
        "layers": layers,
        "n_layers": cfg.n_layers if cfg is not None else None,
    }


def _shares(load: list[int]) -> list[float]:
    total = sum(load)
    return [c / total if total else 0.0 for c in load]


def loss_curves(history: list[dict[str, Any]],
                lang: str = DEFAULT_LANGUAGE) -> dict[str, tuple[list[int], list[float]]]:
    """The loss curves of the live chart: legend entry (in `lang`) -> (steps, values), finite values only
    (val exists only on eval steps; a NaN step is left out rather than drawn as a gap at infinity).

    Curves: "train" (next-character loss), "val", "mtp-k" per MTP depth, and "aux" only if the run used
    a load-balancing loss (a flat zero line would only squash the others), in this order whichever step
    each first appears on (so a curve keeps its colour as the run goes on); a curve with no value is absent.
    """
    train, val, aux = (t(f"chart.loss.{key}", lang) for key in ("train", "val", "aux"))
    depths = max((len(h.get("mtp_losses") or ()) for h in history), default=0)
    mtp = [t("chart.loss.mtp", lang, k=k) for k in range(1, depths + 1)]
    uses_aux = any(h.get("aux_loss") for h in history)
    curves: dict[str, tuple[list[int], list[float]]] = {name: ([], []) for name in [train, val, *mtp, aux]}
    for h in history:
        values = [(train, h.get("main_loss")), (val, h.get("val_loss")), *zip(mtp, h.get("mtp_losses") or ())]
        if uses_aux:
            values.append((aux, h.get("aux_loss")))
        for name, v in values:
            if v is not None and math.isfinite(v):
                curves[name][0].append(h["step"])
                curves[name][1].append(float(v))
    return {name: curve for name, curve in curves.items() if curve[0]}


def domain_mi_history(history: list[dict[str, Any]], cfg: ModelConfig | None = None) -> dict[str, Any]:
    """I(domain; expert) per main MoE layer on the eval steps that measured it (`StepMetrics.domain_mi`).

    Returns a dict:
      steps     [step, ...] of the rows that carry domain_mi (none for unlabelled corpora, dense
                models and histories older than the field)
      mi        mi[j][s] bits, the j-th main MoE layer at steps[s]
      initial   initial[j] bits, the same names through the same config untrained (the latest row's;
                it is constant within a run)
      best      index j of the layer with the highest MI at the latest eval, or None
      ratio     mi[best][-1] / initial[best]: how many times the untrained value (inf from 0), or None
      layers    block ids of the main MoE layers if `cfg` is given, else None
    """
    rows = [h for h in history if h.get("domain_mi")]
    n_moe = len(rows[-1]["domain_mi"]) if rows else 0
    layers = list(cfg.moe_layer_ids) if cfg is not None else None
    if layers is not None and rows and len(layers) != n_moe:
        raise ValueError(f"history has I(domain; expert) for {n_moe} MoE layers but the config has {len(layers)}")
    for h in rows:
        if len(h["domain_mi"]) != n_moe or len(h["domain_mi_initial"]) != n_moe:
            raise ValueError(
                f"step {h['step']} has I(domain; expert) for {len(h['domain_mi'])} MoE layers, not {n_moe}"
            )
    mi = [[float(h["domain_mi"][j]) for h in rows] for j in range(n_moe)]
    initial = [float(v) for v in rows[-1]["domain_mi_initial"]] if rows else []
    best = max(range(n_moe), key=lambda j: mi[j][-1]) if rows else None
    return {
        "steps": [h["step"] for h in rows],
        "mi": mi,
        "initial": initial,
        "best": best,
        "ratio": _times(mi[best][-1], initial[best]) if best is not None else None,
        "layers": layers,
    }


def _times(value: float, base: float) -> float:
    return value / base if base > 0 else math.inf


EXAMPLE_NAMES = 8  # names of the picked corpus the Train page shows


@dataclass(frozen=True)
class CorpusView:
    """What the Train page says about the corpus picked: counts, a few names, what was dropped."""

    stats: CorpusStats
    examples: list[str]
    dropped: Dropped
    domain_counts: dict[str, int]  # {} when unlabelled


def corpus_view(corpus: Corpus) -> CorpusView:
    return CorpusView(corpus_stats(corpus.names), corpus.names[:EXAMPLE_NAMES], corpus.dropped, corpus.domain_counts)
