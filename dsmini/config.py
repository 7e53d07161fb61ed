"""Model and training configuration: the single source of truth for every size and switch, each field's
help (its metadata, which the CLI's --help reads) and the named training recipes (`RECIPES`) that the
CLI, the Train page and the benchmark read.

`ModelConfig` is frozen; derive variants with `dataclasses.replace(cfg, attn_type="mha")`
(validation runs again on the copy). Field names follow DeepSeek-V3's `ModelArgs`
(`kv_lora_rank`, `qk_rope_head_dim`, `n_routed_experts`, ...) so the code reads like the paper.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FFN_TYPES = ("moe", "dense")
ROUTERS = ("sigmoid_bias", "softmax_topk", "noisy_topk")
OPTIMIZERS = ("adamw", "muon", "muonclip")
MUON_PARAMS = ("all", "dense")  # which hidden matrices Muon takes: all of them, or all but the routed experts


def described(default: Any, help: str) -> Any:
    """A config field with its help, written once, as the field's metadata: the CLI's --help reads it."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ModelConfig:
    # sizes
    vocab_size: int = described(64, "set from the tokenizer; includes the boundary token")
    block_size: int = described(32, "longest sequence (boundary + name); default: longest name in the corpus + 1")
    d_model: int = described(64, "width of the residual stream")
    n_layers: int = described(4, "transformer blocks")
    n_heads: int = described(4, "attention (query) heads")
    dropout: float = described(0.0, "dropout probability in training")
    rope_theta: float = described(10000.0, "RoPE base frequency")
    # None = torch's default, finfo(dtype).eps, which depends on the dtype: how checkpoints saved before the
    # field were trained
    norm_eps: float | None = described(1e-6, "eps of every RMSNorm, the latent, MTP and final norms included "
                                             "(DeepSeek-V2/V3: 1e-6)")
    # attention
    attn_type: str = described("mla", "attention type")
    head_dim: int = described(0, "MHA/GQA/MQA head size (0 = d_model / n_heads)")
    n_kv_heads: int = described(2, "GQA key/value groups")
    # mla (DeepSeek-V2 §2.1)
    q_lora_rank: int = described(0, "MLA query compression rank (0 = off)")
    kv_lora_rank: int = described(32, "MLA joint key/value latent size d_c (what the cache stores)")
    qk_nope_head_dim: int = described(16, "MLA per-head content dims of q/k")
    qk_rope_head_dim: int = described(8, "MLA decoupled RoPE dims (key shared by all heads)")
    v_head_dim: int = described(16, "MLA per-head value dims")
    # sparse attention on the MLA path (dsmini/model/sparse_attention.py); each field only matters for its type
    dsa_index_heads: int = described(2, "DSA lightning-indexer heads H^I (DeepSeek-V3.2 §2.1, eq. 1)")
    dsa_index_dim: int = described(16, "DSA indexer query/key size d^I (a multiple of 4; half carries RoPE, as in "
                                       "V3.2)")
    dsa_top_k: int = described(8, "DSA: positions each query attends to (top-k of the indexer's scores; V3.2: 2048 "
                                  "of 128K)")
    moba_block_size: int = described(4, "MoBA: keys per block (Lu et al. 2025 §2.2)")
    moba_top_blocks: int = described(2, "MoBA: earlier blocks each query picks, beside its own block")
    loglinear_fine_levels: int = described(3, "log-linear: Fenwick levels seen token by token (older buckets pooled)")
    # ffn
    ffn_type: str = described("moe", f"feed-forward: {', '.join(FFN_TYPES)}")
    d_ff: int = described(192, "dense SwiGLU hidden size (matches shared + top_k experts' active size)")
    # moe (DeepSeekMoE, V2 §2.2 / V3 §2.1.2)
    n_dense_layers: int = described(1, "first layers that use a dense FFN instead of MoE, as DeepSeek does")
    moe_every: int = described(1, "after those, every k-th block is MoE, the rest dense (GShard §2: 2; 1 = all)")
    n_routed_experts: int = described(8, "routed experts per MoE layer")
    n_shared_experts: int = described(1, "always-on shared experts per MoE layer")
    top_k: int = described(2, "routed experts chosen per token")
    moe_inter_dim: int = described(64, "hidden size of one (fine-grained) expert")
    router: str = described("sigmoid_bias", f"router: {', '.join(ROUTERS)}")
    aux_loss_coef: float = described(0.0, "load-balancing loss coefficient alpha (0 = off; sigmoid_bias needs none)")
    bias_update_speed: float = described(0.001, "aux-loss-free bias step gamma (sigmoid_bias router)")
    capacity_factor: float | None = described(
        None, "expert capacity factor; tokens over capacity are dropped (omit = no dropping)")
    # noisy_topk always normalises: a softmax over the kept k (Shazeer et al. 2017)
    norm_topk_prob: bool | None = described(
        None, "renormalise the chosen experts' gate weights to sum to 1 (default: the router's paper: "
        "sigmoid_bias yes, DeepSeek-V3 §2.1.2; softmax_topk no, DeepSeek-V2 §2.2; noisy_topk always)")
    # mtp (DeepSeek-V3 §2.2)
    mtp_depth: int = described(1, "multi-token prediction depth D (0 = off)")
    mtp_layers: int = described(1, "transformer blocks per MTP module (DeepSeek-V3 §2.2: 1; the seed nanoGPT: 2)")
    mtp_lambda: float = described(0.3, "MTP loss weight lambda")

    def __post_init__(self) -> None:
        validate(self)

    # derived sizes ---------------------------------------------------------------------
    @property
    def qk_head_dim(self) -> int:
        """MLA query/key head size: content part + decoupled RoPE part."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def mha_head_dim(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        """Key/value heads of the MHA family (MLA has none: it caches a latent)."""
        return ATTENTION_KINDS[self.attn_type].kv_heads(self)

    @property
    def latent_attention(self) -> bool:
        """Whether attention runs on MLA's cached latent (MLA and the sparse types built on it)."""
        return ATTENTION_KINDS[self.attn_type].latent

    @property
    def loglinear_levels(self) -> int:
        """Fenwick levels a block_size sequence needs: level 0 (the query itself) and one level per
        bit of the largest distance (Guo et al. 2025 §3.1: at most log2(T) + 1 buckets)."""
        return (self.block_size - 1).bit_length() + 1

    @property
    def normalises_topk(self) -> bool:
        """Whether the router's gate weights are its chosen scores renormalised over the k
        (`norm_topk_prob`, or its router's source when None; see the field)."""
        if self.norm_topk_prob is not None:
            return self.norm_topk_prob
        return self.router != "softmax_topk"

    def is_moe_layer(self, layer_id: int) -> bool:
        """Whether block `layer_id` has an MoE FFN: a main layer in `moe_layer_ids`, or any MTP block
        of an MoE model."""
        return self.ffn_type == "moe" and (layer_id >= self.n_layers or layer_id in self.moe_layer_ids)

    @property
    def moe_layer_ids(self) -> range:
        """Main-model layers whose FFN is MoE, the one place that decides it: after the first
        n_dense_layers (DeepSeek's first-k-dense rule), every `moe_every`-th block counting from the
        model's first: blocks k-1, 2k-1, ... (GShard, Lepikhin et al. 2020 §2: an MoE layer in every
        other block). MTP blocks not included. A range, so its length costs nothing even for the
        absurd sizes dsmini/model/limits.py refuses."""
        if self.ffn_type != "moe":
            return range(0)
        k = self.moe_every
        first = self.n_dense_layers + (k - 1 - self.n_dense_layers) % k  # first id >= n_dense with (id + 1) % k == 0
        return range(first, self.n_layers, k)

    @property
    def moe_block_ids(self) -> list[int]:
        """Every block with an MoE FFN, in the order of `ModelOutput.routing` and
        `StepMetrics.expert_load`: the main layers, then the MTP blocks (`mtp_block_ids`)."""
        mtp_blocks = self.mtp_block_ids if self.ffn_type == "moe" else range(0)
        return [*self.moe_layer_ids, *mtp_blocks]

    @property
    def n_mtp_blocks(self) -> int:
        return self.mtp_depth * self.mtp_layers

    @property
    def mtp_block_ids(self) -> range:
        """Block ids of the MTP modules' blocks, after the main layers: block j (from 0) of depth k
        is n_layers + (k - 1) * mtp_layers + j."""
        return range(self.n_layers, self.n_layers + self.n_mtp_blocks)

    def mtp_block_id(self, depth: int, j: int) -> int:
        return self.n_layers + (depth - 1) * self.mtp_layers + j

    @property
    def n_moe_layers(self) -> int:
        return len(self.moe_layer_ids)

    # serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """A saved config; a field it lacks takes what the model meant before the field existed
        (`SAVED_BEFORE_FIELD`), else the field's default."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {', '.join(unknown)}")
        return cls(**{**SAVED_BEFORE_FIELD, **data})

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls.from_dict(json.loads(text))


# What a config saved without these fields was trained with, where it differs from today's default:
# every RMSNorm at torch's default eps, and every router renormalising its top-k (softmax_topk included)
SAVED_BEFORE_FIELD: dict[str, Any] = {"norm_eps": None, "norm_topk_prob": True}


def _require(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"ModelConfig.{field_name}: {message}")


SEED_LIMIT = 2**63  # seeds are in [0, 2^63): torch takes < 2^64, and the trainer seeds samples with seed + step


def _type_problem(annotation: str, value: Any) -> str | None:
    """Why `value` cannot be a field annotated `annotation` ('int', 'float', 'float | None', 'str',
    'bool | None'), or None.

    Checked before any range: `inf` passes every `>= 0` test and NaN fails them all silently, and a
    float where an int belongs only breaks when a layer is built, after a checkpoint was read or a
    run was started.
    """
    if value is None and annotation.endswith("| None"):
        return None
    if annotation == "str":
        return None if isinstance(value, str) else "must be a string"
    if annotation.startswith("bool"):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "must be a number"
    if annotation == "int" and not isinstance(value, numbers.Integral):
        return "must be a whole number"
    if not math.isfinite(value):
        return "must be a finite number"
    return None


def check_field_types(cfg: Any) -> None:
    """ValueError naming the first field of a config dataclass whose value has the wrong type or is
    not finite (inf, nan); tuple fields are checked by their owner."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        problem = None if f.type.startswith("tuple") else _type_problem(f.type, value)
        if problem:
            raise ValueError(f"{type(cfg).__name__}.{f.name}: {problem}, got {value!r}")


def validate(c: ModelConfig) -> None:
    """Raise ValueError naming the first bad field; called on every construction."""
    check_field_types(c)
    for name in ("vocab_size", "block_size", "d_model", "n_layers", "n_heads"):
        _require(getattr(c, name) >= 1, name, f"must be >= 1, got {getattr(c, name)}")
    _require(c.vocab_size >= 2, "vocab_size", f"must be >= 2 (boundary + 1 char), got {c.vocab_size}")
    _require(0.0 <= c.dropout < 1.0, "dropout", f"must be in [0, 1), got {c.dropout}")
    _require(c.rope_theta > 0, "rope_theta", f"must be > 0, got {c.rope_theta}")
    _require(
        c.norm_eps is None or c.norm_eps > 0, "norm_eps", f"must be > 0 or None (torch's default), got {c.norm_eps}"
    )
    _require(c.attn_type in ATTENTION_KINDS, "attn_type", f"must be one of {ATTN_TYPES}, got {c.attn_type!r}")
    if c.latent_attention:
        _require(c.kv_lora_rank >= 1, "kv_lora_rank", f"must be >= 1, got {c.kv_lora_rank}")
        _require(c.q_lora_rank >= 0, "q_lora_rank", f"must be >= 0 (0 = off), got {c.q_lora_rank}")
        _require(c.qk_nope_head_dim >= 1, "qk_nope_head_dim", f"must be >= 1, got {c.qk_nope_head_dim}")
        _require(c.v_head_dim >= 1, "v_head_dim", f"must be >= 1, got {c.v_head_dim}")
        _require(
            c.qk_rope_head_dim >= 2 and c.qk_rope_head_dim % 2 == 0,
            "qk_rope_head_dim",
            f"must be even and >= 2 (RoPE rotates pairs), got {c.qk_rope_head_dim}",
        )
    else:
        _require(c.head_dim >= 0, "head_dim", f"must be >= 0 (0 = d_model // n_heads), got {c.head_dim}")
        if c.head_dim == 0:
            _require(
                c.d_model % c.n_heads == 0,
                "d_model",
                f"d_model {c.d_model} must be divisible by n_heads {c.n_heads} (or set head_dim)",
            )
        _require(c.mha_head_dim % 2 == 0, "head_dim", f"must be even for RoPE, got {c.mha_head_dim}")
    ATTENTION_KINDS[c.attn_type].check(c)
    _require(c.ffn_type in FFN_TYPES, "ffn_type", f"must be one of {FFN_TYPES}, got {c.ffn_type!r}")
    _require(c.d_ff >= 1, "d_ff", f"must be >= 1, got {c.d_ff}")
    if c.ffn_type == "moe":
        _require(c.n_routed_experts >= 1, "n_routed_experts", f"must be >= 1, got {c.n_routed_experts}")
        _require(c.n_shared_experts >= 0, "n_shared_experts", f"must be >= 0, got {c.n_shared_experts}")
        _require(
            1 <= c.top_k <= c.n_routed_experts,
            "top_k",
            f"must be in [1, n_routed_experts={c.n_routed_experts}], got {c.top_k}",
        )
        _require(c.moe_inter_dim >= 1, "moe_inter_dim", f"must be >= 1, got {c.moe_inter_dim}")
        _require(c.router in ROUTERS, "router", f"must be one of {ROUTERS}, got {c.router!r}")
        _require(
            c.router != "noisy_topk" or c.norm_topk_prob is not False,
            "norm_topk_prob",
            "noisy_topk always normalises (a softmax over the kept k, Shazeer et al. 2017): leave it unset or true",
        )
        _require(c.aux_loss_coef >= 0, "aux_loss_coef", f"must be >= 0, got {c.aux_loss_coef}")
        _require(c.bias_update_speed >= 0, "bias_update_speed", f"must be >= 0, got {c.bias_update_speed}")
        _require(
            c.capacity_factor is None or c.capacity_factor > 0,
            "capacity_factor",
            f"must be > 0 or None (no dropping), got {c.capacity_factor}",
        )
        _require(
            1 <= c.moe_every <= max(c.n_layers, 1),
            "moe_every",
            f"must be in [1, n_layers={c.n_layers}] (1 = every block after the dense ones), got {c.moe_every}",
        )
        _require(
            0 <= c.n_dense_layers <= c.n_layers,
            "n_dense_layers",
            f"must be in [0, n_layers={c.n_layers}], got {c.n_dense_layers}",
        )
    _require(c.mtp_depth >= 0, "mtp_depth", f"must be >= 0 (0 = off), got {c.mtp_depth}")
    _require(
        c.mtp_depth < c.block_size,
        "mtp_depth",
        f"must be < block_size {c.block_size}, got {c.mtp_depth}",
    )
    _require(c.mtp_lambda >= 0, "mtp_lambda", f"must be >= 0, got {c.mtp_lambda}")
    _require(c.mtp_layers >= 1, "mtp_layers", f"must be >= 1 (blocks per MTP module), got {c.mtp_layers}")


# ---------------------------------------------------------------------------------------------
# Attention types: the config's half of each type's registration


def _check_gqa(c: ModelConfig) -> None:
    _require(c.n_kv_heads >= 1, "n_kv_heads", f"must be >= 1, got {c.n_kv_heads}")
    _require(
        c.n_heads % c.n_kv_heads == 0,
        "n_kv_heads",
        f"n_heads {c.n_heads} must be divisible by n_kv_heads {c.n_kv_heads}",
    )


def _check_dsa(c: ModelConfig) -> None:
    _require(c.dsa_index_heads >= 1, "dsa_index_heads", f"must be >= 1, got {c.dsa_index_heads}")
    _require(
        c.dsa_index_dim >= 4 and c.dsa_index_dim % 4 == 0,
        "dsa_index_dim",
        f"must be a multiple of 4, >= 4 (its first half carries RoPE, in pairs), got {c.dsa_index_dim}",
    )
    _require(
        1 <= c.dsa_top_k <= c.block_size,
        "dsa_top_k",
        f"must be in [1, block_size={c.block_size}] (k >= block_size is dense attention), got {c.dsa_top_k}",
    )


def _check_moba(c: ModelConfig) -> None:
    _require(
        1 <= c.moba_block_size <= c.block_size,
        "moba_block_size",
        f"must be in [1, block_size={c.block_size}], got {c.moba_block_size}",
    )
    _require(
        c.moba_top_blocks >= 1,
        "moba_top_blocks",
        f"must be >= 1 (earlier blocks the gate picks beside the query's own), got {c.moba_top_blocks}",
    )


def _check_loglinear(c: ModelConfig) -> None:
    _require(
        c.loglinear_fine_levels >= 1,
        "loglinear_fine_levels",
        f"must be >= 1 (level 0 is the query's own position), got {c.loglinear_fine_levels}",
    )


def _no_kv_heads(c: ModelConfig) -> int:
    return 0


def _no_check(c: ModelConfig) -> None:
    return None


@dataclass(frozen=True)
class AttentionKind:
    """What the config knows of one attention type; the model's half (its module, layer cache and
    cache layout) is its entry in dsmini.model.attention_types, which sits above this module.

    latent: it runs on MLA's cached latent, so MLA's fields apply (else the MHA family's head_dim);
    sparse: on MLA, each query sees a selection of the positions (dsmini.model.sparse_attention);
    kv_heads: the MHA family's key/value heads (a latent type has none);
    check: ValueError naming the first bad field of those only this type reads.
    """

    name: str
    latent: bool
    sparse: bool = False
    kv_heads: Callable[[ModelConfig], int] = _no_kv_heads
    check: Callable[[ModelConfig], None] = _no_check


# DeepSeek-V2 Table 1's order (the MHA family, then MLA), then the sparse types on MLA
ATTENTION_KINDS: dict[str, AttentionKind] = {kind.name: kind for kind in (
    AttentionKind("mha", latent=False, kv_heads=lambda c: c.n_heads),
    AttentionKind("gqa", latent=False, kv_heads=lambda c: c.n_kv_heads, check=_check_gqa),
    AttentionKind("mqa", latent=False, kv_heads=lambda c: 1),
    AttentionKind("mla", latent=True),
    AttentionKind("dsa", latent=True, sparse=True, check=_check_dsa),
    AttentionKind("moba", latent=True, sparse=True, check=_check_moba),
    AttentionKind("loglinear", latent=True, sparse=True, check=_check_loglinear),
)}
# for choosing (the CLI's help, the Train page): the default first, then the table's order
ATTN_TYPES = tuple(sorted(ATTENTION_KINDS, key=lambda name: name != ModelConfig.attn_type))
SPARSE_ATTN_TYPES = tuple(name for name, kind in ATTENTION_KINDS.items() if kind.sparse)


PRESETS: dict[str, ModelConfig] = {
    # tiny: for tests; every feature on, a few thousand parameters.
    "tiny": ModelConfig(
        d_model=32, n_layers=2, n_heads=2, n_kv_heads=1,
        kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
        d_ff=48, n_routed_experts=4, n_shared_experts=1, top_k=2, moe_inter_dim=16,
        n_dense_layers=1, mtp_depth=1,
    ),
    # small: the shipped demo models; makemore's transformer shape (4 layers, 4 heads, width 64).
    "small": ModelConfig(),
    # medium: for longer runs on a laptop.
    "medium": ModelConfig(
        d_model=128, n_layers=6, n_heads=8, n_kv_heads=2,
        kv_lora_rank=64, qk_nope_head_dim=16, qk_rope_head_dim=16, v_head_dim=16,
        d_ff=384, n_routed_experts=16, n_shared_experts=1, top_k=2, moe_inter_dim=128,
    ),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """A named preset with field overrides, e.g. `preset("small", attn_type="mha")`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. The defaults are the library's (AdamW), what the tests and most benchmark sections
    train with; the ways the project trains for its users are the named recipes in RECIPES."""

    steps: int = described(2000, "optimizer steps in total")
    batch_size: int = described(64, "names per micro-batch")
    grad_accum: int = described(1, "micro-batches per optimizer step")
    optimizer: str = described("adamw", f"optimizer: {', '.join(OPTIMIZERS)} (muon: Muon for the hidden matrices + "
                                        "AdamW for the rest; muonclip: + QK-clip)")
    qk_clip_tau: float = described(100.0, "muonclip: rescale a head's query/key weights when its max attention "
                                          "logit exceeds this (Kimi K2 §2.1: 100)")
    muon_params: str = described("all", "muon/muonclip: which hidden matrices Muon orthogonalises: all, or dense "
                                        "(all but the routed experts, which AdamW then trains: a fifth of Muon's cost)")
    lr: float = described(3e-3, "peak learning rate")
    weight_decay: float = described(0.01, "decoupled weight decay (not on norms/embeddings)")
    betas: tuple[float, float] = described((0.9, 0.99), "AdamW betas, two numbers")
    warmup_steps: int = described(100, "linear warmup steps")
    min_lr_ratio: float = described(0.1, "cosine decays to lr * this")
    grad_clip: float = described(1.0, "gradient norm clip (0 = off)")
    eval_every: int = described(100, "steps between validation evaluations")
    eval_batches: int = described(4, "validation names per evaluation, in units of 256: the first eval_batches x 256 "
                                     "names of the shuffled val split, the same names every time whatever "
                                     "--batch-size (0 = the whole split)")
    sample_every: int = described(200, "steps between printed samples (0 = off)")
    n_samples: int = described(8, "names sampled each time")
    seed: int = described(1337, "seed for weights and batches")
    split_seed: int = described(42, "seed of the train/val/test split")
    device: str = described("auto", "auto, cpu, cuda or mps")

    def __post_init__(self) -> None:
        check_field_types(self)
        betas_ok = (
            isinstance(self.betas, tuple) and len(self.betas) == 2
            and all(_type_problem("float", b) is None and 0 <= b < 1 for b in self.betas)
        )
        checks = [
            (self.steps >= 1, "steps", "must be >= 1"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.grad_accum >= 1, "grad_accum", "must be >= 1"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {OPTIMIZERS}"),
            (self.muon_params in MUON_PARAMS, "muon_params", f"must be one of {MUON_PARAMS}"),
            (self.lr > 0 and math.isfinite(self.lr), "lr", "must be a positive number"),
            (self.qk_clip_tau > 0, "qk_clip_tau", "must be > 0 (the largest attention logit muonclip allows)"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (betas_ok, "betas", "must be two numbers in [0, 1)"),
            (self.warmup_steps >= 0, "warmup_steps", "must be >= 0"),
            (0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]"),
            (self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 = off)"),
            (self.eval_every >= 1, "eval_every", "must be >= 1"),
            (self.eval_batches >= 0, "eval_batches", "must be >= 0 (0 = the whole val split)"),
            (self.sample_every >= 0, "sample_every", "must be >= 0 (0 = off)"),
            (self.n_samples >= 1, "n_samples", "must be >= 1"),
            (0 <= self.seed < SEED_LIMIT, "seed", "must be in [0, 2^63)"),
            (0 <= self.split_seed < SEED_LIMIT, "split_seed", "must be in [0, 2^63)"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ValueError(f"TrainConfig.{name}: {message}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        data = dict(data)
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        return cls(**data)


SMALL_CORPUS = 20_000  # names; below it a recipe with a small-corpus dropout trains with it


@dataclass(frozen=True)
class Recipe:
    """A named way to train: the model preset, the TrainConfig, and the dropout a small corpus gets.
    Every path that trains reads its recipe from RECIPES; a flag or a widget only overrides it."""

    preset: str
    train: TrainConfig
    small_corpus_dropout: float | None = None  # the model's dropout on a corpus of fewer than SMALL_CORPUS names

    def model(self, n_names: int, preset_name: str | None = None, **fields: Any) -> ModelConfig:
        """Preset `preset_name` (default: the recipe's) as the recipe applies it to a corpus of `n_names`
        names (the dropout rule), with `fields` set on top."""
        if self.small_corpus_dropout is not None and n_names < SMALL_CORPUS:
            fields = {"dropout": self.small_corpus_dropout, **fields}
        return preset(preset_name or self.preset, **fields)


RECIPES: dict[str, Recipe] = {
    # `python -m dsmini train` where no flag says otherwise, chosen by val loss at equal wall-clock (BENCHMARKS.md
    # section 8: each recipe's step timed side by side, each trained for the steps it buys in AdamW's 3,000 steps'
    # seconds). Muon on the dense matrices with AdamW on the routed experts (`muon_params="dense"`) tied AdamW on
    # en-names (best val 1.898 vs 1.898) and beat it on ru-names (1.690 vs 1.729), at an optimizer share of 8-13%
    # of a step; Muon on every matrix did as well per second on these runs (1.894, 1.684) but spends 20-35% of a
    # step in Newton-Schulz. Dropout follows the corpus's size: a small corpus overfits (en-names, 5K names), a
    # large one underfits (ru-names, 199K: dropout 0.2 cost +0.031 in the earlier sweep). The benchmark's time-to-
    # quality section trains it beside its plain GPT.
    "cli": Recipe("small", TrainConfig(optimizer="muon", muon_params="dense", steps=3000), small_corpus_dropout=0.1),
    # the Train page's live run: AdamW (on a small corpus it ties Muon, and the specialisation timing was measured
    # with it), short enough to watch; 1 x 256 val names an evaluation: ~0.1 s
    "page": Recipe("small", TrainConfig(steps=600, eval_every=50, eval_batches=1, sample_every=100, warmup_steps=50)),
}
