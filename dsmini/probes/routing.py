"""Read-only traces for the explorer: what the model routed and expected, character by character.

Every function returns plain Python data (lists, floats, a DataFrame), so charts and tests read
it without torch. Nothing is cached here and nothing is written to the model: one loaded
checkpoint serves every user of the app at once (DESIGN.md §4).

Axes: t positions (the boundary, then the name's characters), E routed experts, k chosen per token.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import torch

from ..config import ModelConfig
from ..data import BOUNDARY_ID, CharTokenizer
from ..generate import TOP_ALTERNATIVES, inference
from ..model import DSMini
from ..moe import Routing


@dataclass
class NameTrace:
    """One name as the model read it. Position i holds `labels[i]`: "|" (the boundary), then the name.

    Per MoE layer id l in `layers` (main model only: MTP blocks do not run at inference):
      experts[l][i]       the routed experts chosen at position i, heaviest gate weight first
      gate_weights[l][i]  their gate weights (sum to 1)
      router_probs[l][i]  the router's distribution over all E routed experts (sums to 1)
    Per position i, about the character that follows it:
      next_top[i]     the most likely (label, prob), most likely first
      next_actual[i]  (label, prob) of the real next character; the end marker after the last one
    A dense model has `layers == []` and zero experts.
    """

    name: str
    labels: list[str]
    layers: list[int]
    experts: dict[int, list[list[int]]]
    gate_weights: dict[int, list[list[float]]]
    router_probs: dict[int, list[list[float]]]
    next_top: list[list[tuple[str, float]]]
    next_actual: list[tuple[str, float]]
    n_shared_experts: int
    n_routed_experts: int
    top_k: int

    @property
    def has_moe(self) -> bool:
        return bool(self.layers)


def trace_name(model: DSMini, tokenizer: CharTokenizer, name: str) -> NameTrace:
    """Run the model once on `[B] + name` and record routing and next-character beliefs per position.

    Raises the tokenizer's UnknownCharacterError for characters outside the alphabet, and
    ValueError if the name does not fit the model's block_size.
    """
    cfg = model.cfg
    name = unicodedata.normalize("NFC", name)  # as the corpus was: "й" typed as two code points is one
    ids = _frame(cfg, tokenizer, name)
    with inference(model):
        out = model(torch.tensor([ids], device=model.head.weight.device))
        probs = out.logits[0].float().softmax(dim=-1)  # (t, V)
        next_top, next_actual = _next_chars(probs, ids, tokenizer)
        routes = {r.layer: _layer_route(r) for r in out.routing if r.layer < cfg.n_layers}
    moe = bool(routes)
    return NameTrace(
        name=name,
        labels=[tokenizer.label(i) for i in ids],
        layers=sorted(routes),
        experts={layer: route[0] for layer, route in routes.items()},
        gate_weights={layer: route[1] for layer, route in routes.items()},
        router_probs={layer: route[2] for layer, route in routes.items()},
        next_top=next_top,
        next_actual=next_actual,
        n_shared_experts=cfg.n_shared_experts if moe else 0,
        n_routed_experts=cfg.n_routed_experts if moe else 0,
        top_k=cfg.top_k if moe else 0,
    )


def _frame(cfg: ModelConfig, tokenizer: CharTokenizer, name: str) -> list[int]:
    """`[B] name` as ids, checked against the model: same vocabulary, fits in block_size."""
    if tokenizer.vocab_size != cfg.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens but the model was built for {cfg.vocab_size}")
    ids = [BOUNDARY_ID, *tokenizer.encode(name)]
    if len(ids) > cfg.block_size:
        raise ValueError(f"name {name!r} has {len(name)} characters; this model reads at most {cfg.block_size - 1}")
    return ids


def _next_chars(
    probs: torch.Tensor, ids: list[int], tokenizer: CharTokenizer
) -> tuple[list[list[tuple[str, float]]], list[tuple[str, float]]]:
    """Top alternatives and the actual next character's probability at each position; probs (t, V)."""
    actual_ids = ids[1:] + [BOUNDARY_ID]  # position i predicts i + 1; after the last char, the end
    top = probs.topk(min(TOP_ALTERNATIVES, probs.size(-1)), dim=-1)  # (t, k)
    actual = probs.gather(-1, torch.tensor(actual_ids, device=probs.device)[:, None]).squeeze(-1)  # (t,)
    next_top = [
        [(tokenizer.label(j), p) for j, p in zip(row_ids, row_probs)]
        for row_ids, row_probs in zip(top.indices.tolist(), top.values.tolist())
    ]
    next_actual = [(tokenizer.label(j), p) for j, p in zip(actual_ids, actual.tolist())]
    return next_top, next_actual


def _layer_route(r: Routing) -> tuple[list[list[int]], list[list[float]], list[list[float]]]:
    """One layer's (experts, gate weights, router probs) for the single traced row, heaviest first.

    The gate picks by biased score (sigmoid_bias) or noisy logit, so its order is not the weight order.
    """
    order = r.weights[0].argsort(dim=-1, descending=True, stable=True)  # (t, k)
    experts = r.indices[0].gather(-1, order).tolist()
    weights = r.weights[0].gather(-1, order).float().tolist()
    return experts, weights, r.probs[0].float().tolist()


# ---------------------------------------------------------------------------------------------
# Training history (StepMetrics.to_dict() rows)


def moe_layer_ids(cfg: ModelConfig) -> list[int]:
    """Block ids of the MoE layers in `StepMetrics.expert_load` order: main layers, then MTP blocks
    (MTP depth k is block `n_layers + k - 1`)."""
    blocks = range(cfg.n_layers + cfg.mtp_depth)
    return [i for i in blocks if cfg.is_moe_layer(i)]
