"""Self-speculative decoding with the depth-1 MTP head (DeepSeek-V3 §2.2).

The MTP head, trained to predict the next-but-one token, drafts it; one main-model pass over the
newest token and the draft verifies it (speculative sampling: Leviathan et al. 2023, Chen et al.
2023). An accepted draft gives two tokens for one pass. The loop is gpt-fast's: `speculative_generate`
runs the prompts once, then rounds (`_draft`: one MTP step; `_verify`: one main pass, accept or
reject, bonus token) until every name ends. It decodes many names in lockstep, each row accepting
its own drafts (`_Batch` says how rows that advance at different speeds share one cache);
`speculative_decode` is a batch of one. Sequence layout and `max_len` as in `dsmini.generate`.

Axes: b batch, m rows that draft, s new positions, d d_model, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from .data import BOUNDARY_ID, CharTokenizer
from .generate import (
    NameRow,
    check_sampling_settings,
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


# ---------------------------------------------------------------------------------------------
# Decoding: many names in lockstep over one cache (a single name is a batch of one)


@dataclass
class _Batch:
    """The rows of one call: per-row progress on the host, tokens and main-model states in buffers
    allocated once for every position (nothing is concatenated or rebuilt per round).

    Rows advance at their own pace (an accepted draft adds two tokens, a rejected one one), yet
    share one cache, so a row's slot j is its position j and every pass feeds all rows one window
    of slots [start, end): a row whose cache already holds slots past `start` feeds those tokens
    again (their entries are rewritten with the same values), a row that ends before `end` is
    padded. Causal attention makes both harmless: no real position reads a slot to its right, and
    every slot a real position reads was last written from that row's own real tokens.
    """

    rows: list[NameRow]
    tokens: torch.Tensor  # (b, max_len + 2) long: x_j at slot j, x_0 = [B]; pads past a row's end
    hidden: torch.Tensor  # (b, max_len + 1, d) main states h_j, as last computed for slot j
    cached: list[int]  # per row: main-cache slots that hold states of its real tokens
    paired: list[int]  # per row: MTP pairs (h_i, x_{i+1}) already in `cache.mtp` (i < paired)
    passes: list[int]  # per row: main-model passes it took part in, prefill included
    timeline: list[list[SpecStep]]

    def write(self, slots: list[tuple[int, int, int]]) -> None:
        """Store decided tokens, (row, slot, token) each, in one indexed write."""
        if slots:
            r, j, t = torch.tensor(slots, device=self.tokens.device).unbind(dim=1)
            self.tokens[r, j] = t


def _new_batch(model: DSMini, starts: list[list[int]], max_len: int, device: torch.device) -> _Batch:
    b = len(starts)
    tokens = torch.full((b, max_len + 2), BOUNDARY_ID, dtype=torch.long, device=device)
    for r, ids in enumerate(starts):
        tokens[r, : len(ids)] = torch.tensor(ids, device=device)
    hidden = torch.zeros(b, max_len + 1, model.cfg.d_model, device=device, dtype=model.head.weight.dtype)
    rows = [NameRow(list(ids), max_len) for ids in starts]
    return _Batch(rows, tokens, hidden, [len(ids) for ids in starts], [0] * b, [1] * b, [[] for _ in starts])


def speculative_generate(
    model: DSMini,
    tokenizer: CharTokenizer,
    prefixes: str | Sequence[str] = "",
    n: int = 1,
    max_len: int | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    absorb: bool = True,
    draft: bool = True,
) -> list[SpecResult]:
    """Many names at once: one per prefix of a sequence, or `n` from one prefix string. Every
    round is one MTP step for all rows that draft, then one main pass for all live rows that
    decides one or two tokens per row, each row accepting or rejecting its own draft.

    Greedy (temperature 0) gives each row exactly `generate(prefix, n=1, temperature=0)`; sampled
    rows have the main model's distribution (see `verify_draft`). A fixed `seed` replays exactly.
    `draft=False` skips the MTP step: plain decoding of many prefixes through the same loop, the
    control that batched speculative decoding is timed against.
    """
    max_len = resolve_max_len(model, max_len)
    check_sampling_settings(temperature)
    if not model.has_mtp:
        raise ValueError("speculative decoding needs a model with an MTP module (mtp_depth >= 1)")
    prefixes = [prefixes] * n if isinstance(prefixes, str) else list(prefixes)
    if not prefixes:
        raise ValueError("speculative_generate needs at least one prefix")
    starts = [tokenizer.frame_for(model.cfg, p, max_len, what="prefix") for p in prefixes]
    device = model.head.weight.device
    with inference(model):
        generator = seeded_generator(seed, device)
        batch = _new_batch(model, starts, max_len, device)
        cache = model.new_cache(len(starts), max_len=max_len + 1, with_mtp=True)
        _prefill(model, batch, cache, temperature, generator, absorb)
        while live := [r for r, row in enumerate(batch.rows) if not row.done]:
            # a row with max_len characters has no room for a draft: its pass only decides [B] or a cut
            drafting = [r for r in live if batch.rows[r].n_chars < max_len] if draft else []
            q_logits, drafts = _draft(model, batch, cache, drafting, temperature, generator, absorb)
            _verify(model, tokenizer, batch, cache, live, drafting, q_logits, drafts, temperature, generator, absorb)
    return [
        SpecResult(
            text=tokenizer.decode(row.ids),
            ids=row.ids,
            finished=row.finished,
            generated_tokens=len(row.ids) - len(start),
            main_forward_passes=passes,
            timeline=timeline,
        )
        for row, start, passes, timeline in zip(batch.rows, starts, batch.passes, batch.timeline)
    ]


def speculative_decode(
    model: DSMini,
    tokenizer: CharTokenizer,
    prefix: str = "",
    max_len: int | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    absorb: bool = True,
) -> SpecResult:
    """One name, drafting each next-but-one token with the MTP head and verifying it in the same
    pass: `speculative_generate` with a batch of one (each round: one MTP step, one main pass).

    Greedy (temperature 0) output equals `generate(..., temperature=0)` token for token; sampled
    output has the main model's distribution (see `verify_draft`).
    """
    return speculative_generate(model, tokenizer, [prefix], max_len=max_len, temperature=temperature,
                                seed=seed, absorb=absorb)[0]


def _prefill(model, batch: _Batch, cache: ModelCache, temperature, generator, absorb) -> None:
    """Run every row's `[B] prefix` at once (shorter ones padded) and decide each row's first token."""
    lengths = batch.cached
    out = prefill(model, batch.tokens[:, : max(lengths)], cache, absorb)
    batch.hidden[:, : out.hidden.size(1)] = out.hidden
    last = torch.tensor(lengths, device=batch.tokens.device) - 1
    first = sample_next(out.logits[torch.arange(len(lengths)), last], temperature, generator=generator)
    slots = []
    for r, token in enumerate(first.tolist()):
        batch.rows[r].push(token)
        slots.append((r, lengths[r], token))
    batch.write(slots)


def _draft(model, batch: _Batch, cache: ModelCache, drafting: list[int], temperature, generator, absorb):
    """One MTP step (DeepSeek-V3 §2.2) over the pairs the drafting rows have not fed yet; the last
    pair (h_{n-1}, x_n) of row r proposes its x_{n+1}. Returns q_logits (m, V) and drafts (m,)."""
    if not drafting:
        return None, None
    lengths = [len(batch.rows[r].ids) for r in drafting]
    start, end = min(batch.paired[r] for r in drafting), max(lengths) - 1  # pair slots [start, end)
    cache.mtp.length = start
    logits = model.mtp_draft(batch.hidden[:, start:end], batch.tokens[:, start + 1 : end + 1], cache, absorb)
    for r, length in zip(drafting, lengths):
        batch.paired[r] = length - 1
    rows = torch.tensor(drafting, device=logits.device)
    q_logits = logits[rows, torch.tensor(lengths, device=logits.device) - 2 - start]  # (m, V)
    return q_logits, sample_next(q_logits, temperature, generator=generator)


def _verify(model, tokenizer, batch: _Batch, cache, live, drafting, q_logits, drafts, temperature, generator, absorb):
    """One main pass over every live row's newest token and draft; accept, reject, add bonus tokens."""
    device = batch.tokens.device
    lengths = {r: len(batch.rows[r].ids) for r in live}  # x_n sits at slot lengths[r] - 1
    if drafting:
        batch.tokens[torch.tensor(drafting, device=device), torch.tensor([lengths[r] for r in drafting], device=device)] = drafts
    has_draft = set(drafting)
    start = min(batch.cached[r] for r in live)
    end = max(lengths[r] + (r in has_draft) for r in live)  # a draft sits one slot past x_n
    cache.truncate(start)  # rejected drafts and rows ahead of `start` are written again from here
    out = model(batch.tokens[:, start:end], cache=cache, absorb=absorb)
    batch.hidden[:, start:end] = out.hidden
    for r in live:
        batch.passes[r] += 1

    def logits_at(rows: list[int], offset: int) -> torch.Tensor:  # (m, V) at slot lengths[r] - 1 + offset
        slots = torch.tensor([lengths[r] - 1 + offset - start for r in rows], device=device)
        return out.logits[torch.tensor(rows, device=device), slots]

    written = []
    plain = [r for r in live if r not in has_draft]  # full rows (and every row when not drafting)
    if plain:
        for r, token in zip(plain, sample_next(logits_at(plain, 0), temperature, generator=generator).tolist()):
            batch.cached[r] = lengths[r]
            if batch.rows[r].push(token):
                written.append((r, lengths[r], token))
    if not drafting:
        batch.write(written)
        return
    # greedy keeps a draft iff it is the main model's argmax; sampling keeps it with probability
    # min(1, p(d) / q(d)) and else draws from max(0, p - q): the main model's law either way
    accepted, chosen = verify_draft(logits_at(drafting, 0), q_logits, drafts, temperature, generator)
    bonus_rows = []
    for r, drafted, ok, token in zip(drafting, *torch.stack([drafts, accepted.long(), chosen]).tolist()):
        row, slot = batch.rows[r], lengths[r]
        batch.timeline[r].append(SpecStep(slot, drafted, tokenizer.label(drafted), bool(ok), token, tokenizer.label(token)))
        batch.cached[r] = slot + ok  # the draft's slot holds a real state only if it stood
        row.push(token)  # room was checked when drafting, so it is kept
        written.append((r, slot, token))
        if ok and not row.done:
            bonus_rows.append(r)  # d is confirmed and cached, so its slot gives x_{n+2}
    if bonus_rows:
        bonus = sample_next(logits_at(bonus_rows, 1), temperature, generator=generator)
        for r, token in zip(bonus_rows, bonus.tolist()):
            batch.rows[r].push(token)
            written.append((r, lengths[r] + 1, token))
    batch.write(written)
