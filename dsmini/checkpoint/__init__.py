"""dsmini.checkpoint."""

from .atomic import replace_file
from .corpus_ref import CorpusRef, checkpoint_validation_set, corpus_reference
from .errors import CheckpointError, CheckpointExistsError
from .files import META_FILE
from .names import validate_name
from .store import (
    SUMMARY_VAL_LOSS_KEYS,
    Checkpoint,
    CheckpointInfo,
    CheckpointListing,
    checkpoint_zip_bytes,
    copy_checkpoint,
    list_checkpoints,
    load_best_state,
    load_checkpoint,
    save_checkpoint,
    scan_checkpoints,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointExistsError",
    "CheckpointInfo",
    "CheckpointListing",
    "CorpusRef",
    "META_FILE",
    "SUMMARY_VAL_LOSS_KEYS",
    "checkpoint_validation_set",
    "checkpoint_zip_bytes",
    "copy_checkpoint",
    "corpus_reference",
    "list_checkpoints",
    "load_best_state",
    "load_checkpoint",
    "replace_file",
    "save_checkpoint",
    "scan_checkpoints",
    "validate_name",
]
