"""Generation: prefix -> names, with a KV cache (self-speculative decoding: `dsmini.decoding.speculative`).

The habits of gpt-fast's `generate.py`: `prefill` runs the prompt once, `decode_one_token` feeds
one token per row; a cache object is created per call and passed in, so one loaded model serves
every user (nothing here writes to the model).

Sequence layout: a name is framed by the boundary token, `[B] c1 .. cn [B]`. The model reads
`[B] prefix`, and a name ends when the model emits `[B]`. `max_len` counts characters of the
whole name (prefix included) and is at most `block_size - 1`, so even a name of `max_len`
characters can be fed whole and the model still asked whether it ends there.

Axes: b batch (names generated together), s new positions, d d_model, V vocab, k alternatives.
"""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from dsmini.data import BOUNDARY_ID, CharTokenizer
from dsmini.model import DSMini, ExpertAblation, ModelCache, ModelOutput

TOP_ALTERNATIVES = 5  # alternatives listed per generated character when detail=True


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class StepDetail:
    """One generated token as the model saw it (for the explorer).

    `prob` and `top` come from the model's own softmax at temperature 1, whatever the sampling
    settings: they show what the model believes, not the knobs the user turned. A token drawn
    at temperature 2 can therefore show a small `prob`.
    """

    token_id: int
    char: str  # the character, or BOUNDARY_SYMBOL for the end of the name
    prob: float
    top: list[tuple[str, float]]  # the TOP_ALTERNATIVES most likely tokens, most likely first


@dataclass
class Generated:
    text: str  # the whole name, prefix included
    ids: list[int]  # framed: [B] + characters, + [B] if finished; tokenizer.decode(ids) == text
    finished: bool  # the model ended the name (emitted [B]) rather than hitting max_len
    steps: list[StepDetail] | None = None  # one per generated token, when detail=True

    @property
    def shown(self) -> str:
        """The name as shown to a person: a name cut at max_len ends in CUT_MARK, so it does not pass for one
        the model ended (at max length 6, «Красно…» is not the name «Красно»)."""
        return marked(self.text, self.finished)


CUT_MARK = "…"


def marked(text: str, finished: bool) -> str:
    """`text`, followed by CUT_MARK unless the model ended it."""
    return text if finished else text + CUT_MARK


# ---------------------------------------------------------------------------------------------
# Arguments


def resolve_max_len(model: DSMini, max_len: int | None) -> int:
    """Characters a name may have: `block_size - 1` by default and at most (one position is [B])."""
    limit = model.cfg.block_size - 1
    if max_len is None:
        return limit
    if not _is_int(max_len) or max_len < 1:
        raise ValueError(f"max_len must be an integer >= 1, got {max_len!r}")
    return min(max_len, limit)


def _is_int(value) -> bool:
    """A whole number, numpy's included (widgets may hand those over), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# Smallest sampling settings that are not greedy in disguise. Below them the draw is the argmax anyway
# (a 0.1-nat logit gap over 0.001 is e^-100 of odds; the likeliest of <= 201 characters holds more
# than 1e-6 of the mass), and far below them float32 breaks: logits / 1e-38 overflow to inf, and a
# top_p of 1e-300 rounds to 0, which drops every character, so nothing is left to sample.
MIN_TEMPERATURE = 1e-3
MIN_TOP_P = 1e-6


def check_sampling_settings(temperature: float, top_k: int = 0, top_p: float = 1.0) -> None:
    """Raise ValueError naming the first bad sampling argument."""
    if not (isinstance(temperature, numbers.Real) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if 0 < temperature < MIN_TEMPERATURE:
        raise ValueError(
            f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE}: smaller values sample as greedy "
            f"does and overflow float32, got {temperature!r}"
        )
    if not _is_int(top_k) or top_k < 0:
        raise ValueError(f"top_k must be an integer >= 0 (0 = off), got {top_k!r}")
    if not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] (1 = off), got {top_p!r}")
    if top_p < MIN_TOP_P:
        raise ValueError(
            f"top_p must be at least {MIN_TOP_P:g}: a smaller one keeps only the likeliest character "
            f"(use top_k 1) and rounds to 0 in float32, got {top_p!r}"
        )


def seeded_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A private generator per call: seeded runs replay exactly and never touch the global RNG."""
    if seed is None:
        return None
    if not _is_int(seed) or not -(2**63) <= seed < 2**64:  # the range torch's generators take
        raise ValueError(f"seed must be an integer in [-2^63, 2^64) or None, got {seed!r}")
    return torch.Generator(device=device).manual_seed(seed)


@contextmanager
def inference(model: DSMini) -> Iterator[None]:
    """Eval mode and no autograd for one call, then the caller's mode back.

    Checkpoints the app serves are already in eval mode, so for them this writes nothing; the
    trainer samples mid-run from the model it is training and gets train mode back.
    """
    was_training = model.training
    if was_training:
        model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            model.train()


@dataclass
class NameRow:
    """One name being generated: framed ids so far, and whether (and how) it is over."""

    ids: list[int]
    max_len: int
    done: bool = False
    finished: bool = False

    @property
    def n_chars(self) -> int:
        return len(self.ids) - 1 - self.finished

    def push(self, token: int) -> bool:
        """Take the model's next token; False if it was dropped because the name is full."""
        if token == BOUNDARY_ID:
            self.ids.append(token)
            self.done = self.finished = True
            return True
        if self.n_chars == self.max_len:  # a character past max_len: cut the name here
            self.done = True
            return False
        self.ids.append(token)
        return True


# ---------------------------------------------------------------------------------------------
# Sampling (pure functions of logits)


def next_token_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """The distribution `sample_next` draws from: logits (b, V) -> probs (b, V), rows sum to 1.

    softmax(logits / temperature), cut to the top_k most likely tokens, then to the nucleus: the
    fewest most likely tokens whose mass reaches top_p (the most likely token always stays).
    """
    logits = logits.float() / temperature  # temperature > 0 here; 0 (greedy) never gets a distribution
    if top_k:
        top = logits.topk(min(top_k, logits.size(-1)), dim=-1).indices  # (b, k)
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top, True)  # exactly k, ties or not
        logits = logits.masked_fill(~keep, float("-inf"))
    probs = logits.softmax(dim=-1)  # (b, V)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # drop a token when the tokens before it already hold top_p of the mass
        drop_sorted = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token of each row: logits (b, V) -> ids (b,). Temperature 0 is argmax."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (b,)


def _step_details(logits: torch.Tensor, tokens: torch.Tensor, tokenizer: CharTokenizer) -> list[StepDetail]:
    """What the model thought of each row's chosen token: logits (b, V), tokens (b,)."""
    probs = logits.float().softmax(dim=-1)  # (b, V) temperature 1: the model's own belief
    chosen = probs.gather(-1, tokens[:, None]).squeeze(-1)  # (b,)
    top = probs.topk(min(TOP_ALTERNATIVES, probs.size(-1)), dim=-1)  # (b, k)
    return [
        StepDetail(
            token_id=t,
            char=tokenizer.label(t),
            prob=p,
            top=[(tokenizer.label(i), q) for i, q in zip(top_ids, top_probs)],
        )
        for t, p, top_ids, top_probs in zip(
            tokens.tolist(), chosen.tolist(), top.indices.tolist(), top.values.tolist()
        )
    ]


# ---------------------------------------------------------------------------------------------
# Cached decoding


def prefill(
    model: DSMini, idx: torch.Tensor, cache: ModelCache, absorb: bool = True,
    ablation: dict[int, ExpertAblation] | None = None,
) -> ModelOutput:
    """Run the prompt `[B] prefix` (b, s) through the model once, filling `cache` from position 0.

    The last position's logits give the first generated token; `.hidden` (b, s, d) feeds the MTP head.
    """
    if cache.length != 0:
        raise ValueError(f"prefill needs an empty cache, this one holds {cache.length} positions")
    return model(idx, cache=cache, absorb=absorb, ablation=ablation)


def decode_one_token(
    model: DSMini, token: torch.Tensor, cache: ModelCache, absorb: bool = True,
    ablation: dict[int, ExpertAblation] | None = None,
) -> ModelOutput:
    """Feed one token per row (b, 1) at position `cache.length`; attention reads the rest from the cache."""
    if token.dim() != 2 or token.size(1) != 1:
        raise ValueError(f"decode_one_token takes one token per row, shape (b, 1), got {tuple(token.shape)}")
    return model(token, cache=cache, absorb=absorb, ablation=ablation)


def generate(
    model: DSMini,
    tokenizer: CharTokenizer,
    prefix: str = "",
    n: int = 10,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    max_len: int | None = None,
    seed: int | None = None,
    absorb: bool = True,
    detail: bool = False,
    ablation: dict[int, ExpertAblation] | None = None,
) -> list[Generated]:
    """Generate `n` names starting with `prefix`, all in one batch over one KV cache.

    temperature 0 = greedy; top_k 0 and top_p 1.0 = off. `max_len` caps characters of the whole
    name (prefix included); a name that reaches it unfinished comes back with finished=False.
    `absorb`: MLA's weight-absorbed attention (the decoding path); same numbers as the naive one.
    `detail`: also return, per generated token, its probability and the top alternatives.
    A fixed `seed` replays exactly (for the same n and settings).
    `ablation`: {layer_id: ExpertAblation} experts switched off (explorer only; see dsmini.model.moe).
    """
    max_len = resolve_max_len(model, max_len)
    if not _is_int(n) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    check_sampling_settings(temperature, top_k, top_p)
    start = tokenizer.frame_for(model.cfg, prefix, max_len, what="prefix")
    device = model.head.weight.device
    rows = [NameRow(list(start), max_len) for _ in range(n)]
    steps: list[list[StepDetail]] = [[] for _ in range(n)]
    with inference(model):
        generator = seeded_generator(seed, device)
        cache = model.new_cache(n, max_len=max_len + 1)  # positions 0..max_len: [B] + max_len chars
        idx = torch.tensor(start, device=device).expand(n, -1)  # (b, s) every row shares the prefix
        logits = prefill(model, idx, cache, absorb, ablation).logits[:, -1]  # (b, V)
        while True:
            tokens = sample_next(logits, temperature, top_k, top_p, generator)  # (b,)
            details = _step_details(logits, tokens, tokenizer) if detail else None
            for r, (row, token) in enumerate(zip(rows, tokens.tolist())):
                if not row.done and row.push(token) and details:
                    steps[r].append(details[r])
            live = torch.tensor([not row.done for row in rows], device=device)  # (b,)
            if not live.any():
                break
            # finished rows keep stepping on [B] so the batch stays rectangular; their logits are ignored
            feed = torch.where(live, tokens, BOUNDARY_ID)  # (b,)
            logits = decode_one_token(model, feed[:, None], cache, absorb, ablation).logits[:, -1]  # (b, V)
    return [
        Generated(tokenizer.decode(row.ids), row.ids, row.finished, steps[r] if detail else None)
        for r, row in enumerate(rows)
    ]


def greedy_without_cache(model: DSMini, ids: list[int], max_len: int | None = None) -> list[int]:
    """Greedy decoding that re-runs the whole sequence every step: no cache, naive attention.

    The reference that cached decoding must match token for token, and the baseline the
    benchmark measures the cache's speed-up against. `ids` is the framed start `[B] prefix`;
    returns framed ids as in `Generated.ids`.
    """
    max_len = resolve_max_len(model, max_len)
    if not ids or ids[0] != BOUNDARY_ID or len(ids) - 1 > max_len:
        raise ValueError(f"ids must be [{BOUNDARY_ID}] + at most {max_len} character ids, got {ids!r}")
    row = NameRow(list(ids), max_len)
    with inference(model):
        while not row.done:
            idx = torch.tensor([row.ids], device=model.head.weight.device)  # (1, s) the whole sequence
            row.push(int(model(idx).logits[0, -1].argmax()))
    return row.ids
