"""dsmini.training."""

from .device import pick_device, synchronize
from .trainer import DomainMI, StepMetrics, Trainer, evaluate, train

__all__ = [
    "DomainMI",
    "StepMetrics",
    "Trainer",
    "evaluate",
    "pick_device",
    "synchronize",
    "train",
]
