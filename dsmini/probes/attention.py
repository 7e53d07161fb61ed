"""Read-only attention maps for one name: who each character looked at, in every layer and head.

For MLA the pre-softmax score of a query/key pair is the sum of two dot products (DeepSeek-V2
§2.1.3): a *content* part `q_nope · k_nope` read from the latent, and a *position* part
`q_rope · k_rope` from the decoupled RoPE key shared by all heads. `AttnTrace` carries both
parts; here they become plain lists so charts and tests need no torch.

The sparse types (DSA, MoBA, log-linear; dsmini.model.sparse_attention) also say what each query was
allowed to see: DSA's top-k picks (one set for all heads), MoBA's chosen blocks plus the query's
own (per head), log-linear's Fenwick level of every pair (levels >= its fine levels are pooled).

Axes: l layers, h heads, q query positions, k key positions (both: the boundary, then the name).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dsmini.checkpoint import Checkpoint
from dsmini.data import CharTokenizer, nfc
from dsmini.decoding import inference
from dsmini.model import DSMini

# Shown when the page opens: the first one the model's alphabet can spell is used (the full name only
# by a model of full names, the one alphabet with a space: there a sparse selection has room to show).
SAMPLE_NAMES = ("Красоткина Мария Петровна", "Красоткина", "Annabelle")

Maps = list[list[list[list[float]]]]  # [l][h][q][k]


@dataclass
class AttentionTrace:
    """One name's attention, per main layer and head. Position i holds `labels[i]`.

    probs[l][h][q][k]  softmax attention of query q over key k; 0 for k > q (causal), rows sum to 1
    scores_nope / scores_rope [l][h][q][k]  MLA and the sparse types: content and position parts of
                       the scaled pre-softmax score, NaN where masked (k > q, or outside the
                       selection); None for MHA / GQA / MQA
    allowed[l][h][q][k]  sparse types: whether query q could see key k (probs are exactly 0 where
                       not); None for the dense types (every k <= q)
    levels[l][q][k]    log-linear: the Fenwick level of (q, k), -1 for k > q; pooled from
                       `fine_levels` up (the same in every layer)
    moba_block_size    MoBA: keys per block (a query's own block is `q // moba_block_size`)
    """

    name: str
    labels: list[str]
    attn_type: str
    probs: Maps
    scores_nope: Maps | None = None
    scores_rope: Maps | None = None
    allowed: list[list[list[list[bool]]]] | None = None
    levels: list[list[list[int]]] | None = None
    fine_levels: int | None = None
    moba_block_size: int | None = None

    @property
    def n_layers(self) -> int:
        return len(self.probs)

    @property
    def n_heads(self) -> int:
        return len(self.probs[0]) if self.probs else 0

    @property
    def has_split(self) -> bool:
        """Whether scores split into content + position parts (MLA's decoupled RoPE)."""
        return self.scores_nope is not None

    def head_average(self, layer: int) -> list[list[float]]:
        """The layer's attention averaged over heads, (q, k); rows still sum to 1."""
        heads = self.probs[layer]
        n = len(self.labels)
        return [[sum(h[q][k] for h in heads) / len(heads) for k in range(n)] for q in range(n)]

    @property
    def is_sparse(self) -> bool:
        """Whether a selection limited what each query saw (DSA, MoBA, log-linear)."""
        return self.allowed is not None

    def selection_map(self, layer: int, head: int) -> list[list[int | None]]:
        """What query q saw of key k, per cell: None where it could not see k (later, or left out);
        else DSA 0 (a top-k pick), MoBA 0 (a chosen earlier block) or 1 (the query's own block),
        log-linear the pair's Fenwick level (token by token below `fine_levels`, pooled from it up)."""
        if not self.is_sparse:
            raise ValueError(f"{self.attn_type.upper()} attention lets every query see every earlier key")
        allowed, n = self.allowed[layer][head], len(self.labels)
        return [[self._kind(layer, q, k) if allowed[q][k] else None for k in range(n)] for q in range(n)]

    def _kind(self, layer: int, q: int, k: int) -> int:
        if self.levels is not None:
            return self.levels[layer][q][k]
        if self.moba_block_size is not None:
            return int(q // self.moba_block_size == k // self.moba_block_size)
        return 0

    def scores(self, layer: int, head: int) -> list[list[float]]:
        """MLA: the total pre-softmax score (content + position), NaN where masked."""
        if not self.has_split:
            raise ValueError(f"{self.attn_type.upper()} attention has no content/position split of its scores")
        nope, rope = self.scores_nope[layer][head], self.scores_rope[layer][head]
        return [[a + b for a, b in zip(row_n, row_r)] for row_n, row_r in zip(nope, rope)]


def trace_attention(model: DSMini, tokenizer: CharTokenizer, name: str) -> AttentionTrace:
    """Run the model once on `[B] + name` with attention weights on; the model is not changed.

    Raises the tokenizer's UnknownCharacterError for characters outside the alphabet, and
    ValueError if the name does not fit the model's block_size.
    """
    name = nfc(name)  # the name as the model reads it
    ids = tokenizer.frame_for(model.cfg, name)
    with inference(model):
        out = model(torch.tensor([ids], device=model.head.weight.device), need_weights=True)
    traces = out.attn  # one AttnTrace per main layer; tensors (1, h, q, k)
    split = traces[0].scores_nope is not None
    sparse = traces[0].allowed is not None
    loglinear = traces[0].levels is not None
    return AttentionTrace(
        name=name,
        labels=[tokenizer.label(i) for i in ids],
        attn_type=model.cfg.attn_type,
        probs=[tr.probs[0].float().tolist() for tr in traces],
        scores_nope=[tr.scores_nope[0].float().tolist() for tr in traces] if split else None,
        scores_rope=[tr.scores_rope[0].float().tolist() for tr in traces] if split else None,
        allowed=[tr.allowed[0].expand_as(tr.probs[0]).tolist() for tr in traces] if sparse else None,
        levels=[tr.levels.tolist() for tr in traces] if loglinear else None,
        fine_levels=model.cfg.loglinear_fine_levels if loglinear else None,
        moba_block_size=model.cfg.moba_block_size if model.cfg.attn_type == "moba" else None,
    )


def sample_name(tokenizer: CharTokenizer, block_size: int, candidates: tuple[str, ...] = SAMPLE_NAMES) -> str:
    """A name to show first: the first candidate the alphabet spells and the model fits, else
    the alphabet's first letters (an uploaded corpus may share no letter with our samples)."""
    for name in candidates:
        if not tokenizer.unknown_chars(name) and len(name) < block_size:
            return name
    letters = [c for c in tokenizer.chars if c.isalpha()] or tokenizer.chars
    return "".join(letters[: min(6, block_size - 1)])


@dataclass(frozen=True)
class AttentionSettings:
    """The Attention page's name; None: `sample_name`, what the page opens on."""

    name: str | None = None


def attention_view(ckpt: Checkpoint, settings: AttentionSettings = AttentionSettings()) -> AttentionTrace:
    """Every layer and head's map for the name (ValueError when the model cannot read it)."""
    cfg = ckpt.model_config
    name = sample_name(ckpt.tokenizer, cfg.block_size) if settings.name is None else settings.name
    return trace_attention(ckpt.model, ckpt.tokenizer, name)
