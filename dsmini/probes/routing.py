"""Read-only traces for the explorer: what the model routed and expected, character by character.

Every function returns plain Python data (lists, floats, a DataFrame), so charts and tests read
it without torch. Nothing is cached here and nothing is written to the model: one loaded
checkpoint serves every user of the app at once (the app caches one model per checkpoint version).

Axes: t positions (the boundary, then the name's characters), E routed experts, k chosen per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dsmini.config import ModelConfig
from dsmini.data import BOUNDARY_ID, CharTokenizer, nfc
from dsmini.decoding import (
    TOP_ALTERNATIVES,
    check_sampling_settings,
    inference,
    resolve_max_len,
    sample_next,
    seeded_generator,
)
from dsmini.model import DSMini, ModelOutput, Routing


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
    name = nfc(name)  # the name as the model reads it
    ids = tokenizer.frame_for(cfg, name)
    with inference(model):
        out = model(torch.tensor([ids], device=model.head.weight.device))
        probs = out.logits[0].float().softmax(dim=-1)  # (t, V)
        next_top, next_actual = _next_chars(probs, ids, tokenizer)
        routes = _main_routes(out, cfg)
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


STEP_CANDIDATES = 8  # next-character candidates shown per step of step-through decoding


@dataclass(frozen=True)
class DecodeStep:
    """One step of step-through decoding: the model read `[B] + read` once and added one token.

    `read` is the text the model read, `text` the name after the step (`read` again when the model
    ended it). About the token fed last (read's last character; the boundary "|" when read is empty):
      fed                 its label
      experts[l]          the routed experts MoE layer l chose for it, heaviest gate weight first
      gate_weights[l]     their gate weights (sum to 1)
    About what follows it, at temperature 1 (the model's own belief, whatever the sampling settings):
      candidates  the STEP_CANDIDATES likeliest next tokens (label, prob), most likely first
      char, prob  the token picked (BOUNDARY_SYMBOL when the model ended the name) and its probability
    `ended`: the model chose the end token; `finished`: nothing can follow any more (it ended, or
    the name is max_len long).
    """

    read: str
    text: str
    fed: str
    layers: list[int]
    experts: dict[int, list[int]]
    gate_weights: dict[int, list[float]]
    candidates: list[tuple[str, float]]
    token_id: int
    char: str
    prob: float
    ended: bool
    finished: bool


def step_once(
    model: DSMini, tokenizer: CharTokenizer, text: str, temperature: float, seed: int, greedy: bool,
    top_k: int = 0, top_p: float = 1.0, max_len: int | None = None,
) -> DecodeStep:
    """Read `[B] + text` and pick the next token: the argmax if `greedy`, else a draw from
    `next_token_probs(logits, temperature, top_k, top_p)` (what `generate` samples from).

    The whole text is re-run each step, without a cache: a step needs only the text so far, which
    the page keeps in the session. The draw of step i (the text has i characters) uses a generator
    seeded by (seed, i) alone, so a walk replays exactly, in any session, from any of its steps.
    `max_len` caps characters of the name as in `generate`. Raises ValueError when the text already
    has max_len characters, and as `trace_name` does for text the model cannot read.
    """
    cfg = model.cfg
    max_len = resolve_max_len(model, max_len)
    check_sampling_settings(temperature, top_k, top_p)
    text = nfc(text)  # its length is what the model reads
    if len(text) >= max_len:
        raise ValueError(f"text {text!r} has {len(text)} characters; names here have at most {max_len}")
    ids = tokenizer.frame_for(cfg, text)
    device = model.head.weight.device
    with inference(model):
        out = model(torch.tensor([ids], device=device))
        logits = out.logits[:, -1]  # (1, V) what follows the last fed token
        probs = logits[0].float().softmax(dim=-1)  # (V,)
        # seed * block_size + i is one-to-one on (seed, i) because i < block_size
        generator = None if greedy else seeded_generator(seed * cfg.block_size + len(text), device)
        token = int(sample_next(logits, 0.0 if greedy else temperature, top_k, top_p, generator))
        top = probs.topk(min(STEP_CANDIDATES, probs.size(-1)))  # (k,)
        routes = _main_routes(out, cfg)
    ended = token == BOUNDARY_ID
    new_text = text if ended else text + tokenizer.decode([token])
    return DecodeStep(
        read=text,
        text=new_text,
        fed=tokenizer.label(ids[-1]),
        layers=sorted(routes),
        experts={layer: route[0][-1] for layer, route in routes.items()},
        gate_weights={layer: route[1][-1] for layer, route in routes.items()},
        candidates=[(tokenizer.label(j), p) for j, p in zip(top.indices.tolist(), top.values.tolist())],
        token_id=token,
        char=tokenizer.label(token),
        prob=float(probs[token]),
        ended=ended,
        finished=ended or len(new_text) == max_len,
    )


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


def _main_routes(out: ModelOutput, cfg: ModelConfig) -> dict[int, tuple[list, list, list]]:
    """`_layer_route` of each MoE layer of the main model (MTP blocks do not run at inference)."""
    return {r.layer: _layer_route(r) for r in out.routing if r.layer < cfg.n_layers}


def _layer_route(r: Routing) -> tuple[list[list[int]], list[list[float]], list[list[float]]]:
    """One layer's (experts, gate weights, router probs) for the single traced row, heaviest first.

    The gate picks by biased score (sigmoid_bias) or noisy logit, so its order is not the weight order.
    """
    order = r.weights[0].argsort(dim=-1, descending=True, stable=True)  # (t, k)
    experts = r.indices[0].gather(-1, order).tolist()
    weights = r.weights[0].gather(-1, order).float().tolist()
    return experts, weights, r.probs[0].float().tolist()

