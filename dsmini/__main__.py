"""Command line: `python -m dsmini train|sample|info|corpora|bench ...` (thin layer over the library).

Every ModelConfig / TrainConfig field is a flag (`--kv-lora-rank 32`, `--lr 0.003`); flags not
given keep the preset's value.

Nothing a user asked for is lost, and nothing they did not ask for is replaced:
- everything a run needs is checked before step 1: the checkpoint name, that --out is writable,
  every value (finite, in range), the resource limits of `limits.LIMITS` (parameters, estimated
  memory, block size, layers, experts, names sampled), the corpus;
- `train` never replaces an existing checkpoint unless told to (--resume continues it, --overwrite
  replaces it); --resume refuses another corpus or flags that contradict the checkpoint;
- a run that ends early (Ctrl-C, a loss that is no longer finite, an error) saves the weights of its
  last finished step, and never weights that are not finite;
- errors are one line on stderr and a non-zero exit status, never a traceback (DSMINI_DEBUG=1
  shows it); a closed pipe (`| head`) ends the program quietly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time
import types
import typing
from contextlib import contextmanager
from pathlib import Path

import torch

from .cache import cache_values_per_token
from .checkpoint import META_FILE, CheckpointError, CheckpointExistsError, list_checkpoints, load_checkpoint, validate_name
from .config import ATTN_TYPES, FFN_TYPES, OPTIMIZERS, PRESETS, ROUTERS, ModelConfig, TrainConfig, preset
from .data import (
    MAX_NAME_LEN,
    Corpus,
    CorpusData,
    default_block_size,
    list_corpora,
    list_corpus_domains,
    load_corpus,
    prepare_corpus,
)
from .generate import generate
from .limits import LIMITS, check_learning_rate, check_sampling, check_training
from .train import Trainer

EXIT_STOPPED_EARLY = 1  # the run ended before its last step; the weights of its last good step are saved
EXIT_ERROR = 2  # refused or failed; the message says why, and nothing was written
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
EXIT_CLOSED_PIPE = 141  # the reader went away (`| head`): 128 + SIGPIPE, as any Unix tool exits
# TrainConfig fields a resumed run may change: they decide what is reported and where it runs,
# never which weights come out (evaluation and samples draw no training RNG)
RESUME_MAY_CHANGE = ("steps", "eval_every", "eval_batches", "sample_every", "n_samples", "device")
DEFAULT_PRESET = "small"

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
    "steps": "optimizer steps in total (with --resume: the step to stop at, default the checkpoint's own)",
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


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other error of the CLI (usage is in --help)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


LIMITS_HELP = (
    "Limits, checked before anything is built (raise them on a big machine): "
    + "; ".join(f"{limit.env}={limit.default:,} {limit.unit}" for limit in LIMITS.values())
    + f". Names in a corpus file have at most {MAX_NAME_LEN} characters (longer ones are dropped and counted). "
    "Exit status: 0 done; 1 stopped early (the last good weights are saved); 2 refused or failed (nothing "
    "written); 130 interrupted (Ctrl-C; the finished steps are saved)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m dsmini", description="dsmini: a mini DeepSeek for names", epilog=LIMITS_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train", help="train a model on a corpus and save a checkpoint", epilog=LIMITS_HELP,
        description="Train a model and save it as --out/--name. Resume: --resume continues that checkpoint "
        "exactly (same corpus, model and optimizer settings, or a list of the conflicts); --steps is then the "
        "total to reach (default: the checkpoint's own), and a finished checkpoint is not trained on without it.",
    )
    train.add_argument("--corpus", required=True, help="built-in corpus name (see `corpora`) or a .txt path, one name or name<TAB>domain per line")
    train.add_argument("--lowercase", action="store_true", help="lowercase every name")
    train.add_argument("--preset", default=None, choices=sorted(PRESETS), help=f"model size preset (default: {DEFAULT_PRESET})")
    train.add_argument("--out", default="checkpoints", help="folder that holds checkpoints")
    train.add_argument("--name", default=None, help="checkpoint name (default: the corpus name)")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint --out/--name exactly; --steps is the total to reach")
    train.add_argument("--overwrite", action="store_true", help="start a new run over an existing checkpoint --out/--name (replaced once the new one is saved)")
    train.add_argument("--no-optimizer-state", action="store_true", help="save weights only (smaller; cannot resume)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads, 1 to this machine's cores (default: torch's choice)")
    _add_dataclass_flags(train, ModelConfig, MODEL_HELP, skip=("vocab_size",))
    _add_dataclass_flags(train, TrainConfig, TRAIN_HELP)

    sample = sub.add_parser("sample", help="generate names from a checkpoint", epilog=LIMITS_HELP)
    sample.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. checkpoints/ru-names")
    sample.add_argument("--prefix", default="", help="start every name with this text, e.g. Крас")
    sample.add_argument("-n", type=int, default=10, help=f"how many names (at most {LIMITS['samples'].default:,}; {LIMITS['samples'].env} raises it)")
    sample.add_argument("--temperature", type=float, default=1.0, help="0 = greedy; lower = safer, higher = wilder (else at least 0.001)")
    sample.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest characters (0 = all)")
    sample.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass, 1e-6 to 1 (1 = off)")
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
    """Check everything, then train and save. Nothing is written before the first step."""
    _set_threads(args.threads)
    name = validate_name(args.name if args.name is not None else Path(args.corpus).stem)
    out = Path(args.out)
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the checkpoint (and saves over it), --overwrite starts a new run over it: give one")
    given = _overrides(args, TrainConfig)
    check_learning_rate(dataclasses.replace(TrainConfig(), **given))  # every given value is checked here too
    if not args.resume:
        _check_new_target(out, name, args.overwrite)
    _check_writable(out)
    corpus = _training_corpus(args)
    trainer = _resumed_trainer(args, out / name, corpus, given) if args.resume else _new_trainer(args, corpus, given)
    _check_jsonable(trainer)
    _print_plan(trainer, corpus, args.resume)
    return _train_and_save(trainer, out, name, args)


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    cores = os.cpu_count() or 1
    if not 1 <= threads <= cores:
        raise ValueError(f"--threads must be between 1 and {cores} (this machine's cores), got {threads}")
    torch.set_num_threads(threads)


def _check_new_target(out: Path, name: str, overwrite: bool) -> None:
    """A new run may take a free name, or with --overwrite replace a checkpoint that is the user's."""
    target = out / name
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise CheckpointError(
            f"{target} already exists: give --resume to continue it, --overwrite to replace it, or another --name"
        )
    if target.is_symlink() or not (target / META_FILE).is_file():
        raise CheckpointError(f"{target} exists and is not a dsmini checkpoint; not overwriting it")
    if any(info.name == name and info.shipped for info in list_checkpoints(out)):
        raise CheckpointError(f"{target} ships with dsmini and is read-only: give another --name")


def _check_writable(folder: Path) -> None:
    """Refuse an --out the checkpoint cannot be written to now, not after the run: create and remove a
    file in it (or, while it does not exist, in the folder above it that will hold it)."""
    probe = folder
    while not (probe.exists() or probe.is_symlink()):  # a dangling link is no folder to write in
        probe = probe.parent
    if not probe.is_dir():
        raise CheckpointError(f"--out {folder}: {probe} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dsmini-probe-", dir=probe)
        os.close(fd)
        os.remove(tmp)
    except OSError as err:
        raise CheckpointError(f"--out {folder} is not writable: {err.strerror or err}") from None


def _training_corpus(args: argparse.Namespace) -> Corpus:
    """The corpus, with names from a file capped at MAX_NAME_LEN, the app's cap (the built-ins' longest has 22)."""
    builtin = args.corpus in list_corpora()
    return load_corpus(args.corpus, lowercase=args.lowercase, max_len=None if builtin else MAX_NAME_LEN)


def _new_trainer(args: argparse.Namespace, corpus: Corpus, given: dict) -> Trainer:
    train_cfg = dataclasses.replace(TrainConfig(), **given)
    model_over = _overrides(args, ModelConfig, skip=("vocab_size",))
    block_size = model_over.pop("block_size") if "block_size" in model_over else default_block_size(corpus.names)
    alphabet = len(set("".join(corpus.names)))  # names too long for block_size can only shrink it
    model_cfg = preset(args.preset or DEFAULT_PRESET, vocab_size=alphabet + 1, block_size=block_size, **model_over)
    check_training(model_cfg, train_cfg, len(corpus.names))  # before the corpus is encoded or a weight allocated
    data = prepare_corpus(
        corpus.names, block_size, train_cfg.split_seed, corpus_name=corpus.name,
        domains=corpus.domains, builtin=corpus.builtin,
    )
    return Trainer(dataclasses.replace(model_cfg, vocab_size=data.tokenizer.vocab_size), train_cfg, data)


def _resumed_trainer(args: argparse.Namespace, path: Path, corpus: Corpus, given: dict) -> Trainer:
    """The checkpoint's run, continued: refused when the corpus or a flag contradicts it, or when
    there is nothing left to do."""
    ckpt = load_checkpoint(path, load_optimizer=True)
    if ckpt.shipped:
        raise CheckpointError(f"{path} ships with dsmini and is read-only: it cannot be resumed")
    if ckpt.train_config is None or ckpt.optimizer_states is None:
        raise CheckpointError(f"{path} was saved without optimizer state (--no-optimizer-state): it cannot be resumed")
    saved = ckpt.train_config
    conflicts = _flag_conflicts(args, ckpt.model_config, saved, given)
    if conflicts:
        raise ValueError(f"cannot resume {path} with other settings: {'; '.join(conflicts)}; drop these flags, or start a new run under another --name")
    steps = given.get("steps", saved.steps)
    if steps <= ckpt.step:
        why = f"--steps {steps} is not more than" if "steps" in given else "it has finished"
        raise ValueError(
            f"nothing to do: {why} the checkpoint's {ckpt.step} steps; with --resume, --steps is the total to "
            f"reach, e.g. --steps {ckpt.step + saved.steps}"
        )
    changed = {key: value for key, value in given.items() if key in RESUME_MAY_CHANGE}
    train_cfg = dataclasses.replace(saved, **{**changed, "steps": steps})
    check_training(ckpt.model_config, train_cfg, len(corpus.names))
    ref = ckpt.corpus
    data = prepare_corpus(
        corpus.names, ref.get("block_size", ckpt.model_config.block_size), ref.get("split_seed", saved.split_seed),
        corpus_name=corpus.name, domains=corpus.domains, builtin=corpus.builtin,
    )
    conflicts = _corpus_conflicts(ckpt.corpus, ckpt.tokenizer.chars, corpus, data)
    if conflicts:
        raise ValueError(f"cannot resume {path} on this corpus: {'; '.join(conflicts)}")
    return Trainer.from_checkpoint(ckpt, data, train_cfg)


def _conflict(flag: str, saved, given) -> str:
    return f"{flag}: {saved!r} (checkpoint) vs {given!r} (given)"


def _flag_conflicts(args: argparse.Namespace, model: ModelConfig, train: TrainConfig, given: dict) -> list[str]:
    """Each given flag whose value differs from the checkpoint's, as 'flag: saved vs given'."""
    conflicts = []
    model_given = _overrides(args, ModelConfig, skip=("vocab_size",))
    for key, value in model_given.items():
        if getattr(model, key) != value:
            conflicts.append(_conflict(_flag(key), getattr(model, key), value))
    if args.preset is not None:  # the preset's own sizes; vocab and block size come from the corpus
        base = PRESETS[args.preset]
        keys = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("vocab_size", "block_size", *model_given)]
        differ = [f"{key} {getattr(model, key)!r} vs {getattr(base, key)!r}" for key in keys if getattr(base, key) != getattr(model, key)]
        if differ:
            conflicts.append(f"--preset {args.preset}: {', '.join(differ)} (checkpoint vs given)")
    for key, value in given.items():
        if key not in RESUME_MAY_CHANGE and getattr(train, key) != value:
            conflicts.append(_conflict(_flag(key), getattr(train, key), value))
    return conflicts


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _corpus_conflicts(ref: dict, chars: list[str], corpus: Corpus, data: CorpusData) -> list[str]:
    """How the corpus given differs from the one the checkpoint was trained on: its name, its
    alphabet (the tokenizer: same size is not enough, the ids would mean other letters), its
    domains and its split (the stored validation names of a file, the split sizes)."""
    conflicts = []
    if ref.get("name") != corpus.name:
        conflicts.append(_conflict("--corpus", ref.get("name"), corpus.name))
    if data.tokenizer.chars != chars:
        lost, new = sorted(set(chars) - set(data.tokenizer.chars)), sorted(set(data.tokenizer.chars) - set(chars))
        conflicts.append(
            f"alphabet: the checkpoint's has {len(chars)} characters, this corpus's {len(data.tokenizer.chars)}"
            + (f"; only in the checkpoint's: {''.join(lost)[:40]}" if lost else "")
            + (f"; only in this corpus: {''.join(new)[:40]}" if new else "")
        )
    if ref.get("domains", []) != data.domain_labels:
        conflicts.append(_conflict("domains", ref.get("domains", []), data.domain_labels))
    sizes = (ref.get("n_train"), ref.get("n_val"))
    if sizes != (None, None) and sizes != (len(data.train.names), len(data.val.names)):
        conflicts.append(_conflict("train/val names", sizes, (len(data.train.names), len(data.val.names))))
    stored = ref.get("val_names")
    if stored is not None and stored != data.val.names[: len(stored)]:
        conflicts.append("validation names: not the checkpoint's (another file under the same name?)")
    return conflicts


def _check_jsonable(trainer: Trainer) -> None:
    """The configs go into checkpoint.json at the end: fail now if they could not."""
    try:
        json.dumps([trainer.model_cfg.to_dict(), trainer.cfg.to_dict()], allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the configuration cannot be saved as JSON: {err}") from None


def _print_plan(trainer: Trainer, corpus: Corpus, resumed: bool) -> None:
    data, counts = trainer.data, trainer.model.param_counts()
    dropped = corpus.dropped.describe()
    print(
        f"{corpus.name}: {len(data.train.names)} train / {len(data.val.names)} val names, "
        f"{_domains_phrase(corpus.domain_counts)}alphabet {data.tokenizer.vocab_size - 1}"
        + (f" (dropped {dropped})" if dropped else "")
        + f"; model {counts['main']['total']:,} params ({counts['main']['active']:,} active) "
        f"+ MTP {counts.get('mtp', {}).get('total', 0):,}"
        + (f"; resuming at step {trainer.step} of {trainer.cfg.steps}" if resumed else ""),
        file=sys.stderr,
    )


def _train_and_save(trainer: Trainer, out: Path, name: str, args: argparse.Namespace) -> int:
    """Run, then save the weights of the last finished step unless no step finished or they are not
    finite; one line says how the run ended and where its weights are."""
    first, started = trainer.step, time.perf_counter()
    failure = _run(trainer)
    reason = failure or trainer.state.stop_reason
    code = _exit_code(reason)
    if trainer.step == first:
        print(f"error: {reason}; no step finished, nothing saved", file=sys.stderr)
        return code
    if not trainer.weights_are_finite():
        print(f"error: {reason}; the weights are no longer finite (NaN/inf): nothing saved, try a lower --lr", file=sys.stderr)
        return code
    path = _save(trainer, out, name, overwrite=args.resume or args.overwrite, include_optimizer=not args.no_optimizer_state)
    val = trainer.summary()["val_loss"]
    print(
        f"{reason}; {trainer.step} steps ({trainer.step - first} in {time.perf_counter() - started:.1f}s)"
        + (f"; val loss {val:.4f} nats/char" if val is not None else "") + f"; saved {path}"
        + (f" (continue it with --resume --name {path.name})" if code == EXIT_INTERRUPTED else "")
    )
    return code


def _exit_code(reason: str) -> int:
    if reason == "completed":
        return 0
    return EXIT_INTERRUPTED if reason.startswith("stopped on request") else EXIT_STOPPED_EARLY


def _run(trainer: Trainer) -> str | None:
    """Train with progress on stderr; why it broke off if an error did it (the trainer's own stops
    are in `trainer.state.stop_reason`). A step computes its losses and gradients before it touches
    the weights, so a run that broke off holds the weights of its last finished step."""
    live = sys.stderr.isatty()  # a redrawn bar on a terminal, one line per evaluation in a log
    try:
        with _stop_on_interrupt(trainer):
            for m in trainer.run():
                if live or m.val_loss is not None:
                    print(_progress(m, trainer.cfg.steps), end="" if live else "\n", file=sys.stderr, flush=True)
                if m.samples:
                    print(f"\n  samples: {', '.join(m.samples)}", file=sys.stderr)
    except Exception as err:  # saved below like any other early end; the message goes with it
        return f"training failed at step {trainer.step + 1}: {type(err).__name__}: {_one_line(err)}"
    finally:
        print(file=sys.stderr)
    return None


@contextmanager
def _stop_on_interrupt(trainer: Trainer):
    """The first Ctrl-C finishes the current step and ends the run, which is then saved; a second one
    quits at once, saving nothing."""
    def stop(signum, frame):
        signal.signal(signal.SIGINT, previous)
        print("\ninterrupted: finishing this step, then saving (Ctrl-C again to quit without saving)", file=sys.stderr)
        trainer.request_stop()

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _save(trainer: Trainer, out: Path, name: str, overwrite: bool, include_optimizer: bool) -> Path:
    """Save under `name`; if that name was taken while the run went on, under the next free one."""
    try:
        return trainer.save(out, name, include_optimizer=include_optimizer, overwrite=overwrite)
    except CheckpointExistsError as err:
        print(f"{err}; saving as {err.free_name!r} instead", file=sys.stderr)
        return trainer.save(out, err.free_name, include_optimizer=include_optimizer)


def cmd_sample(args: argparse.Namespace) -> int:
    LIMITS["samples"].check(args.n, "-n")  # before the checkpoint is even read
    ckpt = load_checkpoint(args.checkpoint)
    check_sampling(ckpt.model_config, args.n)
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
        f"attention   {cfg.attn_type}; KV cache {cache_values_per_token(cfg)} values/token",
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


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the benchmark has its own flags
        from .bench.cli import main as bench_main  # imported on demand: it pulls in plotly and the pages' code

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    command = {"train": cmd_train, "sample": cmd_sample, "info": cmd_info, "corpora": cmd_corpora}[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise  # not an error: the reader has what it wanted (see _entry)
    except Exception as err:
        if os.environ.get("DSMINI_DEBUG"):
            raise
        expected = isinstance(err, (ValueError, OSError))  # CorpusError, CheckpointError, limits: ValueErrors
        print(f"error: {'' if expected else f'unexpected {type(err).__name__}: '}{_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR


def _entry() -> int:
    """`python -m dsmini`: main(), and a closed stdout (`| head`) ends it quietly, as any Unix tool."""
    try:
        code = main()
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit-time flush
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit-time flush succeeds
        return EXIT_CLOSED_PIPE
    return code


if __name__ == "__main__":
    sys.exit(_entry())
