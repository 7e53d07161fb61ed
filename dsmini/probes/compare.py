"""Two checkpoints side by side: their configs field by field, and the numbers that follow from
them (parameters, loss, KV-cache per token), each row flagged where the two differ.

Plain data out (rows, a DataFrame of strings); nothing is written to either model. The same
checkpoint may be compared with itself: then no row differs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from dsmini.checkpoint import SUMMARY_VAL_LOSS_KEYS, Checkpoint
from dsmini.config import ModelConfig, TrainConfig
from dsmini.data import Corpus, split_names
from dsmini.decoding import ScoreRow, score_names, score_table, unreadable
from dsmini.model import cache_values_per_token

from .generation import GenerateSettings, generated_names


@dataclass(frozen=True)
class CompareRow:
    key: str  # a ModelConfig field or a ModelFacts field
    a: Any
    b: Any

    @property
    def differs(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True)
class ModelFacts:
    """What a checkpoint's config and training come to. Parameters per char ("active") count k of
    the E routed experts; MTP modules are apart from the main model, which alone generates."""

    corpus: str | None
    steps: int
    params_main_total: int
    params_main_active: int
    params_mtp_total: int
    params_mtp_active: int
    val_loss: float | None  # the last evaluation
    best_val_loss: float | None  # the best evaluation (what the checkpoint picker shows)
    cache_values_per_token: int  # DeepSeek-V2 Table 1: main model, all layers
    cache_bytes_per_token: int  # of an actual one-token cache, in the model's dtype


def model_facts(ckpt: Checkpoint) -> ModelFacts:
    counts, summary = ckpt.param_counts, ckpt.summary or {}
    mtp = counts.get("mtp", {"total": 0, "active": 0})  # absent when mtp_depth = 0
    best = next((summary[k] for k in SUMMARY_VAL_LOSS_KEYS if summary.get(k) is not None), None)
    return ModelFacts(
        corpus=ckpt.corpus.name,
        steps=ckpt.step,
        params_main_total=counts["main"]["total"],
        params_main_active=counts["main"]["active"],
        params_mtp_total=mtp["total"],
        params_mtp_active=mtp["active"],
        val_loss=summary.get("val_loss"),
        best_val_loss=best,
        cache_values_per_token=cache_values_per_token(ckpt.model_config),
        cache_bytes_per_token=ckpt.model.new_cache(1, max_len=1).nbytes(),  # batch 1, one position
    )


def compare_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[CompareRow]:
    """One row per key, in `a`'s order and then `b`'s extra keys; a missing key reads as None."""
    keys = list(a) + [k for k in b if k not in a]
    return [CompareRow(k, a.get(k), b.get(k)) for k in keys]


def config_rows(a: ModelConfig, b: ModelConfig) -> list[CompareRow]:
    """Every ModelConfig field, in declaration order (grouped as in config.py)."""
    return compare_rows(a.to_dict(), b.to_dict())


def fact_rows(a: ModelFacts, b: ModelFacts) -> list[CompareRow]:
    return compare_rows(dataclasses.asdict(a), dataclasses.asdict(b))


def display_value(value: Any) -> str:
    """A value as a table shows it: thousands separators, 4 significant digits, "—" for none.

    Strings throughout, so a column mixing ints, floats and names stays one Arrow type.
    """
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def rows_frame(rows: list[CompareRow], labels: Mapping[str, str], columns: tuple[str, str, str, str]) -> pd.DataFrame:
    """Rows -> a table: (field label, value A, value B, "≠" where they differ).

    labels: key -> what to show for it (keys without one show as themselves);
    columns: the four column headers, e.g. ("field", "A: en-names", "B: ru-names", "≠").
    """
    return pd.DataFrame(
        [
            (labels.get(r.key, r.key), display_value(r.a), display_value(r.b), "≠" if r.differs else "")
            for r in rows
        ],
        columns=list(columns),
    )


# The Compare page's shared generation settings (its widgets' defaults): the Generate page's, 8 names
COMPARE_DEFAULTS = GenerateSettings(n=8)
DEFAULT_PAIR = ("en-names", "ru-names")  # the shipped models Compare opens on, when present


@dataclass(frozen=True)
class CompareView:
    facts: tuple[ModelFacts, ModelFacts]
    fact_rows: list[CompareRow]
    config_rows: list[CompareRow]
    names: tuple[list[str] | None, list[str] | None]  # None: that model cannot start with the prefix


def _names_of(ckpt: Checkpoint, settings: GenerateSettings) -> list[str] | None:
    tokenizer, prefix = ckpt.tokenizer, settings.prefix
    if tokenizer.unknown_chars(prefix) or len(prefix) > ckpt.model_config.block_size - 1:
        return None
    return generated_names(ckpt, settings)


def compare_view(a: Checkpoint, b: Checkpoint, settings: GenerateSettings = COMPARE_DEFAULTS) -> CompareView:
    """Checkpoints A and B side by side, and each one's names for the same settings."""
    facts = (model_facts(a), model_facts(b))
    return CompareView(facts, fact_rows(*facts), config_rows(a.model_config, b.model_config),
                       (_names_of(a, settings), _names_of(b, settings)))


# ---------------------------------------------------------------------------------------------
# Both checkpoints scored on the same names (dsmini.decoding.scoring, as `python -m dsmini eval` scores)


@dataclass(frozen=True)
class ScoreComparison:
    """A's and B's score rows for one list of names: (group, A's row, B's row), the row over every
    name first, then one per length or domain when asked; or why they could not be scored."""

    names: int
    rows: list[tuple[str, ScoreRow, ScoreRow]]
    problem: str | None = None  # a name one of the two cannot read: nothing was scored


SCORED_HELD_OUT = 2000  # held-out names scored at most: ru-names holds ~20K, ~10 s per model on a CPU


def held_out_names(corpus: Corpus, limit: int = SCORED_HELD_OUT) -> tuple[list[str], list[str] | None]:
    """The first `limit` names of a corpus's test split, cut as `python -m dsmini train` cuts it
    (default split seed and fractions): names no checkpoint trained on that corpus with the defaults
    has seen or selected on. The split is shuffled, so its first names are a random sample of it."""
    splits = split_names(corpus.names, TrainConfig().split_seed, domains=corpus.domains)
    return splits.test[:limit], None if splits.test_domains is None else splits.test_domains[:limit]


def compare_scores(a: Checkpoint, b: Checkpoint, names: tuple[str, ...], domains: tuple[str, ...] | None = None,
                   by: str | None = None) -> ScoreComparison:
    """Score `names` under A and under B (nats/char, bits/char, perplexity per group)."""
    for label, ckpt in (("A", a), ("B", b)):
        problem = unreadable(ckpt.tokenizer, ckpt.model_config.block_size, names, f"{label} ({ckpt.name})")
        if problem is not None:
            return ScoreComparison(len(names), [], problem[1])
    tables = [score_table(score_names(c.model, c.tokenizer, names, domains), by) for c in (a, b)]
    return ScoreComparison(len(names), [(ra.group, ra, rb) for ra, rb in zip(*tables)])
