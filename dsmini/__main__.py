"""Command line: `python -m dsmini train|sample|info|corpora|bench ...` (thin layer over the library).

Every ModelConfig / TrainConfig field is a flag (`--kv-lora-rank 32`, `--lr 0.003`); flags not
given keep the preset's value.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import types
import typing
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_checkpoint
from .config import ATTN_TYPES, FFN_TYPES, OPTIMIZERS, PRESETS, ROUTERS, ModelConfig, TrainConfig, preset
from .data import (
    CorpusError,
    UnknownCharacterError,
    default_block_size,
    list_corpora,
    list_corpus_domains,
    load_corpus,
    prepare_corpus,
)
from .generate import generate
from .train import Trainer

MODEL_HELP = {
    "block_size": "longest sequence (boundary + name); default: longest name in the corpus + 1",
    "d_model": "width of the residual stream",
    "n_layers": "transformer blocks",
    "n_heads": "attention (query) heads",
    "dropout": "dropout probability in training",
    "rope_theta": "RoPE base frequency",
    "attn_type": f"attention: {', '.join(ATTN_TYPES)}",
    "head_dim": "MHA/GQA/MQA head size (0 = d_model / n_heads)",
    "n_kv_heads": "GQA key/value groups",
    "q_lora_rank": "MLA query compression rank (0 = off)",
    "kv_lora_rank": "MLA joint key/value latent size d_c (what the cache stores)",
    "qk_nope_head_dim": "MLA per-head content dims of q/k",
    "qk_rope_head_dim": "MLA decoupled RoPE dims (key shared by all heads)",
    "v_head_dim": "MLA per-head value dims",
    "ffn_type": f"feed-forward: {', '.join(FFN_TYPES)}",
    "d_ff": "dense SwiGLU hidden size",
    "n_dense_layers": "first layers that use a dense FFN instead of MoE",
    "n_routed_experts": "routed experts per MoE layer",
    "n_shared_experts": "always-on shared experts per MoE layer",
    "top_k": "routed experts chosen per token",
    "moe_inter_dim": "hidden size of one expert",
    "router": f"router: {', '.join(ROUTERS)}",
    "aux_loss_coef": "load-balancing loss coefficient alpha (0 = off)",
    "bias_update_speed": "aux-loss-free bias step gamma (sigmoid_bias router)",
    "capacity_factor": "expert capacity factor; tokens over capacity are dropped (omit = no dropping)",
    "mtp_depth": "multi-token prediction depth D (0 = off)",
    "mtp_lambda": "MTP loss weight lambda",
}
TRAIN_HELP = {
    "steps": "optimizer steps",
    "batch_size": "names per micro-batch",
    "grad_accum": "micro-batches per optimizer step",
    "optimizer": f"optimizer: {', '.join(OPTIMIZERS)} (muon: Muon for 2-D hidden weights + AdamW)",
    "lr": "peak learning rate",
    "weight_decay": "decoupled weight decay (not on norms/embeddings)",
    "betas": "AdamW betas, two numbers",
    "warmup_steps": "linear warmup steps",
    "min_lr_ratio": "cosine decays to lr * this",
    "grad_clip": "gradient norm clip (0 = off)",
    "eval_every": "steps between validation evaluations",
    "eval_batches": "batches in each validation estimate",
    "sample_every": "steps between printed samples (0 = off)",
    "n_samples": "names sampled each time",
    "seed": "seed for weights and batches",
    "split_seed": "seed of the train/val/test split",
    "device": "auto, cpu, cuda or mps",
}


def _scalar_type(annotation) -> type:
    """float | None -> float; the CLI type of a dataclass field."""
    hint = eval(annotation, vars(typing)) if isinstance(annotation, str) else annotation  # noqa: S307 (our own annotations)
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def _add_dataclass_flags(parser: argparse.ArgumentParser, cls, helps: dict[str, str], skip=()) -> None:
    group = parser.add_argument_group(f"{cls.__name__} (default: the preset's value)")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = _scalar_type(f.type)
        flag = "--" + f.name.replace("_", "-")
        if kind is tuple:
            group.add_argument(flag, type=float, nargs=2, default=None, help=helps[f.name])
        else:
            group.add_argument(flag, type=kind, default=None, help=helps[f.name])


def _overrides(args: argparse.Namespace, cls, skip=()) -> dict:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in skip}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dsmini", description="dsmini: a mini DeepSeek for names")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on a corpus and save a checkpoint")
    train.add_argument("--corpus", required=True, help="built-in corpus name (see `corpora`) or a .txt path, one name or name<TAB>domain per line")
    train.add_argument("--lowercase", action="store_true", help="lowercase every name")
    train.add_argument("--preset", default="small", choices=sorted(PRESETS), help="model size preset")
    train.add_argument("--out", default="checkpoints", help="folder that holds checkpoints")
    train.add_argument("--name", default=None, help="checkpoint name (default: the corpus name)")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint --out/--name exactly")
    train.add_argument("--no-optimizer-state", action="store_true", help="save weights only (smaller; cannot resume)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    _add_dataclass_flags(train, ModelConfig, MODEL_HELP, skip=("vocab_size",))
    _add_dataclass_flags(train, TrainConfig, TRAIN_HELP)

    sample = sub.add_parser("sample", help="generate names from a checkpoint")
    sample.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. checkpoints/ru-names")
    sample.add_argument("--prefix", default="", help="start every name with this text, e.g. Крас")
    sample.add_argument("-n", type=int, default=10, help="how many names")
    sample.add_argument("--temperature", type=float, default=1.0, help="0 = greedy; lower = safer, higher = wilder")
    sample.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest characters (0 = all)")
    sample.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    sample.add_argument("--max-len", type=int, default=None, help="longest name in characters")
    sample.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")

    info = sub.add_parser("info", help="print a checkpoint's card")
    info.add_argument("--checkpoint", required=True, help="checkpoint folder")

    sub.add_parser("corpora", help="list the built-in corpora")
    sub.add_parser("bench", help="run the benchmarks (same as python -m dsmini.bench; see its --help)", add_help=False)
    return parser


def _progress(m, total: int, width: int = 30) -> str:
    done = int(width * m.step / total)
    val = f" val {m.val_loss:.3f}" if m.val_loss is not None else ""
    return (
        f"\r{m.elapsed:6.0f}s step {m.step:>6}/{total} [{'#' * done}{'.' * (width - done)}] "
        f"loss {m.main_loss:.3f}{val} | {m.tokens_per_sec:,.0f} tok/s"
    )


def _domains_phrase(counts: dict[str, int]) -> str:
    """'domains en 5,163 / ru 4,998, ' for a labelled corpus, '' for an unlabelled one."""
    if not counts:
        return ""
    return "domains " + " / ".join(f"{label} {n:,}" for label, n in counts.items()) + ", "


def cmd_train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus, lowercase=args.lowercase)
    name = args.name or Path(args.corpus).stem
    model_over = _overrides(args, ModelConfig, skip=("vocab_size",))
    train_cfg = dataclasses.replace(TrainConfig(), **_overrides(args, TrainConfig))
    block_size = model_over.pop("block_size", None) or default_block_size(corpus.names)
    data = prepare_corpus(
        corpus.names, block_size, train_cfg.split_seed, corpus_name=corpus.name,
        domains=corpus.domains, builtin=corpus.builtin,
    )
    if args.resume:
        trainer = Trainer.resume(Path(args.out) / name, data, steps=train_cfg.steps)
    else:
        model_cfg = preset(args.preset, vocab_size=data.tokenizer.vocab_size, block_size=block_size, **model_over)
        trainer = Trainer(model_cfg, train_cfg, data)
    counts = trainer.model.param_counts()
    print(
        f"{corpus.name}: {len(data.train.names)} train / {len(data.val.names)} val names, "
        f"{_domains_phrase(corpus.domain_counts)}alphabet {data.tokenizer.vocab_size - 1}; "
        f"model {counts['main']['total']:,} params "
        f"({counts['main']['active']:,} active) + MTP {counts.get('mtp', {}).get('total', 0):,}",
        file=sys.stderr,
    )
    started = time.perf_counter()
    live = sys.stderr.isatty()  # a redrawn bar on a terminal, one line per evaluation in a log
    for m in trainer.run():
        if live or m.val_loss is not None:
            print(_progress(m, trainer.cfg.steps), end="" if live else "\n", file=sys.stderr, flush=True)
        if m.samples:
            print(f"\n  samples: {', '.join(m.samples)}", file=sys.stderr)
    print(file=sys.stderr)
    path = trainer.save(args.out, name, include_optimizer=not args.no_optimizer_state)
    summary = trainer.summary()
    print(
        f"{trainer.state.stop_reason}; {trainer.step} steps in {time.perf_counter() - started:.1f}s; "
        f"val loss {summary['val_loss']:.4f} nats/char; saved {path}"
    )
    return 0 if trainer.state.stop_reason == "completed" else 1


def cmd_sample(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    names = generate(
        ckpt.model, ckpt.tokenizer, prefix=args.prefix, n=args.n, temperature=args.temperature,
        top_k=args.top_k, top_p=args.top_p, max_len=args.max_len, seed=args.seed,
    )
    for g in names:
        print(g.text)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    cfg, counts, summary = ckpt.model_config, ckpt.param_counts, ckpt.summary or {}
    val = summary.get("val_loss")
    lines = [
        f"checkpoint  {ckpt.path}",
        f"corpus      {(ckpt.corpus or {}).get('name')}  (split seed {(ckpt.corpus or {}).get('split_seed')})",
        f"domains     {', '.join(ckpt.corpus.get('domains') or ()) or '-'}",
        f"steps       {ckpt.step}",
        f"val loss    {val:.4f} nats/char" if val is not None else "val loss    -",
        f"params      {counts['main']['total']:,} total, {counts['main']['active']:,} active per token"
        f" (+ MTP {counts.get('mtp', {}).get('total', 0):,})",
        f"attention   {cfg.attn_type}; KV cache {cfg.cache_values_per_token()} values/token",
        f"ffn         {cfg.ffn_type}"
        + (f": {cfg.n_shared_experts} shared + {cfg.n_routed_experts} routed, top-{cfg.top_k}, {cfg.router}"
           if cfg.ffn_type == "moe" else ""),
        f"mtp depth   {cfg.mtp_depth}",
        "config      " + ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items()),
    ]
    print("\n".join(lines))
    return 0


def cmd_corpora(_: argparse.Namespace) -> int:
    domains = list_corpus_domains()
    for name, description in list_corpora().items():
        labelled = f" [domains: {', '.join(domains[name])}]" if domains[name] else ""
        print(f"{name:16} {description}{labelled}")
    print("or a .txt file: one name per line, or name<TAB>domain per line for a corpus with domains")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the benchmark has its own flags
        from .bench.cli import main as bench_main  # imported on demand: it pulls in plotly and the pages' code

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    command = {"train": cmd_train, "sample": cmd_sample, "info": cmd_info, "corpora": cmd_corpora}[args.command]
    try:
        return command(args)
    except (CorpusError, CheckpointError, UnknownCharacterError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
