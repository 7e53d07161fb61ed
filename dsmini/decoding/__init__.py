"""dsmini.decoding."""

from .generate import (
    CUT_MARK,
    TOP_ALTERNATIVES,
    Generated,
    check_sampling_settings,
    decode_one_token,
    generate,
    inference,
    marked,
    prefill,
    resolve_max_len,
    sample_next,
    seeded_generator,
)
from .scoring import GROUPINGS, ScoreRow, format_table, score_names, score_rows, score_table, unreadable
from .speculative import SpecResult, speculative_decode, speculative_generate

__all__ = [
    "CUT_MARK",
    "GROUPINGS",
    "Generated",
    "ScoreRow",
    "SpecResult",
    "TOP_ALTERNATIVES",
    "check_sampling_settings",
    "decode_one_token",
    "format_table",
    "generate",
    "inference",
    "marked",
    "prefill",
    "resolve_max_len",
    "sample_next",
    "score_names",
    "score_rows",
    "score_table",
    "seeded_generator",
    "speculative_decode",
    "speculative_generate",
    "unreadable",
]
