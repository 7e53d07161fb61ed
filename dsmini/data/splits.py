"""The seeded train/val/test split of a corpus's names (and their domain labels).

Apart from `dsmini.data` (which re-exports it) so that module stays one screenful per concept; plain
Python, no torch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Splits:
    train: list[str]
    val: list[str]
    test: list[str]
    # the domain label of each name above, position by position; None: unlabelled
    train_domains: list[str] | None = None
    val_domains: list[str] | None = None
    test_domains: list[str] | None = None


def split_names(
    names: Sequence[str],
    seed: int,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    domains: Sequence[str] | None = None,
) -> Splits:
    """Shuffle a copy with `random.Random(seed)` and cut it into train/val/test.

    Deterministic for a seed and independent of the global RNG. With val_frac > 0, val gets at
    least one name whenever there are two, so validation loss always exists; train always keeps one.
    val_frac = 0 cuts no validation names (they come from a file of their own).
    The positions are shuffled, then names and labels are read through them: `shuffle` moves
    items by position only, so the names come out exactly as shuffling the names themselves
    did before labels existed, and old checkpoints rebuild the same validation names.
    """
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(
            f"val_frac={val_frac} and test_frac={test_frac} must be in [0, 1) with sum < 1"
        )
    if domains is not None and len(domains) != len(names):
        raise ValueError(f"{len(names)} names but {len(domains)} domain labels")
    order = list(range(len(names)))
    random.Random(seed).shuffle(order)
    n = len(order)
    n_val = min(max(round(n * val_frac), 1 if n >= 2 and val_frac > 0 else 0), max(n - 1, 0))
    n_test = min(round(n * test_frac), max(n - 1 - n_val, 0))
    parts = {"train": order[n_val + n_test :], "val": order[:n_val], "test": order[n_val : n_val + n_test]}

    def labels(part: list[int]) -> list[str] | None:
        return None if domains is None else [domains[i] for i in part]

    return Splits(
        **{key: [names[i] for i in part] for key, part in parts.items()},
        **{f"{key}_domains": labels(part) for key, part in parts.items()},
    )
