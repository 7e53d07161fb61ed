"""A checkpoint's reference to the corpus it was trained on, and the validation names it gives back.

The `corpus` entry of checkpoint.json says how to rebuild the validation names the explorer probes
with: a built-in corpus by its name, block size and split seed; any other corpus (an upload, a .txt
path) stores up to MAX_STORED_VAL_NAMES of them, with their domain labels, because the file is gone
once training ends. `CorpusRef` is that entry, typed: `corpus_reference(data)` builds it for a run,
`CorpusRef.from_json` parses it on load (checked by `dsmini.checkpoint.schema.corpus_problem`, so a
bad entry is refused naming the field), `to_json` writes it back the same way, key for key, and
`checkpoint_validation_set` reads either kind of corpus back.

Entries written before domains existed lack `domains` (and the stored names); those fields are then
None, as are all of them for a checkpoint saved without a corpus. Keys this dsmini does not know
(a newer writer's) are kept in `extra` and written back after the known ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dsmini.data import Corpus, CorpusData, CorpusError, LabelledNames, list_corpora, load_corpus, validation_set

from .errors import CheckpointError
from .schema import corpus_problem, jsonable

MAX_STORED_VAL_NAMES = 2_000  # ~20 KB of JSON; more than any probe page reads at once
_NAME_LISTS = ("domains", "val_names", "val_domains")  # JSON lists, tuples here


@dataclass(frozen=True)
class CorpusRef:
    """The corpus entry of checkpoint.json; None is a field the entry does not have."""

    name: str | None = None  # a built-in corpus's name, or the file's
    split_seed: int | None = None
    block_size: int | None = None  # names longer than block_size - 1 were dropped before the split
    n_train: int | None = None
    n_val: int | None = None
    domains: tuple[str, ...] | None = None  # the corpus's sorted domain labels; () unlabelled
    val_names: tuple[str, ...] | None = None  # stored for a corpus that is not built in
    val_domains: tuple[str, ...] | None = None  # their labels; None with val_names: unlabelled
    # where val / test came from: a file of their own (its name), else cut from the corpus by these
    # fractions; None: saved before they could differ (cut, 0.1 and 0.1)
    val_file: str | None = None
    test_file: str | None = None
    val_frac: float | None = None
    test_frac: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)  # unknown keys, as they were

    @classmethod
    def from_json(cls, entry: Any, where: str = "corpus") -> CorpusRef:
        """Parse a corpus entry of checkpoint.json; CheckpointError `<where>: <problem>` naming the field."""
        _refuse(corpus_problem(entry), where)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        fields = {key: tuple(value) if key in _NAME_LISTS and value is not None else value
                  for key, value in entry.items() if key in known}
        return cls(**fields, extra={key: value for key, value in entry.items() if key not in known})

    def to_json(self) -> dict[str, Any]:
        """The corpus entry for checkpoint.json: the fields it has, then `extra`. Checked as loading
        checks it, so a save never writes what a load would refuse (CheckpointError)."""
        entry: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self)
            if f.name != "extra" and getattr(self, f.name) is not None
        }
        if self.val_names is not None:
            entry["val_domains"] = self.val_domains  # null: the stored names are unlabelled
        entry = jsonable({**entry, **self.extra}, "corpus")
        _refuse(corpus_problem(entry), "corpus")
        return entry


def _refuse(problem: str | None, where: str) -> None:
    if problem:
        raise CheckpointError(f"{where}: {problem}")


def corpus_reference(data: CorpusData) -> CorpusRef:
    """The corpus reference of a run trained on `data`.

    A built-in corpus whose validation names are cut from it is rebuilt by name (its validation split
    can be 20,000 names); any other (a file, or validation names from a file of their own) keeps its
    first MAX_STORED_VAL_NAMES validation names (a fair sample: the split is shuffled; a given file
    keeps its own order).
    """
    ref = CorpusRef(
        name=data.corpus_name,
        split_seed=data.seed,
        block_size=data.block_size,
        n_train=len(data.train.names),
        n_val=len(data.val.names),
        domains=tuple(data.domain_labels),
        val_file=Path(data.val_source).name if data.val_source is not None else None,  # a name, as `name` is
        test_file=Path(data.test_source).name if data.test_source is not None else None,
        val_frac=data.val_frac,
        test_frac=data.test_frac,
    )
    if data.builtin and data.val_source is None:
        return ref
    val_domains = data.val.domains
    return dataclasses.replace(
        ref,
        val_names=tuple(data.val.names[:MAX_STORED_VAL_NAMES]),
        val_domains=tuple(val_domains[:MAX_STORED_VAL_NAMES]) if val_domains is not None else None,
    )


def checkpoint_validation_set(
    ref: CorpusRef, max_names: int | None = None, load: Callable[[str], Corpus] = load_corpus
) -> LabelledNames:
    """The validation names (and domain labels) of the run that made a checkpoint, from its `corpus`.

    Stored names come first (uploads and files); otherwise a built-in corpus is rebuilt with `load`
    (the app passes its cached loader: ru-names takes seconds) and re-split exactly as training did.
    CorpusError when neither works.
    """
    if ref.val_names is not None:
        return LabelledNames(
            list(ref.val_names[:max_names]),
            list(ref.val_domains[:max_names]) if ref.val_domains is not None else None,
        )
    if ref.val_file is not None:
        raise CorpusError(
            f"the validation names of {ref.name!r} came from the file {ref.val_file!r}, which the checkpoint does "
            "not store: they are not available here"
        )
    if ref.name not in list_corpora():
        raise CorpusError(
            f"the validation names of corpus {ref.name!r} cannot be rebuilt: it is not a built-in corpus and "
            "the checkpoint does not store them (it was saved by an older dsmini); train it again to explore it"
        )
    if ref.block_size is None or ref.split_seed is None:
        raise CorpusError(f"corpus {ref.name!r}: the checkpoint lacks an integer 'block_size' and 'split_seed'")
    rebuilt = load(ref.name)
    if ref.domains is not None and list(ref.domains) != rebuilt.domain_labels:
        raise CorpusError(
            f"built-in corpus {ref.name!r} now has domains {rebuilt.domain_labels}, but the checkpoint was "
            f"trained with {list(ref.domains)}: its validation names cannot be rebuilt"
        )
    fractions = {key: value for key, value in (("val_frac", ref.val_frac), ("test_frac", ref.test_frac))
                 if value is not None}
    return validation_set(rebuilt.names, ref.block_size, ref.split_seed, max_names, rebuilt.domains, **fractions)
