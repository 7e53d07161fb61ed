"""Which experts handle which characters: routing statistics over many names.

`route_names` runs a list of names (the checkpoint's validation split, with its domain labels when
the corpus has them) through the model and keeps, for every real input token, the routed experts
each main MoE layer chose and the loss of predicting the next character. `expert_report` counts
that into plain data for the charts. Domains are counted in `probes.domains`, ablations rerun the
names in `probes.ablation`.

Token conventions (as in `data.encode_names`): a name is fed as `[B] c1 .. cn`, so the input token
at position i is the character at i and position 0 is the boundary "|". The end boundary is never
an input (the model stops when it emits it); it appears only as a *target*.

Position categories of an input token, for a name of n characters:
  start   position 0, the boundary "|" (its target is the first letter)
  first   position 1, the first letter (a one-letter name's only letter counts here)
  middle  positions 2 .. n-1
  last    position n, the last letter (its target is the end of the name)

Axes: N names, T positions, n real tokens (flattened), V vocabulary, E routed experts, k top_k.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dsmini.config import ModelConfig
from dsmini.data import BOUNDARY_SYMBOL, IGNORE_INDEX, CharTokenizer, encode_names
from dsmini.decoding import inference
from dsmini.model import DSMini, ExpertAblation

POSITION_CATEGORIES = ("start", "first", "middle", "last")
# ~6K tokens of ru-names, ~0.2 s per pass on one CPU thread (the page stays under 2 s); MI moves by < 0.01 bits
# from 1,000 to 4,000 names
MAX_NAMES = 600
BATCH_SIZE = 500  # names per forward pass; batches are sorted by length so little padding runs
TOP_CONTEXTS = 10  # letters and contexts listed per expert
CONTEXT_CHARS = 2  # previous characters shown before the current one in a context
INITIAL_SEED = 0  # the untrained contrast model: same config, fresh init from this seed


# ---------------------------------------------------------------------------------------------
# Raw routing of many names


@dataclass
class RoutedTokens:
    """Every real input token of a set of names (flat, n) and what the main MoE layers did with it.

    Tensors on the CPU; names are processed sorted by length, so token order is not name order.
      ids        (n,) input token ids; targets (n,) the next token (BOUNDARY_ID = end of the name)
      positions  (n,) position in the name (0 = the boundary); n_chars (n,) length of its name
      context    (n, 1 + CONTEXT_CHARS) ids of the previous characters and the current one,
                 -1 before the start of the sequence
      loss       (n,) cross-entropy (nats) of predicting `targets` from the main head
      indices    {layer: (n, k)} routed experts chosen; top1 {layer: (n,)} the heaviest of them
      n_dropped  {layer: int} assignments dropped over capacity (0 at inference: no capacity limit)
      domain     (n,) index into `domain_labels` of its name's domain; None for an unlabelled corpus
    """

    vocab_size: int
    n_experts: int
    top_k: int
    n_shared_experts: int
    n_names: int
    ids: torch.Tensor
    targets: torch.Tensor
    positions: torch.Tensor
    n_chars: torch.Tensor
    context: torch.Tensor
    loss: torch.Tensor
    indices: dict[int, torch.Tensor] = field(default_factory=dict)
    top1: dict[int, torch.Tensor] = field(default_factory=dict)
    n_dropped: dict[int, int] = field(default_factory=dict)
    domain_labels: list[str] = field(default_factory=list)
    domain: torch.Tensor | None = None

    @property
    def layers(self) -> list[int]:
        return sorted(self.indices)

    @property
    def categories(self) -> torch.Tensor:
        """(n,) index into POSITION_CATEGORIES of each token (see the module docstring)."""
        cat = torch.full_like(self.positions, POSITION_CATEGORIES.index("middle"))
        cat[(self.positions == self.n_chars) & (self.n_chars > 1)] = POSITION_CATEGORIES.index("last")
        cat[self.positions == 1] = POSITION_CATEGORIES.index("first")
        cat[self.positions == 0] = POSITION_CATEGORIES.index("start")
        return cat


def route_names(
    model: DSMini,
    tokenizer: CharTokenizer,
    names: Sequence[str],
    ablation: dict[int, ExpertAblation] | None = None,
    max_names: int = MAX_NAMES,
    batch_size: int = BATCH_SIZE,
    domains: Sequence[str] | None = None,
) -> RoutedTokens:
    """Run the first `max_names` names through the model; keep what it did with their real tokens.

    Read-only: eval mode and no autograd for the call; `ablation` ({layer: ExpertAblation}) is
    passed to the forward, never written into the model. `domains`: one label per name (parallel
    to `names`), kept per token. Raises ValueError for no names, and the tokenizer's errors for
    names it cannot encode or that do not fit block_size.
    """
    names = list(names)[:max_names]
    if not names:
        raise ValueError("no names to route")
    labels, domain_ids = _domain_ids(domains, len(names))
    cfg = model.cfg
    x, y = encode_names(names, tokenizer, cfg.block_size)  # (N, T) each
    lengths = (y != IGNORE_INDEX).sum(dim=1)  # (N,) characters + the end
    order = lengths.argsort(stable=True)  # similar lengths share a batch: each batch is cut to its longest
    device = model.head.weight.device
    parts: dict[str, list[torch.Tensor]] = {}  # per-token tensors, one chunk per batch
    indices: dict[int, list[torch.Tensor]] = {}
    top1: dict[int, list[torch.Tensor]] = {}
    dropped: dict[int, int] = {}
    with inference(model):
        for start in range(0, len(names), batch_size):
            rows = order[start : start + batch_size]
            span = int(lengths[rows].max())
            xb, yb = x[rows, :span], y[rows, :span]  # (b, s)
            # no targets: the MTP losses would be computed and thrown away. Padding is then routed too,
            # but causal attention and per-token routing leave the real tokens as they are; only they are kept
            out = model(xb.to(device), ablation=ablation)
            valid = yb != IGNORE_INDEX  # (b, s) real tokens, in the same order for every tensor below
            loss = F.cross_entropy(
                out.logits.float().flatten(0, 1), yb.to(device).flatten(), ignore_index=IGNORE_INDEX, reduction="none"
            ).view_as(yb)  # (b, s)
            for key, value in (
                ("ids", xb), ("targets", yb), ("positions", torch.arange(span).expand_as(xb)),
                ("n_chars", (lengths[rows] - 1)[:, None].expand_as(xb)), ("context", _contexts(xb)), ("loss", loss),
            ):
                _collect(parts, key, value, valid)
            if domain_ids is not None:
                _collect(parts, "domain", domain_ids[rows][:, None].expand_as(xb), valid)
            for r in out.routing:
                if r.layer >= cfg.n_layers:  # MTP blocks do not run at inference
                    continue
                heaviest = r.indices.gather(-1, r.weights.argmax(dim=-1, keepdim=True)).squeeze(-1)  # (b, s)
                _collect(indices, r.layer, r.indices, valid)
                _collect(top1, r.layer, heaviest, valid)
                dropped[r.layer] = dropped.get(r.layer, 0) + r.n_dropped
    moe = bool(indices)
    return RoutedTokens(
        vocab_size=cfg.vocab_size,
        n_experts=cfg.n_routed_experts if moe else 0,
        top_k=cfg.top_k if moe else 0,
        n_shared_experts=cfg.n_shared_experts if moe else 0,
        n_names=len(names),
        **{key: torch.cat(chunks) for key, chunks in parts.items()},
        indices={layer: torch.cat(chunks) for layer, chunks in indices.items()},
        top1={layer: torch.cat(chunks) for layer, chunks in top1.items()},
        n_dropped=dropped,
        domain_labels=labels,
    )


def _domain_ids(domains: Sequence[str] | None, n_names: int) -> tuple[list[str], torch.Tensor | None]:
    """Per-name domain labels -> (sorted distinct labels, (N,) index of each name's label)."""
    if domains is None:
        return [], None
    domains = list(domains)[:n_names]
    if len(domains) != n_names:
        raise ValueError(f"got {len(domains)} domain labels for {n_names} names")
    labels = sorted(set(domains))
    index = {label: i for i, label in enumerate(labels)}
    return labels, torch.tensor([index[d] for d in domains], dtype=torch.long)


def _collect(parts: dict, key, value: torch.Tensor, valid: torch.Tensor) -> None:
    """Append `value`'s real tokens: (b, s, ...) -> (n_valid, ...) on the CPU."""
    parts.setdefault(key, []).append(value.cpu()[valid])


def _contexts(x: torch.Tensor) -> torch.Tensor:
    """(b, s) ids -> (b, s, 1 + CONTEXT_CHARS): the previous CONTEXT_CHARS ids and the current one."""
    padded = F.pad(x, (CONTEXT_CHARS, 0), value=-1)  # (b, CONTEXT_CHARS + s)
    return padded.unfold(1, CONTEXT_CHARS + 1, 1)  # (b, s, 1 + CONTEXT_CHARS) windows ending at each position


def initial_model(cfg: ModelConfig, seed: int = INITIAL_SEED) -> DSMini:
    """A fresh, untrained model of the same config (eval mode), for contrast with the trained one.

    Built under `fork_rng` so seeding it leaves the caller's global RNG where it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DSMini(cfg).eval()


# ---------------------------------------------------------------------------------------------
# Counting


def mutual_information(joint: torch.Tensor | Sequence[Sequence[float]]) -> float:
    """I(X; Y) in bits from a table of joint counts (rows x, columns y); 0.0 for an empty table.

    I = sum p(x, y) log2(p(x, y) / (p(x) p(y))): 0 when the column does not depend on the row,
    log2(#columns) when each row goes to its own column and columns are equally used.
    """
    p = torch.as_tensor(joint, dtype=torch.float64)
    total = p.sum()
    if total <= 0:
        return 0.0
    p = p / total
    outer = p.sum(dim=1, keepdim=True) * p.sum(dim=0, keepdim=True)  # p(x) p(y)
    nz = p > 0
    return float((p[nz] * (p[nz] / outer[nz]).log2()).sum().clamp_min(0.0))


def joint_counts(rows: torch.Tensor, indices: torch.Tensor, n_rows: int, n_experts: int) -> torch.Tensor:
    """(n_rows, E) counts of tokens per (row value, expert); each token's k choices count 1/k each.

    rows: (n,) a row index per token (its id, its position category); indices: (n, k) its experts
    (pass (n, 1) for top-1). So every token adds exactly 1 to its row.
    """
    k = indices.size(1)
    counts = torch.zeros(n_rows, n_experts, dtype=torch.float64)
    shares = torch.full((rows.numel() * k,), 1 / k, dtype=torch.float64)
    counts.index_put_((rows.repeat_interleave(k), indices.flatten()), shares, accumulate=True)
    return counts


def _row_shares(counts: torch.Tensor) -> list[list[float]]:
    """Each row divided by its sum (rows with no tokens must be removed before)."""
    return (counts / counts.sum(dim=1, keepdim=True)).tolist()


@dataclass
class ExpertProfile:
    """What one routed expert of one layer handles (a token counts if the expert is among its k).

    letters   [(label, count, share of this expert's tokens, share of that letter's tokens)]
    contexts  [(context, count, share of this expert's tokens, most frequent next, its share)]
    Context = up to CONTEXT_CHARS previous characters + the current one, e.g. "…ов"; "|" is the
    boundary, so "|Ан" is "Ан" at the start of a name and "…" means earlier characters omitted.
    """

    layer: int
    expert: int
    n_tokens: int
    share_of_tokens: float  # share of all tokens that chose this expert among their k
    letters: list[tuple[str, int, float, float]]
    contexts: list[tuple[str, int, float, str, float]]


@dataclass
class ExpertReport:
    """Plain-data routing statistics of one model over `n_names` names (for charts and pages).

    letters: input tokens that occur, grouped ("|" first, then by script and case, see `letter_group`)
    and within a group ordered by the expert they prefer in the most specialised layer, so blocks of
    letters that share experts stand next to each other; letter_counts their counts, letter_groups
    their group.
    Per main MoE layer id in `layers` (dicts keyed by layer):
      top1 / allk          letters x E shares, each row sums to 1 ("top-1": the expert with the
                           highest gate weight; "all-k": each of the k choices counts 1/k)
      position_top1 / position_allk   POSITION_CATEGORIES x E shares, rows sum to 1
      load                 share of the k * n assignments each expert took (sums to 1)
      n_dropped            assignments dropped over capacity (0 at inference)
      mi                   I(letter; expert) in bits from the all-k joint counts
      mi_initial           the same for the untrained model, if one was given
    mi_ceiling = log2(E / k): the all-k maximum (each letter always sent to its own k experts).
    profiles[layer][e] describes expert e. A dense model has `layers == []`.
    """

    n_names: int
    n_tokens: int
    n_experts: int
    top_k: int
    n_shared_experts: int
    layers: list[int]
    letters: list[str]
    letter_counts: list[int]
    letter_groups: list[str]
    categories: list[str]
    category_counts: list[int]
    top1: dict[int, list[list[float]]]
    allk: dict[int, list[list[float]]]
    position_top1: dict[int, list[list[float]]]
    position_allk: dict[int, list[list[float]]]
    load: dict[int, list[float]]
    n_dropped: dict[int, int]
    mi: dict[int, float]
    mi_initial: dict[int, float] | None
    mi_ceiling: float
    profiles: dict[int, list[ExpertProfile]]

    @property
    def has_moe(self) -> bool:
        return bool(self.layers)


def expert_report(
    routed: RoutedTokens, tokenizer: CharTokenizer, initial: RoutedTokens | None = None
) -> ExpertReport:
    """Count `routed` into shares per letter, per position category, per expert; MI per layer.

    `initial`: the same names routed by the untrained model (see `initial_model`), for `mi_initial`.
    """
    n_exp, k, vocab = routed.n_experts, routed.top_k, routed.vocab_size
    counts = torch.bincount(routed.ids, minlength=vocab)  # (V,)
    allk_counts = {layer: joint_counts(routed.ids, routed.indices[layer], vocab, n_exp) for layer in routed.layers}
    labels = [tokenizer.label(int(i)) for i in range(vocab)]
    present = _grouped_order(torch.nonzero(counts).squeeze(-1).tolist(), allk_counts, labels)  # ids that occur
    categories = routed.categories
    cat_counts = torch.bincount(categories, minlength=len(POSITION_CATEGORIES))
    cats_present = torch.nonzero(cat_counts).squeeze(-1)
    report = ExpertReport(
        n_names=routed.n_names, n_tokens=routed.ids.numel(), n_experts=n_exp, top_k=k,
        n_shared_experts=routed.n_shared_experts, layers=routed.layers,
        letters=[labels[i] for i in present], letter_counts=counts[present].tolist(),
        letter_groups=[letter_group(labels[i]) for i in present],
        categories=[POSITION_CATEGORIES[i] for i in cats_present.tolist()],
        category_counts=cat_counts[cats_present].tolist(),
        top1={}, allk={}, position_top1={}, position_allk={}, load={}, n_dropped=dict(routed.n_dropped),
        mi={}, mi_initial={} if initial is not None else None,
        mi_ceiling=math.log2(n_exp / k) if n_exp else 0.0, profiles={},
    )
    codes = _context_codes(routed.context, vocab)
    next_codes = codes * vocab + routed.targets
    for layer in routed.layers:
        indices, top1 = routed.indices[layer], routed.top1[layer][:, None]
        allk = allk_counts[layer]  # (V, E)
        report.allk[layer] = _row_shares(allk[present])
        report.top1[layer] = _row_shares(joint_counts(routed.ids, top1, vocab, n_exp)[present])
        positions = len(POSITION_CATEGORIES)
        report.position_allk[layer] = _row_shares(joint_counts(categories, indices, positions, n_exp)[cats_present])
        report.position_top1[layer] = _row_shares(joint_counts(categories, top1, positions, n_exp)[cats_present])
        report.load[layer] = (torch.bincount(indices.flatten(), minlength=n_exp) / indices.numel()).tolist()
        report.mi[layer] = mutual_information(allk)
        if initial is not None:
            report.mi_initial[layer] = mutual_information(
                joint_counts(initial.ids, initial.indices[layer], vocab, n_exp)
            )
        report.profiles[layer] = [
            _profile(routed, layer, e, labels, counts, codes, next_codes) for e in range(n_exp)
        ]
    return report


LETTER_GROUPS = ("boundary", "cyrillic_upper", "cyrillic_lower", "latin_upper", "latin_lower", "other")


def letter_group(label: str) -> str:
    """Which of LETTER_GROUPS a token label belongs to: its script (from its Unicode name) and case."""
    if label == BOUNDARY_SYMBOL:
        return "boundary"
    script = unicodedata.name(label, "").split(" ")[0].lower()
    if script not in ("cyrillic", "latin"):
        return "other"
    return f"{script}_{'upper' if label.isupper() else 'lower'}"


def _grouped_order(ids: list[int], allk_counts: dict[int, torch.Tensor], labels: list[str]) -> list[int]:
    """Token ids sorted by letter group, then by preferred expert (the column holding most of the
    letter's tokens) in the layer with the most letter information, then by how strongly."""
    if not allk_counts:
        return ids
    clearest = max(allk_counts, key=lambda layer: mutual_information(allk_counts[layer]))
    shares = allk_counts[clearest] / allk_counts[clearest].sum(dim=1, keepdim=True).clamp_min(1e-12)  # (V, E)
    best_share, preferred = shares.max(dim=1)  # (V,) each
    return sorted(ids, key=lambda i: (LETTER_GROUPS.index(letter_group(labels[i])), int(preferred[i]),
                                      -float(best_share[i])))


def _context_codes(context: torch.Tensor, vocab: int) -> torch.Tensor:
    """(n, c) context ids (-1 = before the start) -> (n,) one integer per distinct context."""
    codes = torch.zeros(context.size(0), dtype=torch.long)
    for j in range(context.size(1)):
        codes = codes * (vocab + 1) + context[:, j] + 1
    return codes


def _context_label(code: int, vocab: int, labels: list[str]) -> str:
    """Inverse of `_context_codes` as display text: "…" when characters before it are omitted."""
    ids = []
    for _ in range(CONTEXT_CHARS + 1):
        code, digit = divmod(code, vocab + 1)
        ids.append(digit - 1)
    ids.reverse()
    # the oldest slot holds a letter (id > 0) only when the name goes on further back
    prefix = "…" if ids[0] > 0 else ""
    return prefix + "".join(labels[i] for i in ids if i >= 0)


def _profile(
    routed: RoutedTokens, layer: int, expert: int, labels: list[str], letter_counts: torch.Tensor,
    codes: torch.Tensor, next_codes: torch.Tensor,
) -> ExpertProfile:
    """Count the letters and contexts of the tokens that had `expert` among their k (see ExpertProfile).

    codes: (n,) one integer per context (`_context_codes`); next_codes: (n,) context and target together.
    """
    mask = (routed.indices[layer] == expert).any(dim=-1)  # (n,) tokens that chose this expert
    n = int(mask.sum())
    vocab = routed.vocab_size
    mine = torch.bincount(routed.ids[mask], minlength=vocab)  # (V,)
    letters = [
        (labels[i], int(mine[i]), int(mine[i]) / n, int(mine[i]) / int(letter_counts[i]))
        for i in mine.argsort(descending=True, stable=True)[:TOP_CONTEXTS].tolist() if mine[i] > 0
    ]
    ctx, ctx_counts = codes[mask].unique(return_counts=True)
    nxt, nxt_counts = next_codes[mask].unique(return_counts=True)
    best_next: dict[int, tuple[int, int]] = {}  # context code -> (next id, count), most frequent next
    for code, count in zip(nxt.tolist(), nxt_counts.tolist()):
        c, target = divmod(code, vocab)
        if count > best_next.get(c, (0, 0))[1]:
            best_next[c] = (target, count)
    contexts = []
    for j in ctx_counts.argsort(descending=True, stable=True)[:TOP_CONTEXTS].tolist():
        code, count = int(ctx[j]), int(ctx_counts[j])
        target, with_next = best_next[code]
        contexts.append((_context_label(code, vocab, labels), count, count / n, labels[target], with_next / count))
    return ExpertProfile(
        layer=layer, expert=expert, n_tokens=n, share_of_tokens=n / max(routed.ids.numel(), 1),
        letters=letters, contexts=contexts,
    )
