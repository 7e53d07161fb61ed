"""dsmini.training."""

from .device import pick_device, synchronize
from .trainer import DOMAIN_PROBE_NAMES, StepMetrics, Trainer, evaluate, train

__all__ = [
    "DOMAIN_PROBE_NAMES",
    "StepMetrics",
    "Trainer",
    "evaluate",
    "pick_device",
    "synchronize",
    "train",
]
