"""Command line: `python -m dsmini train|sample|info|eval|export|corpora|serve|warm|bench ...` (thin layer over
the library).

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

This module is the parser, the small commands and the dispatch; the train command, which keeps
most of these promises, is in `train.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing

from dsmini.checkpoint import load_checkpoint
from dsmini.config import PRESETS, ModelConfig, TrainConfig
from dsmini.data import MAX_NAME_LEN, list_corpora, list_corpus_domains
from dsmini.decoding import CUT_MARK, generate
from dsmini.model import LIMITS, cache_values_per_token, check_sampling

from .evaluate import add_eval_parser, cmd_eval, loss_lines
from .serve import add_parser as add_serve_parser
from .serve import cmd_serve
from .threads import THREADS_HELP, set_threads
from .train import (
    DEFAULT_SAVE_EVERY_S,
    DEFAULT_TEST_FRAC,
    DEFAULT_VAL_FRAC,
    EXIT_INTERRUPTED,
    RECIPE,
    cmd_train,
    one_line,
)
from .warm import add_parser as add_warm_parser
from .warm import cmd_warm

EXIT_ERROR = 2  # refused or failed; the message says why, and nothing was written
EXIT_CLOSED_PIPE = 141  # the reader went away (`| head`): 128 + SIGPIPE, as any Unix tool exits

# What a flag's help adds to its field's (`config.field_help`) where `train` differs from the field's default
TRAIN_NOTES = {"steps": "with --resume: the step to stop at, default the checkpoint's own"}


def _flag_help(f: dataclasses.Field) -> str:
    """The field's help (its metadata), then the `train` recipe's value where it is not the field's default."""
    notes = []
    if f.name in _TRAIN_FIELDS and getattr(RECIPE.train, f.name) != f.default:
        notes.append(f"default {getattr(RECIPE.train, f.name)}")
    notes += [TRAIN_NOTES[f.name]] if f.name in TRAIN_NOTES else []
    return f.metadata["help"] + (f" ({'; '.join(notes)})" if notes else "")


_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def _scalar_type(annotation) -> type:
    """float | None -> float; the CLI type of a dataclass field."""
    hint = eval(annotation, vars(typing)) if isinstance(annotation, str) else annotation  # noqa: S307 (our own annotations)
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def _add_dataclass_flags(parser: argparse.ArgumentParser, cls, skip=()) -> None:
    group = parser.add_argument_group(f"{cls.__name__} (default: the preset's value)")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = _scalar_type(f.type)
        flag, text = "--" + f.name.replace("_", "-"), _flag_help(f)
        if kind is tuple:
            group.add_argument(flag, type=float, nargs=2, default=None, help=text)
        elif kind is bool:  # --flag / --no-flag; neither keeps the preset's value
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(flag, type=kind, default=None, help=text)


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


BEST_HELP = "use the weights of the best validation loss (best.safetensors) instead of the last ones"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m dsmini", description="dsmini: a mini DeepSeek for names", epilog=LIMITS_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train", help="train a model on a corpus and save a checkpoint", epilog=LIMITS_HELP,
        description="Train a model and save it as --out/--name. Resume: --resume continues that checkpoint "
        "exactly (same corpus, model and optimizer settings, or a list of the conflicts); --steps is then the "
        "total to reach (default: the checkpoint's own), and a finished checkpoint is not trained on without it.",
    )
    train.add_argument("--corpus", required=True,
                       help="built-in corpus name (see `corpora`) or a .txt path, one name or name<TAB>domain per line")
    train.add_argument("--val-file", default=None,
                       help="validation names as a file of their own (like --corpus); nothing is then cut from "
                       "--corpus for val")
    train.add_argument("--test-file", default=None,
                       help="test names as a file of their own, scored once at the end; nothing is then cut from "
                       "--corpus for test")
    train.add_argument("--val-frac", type=float, default=None,
                       help=f"share of --corpus cut for val without --val-file (default {DEFAULT_VAL_FRAC})")
    train.add_argument("--test-frac", type=float, default=None,
                       help=f"share of --corpus cut for test without --test-file (default {DEFAULT_TEST_FRAC}; "
                       "0 = no test)")
    train.add_argument("--dedupe", action=argparse.BooleanOptionalAction, default=True,
                       help="drop repeated names of --corpus (default: on); --val-file/--test-file are never "
                       "deduplicated")
    train.add_argument("--lowercase", action="store_true", help="lowercase every name")
    train.add_argument("--preset", default=None, choices=sorted(PRESETS),
                       help=f"model size preset (default: {RECIPE.preset})")
    train.add_argument("--out", default="checkpoints", help="folder that holds checkpoints")
    train.add_argument("--name", default=None, help="checkpoint name (default: the corpus name)")
    train.add_argument("--resume", action="store_true",
                       help="continue the checkpoint --out/--name exactly; --steps is the total to reach")
    train.add_argument("--overwrite", action="store_true",
                       help="start a new run over an existing checkpoint --out/--name (replaced once the new one is "
                       "saved)")
    train.add_argument("--no-optimizer-state", action="store_true", help="save weights only (smaller; cannot resume)")
    train.add_argument("--save-every", type=float, default=DEFAULT_SAVE_EVERY_S, metavar="SECONDS",
                       help=f"also save during the run every SECONDS (default {DEFAULT_SAVE_EVERY_S:g}; 0 = only at "
                       "the end), "
                       "so a killed run resumes from its last save")
    train.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    train.add_argument("--print-config", action="store_true",
                       help="print the resolved model_config and train_config as JSON (as checkpoint.json stores them) "
                       "and exit without training")
    _add_dataclass_flags(train, ModelConfig, skip=("vocab_size",))
    _add_dataclass_flags(train, TrainConfig)

    sample = sub.add_parser("sample", help="generate names from a checkpoint", epilog=LIMITS_HELP)
    sample.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. checkpoints/ru-names")
    sample.add_argument("--prefix", default="", help="start every name with this text, e.g. Крас")
    sample.add_argument("-n", type=int, default=10,
                        help=f"how many names (at most {LIMITS['samples'].default:,}; {LIMITS['samples'].env} "
                        "raises it)")
    sample.add_argument("--temperature", type=float, default=1.0,
                        help="0 = greedy; lower = safer, higher = wilder (else at least 0.001)")
    sample.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest characters (0 = all)")
    sample.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass, 1e-6 to 1 (1 = off)")
    sample.add_argument("--max-len", type=int, default=None, help="longest name in characters")
    sample.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")
    sample.add_argument("--best", action="store_true", help=BEST_HELP)
    sample.add_argument("--threads", type=int, default=None, help=THREADS_HELP)

    info = sub.add_parser("info", help="print a checkpoint's card")
    info.add_argument("--checkpoint", required=True, help="checkpoint folder")
    info.add_argument("--best", action="store_true", help=BEST_HELP)
    info.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    add_eval_parser(sub, BEST_HELP)

    export = sub.add_parser(
        "export", help="write a checkpoint as a Hugging Face transformers folder",
        description="Write --checkpoint as a transformers folder (config.json, model.safetensors, tokenizer, "
        "generation_config.json, README.md) that AutoModelForCausalLM and AutoTokenizer load without custom code: "
        "MLA + sigmoid router -> DeepseekV3ForCausalLM, MLA + softmax router with raw scores -> DeepseekV2ForCausalLM, "
        "MHA/GQA/MQA + dense FFN -> LlamaForCausalLM. A model transformers cannot express is refused, naming the "
        "feature.",
    )
    export.add_argument("--checkpoint", required=True, help="checkpoint folder, e.g. checkpoints/en-names")
    export.add_argument("--out", required=True, help="the folder to write; written complete or not at all")
    export.add_argument("--overwrite", action="store_true",
                        help="replace --out if it exists (never a dsmini checkpoint)")
    export.add_argument("--best", action="store_true", help=BEST_HELP)

    sub.add_parser("corpora", help="list the built-in corpora")
    add_serve_parser(sub)
    add_warm_parser(sub)
    sub.add_parser("bench", help="run the benchmarks (same as python -m dsmini.bench; see its --help)", add_help=False)
    return parser


def cmd_sample(args: argparse.Namespace) -> int:
    LIMITS["samples"].check(args.n, "-n")  # before the checkpoint is even read
    set_threads(args.threads)
    ckpt = load_checkpoint(args.checkpoint, best=args.best)
    check_sampling(ckpt.model_config, args.n)
    names = generate(
        ckpt.model, ckpt.tokenizer, prefix=args.prefix, n=args.n, temperature=args.temperature,
        top_k=args.top_k, top_p=args.top_p, max_len=args.max_len, seed=args.seed,
    )
    for g in names:
        print(g.shown)
    if not all(g.finished for g in names):  # on stderr: stdout stays one name a line
        print(f"{CUT_MARK} = cut at the maximum length, not ended by the model", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    ckpt = load_checkpoint(args.checkpoint, best=args.best)
    cfg, counts = ckpt.model_config, ckpt.param_counts
    lines = [
        f"checkpoint  {ckpt.path}",
        f"corpus      {ckpt.corpus.name}  (split seed {ckpt.corpus.split_seed})",
        f"domains     {', '.join(ckpt.corpus.domains or ()) or '-'}",
        f"steps       {ckpt.step}",
        *loss_lines(ckpt),
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


def cmd_export(args: argparse.Namespace) -> int:
    from dsmini.export import export_checkpoint

    path, arch = export_checkpoint(args.checkpoint, args.out, overwrite=args.overwrite, best=args.best)
    print(f"wrote {path} ({arch}); load it with transformers' AutoModelForCausalLM.from_pretrained")
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
        from dsmini.bench.cli import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    command = {"train": cmd_train, "sample": cmd_sample, "info": cmd_info, "corpora": cmd_corpora, "eval": cmd_eval,
               "export": cmd_export, "serve": cmd_serve, "warm": cmd_warm}[args.command]
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
        print(f"error: {'' if expected else f'unexpected {type(err).__name__}: '}{one_line(err)}", file=sys.stderr)
        return EXIT_ERROR


def entry() -> int:
    """`python -m dsmini`: main(), and a closed stdout (`| head`) ends it quietly, as any Unix tool."""
    try:
        code = main()
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit-time flush
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit-time flush succeeds
        return EXIT_CLOSED_PIPE
    return code

