"""dsmini.model."""

from .attention import MHA, MLA, Attention
from .attention_types import ATTENTION, ATTN_ORDER, AttentionSpec, CacheDims, attention_spec
from .cache import (
    DEEPSEEK_V2,
    DEEPSEEK_V3,
    ModelCache,
    cache_values_per_token,
    cached_per_layer,
    check_cache,
    new_model_cache,
    values_per_layer,
    values_per_token,
)
from .limits import LIMITS, ResourceLimitError, check_learning_rate, check_model_size, check_sampling, check_training
from .moe import Expert, MoE, Routing, stack_expert_weights
from .options import ExpertAblation, ForwardOptions
from .transformer import IGNORE_INDEX, DSMini, ModelOutput

__all__ = [
    "IGNORE_INDEX",
    "ATTENTION",
    "ATTN_ORDER",
    "Attention",
    "AttentionSpec",
    "CacheDims",
    "DEEPSEEK_V2",
    "DEEPSEEK_V3",
    "DSMini",
    "Expert",
    "ExpertAblation",
    "ForwardOptions",
    "LIMITS",
    "MHA",
    "MLA",
    "MoE",
    "ModelCache",
    "ModelOutput",
    "ResourceLimitError",
    "Routing",
    "attention_spec",
    "cache_values_per_token",
    "cached_per_layer",
    "check_cache",
    "check_learning_rate",
    "check_model_size",
    "check_sampling",
    "check_training",
    "new_model_cache",
    "stack_expert_weights",
    "values_per_layer",
    "values_per_token",
]
