"""MTP drafts at inference (DeepSeek-V3 §2.2): how often the MTP modules' guesses survive the main
model's check (the depth-1 head's for the character after next, and with chained drafts each
deeper module's for one character further), where in a name, for which letters and at which draft
depth, and what that buys in main-model passes and in wall-clock time beside the ceiling the
measured pass costs allow; and, teacher-forced on the validation names, how often each depth's
module predicts its own target (depth k: the character k + 1 ahead).

Every function returns plain data (dataclasses of ints, floats and strings; `SpecResult` from
`dsmini.decoding.speculative`), so the page can cache it and charts and tests read it without torch. Nothing
is written to the model: `speculative_decode` makes a fresh cache per name.

Positions count as in `SpecResult.ids`: 0 is the opening boundary, 1 the first character of the
name, and a drafted end of name sits at len(name) + 1.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from dsmini.checkpoint import Checkpoint, checkpoint_validation_set
from dsmini.data import BOUNDARY_ID, BOUNDARY_SYMBOL, IGNORE_INDEX, CharTokenizer, encode_names
from dsmini.decoding import SpecResult, generate, inference, prefill, speculative_decode
from dsmini.model import DSMini
from dsmini.training import synchronize

V3_ACCEPTANCE = (0.85, 0.90)  # DeepSeek-V3 §5.4.3: acceptance of the second (MTP-drafted) token
V3_SPEEDUP = 1.8  # and the decoding speed it bought, in tokens per second
SOURCES = ("prefix", "main", "accepted", "rejected")  # where a kept character came from (TimelineCell)


# ---------------------------------------------------------------------------------------------
# Prefixes


def draft_prefixes(names: Sequence[str], n: int = 40, tokenizer: CharTokenizer | None = None) -> list[str]:
    """Up to `n` distinct prefixes: the first letter, then the first two letters, alternately, of
    `names` in order. Validation names, so the model never trained on the names it completes; one-
    and two-letter starts, so most of each name is decoded (and drafted). With a `tokenizer`,
    prefixes it cannot encode are skipped (a corpus that changed since training)."""
    prefixes: dict[str, None] = {}
    for i, name in enumerate(names):
        if len(prefixes) == n:
            break
        prefix = name[: 1 + i % 2]
        if prefix and not (tokenizer and tokenizer.unknown_chars(prefix)):
            prefixes.setdefault(prefix)
    return list(prefixes)


def alphabet_prefixes(tokenizer: CharTokenizer, n: int = 40) -> list[str]:
    """Single-letter prefixes from the model's own alphabet, capitals first (names start with one):
    the fallback when the corpus a checkpoint was trained on is not available (an upload)."""
    capitals = [c for c in tokenizer.chars if c.isupper()]
    return (capitals or [c for c in tokenizer.chars if c.isalpha()] or list(tokenizer.chars))[:n]


# ---------------------------------------------------------------------------------------------
# Drafting runs


def check_mtp(model: DSMini) -> None:
    """Raise a ValueError that says why when the model has no MTP head to draft with."""
    if not model.has_mtp:
        raise ValueError(
            "this model has no MTP module (mtp_depth = 0): nothing drafts the character after next, "
            "so there is no acceptance to measure; train one with mtp_depth >= 1"
        )


def run_drafts(
    model: DSMini, tokenizer: CharTokenizer, prefixes: Sequence[str], temperature: float = 0.0, seed: int = 0,
    depth: int | None = None,
) -> list[SpecResult]:
    """One speculatively decoded name per prefix, drafting up to `depth` characters per round (default:
    every MTP module, chained). Sampled runs (temperature > 0) use seed + i for the i-th prefix, so a
    run replays exactly and no two names share a random stream."""
    check_mtp(model)
    return [
        speculative_decode(model, tokenizer, prefix, temperature=temperature, seed=seed + i if temperature else None,
                           depth=depth)
        for i, prefix in enumerate(prefixes)
    ]


def greedy_matches(model: DSMini, tokenizer: CharTokenizer, prefixes: Sequence[str],
                   results: Sequence[SpecResult]) -> int:
    """How many greedy speculative names equal plain greedy decoding's, token for token.

    They all must: a draft only saves passes, the main model still decides every token.
    """
    if len(prefixes) != len(results):
        raise ValueError(f"{len(prefixes)} prefixes but {len(results)} results")
    plain = [generate(model, tokenizer, prefix, n=1, temperature=0.0)[0] for prefix in prefixes]
    return sum(p.ids == r.ids for p, r in zip(plain, results))


# ---------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class Tally:
    accepted: int = 0
    proposed: int = 0

    @property
    def rate(self) -> float:
        """Accepted / proposed; 0.0 when nothing was proposed."""
        return self.accepted / self.proposed if self.proposed else 0.0

    def add(self, accepted: bool) -> Tally:
        return Tally(self.accepted + accepted, self.proposed + 1)


@dataclass(frozen=True)
class DraftStats:
    """Acceptance over a set of speculatively decoded names.

    by_position: position of the drafted character (1 = the name's first character)
    by_letter:   the character the MTP head proposed (BOUNDARY_SYMBOL = it proposed ending the
                 name), alphabetical with the end last: the question is "which guesses hold", so
                 group by the guess, not by the letter it followed
    by_depth:    the module that drafted it (1 = the character after next); a depth-k draft is
                 checked only when the k - 1 before it in its round stood, so this is acceptance
                 given the chain so far
    """

    overall: Tally
    by_position: dict[int, Tally]
    by_letter: dict[str, Tally]
    by_depth: dict[int, Tally]
    generated_tokens: int  # characters decided after the prefixes, end markers included
    forward_passes: int  # main-model passes, prefills included
    n_names: int

    @property
    def chars_per_forward(self) -> float:
        """Generated tokens per main-model pass: 1 for plain decoding, up to D + 1 with D drafts a round."""
        return self.generated_tokens / self.forward_passes if self.forward_passes else 0.0


def acceptance_stats(results: Sequence[SpecResult]) -> DraftStats:
    """Aggregate the timelines of `results` (read from the timelines, so counts always agree)."""
    overall = Tally()
    by_position: dict[int, Tally] = {}
    by_letter: dict[str, Tally] = {}
    by_depth: dict[int, Tally] = {}
    for result in results:
        for step in result.timeline:
            overall = overall.add(step.accepted)
            for tallies, key in ((by_position, step.position), (by_letter, step.draft), (by_depth, step.depth)):
                tallies[key] = tallies.get(key, Tally()).add(step.accepted)
    letters = sorted(by_letter, key=lambda c: (c == BOUNDARY_SYMBOL, c))
    return DraftStats(
        overall=overall,
        by_position=dict(sorted(by_position.items())),
        by_letter={c: by_letter[c] for c in letters},
        by_depth=dict(sorted(by_depth.items())),
        generated_tokens=sum(r.generated_tokens for r in results),
        forward_passes=sum(r.main_forward_passes for r in results),
        n_names=len(results),
    )


# ---------------------------------------------------------------------------------------------
# One generation, character by character


@dataclass(frozen=True)
class TimelineCell:
    """One kept position of a name: `char` is what the name has there (BOUNDARY_SYMBOL = the end).

    source: "prefix" (typed), "main" (the main model's own pick: after prefill, the bonus of an
    accepted draft, or the correction of a rejected one), "accepted" (the MTP draft stood),
    "rejected" (the MTP drafted `draft` and the main model put `char` there instead).
    """

    position: int
    char: str
    source: str
    draft: str | None = None  # what the MTP head proposed here, if it drafted this position
    depth: int | None = None  # the MTP module that drafted it (1 = the character after next)


@dataclass(frozen=True)
class DraftTimeline:
    text: str
    cells: list[TimelineCell]
    generated_tokens: int
    forward_passes: int
    accepted: int
    proposed: int


def draft_timeline(result: SpecResult, tokenizer: CharTokenizer) -> DraftTimeline:
    """The name of `result` position by position, each character tagged with where it came from."""
    drafted = {step.position: step for step in result.timeline}
    n_prefix = len(result.ids) - 1 - result.generated_tokens  # ids = [B] + prefix + generated
    cells = []
    for position in range(1, len(result.ids)):
        char, step = tokenizer.label(result.ids[position]), drafted.get(position)
        if position <= n_prefix:
            source = "prefix"
        elif step is None:
            source = "main"
        else:
            source = "accepted" if step.accepted else "rejected"
        cells.append(TimelineCell(position, char, source, step.draft if step else None, step.depth if step else None))
    return DraftTimeline(
        text=result.text,
        cells=cells,
        generated_tokens=result.generated_tokens,
        forward_passes=result.main_forward_passes,
        accepted=result.drafts_accepted,
        proposed=result.drafts_proposed,
    )


# ---------------------------------------------------------------------------------------------
# Every depth, teacher-forced


ACCURACY_NAMES = 500  # validation names the depth accuracies read: enough for a percent, fast on a CPU


@dataclass(frozen=True)
class DepthAccuracy:
    """Top-1 accuracy of one depth, teacher-forced: depth 0 is the main model (the next character),
    depth k the k-th MTP module (the character k + 1 ahead, DeepSeek-V3 §2.2), fed the true
    characters in between. Counts every real target position (the end of the name included)."""

    depth: int
    correct: int
    total: int

    @property
    def rate(self) -> float:
        return self.correct / self.total if self.total else 0.0


def _hits(logits: torch.Tensor, targets: torch.Tensor) -> tuple[int, int]:
    """(right, counted) over the real targets: logits (b, s, V), targets (b, s)."""
    real = targets != IGNORE_INDEX
    return int((logits.argmax(-1).eq(targets) & real).sum()), int(real.sum())


def depth_accuracy(model: DSMini, tokenizer: CharTokenizer, names: Sequence[str],
                   batch_size: int = 256) -> list[DepthAccuracy]:
    """Depth 0, then every MTP depth, over `names` (each must fit the model and its alphabet)."""
    counts = [[0, 0] for _ in range(1 + len(model.mtp))]
    if not names:
        return [DepthAccuracy(depth, 0, 0) for depth in range(len(counts))]
    x, y = encode_names(names, tokenizer, model.cfg.block_size)
    device = model.head.weight.device
    with inference(model):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
            out = model(xb, yb)
            for depth, logits in enumerate([out.logits, *out.mtp_logits]):
                right, counted = _hits(logits, yb[:, depth:])  # depth k's position i predicts y[i + k]
                counts[depth][0] += right
                counts[depth][1] += counted
    return [DepthAccuracy(depth, right, total) for depth, (right, total) in enumerate(counts)]


# ---------------------------------------------------------------------------------------------
# Wall clock


@dataclass(frozen=True)
class SpeedReport:
    """Greedy speculative vs plain greedy over the same prefixes, one name at a time (batch 1).

    Seconds are the median over `repeats` sweeps of all prefixes; `tokens` is what one sweep
    generates (every decoder produces the same names, end markers included). `chain_seconds[k - 1]`:
    drafting up to k characters a round; the last is the full chain (what `speculative_*` report).
    """

    tokens: int
    plain_seconds: float
    chain_seconds: tuple[float, ...]
    repeats: int

    @property
    def speculative_seconds(self) -> float:
        return self.chain_seconds[-1]

    @property
    def speculative_per_second(self) -> float:
        return self.tokens / self.speculative_seconds

    @property
    def plain_per_second(self) -> float:
        return self.tokens / self.plain_seconds

    @property
    def speedup(self) -> float:
        return self.plain_seconds / self.speculative_seconds

    def speedup_at(self, depth: int) -> float:
        """Plain time / time when drafting up to `depth` characters a round."""
        return self.plain_seconds / self.chain_seconds[depth - 1]


def time_decoding(model: DSMini, tokenizer: CharTokenizer, prefixes: Sequence[str], repeats: int = 3) -> SpeedReport:
    """Time plain greedy and greedy speculative decoding at every chain depth 1..mtp_depth over the
    same prefixes. The decoders take turns name by name (their order rotating), so a burst of load
    from elsewhere on the machine hits all alike; a sweep's time per decoder is the sum over its
    names, the median over `repeats` sweeps is reported. One warm-up name each first (lazy init)."""
    check_mtp(model)
    if not prefixes or repeats < 1:
        raise ValueError(f"need at least one prefix and one repeat, got {len(prefixes)} and {repeats}")
    decoders = [lambda p: generate(model, tokenizer, p, n=1, temperature=0.0)]
    decoders += [lambda p, k=k: speculative_decode(model, tokenizer, p, depth=k)
                 for k in range(1, model.cfg.mtp_depth + 1)]
    sweeps = []
    with inference(model):
        for decode in decoders:
            decode(prefixes[0])
        for _ in range(repeats):
            seconds = [0.0] * len(decoders)
            for i, prefix in enumerate(prefixes):
                for j in range(len(decoders)):
                    k = (i + j) % len(decoders)
                    start = time.perf_counter()
                    decoders[k](prefix)
                    seconds[k] += time.perf_counter() - start
            sweeps.append(seconds)
        tokens = sum(decoders[-1](prefix).generated_tokens for prefix in prefixes)
    median = [statistics.median(sweep[k] for sweep in sweeps) for k in range(len(decoders))]
    return SpeedReport(tokens=tokens, plain_seconds=median[0], chain_seconds=tuple(median[1:]), repeats=repeats)


def _interleaved_ms(fns: dict[str, Callable[[], object]], calls: int, device: torch.device,
                    rounds: int = 5) -> dict[str, float]:
    """Median ms per call of each function, timed in turns (A B C A B C ...) so load hits all alike;
    the clock waits for `device` (a GPU queues its kernels)."""
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            synchronize(device)
            times[key].append((time.perf_counter() - start) / calls)
    return {key: 1000 * statistics.median(t) for key, t in times.items()}


def pass_costs(model: DSMini, calls: int = 200, rounds: int = 5) -> dict[str, float]:
    """ms of the passes decoding is made of, at batch 1 (CPU): the prefill of `[B]` + 2 characters,
    a main pass over the cache with s = 1 .. D + 1 new tokens (`main_pass_{s}_ms`: 1 is plain greedy's,
    s a verify of s - 1 drafts), and one step of each MTP module (`mtp_step_{k}_ms`)."""
    check_mtp(model)
    depth = model.cfg.mtp_depth
    tokens = torch.arange(depth + 5, device=model.head.weight.device)[None] % model.cfg.vocab_size  # (1, t)
    tokens[0, 0] = BOUNDARY_ID
    with inference(model):
        cache = model.new_cache(1, with_mtp=True)
        hidden = prefill(model, tokens[:, :3], cache, absorb=True).hidden[:, -1:]  # (1, 1, d)

        def main(s: int) -> None:
            cache.truncate(3)
            model(tokens[:, 3 : 3 + s], cache=cache, absorb=True)

        def mtp(k: int) -> None:
            cache.mtp_depths[k - 1].length = 2
            model.mtp_step(k, hidden, tokens[:, 3:4], cache, absorb=True)

        def fresh_prefill() -> None:
            prefill(model, tokens[:, :3], model.new_cache(1, with_mtp=True), absorb=True)

        fns = {"prefill_ms": fresh_prefill}
        fns.update({f"main_pass_{s}_ms": lambda s=s: main(s) for s in range(1, depth + 2)})
        fns.update({f"mtp_step_{k}_ms": lambda k=k: mtp(k) for k in range(1, depth + 1)})
        return _interleaved_ms(fns, calls, model.head.weight.device, rounds)


@dataclass(frozen=True)
class Ceiling:
    """What drafting up to `depth` characters a round can buy, from the measured drafts and pass
    costs. A plain name costs its prefill plus one 1-token pass per further character; a speculative
    one its prefill plus, per round, a (depth + 1)-token verify pass and `depth` MTP steps (rounds
    near the name's end or max_len draft fewer: this is the ceiling's slight pessimism).
    `bound`: the same rounds if a verify pass cost a plain one and drafting nothing."""

    depth: int
    chars_per_pass: float  # generated tokens / main passes, prefills included
    ceiling: float
    bound: float


def ceiling(costs: dict[str, float], depth: int, names: int, generated: int, passes: int) -> Ceiling:
    prefills, rounds = names * costs["prefill_ms"], passes - names
    plain = prefills + (generated - names) * costs["main_pass_1_ms"]
    round_ms = costs[f"main_pass_{depth + 1}_ms"] + sum(costs[f"mtp_step_{k}_ms"] for k in range(1, depth + 1))
    return Ceiling(depth, generated / passes, plain / (prefills + rounds * round_ms),
                   plain / (prefills + rounds * costs["main_pass_1_ms"]))


# ---------------------------------------------------------------------------------------------
# The MTP page


SPEED_REPEATS = 3  # timing sweeps of the speed button; the median is reported


@dataclass(frozen=True)
class MTPSettings:
    """The MTP page's widgets; the defaults are theirs."""

    n_prefixes: int = 12
    temperature: float = 0.8
    seed: int = 0


@dataclass(frozen=True)
class MTPView:
    """Greedy and sampled speculative runs over the same prefixes, and what they add up to.

    source: "val" (prefixes of the checkpoint's validation names) or "alphabet" (its corpus is not
    available, e.g. an old upload: single letters of its alphabet). matches: greedy speculative
    names equal to plain greedy decoding's (all of them, or the drafting is broken).
    """

    prefixes: tuple[str, ...]
    source: str
    greedy_runs: list[SpecResult]
    greedy: DraftStats
    matches: int
    sampled_runs: list[SpecResult]
    sampled: DraftStats
    depths: tuple[DepthAccuracy, ...] = ()  # teacher-forced on the val names; () when they are unknown
    accuracy_names: int = 0  # the val names `depths` read
    chains: tuple[DraftStats, ...] = ()  # greedy, drafting up to k = 1 .. D characters a round (the last is `greedy`)


def _readable(ckpt: Checkpoint, names: Sequence[str]) -> list[str]:
    """The names the checkpoint's model can read: short enough, in its alphabet (a changed corpus)."""
    block, tokenizer = ckpt.model_config.block_size, ckpt.tokenizer
    return [n for n in names if len(n) < block and not tokenizer.unknown_chars(n)]


def _val_names(ckpt: Checkpoint) -> list[str] | None:
    """The checkpoint's validation names; None when they were not stored (an old upload checkpoint)."""
    try:
        return checkpoint_validation_set(ckpt.corpus).names
    except ValueError:
        return None


def mtp_prefixes(ckpt: Checkpoint, n: int, names: list[str] | None = None) -> tuple[tuple[str, ...], str]:
    """Up to `n` prefixes from the checkpoint's own validation names (`names`, else read), and their source."""
    names = _val_names(ckpt) if names is None else names
    if names is None:
        return tuple(alphabet_prefixes(ckpt.tokenizer, n)), "alphabet"
    return tuple(draft_prefixes(names, n, ckpt.tokenizer)), "val"


def mtp_view(ckpt: Checkpoint, settings: MTPSettings = MTPSettings()) -> MTPView:
    """Everything the MTP page shows on load; ValueError (`check_mtp`) for a model without MTP."""
    model, tokenizer = ckpt.model, ckpt.tokenizer
    check_mtp(model)
    names = _val_names(ckpt)
    prefixes, source = mtp_prefixes(ckpt, settings.n_prefixes, names)
    accuracy_names = _readable(ckpt, names or [])[:ACCURACY_NAMES]
    greedy_runs = run_drafts(model, tokenizer, prefixes)
    sampled_runs = run_drafts(model, tokenizer, prefixes, settings.temperature, settings.seed)
    shorter = [acceptance_stats(run_drafts(model, tokenizer, prefixes, depth=k)) for k in range(1, model.cfg.mtp_depth)]
    return MTPView(
        prefixes=prefixes,
        source=source,
        greedy_runs=greedy_runs,
        greedy=acceptance_stats(greedy_runs),
        matches=greedy_matches(model, tokenizer, prefixes, greedy_runs),
        sampled_runs=sampled_runs,
        sampled=acceptance_stats(sampled_runs),
        depths=tuple(depth_accuracy(model, tokenizer, accuracy_names)) if accuracy_names else (),
        accuracy_names=len(accuracy_names),
        chains=(*shorter, acceptance_stats(greedy_runs)),
    )


SPEED_COST_CALLS = 20  # calls per round when the speed button prices each kind of pass


@dataclass(frozen=True)
class SpeedView:
    """The speed button: wall-clock at every chain depth beside the ceiling its pass costs allow."""

    report: SpeedReport
    costs: dict[str, float]  # `pass_costs`
    ceilings: tuple[Ceiling, ...]  # chain depth 1 .. D


def speed_view(model: DSMini, tokenizer: CharTokenizer, prefixes: Sequence[str], repeats: int = SPEED_REPEATS,
               cost_calls: int = SPEED_COST_CALLS) -> SpeedView:
    """Time every chain depth against plain greedy, price each pass, and work out each depth's ceiling
    from its own greedy drafts over the same prefixes."""
    report = time_decoding(model, tokenizer, prefixes, repeats)
    costs = pass_costs(model, cost_calls)
    ceilings = []
    for k in range(1, model.cfg.mtp_depth + 1):
        runs = run_drafts(model, tokenizer, prefixes, depth=k)
        ceilings.append(ceiling(costs, k, len(runs), sum(r.generated_tokens for r in runs),
                                sum(r.main_forward_passes for r in runs)))
    return SpeedView(report, costs, tuple(ceilings))


def mtp_speed(ckpt: Checkpoint, n_prefixes: int = MTPSettings().n_prefixes) -> SpeedView:
    """The speed button over the view's prefixes (which only `n_prefixes` decides: a new temperature
    keeps the measurement)."""
    prefixes, _ = mtp_prefixes(ckpt, n_prefixes)
    return speed_view(ckpt.model, ckpt.tokenizer, prefixes)
