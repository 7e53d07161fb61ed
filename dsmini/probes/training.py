"""Training history -> what the live Train page plots: loss curves and expert load over time."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..config import ModelConfig
from .routing import moe_layer_ids


def expert_load_history(history: list[dict[str, Any]], cfg: ModelConfig | None = None) -> dict[str, Any]:
    """Per MoE layer, each step's share of routed assignments per expert, and how uneven it is.

    Returns a dict:
      steps      [step, ...] of the rows that carry expert load
      share      share[j] is a steps x E matrix for the j-th MoE layer; each row sums to 1
      imbalance  imbalance[j][s] = max load / mean load: 1 is perfect balance, E is one expert
                 taking everything
      layers     block ids of the MoE layers (see `moe_layer_ids`) if `cfg` is given, else None:
                 the history alone does not say which blocks its load lists belong to
      n_layers   cfg.n_layers (ids from there on are MTP blocks), or None
    """
    rows = [h for h in history if h.get("expert_load")]
    n_moe = len(rows[0]["expert_load"]) if rows else 0
    layers = moe_layer_ids(cfg) if cfg is not None else None
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


def loss_frame(history: list[dict[str, Any]]) -> pd.DataFrame:
    """Losses in long format (step, series, value) for st.line_chart / Vega-Lite, which redraws in
    place as rows arrive. One row per finite value; missing values (val on non-eval steps) are skipped.

    Series: "train" (next-character loss), "val", "mtp-k" per MTP depth, and "aux" only if the run
    used a load-balancing loss (a flat zero line would only squash the others).
    """
    uses_aux = any(h.get("aux_loss") for h in history)
    rows = []
    for h in history:
        values = [("train", h.get("main_loss")), ("val", h.get("val_loss"))]
        values += [(f"mtp-{k}", v) for k, v in enumerate(h.get("mtp_losses") or [], start=1)]
        if uses_aux:
            values.append(("aux", h.get("aux_loss")))
        rows += [(h["step"], series, float(v)) for series, v in values if v is not None and math.isfinite(v)]
    return pd.DataFrame(rows, columns=["step", "series", "value"])
