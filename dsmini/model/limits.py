"""Run checks: what a run may cost, estimated from its configs before anything is allocated.

A typo on a shared classroom server (`--d-model 1000000`, `--block-size 1000000000`, `-n 10000000`)
must be a message, not a machine swapping to death: the CLI, the app's training jobs and checkpoint
loading check these before building a model, encoding a corpus or allocating a cache. Each limit can
be raised for a big machine through its environment variable (the table in README.md, "Command line").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dsmini.config import ModelConfig, TrainConfig

from .attention_types import attention_spec
from .cache import cache_values_per_token

MAX_LR = 1.0  # AdamW and Muon here train at 1e-4 .. 2e-2; far above 1 the first update already overflows


def check_learning_rate(cfg: TrainConfig) -> None:
    """Refuse settings that can only diverge. Not part of TrainConfig's own validation: tests provoke
    divergence on purpose, and the trainer stops cleanly when they do."""
    if cfg.lr > MAX_LR:
        raise ValueError(f"TrainConfig.lr: must be <= {MAX_LR} (runs here use 1e-4 to 2e-2), got {cfg.lr!r}")
    if cfg.lr * cfg.weight_decay >= 1:
        raise ValueError(
            "TrainConfig.weight_decay: lr * weight_decay must be < 1 (AdamW multiplies every weight by "
            f"1 - lr * weight_decay each step), got {cfg.lr!r} * {cfg.weight_decay!r}"
        )


class ResourceLimitError(ValueError):
    """A run would exceed a documented limit; the message names it and its environment variable."""


@dataclass(frozen=True)
class Limit:
    env: str  # environment variable that overrides the default
    default: int
    unit: str  # what is counted, for messages

    @property
    def value(self) -> int:
        """The limit in force: the environment variable when set (read on every check), else the default."""
        raw = os.environ.get(self.env)
        if raw is None:
            return self.default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{self.env}={raw!r}: must be a whole number >= 1")
        return value

    def check(self, amount: int, what: str) -> None:
        if amount > self.value:
            raise ResourceLimitError(
                f"{what} is {amount:,} {self.unit}, over the limit of {self.value:,}; "
                f"set {self.env} to raise it (e.g. {self.env}={_suggest(amount)} on a machine that has room)"
            )


def _suggest(amount: int) -> int:
    """A round number at or above `amount`, for the example in a limit's message."""
    step = 10 ** max(len(str(amount)) - 1, 0)
    return -(-amount // step) * step


LIMITS: dict[str, Limit] = {
    "params": Limit("DSMINI_MAX_PARAMS", 20_000_000, "parameters"),  # medium is 5.8M
    "memory": Limit("DSMINI_MAX_MEMORY_MB", 4_096, "MB"),  # estimated peak of weights, optimizer, activations, data
    "block_size": Limit("DSMINI_MAX_BLOCK_SIZE", 256, "positions"),  # names are at most 32 characters
    "layers": Limit("DSMINI_MAX_LAYERS", 64, "blocks"),  # each block is Python modules: building 10,000 takes minutes
    "experts": Limit("DSMINI_MAX_EXPERTS", 256, "experts"),  # DeepSeek-V3 has 256 routed experts per layer
    "samples": Limit("DSMINI_MAX_SAMPLES", 10_000, "names"),  # generated in one batch over one KV cache
}

BYTES_PER_VALUE = 4  # float32 weights, activations and caches
MB = 2**20


def count_params(cfg: ModelConfig) -> dict[str, int]:
    """Parameters of `DSMini(cfg)` without building it: {"main": ..., "mtp": ..., "total": ...}.

    Closed form, so it costs the same for 4 layers or 10^9 (equal to `DSMini(cfg).param_counts()`,
    which the tests check across attention types, FFN types, routers and depths).
    """
    d, v = cfg.d_model, cfg.vocab_size
    moe_layers = cfg.n_moe_layers
    main = 2 * v * d + d + cfg.n_layers * (2 * d + _attention_params(cfg))
    main += moe_layers * _moe_params(cfg) + (cfg.n_layers - moe_layers) * 3 * d * cfg.d_ff
    # an MTP module: two input norms, the projection 2d -> d, mtp_layers blocks (MoE when the model
    # has MoE), a norm
    mtp_block = 2 * d + _attention_params(cfg) + (_moe_params(cfg) if cfg.ffn_type == "moe" else 3 * d * cfg.d_ff)
    mtp = cfg.mtp_depth * (3 * d + 2 * d * d + cfg.mtp_layers * mtp_block)
    return {"main": main, "mtp": mtp, "total": main + mtp}


def _attention_params(cfg: ModelConfig) -> int:
    return attention_spec(cfg.attn_type).module.param_count(cfg)


def _moe_params(cfg: ModelConfig) -> int:
    d, e = cfg.d_model, cfg.n_routed_experts
    gate = e * d * (2 if cfg.router == "noisy_topk" else 1)
    return gate + e * 3 * d * cfg.moe_inter_dim + 3 * d * cfg.n_shared_experts * cfg.moe_inter_dim


def _block_values_per_token(cfg: ModelConfig, positions: int) -> int:
    """float32 values one block keeps per token for the backward pass (an upper estimate): norms and
    residuals, projections, attention scores and probabilities over `positions`, the FFN's hidden
    activations (MoE: each of top_k routed experts, the shared ones and the router's scores)."""
    d, h = cfg.d_model, cfg.n_heads
    if cfg.latent_attention:
        attn = 4 * h * cfg.qk_head_dim + 3 * h * cfg.v_head_dim + 2 * (cfg.kv_lora_rank + cfg.qk_rope_head_dim)
    else:
        attn = 4 * h * cfg.mha_head_dim + 4 * cfg.kv_heads * cfg.mha_head_dim
    attn += 2 * h * positions
    if cfg.ffn_type == "moe":
        routed = cfg.top_k * (3 * d + 4 * cfg.moe_inter_dim)
        ffn = 2 * cfg.n_routed_experts + routed + 4 * cfg.n_shared_experts * cfg.moe_inter_dim
    else:
        ffn = 4 * cfg.d_ff
    return 12 * d + attn + ffn


@dataclass(frozen=True)
class ResourceEstimate:
    """What a training run will hold at its peak, in bytes (estimates, meant to be on the high side)."""

    params: int
    weights: int  # parameters, gradients, two optimizer moments, the untrained copy some probes build
    activations: int  # one micro-batch forward + backward
    data: int  # the encoded corpus (and its lists while encoding)

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.data


def estimate_training(model_cfg: ModelConfig, batch_size: int, n_names: int) -> ResourceEstimate:
    """Peak memory of training `model_cfg` on `n_names` names in batches of `batch_size`."""
    params = count_params(model_cfg)["total"]
    t = model_cfg.block_size
    blocks = model_cfg.n_layers + model_cfg.n_mtp_blocks
    per_token = blocks * _block_values_per_token(model_cfg, t) + (1 + model_cfg.mtp_depth) * 3 * model_cfg.vocab_size
    # an x and a y row of int64 per name, plus the Python lists they are built from
    data = n_names * (2 * 8 * t + 2 * (56 + 8 * t))
    return ResourceEstimate(
        params=params,
        weights=5 * params * BYTES_PER_VALUE,
        activations=batch_size * t * per_token * BYTES_PER_VALUE,
        data=data,
    )


def estimate_sampling(model_cfg: ModelConfig, n: int) -> int:
    """Peak bytes of generating `n` names in one batch: the KV cache of every layer, one block's
    activations and the logits for each name."""
    t = model_cfg.block_size
    cache = n * t * cache_values_per_token(model_cfg)
    step = n * t * (_block_values_per_token(model_cfg, t) + 3 * model_cfg.vocab_size)
    return (cache + step) * BYTES_PER_VALUE


def check_model_size(cfg: ModelConfig) -> None:
    """ResourceLimitError if building `cfg` would exceed a limit (build time, parameters); checked in
    order of cost to the user, before anything is allocated: by training and by loading a checkpoint."""
    LIMITS["block_size"].check(cfg.block_size, "block_size")
    LIMITS["layers"].check(cfg.n_layers + cfg.n_mtp_blocks, "n_layers + mtp_depth × mtp_layers")
    if cfg.ffn_type == "moe":
        LIMITS["experts"].check(cfg.n_routed_experts, "n_routed_experts")
    LIMITS["params"].check(count_params(cfg)["total"], "the model")


def check_training(model_cfg: ModelConfig, train_cfg: TrainConfig, n_names: int) -> ResourceEstimate:
    """ResourceLimitError if training would exceed a limit; else the estimate. Fast: nothing is built."""
    check_model_size(model_cfg)
    LIMITS["samples"].check(train_cfg.n_samples, "n_samples")
    estimate = estimate_training(model_cfg, train_cfg.batch_size, n_names)
    sampling = estimate_sampling(model_cfg, train_cfg.n_samples)
    peak = max(estimate.total, estimate.weights + estimate.data + sampling)
    LIMITS["memory"].check(-(-peak // MB), "the estimated peak memory of this run")
    return estimate


def check_sampling(model_cfg: ModelConfig, n: int) -> None:
    """ResourceLimitError if generating `n` names from a `model_cfg` model would exceed a limit."""
    LIMITS["samples"].check(n, "-n")
    LIMITS["memory"].check(-(-estimate_sampling(model_cfg, n) // MB), f"the estimated memory for {n:,} names")
