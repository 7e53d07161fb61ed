"""A checkpoint as a Hugging Face transformers folder: `python -m dsmini export --checkpoint C --out DIR`.

Which class holds which model (each loads with `AutoModelForCausalLM.from_pretrained(DIR)`, no custom code):

- MLA + sigmoid_bias router (or dense FFN) -> `DeepseekV3ForCausalLM`: n_group = topk_group = 1,
  routed_scaling_factor 1 (V3's reference `route_scale`), interleaved RoPE (`rope_interleave`), the
  router bias as `e_score_correction_bias`.
- MLA + softmax_topk, raw top-k scores -> `DeepseekV2ForCausalLM`: `topk_method` greedy: V2 keeps the
  raw softmax scores, so a renormalised softmax router is refused.
- MHA / GQA / MQA + dense FFN -> `LlamaForCausalLM`: Llama rotates half-split pairs, dsmini adjacent
  pairs: each head's query/key rows de-interleaved.

Both DeepSeek classes: q_lora_rank 0 is None, first_k_dense_replace = n_dense_layers, untied head,
the shared experts one MLP of width n_shared * moe_inter_dim, routed experts per expert
(`mlp.experts.E.gate_proj`), the layout of DeepSeek's own checkpoints, which transformers fuses on load.

MTP modules sit where DeepSeek-V3's checkpoints keep them: module k is layer n_layers + k - 1, with
`num_nextn_predict_layers` = mtp_depth in config.json: its block under the usual names, `enorm`, `hnorm`,
`eh_proj`, `shared_head.norm`, and copies of the shared `embed_tokens` and `shared_head.head`. V3's code
concatenates [enorm(embedding); hnorm(hidden)] where dsmini (and the paper, eq. 21) has the hidden state
first, so the two halves of `eh_proj`'s columns swap. The main model ignores those layers on load
(transformers lists them as unexpected keys). A dense model's MTP blocks are dense: kept all the same,
though transformers' MTP loader builds MoE blocks only.

Everything else transformers cannot express is refused, naming the feature (`unsupported`, from the
config alone), before anything is written; the folder is written through `dsmini.checkpoint.atomic`, so it is
there complete or not at all.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import save as safetensors_bytes

from dsmini.checkpoint import META_FILE, Checkpoint, atomic, load_checkpoint
from dsmini.config import SPARSE_ATTN_TYPES, ModelConfig
from dsmini.data import BOUNDARY_ID, CharTokenizer
from dsmini.model import DSMini

DEEPSEEK_NORM_EPS = 1e-6  # transformers' DeepSeek classes hard-code it for MLA's latent norms (q_a / kv_a_layernorm)
BOUNDARY_TOKEN = "<|boundary|>"  # the boundary id's text: a special token, so no name can spell it
W = ("w1", "w2", "w3")  # SwiGLU projections: w2(silu(w1 x) * w3 x)
HF_MLP = {"w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"}
HF_ATTN = {
    "wq": "q_proj", "wq_a": "q_a_proj", "q_norm": "q_a_layernorm", "wq_b": "q_b_proj",
    "wkv_a": "kv_a_proj_with_mqa", "kv_norm": "kv_a_layernorm", "wkv_b": "kv_b_proj",
    "wk": "k_proj", "wv": "v_proj", "wo": "o_proj",
}


class ExportRefused(ValueError):
    """transformers has no class for this model; the message names the feature."""


# ---------------------------------------------------------------------------------------------
# Which class, or why none


@dataclass(frozen=True)
class Unsupported:
    """What transformers cannot express: the config `setting` (language-neutral, the app shows it) and why."""

    setting: str  # e.g. "attn_type=moba"
    why: str  # English, for the CLI's one line

    def __str__(self) -> str:
        return f"transformers cannot express {self.setting}: {self.why}"


def unsupported(cfg: ModelConfig) -> Unsupported | None:
    """Why no transformers class computes what this model computes, or None. From the config alone."""
    if cfg.attn_type in SPARSE_ATTN_TYPES:
        return Unsupported(
            f"attn_type={cfg.attn_type}", f"{cfg.attn_type} sparse attention (transformers has MLA, MHA, GQA and MQA)"
        )
    if cfg.mtp_depth and cfg.mtp_layers > 1:
        return Unsupported(
            f"mtp_layers={cfg.mtp_layers}", f"MTP modules of {cfg.mtp_layers} blocks (DeepSeek-V3 gives each one)"
        )
    if cfg.latent_attention and cfg.norm_eps not in (None, DEEPSEEK_NORM_EPS):
        return Unsupported(
            f"norm_eps={cfg.norm_eps}", "transformers' DeepSeek classes fix MLA's latent norms at eps 1e-6"
        )
    if cfg.ffn_type == "dense":
        return None
    if not cfg.latent_attention:
        return Unsupported(
            f"ffn_type=moe, attn_type={cfg.attn_type}",
            f"MoE with {cfg.attn_type.upper()} attention (LlamaForCausalLM is dense; DeepSeek's classes need MLA)",
        )
    if cfg.moe_every > 1:
        return Unsupported(f"moe_every={cfg.moe_every}", "DeepSeek's classes make every layer after the dense ones MoE")
    if cfg.capacity_factor is not None:
        return Unsupported(f"capacity_factor={cfg.capacity_factor}", "experts trained with token dropping")
    if cfg.router == "noisy_topk":
        return Unsupported(
            "router=noisy_topk",
            "the noisy router's softmax renormalised over the top k (DeepseekV2 keeps the raw scores)",
        )
    if cfg.router == "softmax_topk" and cfg.normalises_topk:
        return Unsupported(
            "router=softmax_topk, norm_topk_prob=true",
            "a softmax router renormalised over the top k (DeepseekV2 keeps the raw scores)",
        )
    if cfg.router == "softmax_topk" and cfg.d_model % cfg.n_heads:
        return Unsupported(
            f"d_model={cfg.d_model}, n_heads={cfg.n_heads}", "DeepseekV2Config needs d_model divisible by n_heads"
        )
    return None


def architecture(cfg: ModelConfig) -> str:
    """The transformers class for `cfg`; ExportRefused naming the feature when there is none."""
    problem = unsupported(cfg)
    if problem is not None:
        raise ExportRefused(str(problem))
    if not cfg.latent_attention:
        return "LlamaForCausalLM"
    if cfg.ffn_type == "moe" and cfg.router == "softmax_topk":
        return "DeepseekV2ForCausalLM"
    return "DeepseekV3ForCausalLM"


# ---------------------------------------------------------------------------------------------
# config.json


def rms_norm_eps(cfg: ModelConfig) -> float:
    """norm_eps, or what torch used for None: float32's machine epsilon (the checkpoints are float32).
    transformers keeps MLA's latent norms at 1e-6 even then: on the shipped models (latent entries of
    order 1) that moves the logits by less than 1e-5."""
    return torch.finfo(torch.float32).eps if cfg.norm_eps is None else cfg.norm_eps


def hf_config(cfg: ModelConfig, arch: str) -> dict[str, Any]:
    """config.json for `arch` (see the module docstring for what each choice settles)."""
    common = {
        "architectures": [arch],
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.d_ff,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.block_size,
        "rms_norm_eps": rms_norm_eps(cfg),
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "attention_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": BOUNDARY_ID,
        "eos_token_id": BOUNDARY_ID,
        "pad_token_id": BOUNDARY_ID,
        "num_nextn_predict_layers": cfg.mtp_depth,
        "dtype": "float32",
    }
    if arch == "LlamaForCausalLM":
        return {**common, "model_type": "llama", "num_key_value_heads": cfg.kv_heads, "head_dim": cfg.mha_head_dim,
                "mlp_bias": False}
    moe = cfg.ffn_type == "moe"
    deepseek = {
        **common,
        "num_key_value_heads": cfg.n_heads,
        "q_lora_rank": cfg.q_lora_rank or None,
        "kv_lora_rank": cfg.kv_lora_rank,
        "qk_nope_head_dim": cfg.qk_nope_head_dim,
        "qk_rope_head_dim": cfg.qk_rope_head_dim,
        "v_head_dim": cfg.v_head_dim,
        "first_k_dense_replace": cfg.n_dense_layers if moe else cfg.n_layers,
        "n_routed_experts": cfg.n_routed_experts,
        "n_shared_experts": cfg.n_shared_experts,
        "num_experts_per_tok": cfg.top_k,
        "moe_intermediate_size": cfg.moe_inter_dim,
        "routed_scaling_factor": 1.0,
    }
    if arch == "DeepseekV2ForCausalLM":
        return {**deepseek, "model_type": "deepseek_v2", "topk_method": "greedy", "norm_topk_prob": False}
    return {
        **deepseek, "model_type": "deepseek_v3", "n_group": 1, "topk_group": 1,
        "norm_topk_prob": cfg.normalises_topk, "rope_interleave": True,
    }


# ---------------------------------------------------------------------------------------------
# model.safetensors


def half_split_rows(weight: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(heads * head_dim, d) query/key rows, each head's adjacent RoPE pairs (x0, x1), (x2, x3), ... reordered
    to Llama's halves (x0, x2, ..., x1, x3, ...): the same rotation, so every score q . k is unchanged."""
    order = torch.cat([torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)])  # (head_dim,)
    return weight.unflatten(0, (-1, head_dim))[:, order].flatten(0, 1)


def _block_tensors(state: dict[str, torch.Tensor], src: str, dst: str, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """One dsmini Block `src` (e.g. 'layers.2') as transformers' decoder layer `dst` ('model.layers.2')."""
    out = {
        f"{dst}.input_layernorm.weight": state[f"{src}.attn_norm.weight"],
        f"{dst}.post_attention_layernorm.weight": state[f"{src}.ffn_norm.weight"],
    }
    for name, hf_name in HF_ATTN.items():
        key = f"{src}.attn.{name}.weight"
        if key in state:
            weight = state[key]
            if name in ("wq", "wk") and not cfg.latent_attention:  # MLA: rope_interleave reads the pairs as they are
                weight = half_split_rows(weight, cfg.mha_head_dim)
            out[f"{dst}.self_attn.{hf_name}.weight"] = weight
    ffn = f"{src}.ffn"
    if f"{ffn}.gate.weight" not in state:  # a dense SwiGLU
        out.update({f"{dst}.mlp.{HF_MLP[w]}.weight": state[f"{ffn}.{w}.weight"] for w in W})
        return out
    out[f"{dst}.mlp.gate.weight"] = state[f"{ffn}.gate.weight"]
    if f"{ffn}.gate.bias" in state:
        out[f"{dst}.mlp.gate.e_score_correction_bias"] = state[f"{ffn}.gate.bias"]
    if f"{ffn}.shared_experts.w1.weight" in state:
        out.update({f"{dst}.mlp.shared_experts.{HF_MLP[w]}.weight": state[f"{ffn}.shared_experts.{w}.weight"]
                    for w in W})
    for w in W:  # dsmini stacks the routed experts (E, out, in) (GroupedExperts); DeepSeek's files keep one module each
        for e, weight in enumerate(state[f"{ffn}.experts.{w}"]):
            out[f"{dst}.mlp.experts.{e}.{HF_MLP[w]}.weight"] = weight
    return out


def hf_state(model: DSMini) -> dict[str, torch.Tensor]:
    """dsmini's state_dict under transformers' names (module docstring), each tensor its own contiguous copy."""
    cfg = model.cfg
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    out = {
        "model.embed_tokens.weight": state["embed.weight"],
        "model.norm.weight": state["norm.weight"],
        "lm_head.weight": state["head.weight"],
    }
    for i in range(cfg.n_layers):
        out.update(_block_tensors(state, f"layers.{i}", f"model.layers.{i}", cfg))
    d = cfg.d_model
    for k in range(cfg.mtp_depth):
        src, dst = f"mtp.{k}", f"model.layers.{cfg.n_layers + k}"
        eh = state[f"{src}.eh_proj.weight"]  # (d, 2d): columns [hidden | embedding]
        out.update(_block_tensors(state, f"{src}.block", dst, cfg))
        out.update({
            f"{dst}.enorm.weight": state[f"{src}.enorm.weight"],
            f"{dst}.hnorm.weight": state[f"{src}.hnorm.weight"],
            f"{dst}.eh_proj.weight": torch.cat([eh[:, d:], eh[:, :d]], dim=1),  # V3: [embedding | hidden]
            f"{dst}.shared_head.norm.weight": state[f"{src}.norm.weight"],
            f"{dst}.embed_tokens.weight": state["embed.weight"],
            f"{dst}.shared_head.head.weight": state["head.weight"],
        })
    return {key: value.clone().contiguous() for key, value in out.items()}  # safetensors refuses shared storage


# ---------------------------------------------------------------------------------------------
# Tokenizer


def tokenizer_json(tokenizer: CharTokenizer) -> str:
    """A `tokenizers` char-level tokenizer with dsmini's ids: NFC, one token per character, the boundary
    prepended (`CharTokenizer.frame`), characters joined back on decode. An unknown character is an error,
    as in dsmini (WordLevel without an unknown token)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    vocab = {BOUNDARY_TOKEN: BOUNDARY_ID, **{c: i for i, c in enumerate(tokenizer.chars, start=1)}}
    tok = Tokenizer(WordLevel(vocab, unk_token=None))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.add_special_tokens([BOUNDARY_TOKEN])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOUNDARY_TOKEN} $A", pair=f"{BOUNDARY_TOKEN} $A {BOUNDARY_TOKEN} $B",
        special_tokens=[(BOUNDARY_TOKEN, BOUNDARY_ID)],
    )
    tok.decoder = decoders.Fuse()
    return tok.to_str()


def tokenizer_config(cfg: ModelConfig) -> dict[str, Any]:
    """PreTrainedTokenizerFast over tokenizer.json: the boundary is bos, eos and padding, so generate()
    stops where dsmini stops."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOUNDARY_TOKEN, "eos_token": BOUNDARY_TOKEN, "pad_token": BOUNDARY_TOKEN,
        "model_max_length": cfg.block_size,
        "clean_up_tokenization_spaces": False,
    }


# ---------------------------------------------------------------------------------------------
# The folder


LOSSES = (
    ("val", "val_loss"), ("best val", "best_val_loss"), ("whole val split", "final_val_loss"), ("test", "test_loss")
)


def _losses(summary: dict[str, Any]) -> str:
    """The losses the checkpoint recorded, e.g. 'val 2.0861, best val 2.0651'; '-' when none."""
    found = [f"{label} {summary[key]:.4f}" for label, key in LOSSES if isinstance(summary.get(key), (int, float))]
    return ", ".join(found) or "-"


def model_card(ckpt: Checkpoint, arch: str) -> str:
    """README.md: what the model is, what it was trained on and how well, how to run it."""
    cfg, train, summary = ckpt.model_config, ckpt.train_config, ckpt.summary or {}
    main = ckpt.param_counts["main"]
    mtp = ckpt.param_counts.get("mtp", {}).get("total", 0)
    recipe = (
        f"{ckpt.step:,} steps, {train.optimizer}, lr {train.lr:g}, batch {train.batch_size}, dropout {cfg.dropout:g}"
        if train is not None else f"{ckpt.step:,} steps"
    )
    ffn = (
        f"DeepSeekMoE: {cfg.n_shared_experts} shared + {cfg.n_routed_experts} routed experts, top-{cfg.top_k}, "
        f"router {cfg.router}, dense layers first: {cfg.n_dense_layers}" if cfg.ffn_type == "moe" else "dense SwiGLU"
    )
    attn = cfg.attn_type.upper()
    mtp_modules = (
        f"; + {mtp:,} in the MTP modules from layer {cfg.n_layers} on (`num_nextn_predict_layers` = {cfg.mtp_depth})"
        if cfg.mtp_depth else ""
    )
    return f"""---
library_name: transformers
tags: [dsmini, character-level, names]
---
# {ckpt.name}

A character-level name generator made with **dsmini**, a mini DeepSeek, exported as `{arch}`.

- **Corpus:** {ckpt.corpus.name or "-"}{f" (domains: {', '.join(ckpt.corpus.domains)})" if ckpt.corpus.domains else ""}
- **Size:** {main['total']:,} parameters, {main['active']:,} active per token{mtp_modules}
- **Architecture:** {cfg.n_layers} layers, width {cfg.d_model}, {cfg.n_heads} heads, {attn} attention; {ffn}
- **Loss (nats/char):** {_losses(summary)}
- **Training:** {recipe}

One token per character (NFC; a character outside the alphabet is an error); the boundary token
`{BOUNDARY_TOKEN}` (id {BOUNDARY_ID}) starts every name and ends it, so `generate()` stops at the end of a name.

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")
tok = AutoTokenizer.from_pretrained("path/to/this/folder")
out = model.generate(**tok("", return_tensors="pt"), do_sample=True)
print(tok.decode(out[0], skip_special_tokens=True))
```
"""


def export_files(ckpt: Checkpoint) -> dict[str, bytes]:
    """The transformers folder of a loaded checkpoint, file name -> bytes; ExportRefused first if it cannot be."""
    cfg = ckpt.model_config
    arch = architecture(cfg)
    text = {
        "config.json": hf_config(cfg, arch),
        "generation_config.json": {
            "bos_token_id": BOUNDARY_ID, "eos_token_id": BOUNDARY_ID, "pad_token_id": BOUNDARY_ID,
            "max_length": cfg.block_size,
        },
        "tokenizer_config.json": tokenizer_config(cfg),
        "special_tokens_map.json": {
            "bos_token": BOUNDARY_TOKEN, "eos_token": BOUNDARY_TOKEN, "pad_token": BOUNDARY_TOKEN,
        },
    }
    files = {name: (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode() for name, value in text.items()}
    files["tokenizer.json"] = tokenizer_json(ckpt.tokenizer).encode()
    files["model.safetensors"] = safetensors_bytes(hf_state(ckpt.model), metadata={"format": "pt"})
    files["README.md"] = model_card(ckpt, arch).encode()
    return files


def _replace_check(overwrite: bool) -> Callable[[Path], None]:
    """What `atomic.publish` checks under its lock: an existing folder only with overwrite, and never a
    file or a dsmini checkpoint (a slip of --out must not replace a model)."""

    def check(final: Path) -> None:
        if not atomic.exists(final):
            return
        if not final.is_dir() or final.is_symlink():
            raise ExportRefused(f"{final} exists and is not a folder")
        if (final / META_FILE).exists():
            raise ExportRefused(f"{final} is a dsmini checkpoint; export into another folder")
        if not overwrite:
            raise ExportRefused(f"{final} exists; --overwrite replaces it")

    return check


def export_checkpoint(checkpoint: str | Path, out: str | Path, overwrite: bool = False,
                      best: bool = False) -> tuple[Path, str]:
    """Write the transformers folder of the checkpoint at `checkpoint` as `out`, atomically: (path, class).

    Refused (ExportRefused, nothing written) when transformers cannot express the model, or `out` exists
    and `overwrite` is not set, or `out` is not a folder or is a dsmini checkpoint.
    """
    final = Path(os.path.abspath(out))  # not resolve(): a symlink named as --out is refused, never followed
    if final.name.startswith(".") or final == final.parent:
        raise ExportRefused(f"--out {out}: give a folder name that does not start with '.'")
    ckpt = load_checkpoint(checkpoint, best=best)
    arch = architecture(ckpt.model_config)  # the model's refusal first: it is the one that matters
    check = _replace_check(overwrite)
    check(final)  # before the work; again under the publish's lock
    files = export_files(ckpt)

    def fill(tmp: Path) -> None:
        for name, data in files.items():
            atomic.write_file(tmp / name, data)

    return atomic.publish(final.parent, final.name, fill, check), arch


def export_zip_bytes(ckpt: Checkpoint) -> bytes:
    """The transformers folder as a zip (files under `<name>-transformers/`), for a download button."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in export_files(ckpt).items():
            zf.writestr(f"{ckpt.name}-transformers/{name}", data)
    return buffer.getvalue()
