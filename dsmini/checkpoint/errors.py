"""The errors of checkpoints: one base class that every refusal to save, find, read or trust a
checkpoint raises, and the one for a name that is taken.

A module of their own because every checkpoint module raises them (the schema, the name policy,
the optimizer-state codec, the corpus reference, save and load), and callers catch them without
caring which of those refused.
"""

from __future__ import annotations

from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint cannot be saved, found, read or trusted; the message says which file and why."""


class CheckpointExistsError(CheckpointError):
    """A save would replace a checkpoint: a shipped one (never allowed) or another one without
    overwrite=True. `free_name` is a name not yet taken, for the app to offer instead."""

    def __init__(self, path: Path, free_name: str, shipped: bool):
        self.path, self.free_name, self.shipped = path, free_name, shipped
        if shipped:
            message = f"{path.name!r} ships with dsmini and is read-only: save under another name, e.g. {free_name!r}"
        else:
            message = (
                f"a checkpoint named {path.name!r} already exists in {path.parent}: choose another name, "
                f"e.g. {free_name!r}, or overwrite it explicitly"
            )
        super().__init__(message)


class CheckpointAheadError(CheckpointExistsError):
    """A save of a run would replace its checkpoint while the checkpoint is at a later step (another run
    of it saved meanwhile): older weights never replace newer ones. `free_name` is where to save instead."""

    def __init__(self, path: Path, free_name: str, step: int, ahead: int):
        self.path, self.free_name, self.shipped = path, free_name, False
        CheckpointError.__init__(
            self, f"{path} is at step {ahead:,} now, past this run's {step:,} (another run saved it meanwhile): "
            f"not replacing it with older weights; save under another name, e.g. {free_name!r}"
        )
