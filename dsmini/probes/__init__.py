"""Read-only traces of a model for the explorer: no gradients, no state, never mutate the model
(one loaded checkpoint serves every user). One module per question the app asks."""

from .domains import DOMAIN_PROBE_NAMES, live_domain_mi
from .routing import NameTrace, trace_name
from .training import domain_mi_history, expert_load_history, loss_curves

__all__ = [
    "DOMAIN_PROBE_NAMES",
    "NameTrace",
    "domain_mi_history",
    "expert_load_history",
    "live_domain_mi",
    "loss_curves",
    "trace_name",
]
