"""dsmini.jobs."""

from .job import JobError, TrainingJob
from .process import prepare_for_training
from .registry import JobRegistry, run_grace_s
from .slots import SLOTS_DIR_ENV, THREADS, configure_torch_threads

__all__ = [
    "JobError",
    "JobRegistry",
    "SLOTS_DIR_ENV",
    "THREADS",
    "TrainingJob",
    "configure_torch_threads",
    "prepare_for_training",
    "run_grace_s",
]
