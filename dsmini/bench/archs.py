"""The four architectures every comparison uses, at matched *active* parameters.

A dense baseline's FFN is a SwiGLU of hidden size `(n_shared + top_k) * moe_inter_dim`: exactly
the experts a token passes through in an MoE layer (shared + its top-k routed), so the MoE models
differ from the dense ones by the router and the idle experts only (192 for preset small, which
is the preset's own `d_ff`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dsmini.config import ModelConfig, preset
from dsmini.model import DSMini


@dataclass(frozen=True)
class Arch:
    key: str
    label: str
    overrides: dict[str, Any]


ARCHS: tuple[Arch, ...] = (
    Arch("dense", "dense MHA (plain GPT, baseline)", dict(attn_type="mha", ffn_type="dense", mtp_depth=0)),
    Arch("mla", "MLA + dense FFN", dict(attn_type="mla", ffn_type="dense", mtp_depth=0)),
    Arch("moe", "MHA + MoE", dict(attn_type="mha", ffn_type="moe", mtp_depth=0)),
    Arch("full", "MLA + MoE + MTP (dsmini)", dict(attn_type="mla", ffn_type="moe", mtp_depth=1)),
)
BASELINE = "dense"
ARCH_BY_KEY = {a.key: a for a in ARCHS}


def active_ffn_dim(cfg: ModelConfig) -> int:
    """Hidden size of the experts one token runs through in an MoE layer."""
    return (cfg.n_shared_experts + cfg.top_k) * cfg.moe_inter_dim


def arch_config(key: str, preset_name: str, **sizes: Any) -> ModelConfig:
    """`preset_name` switched to architecture `key`; `sizes` sets vocab_size, block_size, dropout..."""
    base = preset(preset_name, **sizes)
    return dataclasses.replace(base, d_ff=active_ffn_dim(base), **ARCH_BY_KEY[key].overrides)


def describe(cfg: ModelConfig, model: DSMini) -> dict[str, Any]:
    """What a table row says about an architecture: its switches and parameter counts."""
    counts = model.param_counts()
    return {
        "attn_type": cfg.attn_type,
        "ffn_type": cfg.ffn_type,
        "mtp_depth": cfg.mtp_depth,
        "d_ff": cfg.d_ff,
        "active_ffn_dim": active_ffn_dim(cfg),
        "params_total": counts["all"]["total"],
        "params_active_main": counts["main"]["active"],  # per token, the model that generates
        "params_active_all": counts["all"]["active"],  # + the MTP module trained alongside
    }
