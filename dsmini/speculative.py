"""Self-speculative decoding with the depth-1 MTP head (DeepSeek-V3 §2.2).

The MTP head, trained to predict the next-but-one token, drafts it; one main-model pass over the
newest token and the draft verifies it (speculative sampling: Leviathan et al. 2023, Chen et al.
2023). An accepted draft gives two tokens for one pass. The loop is gpt-fast's: `speculative_decode`
runs the prompt once, then `_round`s (draft, verify, accept or reject, truncate the cache) until the
name ends. Sequence layout and `max_len` as in `dsmini.generate`.

Axes: b batch, s new positions, d d_model, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .data import CharTokenizer
from .generate import (
    NameRow,
    check_sampling_settings,
    decode_one_token,
    inference,
    next_token_probs,
    prefill,
    resolve_max_len,
    sample_next,
    seeded_generator,
)
from .model import DSMini, ModelCache


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SpecStep:
    """One drafted token of speculative decoding: what the MTP head guessed, what the model chose."""

    position: int  # index of the drafted token in `SpecResult.ids`
    draft_id: int
    draft: str
    accepted: bool
    chosen_id: int  # the token the main model kept at that position (== draft_id when accepted)
    chosen: str


@dataclass
class SpecResult:
    """One speculatively decoded name and how the drafting went."""

    text: str
    ids: list[int]  # framed, as in `dsmini.generate.Generated.ids`
    finished: bool
    generated_tokens: int  # tokens decided after the prefix: characters + the end token
    main_forward_passes: int  # prefill included
    timeline: list[SpecStep] = field(default_factory=list)  # one entry per drafted token

    # counts are derived from the timeline, so the two can never disagree
    @property
    def drafts_proposed(self) -> int:
        return len(self.timeline)

    @property
    def drafts_accepted(self) -> int:
        return sum(step.accepted for step in self.timeline)

    @property
    def acceptance_rate(self) -> float:
        """Accepted / proposed drafts; 0.0 when nothing was drafted."""
        return self.drafts_accepted / self.drafts_proposed if self.drafts_proposed else 0.0

    @property
    def chars_per_forward(self) -> float:
        """Generated tokens per main-model forward pass (prefill included).

        Plain decoding makes at most one token per pass; each accepted draft adds one for free.
        """
        return self.generated_tokens / self.main_forward_passes


# ---------------------------------------------------------------------------------------------
# Drafting and verifying


def draft_next(
    model: DSMini, hidden: list[torch.Tensor], tokens: list[int], cache: ModelCache, absorb: bool = True
) -> torch.Tensor:
    """Feed the MTP head its pending pairs (h_i, t_{i+1}) in order; logits (1, V) of the last pair's t_{i+2}.

    hidden: main states h_i, each (1, 1, d) or (1, s, d); tokens: the t_{i+1}, one per state.
    `cache.mtp` then holds every pair once: the MTP block attends over all of them, as in training.
    """
    h = torch.cat(hidden, dim=1)  # (1, s, d)
    idx = torch.tensor([tokens], device=h.device)  # (1, s)
    return model.mtp_draft(h, idx, cache=cache, absorb=absorb)[:, -1]  # (1, V)


def verify_draft(
    p_logits: torch.Tensor,
    q_logits: torch.Tensor,
    draft: torch.Tensor,
    temperature: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accept or replace drafted tokens. Pure, batched: p_logits (b, V) are the main model's at the
    draft's position, q_logits (b, V) the draft head's, draft (b,) the drafted ids.

    Returns (accepted (b,) bool, token (b,)): the draft where accepted, else the main model's pick.
    Either way `token` is distributed exactly as a token sampled from the main model alone.
    """
    if temperature == 0:
        # greedy: the main model picks argmax p; the draft stands iff it is that very token
        target = p_logits.argmax(dim=-1)
        return target == draft, target
    # Speculative sampling (Leviathan et al. 2023, Chen et al. 2023), p and q at the same temperature.
    p = next_token_probs(p_logits, temperature)  # (b, V)
    q = next_token_probs(q_logits, temperature)  # (b, V)
    p_d = p.gather(-1, draft[:, None]).squeeze(-1)  # (b,)
    q_d = q.gather(-1, draft[:, None]).squeeze(-1)  # (b,) > 0: the draft was drawn from q
    # accept with probability min(1, p(d) / q(d)): u < p/q, written without the division
    u = torch.rand(p_d.shape, generator=generator, device=p_d.device)
    accepted = u * q_d < p_d
    # on reject, draw from normalise(max(0, p - q)): the mass p has where q under-proposed.
    # It is empty only when p == q, and then every draft is accepted; p keeps multinomial valid.
    residual = (p - q).clamp_min(0.0)
    residual = torch.where(residual.sum(dim=-1, keepdim=True) > 0, residual, p)
    replacement = torch.multinomial(residual, 1, generator=generator).squeeze(-1)  # (b,)
    return accepted, torch.where(accepted, draft, replacement)


@dataclass
class _PendingPairs:
    """MTP pairs (h_i, x_{i+1}) the draft head has not read yet, oldest first. Between rounds the
    last pair is (h_{n-1}, x_n): x_n is the newest token and h_{n-1} the main state that chose it."""

    hidden: list[torch.Tensor]  # each (1, s, d)
    tokens: list[int]


def speculative_decode(
    model: DSMini,
    tokenizer: CharTokenizer,
    prefix: str = "",
    max_len: int | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    absorb: bool = True,
) -> SpecResult:
    """One name, drafting each next-but-one token with the MTP head and verifying it in the same pass.

    A short loop over `_round`s, as gpt-fast's `generate` loops over its `speculative_decode`: each
    round drafts one token and makes one main-model pass that decides one or two tokens.
    Greedy (temperature 0) output equals `generate(..., temperature=0)` token for token; sampled
    output has the main model's distribution (see `verify_draft`).
    """
    max_len = resolve_max_len(model, max_len)
    check_sampling_settings(temperature)
    if not model.has_mtp:
        raise ValueError("speculative decoding needs a model with an MTP module (mtp_depth >= 1)")
    row = NameRow(tokenizer.frame_for(model.cfg, prefix, max_len, what="prefix"), max_len)
    n_start = len(row.ids)
    device = model.head.weight.device
    timeline: list[SpecStep] = []
    with inference(model):
        generator = seeded_generator(seed, device)
        cache = model.new_cache(1, max_len=max_len + 1, with_mtp=True)
        out = prefill(model, torch.tensor([row.ids], device=device), cache, absorb)
        token = int(sample_next(out.logits[:, -1], temperature, generator=generator))  # x_n after the prefix
        pending = _PendingPairs([out.hidden], row.ids[1:] + [token])  # the prefix's pairs, then (h_{n-1}, x_n)
        row.push(token)
        passes = 1
        while not row.done:
            if row.n_chars == max_len:
                # no room for a drafted character: one plain step decides between [B] and a cut
                out = decode_one_token(model, torch.tensor([[row.ids[-1]]], device=device), cache, absorb)
                row.push(int(sample_next(out.logits[:, -1], temperature, generator=generator)))
            else:
                timeline.append(_round(model, tokenizer, row, pending, cache, temperature, generator, absorb))
            passes += 1
    return SpecResult(
        text=tokenizer.decode(row.ids),
        ids=row.ids,
        finished=row.finished,
        generated_tokens=len(row.ids) - n_start,
        main_forward_passes=passes,
        timeline=timeline,
    )


def _round(
    model: DSMini,
    tokenizer: CharTokenizer,
    row: NameRow,
    pending: _PendingPairs,
    cache: ModelCache,
    temperature: float,
    generator: torch.Generator | None,
    absorb: bool,
) -> SpecStep:
    """One round, one main-model pass; returns its drafted token's timeline entry.

    On entry x_n = `row.ids[-1]` is decided, the row has room for another character and `pending`
    ends with (h_{n-1}, x_n). On exit the round's one or two tokens are pushed to `row`, and
    `pending` holds the pairs the next round's draft reads.
    """
    # 1. draft: the MTP head reads (h_{n-1}, x_n) (and any older unread pairs) and proposes d for x_{n+1}
    q_logits = draft_next(model, pending.hidden, pending.tokens, cache, absorb)  # (1, V)
    draft = sample_next(q_logits, temperature, generator=generator)  # (1,)
    # 2. verify: x_n and d at positions n, n+1 in one main pass give p(x_{n+1}) at n and, if d
    #    stands, p(x_{n+2}) at n+1
    pair = torch.tensor([[row.ids[-1], int(draft)]], device=q_logits.device)  # (1, 2)
    out = model(pair, cache=cache, absorb=absorb)
    # 3. accept or reject: greedy keeps d iff it is the main model's argmax; sampling keeps it with
    #    probability min(1, p(d) / q(d)) and else draws from max(0, p - q), so x_{n+1} is
    #    distributed as the main model alone would draw it
    accepted, chosen = verify_draft(out.logits[:, 0], q_logits, draft, temperature, generator)
    accepted, chosen, drafted = bool(accepted), int(chosen), int(draft)
    step = SpecStep(
        position=len(row.ids),
        draft_id=drafted,
        draft=tokenizer.label(drafted),
        accepted=accepted,
        chosen_id=chosen,
        chosen=tokenizer.label(chosen),
    )
    if not accepted:
        # 4. truncate: position n+1 was computed on the rejected d; keep 0..n, the next write lands there
        cache.truncate(len(row.ids))
    row.push(chosen)  # room was checked by the caller, so it is kept
    # (h_n, x_{n+1}) for the next draft: h_n does not depend on d (causal)
    pending.hidden, pending.tokens = [out.hidden[:, :1]], [chosen]
    if accepted and not row.done:
        # d is confirmed and already in the cache, so position n+1 gives x_{n+2}: a bonus token
        bonus = int(sample_next(out.logits[:, 1], temperature, generator=generator))
        pending.hidden.append(out.hidden[:, 1:])  # (h_{n+1}, x_{n+2})
        pending.tokens.append(bonus)
        row.push(bonus)
    return step
