"""Self-speculative decoding with the MTP modules (DeepSeek-V3 §2.2), one draft or a chain of them.

Each round the MTP modules draft up to D characters in sequence: module 1 reads the main model's
state and the newest character and drafts the next-but-one, module k reads module k-1's state and
the draft before it and drafts one further (chained drafts). One main-model pass over the newest
character and the drafts verifies them all (speculative sampling: Leviathan et al. 2023, Chen et al.
2023): the longest accepted prefix stands, the main model adds its own next character (the
correction of the first rejected draft, or a bonus after the last accepted one), and the caches
forget what was rejected. D accepted drafts give D + 1 characters for one pass.

The loop is gpt-fast's: `speculative_generate` runs the prompts once, then rounds (`_draft`: one
step of each MTP module; `_verify`: one main pass, accept or reject, the main model's character)
until every name ends. It decodes many names in lockstep, each row accepting its own drafts
(`_Batch` says how rows that advance at different speeds share one cache); `speculative_decode` is
a batch of one. Sequence layout and `max_len` as in `dsmini.decoding.generate`.

Axes: b batch, m rows that draft, s new positions, d d_model, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from dsmini.data import BOUNDARY_ID, CharTokenizer
from dsmini.model import DSMini, ModelCache

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

# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SpecStep:
    """One checked draft of speculative decoding: what an MTP module guessed, what the model chose.
    Drafts after a rejected one in the same round are dropped unchecked and have no step."""

    position: int  # index of the drafted token in `SpecResult.ids`
    draft_id: int
    draft: str
    accepted: bool
    chosen_id: int  # the token the main model kept at that position (== draft_id when accepted)
    chosen: str
    depth: int = 1  # the MTP module that drafted it: module k drafts the k-th character past the newest


@dataclass
class SpecResult:
    """One speculatively decoded name and how the drafting went."""

    text: str
    ids: list[int]  # framed, as in `dsmini.decoding.generate.Generated.ids`
    finished: bool
    generated_tokens: int  # tokens decided after the prefix: characters + the end token
    main_forward_passes: int  # prefill included
    timeline: list[SpecStep] = field(default_factory=list)  # one entry per checked draft

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
    """The rows of one call: per-row progress on the host, tokens and states in buffers allocated
    once for every position (nothing is concatenated or rebuilt per round).

    Rows advance at their own pace (a round adds 1 to D + 1 tokens), yet share one cache, so a
    row's slot j is its position j and every pass feeds all rows one window of slots [start, end):
    a row whose cache already holds slots past `start` feeds those tokens again (their entries are
    rewritten with the same values), a row that ends before `end` is padded. Causal attention makes
    both harmless: no real position reads a slot to its right, and every slot a real position reads
    was last written from that row's own real tokens. The MTP modules' caches follow the same rule.

    Module k's entry at position i reads t_{i+k}; while that token is a draft the entry is only as
    good as the draft, so after a round with a drafts accepted past x_n (the newest token then),
    module k holds max(0, min(n, n + a - k + 1)) good positions: `paired[k - 1]`.
    """

    rows: list[NameRow]
    tokens: torch.Tensor  # (b, max_len + 2) long: x_j at slot j, x_0 = [B]; drafts past x_n; pads past a row's end
    hidden: list[torch.Tensor]  # depth 0 (main) .. D - 1: (b, max_len + 1, d) states, as last computed per slot
    cached: list[int]  # per row: main-cache slots that hold states of its real tokens
    paired: list[list[int]]  # per depth k, per row: module k's good positions (i < paired) in its cache
    passes: list[int]  # per row: main-model passes it took part in, prefill included
    timeline: list[list[SpecStep]]

    def write(self, slots: list[tuple[int, int, int]]) -> None:
        """Store tokens, (row, slot, token) each, in one indexed write."""
        if slots:
            r, j, t = torch.tensor(slots, device=self.tokens.device).unbind(dim=1)
            self.tokens[r, j] = t


def _new_batch(model: DSMini, starts: list[list[int]], max_len: int, depth: int, device: torch.device) -> _Batch:
    b = len(starts)
    tokens = torch.full((b, max_len + 2), BOUNDARY_ID, dtype=torch.long, device=device)
    for r, ids in enumerate(starts):
        tokens[r, : len(ids)] = torch.tensor(ids, device=device)
    dtype = model.head.weight.dtype
    hidden = [torch.zeros(b, max_len + 1, model.cfg.d_model, device=device, dtype=dtype) for _ in range(max(depth, 1))]
    rows = [NameRow(list(ids), max_len) for ids in starts]
    return _Batch(rows, tokens, hidden, [len(ids) for ids in starts], [[0] * b for _ in range(depth)], [1] * b,
                  [[] for _ in starts])


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
    depth: int | None = None,
) -> list[SpecResult]:
    """Many names at once: one per prefix of a sequence, or `n` from one prefix string. Every
    round drafts up to `depth` characters per row with the MTP modules in a chain (default: all
    `mtp_depth` of them; 1 = the depth-1 head alone), then one main pass over all live rows decides
    1 to depth + 1 tokens per row, each row accepting or rejecting its own drafts.

    Greedy (temperature 0) gives each row exactly `generate(prefix, n=1, temperature=0)`; sampled
    rows have the main model's distribution (see `verify_draft`). A fixed `seed` replays exactly.
    `draft=False` skips the MTP steps: plain decoding of many prefixes through the same loop, the
    control that batched speculative decoding is timed against.
    """
    max_len = resolve_max_len(model, max_len)
    check_sampling_settings(temperature)
    if not model.has_mtp:
        raise ValueError("speculative decoding needs a model with an MTP module (mtp_depth >= 1)")
    depth = model.cfg.mtp_depth if depth is None else depth
    if not isinstance(depth, int) or not 1 <= depth <= model.cfg.mtp_depth:
        raise ValueError(f"depth must be an integer in [1, mtp_depth={model.cfg.mtp_depth}], got {depth!r}")
    prefixes = [prefixes] * n if isinstance(prefixes, str) else list(prefixes)
    if not prefixes:
        raise ValueError("speculative_generate needs at least one prefix")
    starts = [tokenizer.frame_for(model.cfg, p, max_len, what="prefix") for p in prefixes]
    device = model.head.weight.device
    with inference(model):
        generator = seeded_generator(seed, device)
        batch = _new_batch(model, starts, max_len, depth, device)
        cache = model.new_cache(len(starts), max_len=max_len + 1, with_mtp=True)
        _prefill(model, batch, cache, temperature, generator, absorb)
        while live := [r for r, row in enumerate(batch.rows) if not row.done]:
            # drafts must fit the name: a row with max_len characters only decides [B] or a cut
            room = {r: min(depth, max_len - batch.rows[r].n_chars) for r in live} if draft else {}
            drafts = _draft(model, batch, cache, {r: k for r, k in room.items() if k}, temperature, generator, absorb)
            _verify(model, tokenizer, batch, cache, live, drafts, temperature, generator, absorb)
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
    depth: int | None = None,
) -> SpecResult:
    """One name, drafting up to `depth` characters per round with the MTP modules (default: all of
    them) and verifying them in one main pass: `speculative_generate` with a batch of one.

    Greedy (temperature 0) output equals `generate(..., temperature=0)` token for token; sampled
    output has the main model's distribution (see `verify_draft`).
    """
    return speculative_generate(model, tokenizer, [prefix], max_len=max_len, temperature=temperature,
                                seed=seed, absorb=absorb, depth=depth)[0]


def _prefill(model, batch: _Batch, cache: ModelCache, temperature, generator, absorb) -> None:
    """Run every row's `[B] prefix` at once (shorter ones padded) and decide each row's first token."""
    lengths = batch.cached
    out = prefill(model, batch.tokens[:, : max(lengths)], cache, absorb)
    batch.hidden[0][:, : out.hidden.size(1)] = out.hidden
    last = torch.tensor(lengths, device=batch.tokens.device) - 1
    first = sample_next(out.logits[torch.arange(len(lengths)), last], temperature, generator=generator)
    slots = []
    for r, token in enumerate(first.tolist()):
        batch.rows[r].push(token)
        slots.append((r, lengths[r], token))
    batch.write(slots)


@dataclass
class _Drafts:
    """One depth's drafts of a round: the rows that drafted it, the module's logits and its picks."""

    rows: list[int]
    q_logits: torch.Tensor  # (m, V)
    ids: torch.Tensor  # (m,)


def _draft(model, batch: _Batch, cache: ModelCache, room: dict[int, int], temperature, generator,
           absorb) -> list[_Drafts]:
    """The chain of MTP steps (DeepSeek-V3 §2.2) for the rows in `room` ({row: drafts it may make}).
    Module k runs over the positions its cache lacks, [paired, n) for a row whose newest token is
    x_n, reading module k-1's states (the main model's for k = 1) and t_{i+k}; at i = n - 1 that is
    x_n for k = 1 and the previous draft after, and it drafts x_{n+k}, written into the token buffer.
    At batch 1 every op costs about as much as a small matmul, so the indices are built once per
    round (while every row still drafts); only a draft that ends the name is looked at on the host,
    to stop that row's chain."""
    chain = []
    room = dict(room)
    rows = list(room)
    index = torch.tensor([rows, [len(batch.rows[r].ids) - 2 for r in rows]], device=batch.tokens.device)  # (2, m)
    deepest = max(room.values(), default=0)
    for k in range(1, deepest + 1):
        if k > 1 and min(room[r] for r in rows) < k:  # rows out of room, or whose draft ended the name, stop here
            index = index[:, [i for i, r in enumerate(rows) if room[r] >= k]]
            rows = [r for r in rows if room[r] >= k]
            if not rows:
                break
        paired = batch.paired[k - 1]
        start, end = min(paired[r] for r in rows), max(len(batch.rows[r].ids) - 1 for r in rows)
        cache.mtp_depths[k - 1].length = start
        h, logits = model.mtp_step(k, batch.hidden[k - 1][:, start:end], batch.tokens[:, start + k : end + k], cache,
                                   absorb)
        if k < len(batch.hidden):
            batch.hidden[k][:, start:end] = h
        q_logits = logits[index[0], index[1] - start]  # (m, V) at each row's n - 1
        ids = sample_next(q_logits, temperature, generator=generator)
        batch.tokens[index[0], index[1] + (1 + k)] = ids  # x_{n+k} at slot n + k
        for r in rows:
            paired[r] = len(batch.rows[r].ids) - 1  # n; final once the round's acceptance is known (`_verify`)
        chain.append(_Drafts(rows, q_logits, ids))
        if k < deepest:  # a draft after a drafted end is never checked: no module step, no verify slot for it
            for r, d in zip(rows, ids.tolist()):
                if d == BOUNDARY_ID:
                    room[r] = k
    return chain


def _verify(model, tokenizer, batch: _Batch, cache, live, chain: list[_Drafts], temperature, generator, absorb):
    """One main pass over every live row's newest token and drafts; keep each row's longest accepted
    prefix of drafts and the main model's own next token after it."""
    newest = {r: len(batch.rows[r].ids) - 1 for r in live}  # x_n sits at slot n
    most = dict.fromkeys(live, 0)
    for drafts in chain:
        for r in drafts.rows:
            most[r] += 1
    start = min(batch.cached[r] for r in live)
    end = max(newest[r] + most[r] + 1 for r in live)  # drafts sit in slots n + 1 .. n + most
    cache.truncate(start)  # rejected drafts and rows ahead of `start` are written again from here
    out = model(batch.tokens[:, start:end], cache=cache, absorb=absorb)
    batch.hidden[0][:, start:end] = out.hidden
    for r in live:
        batch.passes[r] += 1
    main_token, check = _deciders(out.logits, newest, start, temperature, generator)

    written = []
    plain = [r for r in live if not most[r]]  # full rows (and every row when not drafting)
    for r, token in zip(plain, main_token(plain, [0] * len(plain))):
        batch.cached[r] = newest[r] + 1
        if batch.rows[r].push(token):
            written.append((r, newest[r] + 1, token))
    # every depth is checked at once; on the host each row then stops at its first rejection
    checked = {(r, k): verdict for k, drafts in enumerate(chain, start=1)
               for r, verdict in zip(drafts.rows, check(k, drafts))}
    bonus_rows = []
    for r in live:
        if not most[r]:
            continue
        row, n = batch.rows[r], newest[r]
        kept = 0
        for k in range(1, most[r] + 1):
            drafted, ok, token = checked[r, k]
            batch.timeline[r].append(SpecStep(n + k, drafted, tokenizer.label(drafted), bool(ok), token,
                                              tokenizer.label(token), k))
            row.push(token)  # room was checked when drafting, so it is kept
            if not ok:
                written.append((r, n + k, token))  # an accepted draft is in the buffer already
            kept += ok
            if not ok or row.done:
                break
        batch.cached[r] = n + 1 + kept  # a draft's slot holds a real state only if it stood
        for k in range(2, most[r] + 1):  # module k's entries that read a rejected draft are redone
            batch.paired[k - 1][r] = max(0, min(n, n + kept - k + 1))
        if kept == most[r] and not row.done:
            bonus_rows.append(r)  # every draft confirmed and cached, so the last one's slot gives the next
    for r, token in zip(bonus_rows, main_token(bonus_rows, [most[r] for r in bonus_rows])):
        if batch.rows[r].push(token):
            written.append((r, newest[r] + most[r] + 1, token))
    batch.write(written)


def _deciders(logits: torch.Tensor, newest: dict[int, int], start: int, temperature, generator):
    """How `_verify` reads the main pass's logits (b, s, V), window from slot `start`:
    main_token(rows, offsets) -> the main model's token at slot n + offset of each row, and
    check(k, drafts) -> (draft, accepted, kept token) per row for the depth-k drafts, at slot n + k - 1.

    Greedy keeps a draft iff it is the main model's argmax, so one argmax over the window read once
    decides every row and depth. Sampling keeps it with probability min(1, p(d) / q(d)) and else
    draws from max(0, p - q) (`verify_draft`): the main model's law either way."""
    if temperature == 0:
        picks = logits.argmax(dim=-1).tolist()  # (b, s) on the host

        def main_token(rows, offsets):
            return [picks[r][newest[r] + o - start] for r, o in zip(rows, offsets)]

        def check(k, drafts):
            chosen = main_token(drafts.rows, [k - 1] * len(drafts.rows))
            return [(d, d == c, c) for d, c in zip(drafts.ids.tolist(), chosen)]

        return main_token, check

    def at(rows, offsets) -> torch.Tensor:  # (m, V) at slot n + offset
        slots = torch.tensor([newest[r] + o - start for r, o in zip(rows, offsets)], device=logits.device)
        return logits[torch.tensor(rows, device=logits.device), slots]

    def sampled_token(rows, offsets):
        return sample_next(at(rows, offsets), temperature, generator=generator).tolist() if rows else []

    def sampled_check(k, drafts):
        accepted, chosen = verify_draft(at(drafts.rows, [k - 1] * len(drafts.rows)), drafts.q_logits, drafts.ids,
                                        temperature, generator)
        return torch.stack([drafts.ids, accepted.long(), chosen]).T.tolist()

    return sampled_token, sampled_check
