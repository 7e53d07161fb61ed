"""`python -m dsmini train`: plan, check, run; the exit status says how it ended.

Apart from the CLI's parser and dispatch (`main.py`) because this is where the CLI's promises
about training are kept (see there). A training reads as three steps:
- plan (`resolve`): every setting resolved from the flags, the recipe (`config.RECIPES["cli"]`), the
  corpus and, with --resume, the checkpoint: what --print-config prints, before anything is prepared
  (the name, the values given and --out are checked before any file is read: `_request`, `_check_target`);
- check (`check`): the plan against the limits and, with --resume, against the checkpoint: every flag
  that contradicts it, listed together;
- run (`_trainer`, `_train_and_save`): the corpus split and encoded (a resumed run's split and alphabet
  checked against its checkpoint's), the model built, trained and saved. A run that ends early saves
  the weights of its last finished step, never weights that are not finite, under the next free name
  if its own was taken meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dsmini.checkpoint import (
    META_FILE,
    Checkpoint,
    CheckpointError,
    CheckpointExistsError,
    CorpusRef,
    atomic,
    list_checkpoints,
    load_checkpoint,
    validate_name,
)
from dsmini.config import RECIPES, SAVED_BEFORE_FIELD, ModelConfig, TrainConfig
from dsmini.data import (
    MAX_NAME_LEN,
    Corpus,
    CorpusData,
    CorpusError,
    HeldOut,
    HeldOutCharacterError,
    corpus_tokenizer,
    default_block_size,
    line_of,
    list_corpora,
    load_corpus,
    prepare_corpus,
)
from dsmini.model import check_learning_rate, check_training
from dsmini.probes import live_domain_mi
from dsmini.training import Trainer

from .threads import set_threads

# How a run ended, beside 0 (completed); `main` adds the statuses of a refused command and a closed pipe
EXIT_STOPPED_EARLY = 1  # the run ended before its last step; the weights of its last good step are saved
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
# TrainConfig fields a resumed run may change: they decide what is reported and where it runs,
# never which weights come out (evaluation and samples draw no training RNG)
RESUME_MAY_CHANGE = ("steps", "eval_every", "eval_batches", "sample_every", "n_samples", "device")
RECIPE = RECIPES["cli"]  # what `train` uses where no flag says otherwise (why: see RECIPES)
# Cut from --corpus for val and test when no --val-file / --test-file names them: today's split, so
# built-in corpora split exactly as the shipped checkpoints were
DEFAULT_VAL_FRAC = DEFAULT_TEST_FRAC = 0.1
DEFAULT_SAVE_EVERY_S = 30.0  # as the app's runs: a killed run (kill -9, the OOM killer) loses at most this much


@dataclass(frozen=True)
class Request:
    """What the flags alone say, checked before any file is read: where the checkpoint goes and the
    TrainConfig values given."""

    out: Path
    name: str
    given: dict


@dataclass(frozen=True)
class TrainPlan:
    """A training resolved: every setting, from the flags, the recipe, the corpus and (--resume) the
    checkpoint, before any data is prepared or anything written. `configs()` is what --print-config
    prints and checkpoint.json will store."""

    request: Request
    corpus: Corpus
    held: dict[str, tuple[Corpus, HeldOut]]  # --val-file / --test-file: the file read, and as prepare_corpus takes it
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    split_seed: int
    fractions: dict[str, float]
    resumed: Checkpoint | None = None  # --resume: the run continued

    def configs(self) -> dict:
        return {"model_config": self.model_cfg.to_dict(), "train_config": self.train_cfg.to_dict()}


def cmd_train(args: argparse.Namespace) -> int:
    """Plan, check, then prepare the data, train and save. Nothing is written before the first step."""
    set_threads(args.threads)
    request = _request(args)
    if args.print_config:
        print(json.dumps(resolve(args, request).configs(), indent=2, ensure_ascii=False))
        return 0
    _check_target(request, args)
    with _claimed(request.out, request.name) if args.resume else contextlib.nullcontext():
        plan = resolve(args, request)
        check(plan, args)
        trainer = _trainer(plan, args)
        _print_plan(trainer, plan.corpus, {part: c for part, (c, _) in plan.held.items()}, args.resume)
        return _train_and_save(trainer, _Saves(trainer, request.out, request.name, args), args)


def _request(args: argparse.Namespace) -> Request:
    """The name, the flags that cannot go together, the TrainConfig values given (each checked as
    TrainConfig checks it, and the learning rate's limits)."""
    name = validate_name(args.name if args.name is not None else Path(args.corpus).stem)
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the checkpoint (and saves over it), --overwrite starts a new run over it: "
                         "give one")
    given = _overrides(args, TrainConfig)
    check_learning_rate(dataclasses.replace(TrainConfig(), **given))  # every given value is checked here too
    if args.save_every < 0:
        raise ValueError(f"--save-every is seconds between saves, 0 (only at the end) or more, got {args.save_every:g}")
    return Request(Path(args.out), name, given)


# plan -------------------------------------------------------------------------------------------
def resolve(args: argparse.Namespace, request: Request) -> TrainPlan:
    """Every setting of the run: a new one from the recipe and the flags on this corpus, a resumed one
    from its checkpoint and the flags it may change."""
    corpus, held = _training_corpus(args), _held_out_files(args)
    if args.resume:
        return _resolve_resumed(args, request, corpus, held)
    train_cfg = dataclasses.replace(RECIPE.train, **request.given)
    model_over = _overrides(args, ModelConfig, skip=("vocab_size",))
    block_size = model_over.pop("block_size") if "block_size" in model_over else default_block_size(corpus.names)
    model_cfg = RECIPE.model(len(corpus.names), args.preset, block_size=block_size, **model_over)  # the values checked
    vocab_size = corpus_tokenizer(corpus.names, block_size, corpus.name).vocab_size  # of the names that fit block_size
    model_cfg = dataclasses.replace(model_cfg, vocab_size=vocab_size)
    return TrainPlan(request, corpus, held, model_cfg, train_cfg, train_cfg.split_seed, _fractions(args))


def _resolve_resumed(args: argparse.Namespace, request: Request, corpus: Corpus, held: dict) -> TrainPlan:
    """The checkpoint's run with the flags a resumed run may change; its split as the checkpoint made it."""
    path = request.out / request.name
    ckpt = load_checkpoint(path, load_optimizer=True)
    if ckpt.shipped:
        raise CheckpointError(f"{path} ships with dsmini and is read-only: it cannot be resumed")
    if ckpt.train_config is None or ckpt.optimizer_states is None:
        raise CheckpointError(f"{path} was saved without optimizer state (--no-optimizer-state): it cannot be resumed")
    saved, ref = ckpt.train_config, ckpt.corpus
    changed = {key: value for key, value in request.given.items() if key in RESUME_MAY_CHANGE}
    train_cfg = dataclasses.replace(saved, **changed)
    split_seed = saved.split_seed if ref.split_seed is None else ref.split_seed
    return TrainPlan(request, corpus, held, ckpt.model_config, train_cfg, split_seed, _fractions(args, ref), ckpt)


def _overrides(args: argparse.Namespace, cls, skip=()) -> dict:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in skip}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if v is not None}


def _read(source: str, lowercase: bool, **options) -> Corpus:
    """A corpus or a val/test file, with names from a file capped at MAX_NAME_LEN, the app's cap (the
    built-ins' longest has 22)."""
    max_len = None if source in list_corpora() else MAX_NAME_LEN
    return load_corpus(source, lowercase=lowercase, max_len=max_len, **options)


def _training_corpus(args: argparse.Namespace) -> Corpus:
    """--corpus, deduplicated unless --no-dedupe."""
    return _read(args.corpus, args.lowercase, dedupe=args.dedupe)


def _held_out_files(args: argparse.Namespace) -> dict[str, tuple[Corpus, HeldOut]]:
    """--val-file / --test-file as given: every line one example, repeats kept (never deduplicated,
    so the test loss is the one `eval --names` gives for the same file); one name is enough."""
    files = {}
    for part in ("val", "test"):
        source = getattr(args, f"{part}_file")
        if source is not None:
            corpus = _read(source, args.lowercase, dedupe=False, min_names=1)
            files[part] = corpus, HeldOut(source, corpus)
    return files


def _fractions(args: argparse.Namespace, ref: CorpusRef | None = None) -> dict[str, float]:
    """--val-frac / --test-frac as given, else the checkpoint's (resume), else the defaults."""
    saved = {"val_frac": getattr(ref, "val_frac", None), "test_frac": getattr(ref, "test_frac", None)}
    defaults = {"val_frac": DEFAULT_VAL_FRAC, "test_frac": DEFAULT_TEST_FRAC}
    chosen = {key: next(v for v in (getattr(args, key), saved[key], defaults[key]) if v is not None)
              for key in defaults}
    if not (0 <= chosen["val_frac"] < 1 and 0 <= chosen["test_frac"] < 1 and sum(chosen.values()) < 1):
        raise ValueError(f"--val-frac {chosen['val_frac']} and --test-frac {chosen['test_frac']} must each be in "
                         "[0, 1) and sum to less than 1")
    return chosen


# check ------------------------------------------------------------------------------------------
def check(plan: TrainPlan, args: argparse.Namespace) -> None:
    """The whole plan, before the corpus is encoded or a weight allocated: a resumed run against its
    checkpoint, then the resource limits, then that the configs can be saved."""
    if plan.resumed is not None:
        _check_resumable(plan, args)
    check_training(plan.model_cfg, plan.train_cfg, len(plan.corpus.names))
    _check_jsonable(plan)


def _check_target(request: Request, args: argparse.Namespace) -> None:
    """Where the checkpoint goes: a free name (or one --overwrite may replace) for a new run, and an
    --out that can be written to."""
    if not args.resume:
        _check_new_target(request.out, request.name, args.overwrite)
    _check_writable(request.out)


@contextmanager
def _claimed(out: Path, name: str):
    """A resumed run holds its checkpoint from reading it to its last save: two resumes of one
    checkpoint would each train from the same step, and the later save would win."""
    try:
        with atomic.claimed(out, name):
            yield
    except BlockingIOError:
        raise CheckpointError(f"{out / name} is being trained by another run: wait for it to end, or resume a copy "
                              "under another --name") from None


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


def _check_resumable(plan: TrainPlan, args: argparse.Namespace) -> None:
    """Refused when a flag contradicts the checkpoint, or when there is nothing left to do."""
    ckpt, given, path = plan.resumed, plan.request.given, plan.request.out / plan.request.name
    saved = ckpt.train_config
    conflicts = (_flag_conflicts(args, ckpt.model_config, saved, given, len(plan.corpus.names))
                 + _held_out_conflicts(ckpt.corpus, args))
    if conflicts:
        raise ValueError(f"cannot resume {path} with other settings: {'; '.join(conflicts)}; drop these flags, or "
                         "start a new run under another --name")
    if plan.train_cfg.steps <= ckpt.step:
        why = f"--steps {plan.train_cfg.steps} is not more than" if "steps" in given else "it has finished"
        raise ValueError(
            f"nothing to do: {why} the checkpoint's {ckpt.step} steps; with --resume, --steps is the total to "
            f"reach, e.g. --steps {ckpt.step + saved.steps}"
        )


def _conflict(flag: str, saved, given) -> str:
    return f"{flag}: {saved!r} (checkpoint) vs {given!r} (given)"


def _flag_conflicts(args: argparse.Namespace, model: ModelConfig, train: TrainConfig, given: dict,
                    n_names: int) -> list[str]:
    """Each given flag whose value differs from the checkpoint's, as 'flag: saved vs given'."""
    conflicts = []
    model_given = _overrides(args, ModelConfig, skip=("vocab_size",))
    for key, value in model_given.items():
        if getattr(model, key) != value:
            conflicts.append(_conflict(_flag(key), getattr(model, key), value))
    if args.preset is not None:  # the preset's own sizes; vocab and block size come from the corpus
        base = RECIPE.model(n_names, args.preset)
        keys = [f.name for f in dataclasses.fields(ModelConfig)
                if f.name not in ("vocab_size", "block_size", *model_given)]
        # a field the checkpoint was saved without holds what the code did then, which no preset names
        keys = [k for k in keys if k not in SAVED_BEFORE_FIELD or getattr(model, k) != SAVED_BEFORE_FIELD[k]]
        differ = [f"{key} {getattr(model, key)!r} vs {getattr(base, key)!r}"
                  for key in keys if getattr(base, key) != getattr(model, key)]
        if differ:
            conflicts.append(f"--preset {args.preset}: {', '.join(differ)} (checkpoint vs given)")
    for key, value in given.items():
        if key not in RESUME_MAY_CHANGE and getattr(train, key) != value:
            conflicts.append(_conflict(_flag(key), getattr(train, key), value))
    return conflicts


def _held_out_conflicts(ref: CorpusRef, args: argparse.Namespace) -> list[str]:
    """--val-file / --test-file that are not the files the checkpoint's run had (compared by file name)."""
    conflicts = []
    for part in ("val", "test"):
        saved, given = getattr(ref, f"{part}_file"), getattr(args, f"{part}_file")
        if saved != (Path(given).name if given is not None else None):
            conflicts.append(_conflict(f"--{part}-file", saved, given))
    return conflicts


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _corpus_conflicts(ref: CorpusRef, chars: list[str], corpus: Corpus, data: CorpusData) -> list[str]:
    """How the corpus given differs from the one the checkpoint was trained on: its name, its
    alphabet (the tokenizer: same size is not enough, the ids would mean other letters), its
    domains and its split (the stored validation names of a file, the split sizes)."""
    conflicts = []
    if ref.name != corpus.name:
        conflicts.append(_conflict("--corpus", ref.name, corpus.name))

    if data.tokenizer.chars != chars:
        lost, new = sorted(set(chars) - set(data.tokenizer.chars)), sorted(set(data.tokenizer.chars) - set(chars))
        conflicts.append(
            f"alphabet: the checkpoint's has {len(chars)} characters, this corpus's {len(data.tokenizer.chars)}"
            + (f"; only in the checkpoint's: {''.join(lost)[:40]}" if lost else "")
            + (f"; only in this corpus: {''.join(new)[:40]}" if new else "")
        )
    domains = list(ref.domains or ())  # none recorded: saved before domains existed, unlabelled
    if domains != data.domain_labels:
        conflicts.append(_conflict("domains", domains, data.domain_labels))
    sizes = (ref.n_train, ref.n_val)
    if sizes != (None, None) and sizes != (len(data.train.names), len(data.val.names)):
        conflicts.append(_conflict("train/val names", sizes, (len(data.train.names), len(data.val.names))))
    stored = ref.val_names
    if stored is not None and list(stored) != data.val.names[: len(stored)]:
        conflicts.append("validation names: not the checkpoint's (another file under the same name?)")
    return conflicts


def _check_jsonable(plan: TrainPlan) -> None:
    """The configs go into checkpoint.json at the end: fail now if they could not."""
    try:
        json.dumps(plan.configs(), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the configuration cannot be saved as JSON: {err}") from None


# run --------------------------------------------------------------------------------------------
def _trainer(plan: TrainPlan, args: argparse.Namespace) -> Trainer:
    """The corpus split and encoded as planned, checked where only the split can tell (a fraction
    that cuts no name; a resumed run's split and alphabet against its checkpoint's), then the model
    built (or the checkpoint's restored) on it."""
    model_cfg, ckpt = plan.model_cfg, plan.resumed
    ref = ckpt.corpus if ckpt is not None else None
    block_size = ref.block_size if ref is not None and ref.block_size is not None else model_cfg.block_size
    data = _prepare(args, plan.corpus, plan.held, block_size, plan.split_seed, plan.fractions)
    if ckpt is None:
        _check_cut(data, plan.fractions, len(plan.corpus.names))
        return Trainer(model_cfg, plan.train_cfg, data, domain_mi=live_domain_mi)
    conflicts = _corpus_conflicts(ref, ckpt.tokenizer.chars, plan.corpus, data)
    if conflicts:
        raise ValueError(f"cannot resume {plan.request.out / plan.request.name} on this corpus: {'; '.join(conflicts)}")
    return Trainer.from_checkpoint(ckpt, data, plan.train_cfg, domain_mi=live_domain_mi)


def _prepare(
    args: argparse.Namespace, corpus: Corpus, held: dict[str, tuple[Corpus, HeldOut]], block_size: int, seed: int,
    fractions: dict,
) -> CorpusData:
    """prepare_corpus with the held-out files; a name with a character the corpus lacks is refused
    naming its file and line."""
    try:
        return prepare_corpus(
            corpus.names, block_size, seed, corpus_name=corpus.name, domains=corpus.domains,
            builtin=corpus.builtin, **fractions, **{part: h for part, (_, h) in held.items()},
        )
    except HeldOutCharacterError as err:
        number = line_of(err.source, err.name, args.lowercase) if Path(err.source).is_file() else None
        where = f"{err.source} line {number}" if number is not None else err.source
        chars = ", ".join(repr(c) for c in err.chars)
        raise CorpusError(
            f"{where}: {err.name!r} has {chars}, which no name of --corpus {corpus.name} has: the model has no id "
            "for it (drop the line, or train on a corpus that has it)"
        ) from None


def _check_cut(data: CorpusData, fractions: dict[str, float], n_names: int) -> None:
    """A fraction given above 0 that cuts no name is refused: the user asked for a split and would get none."""
    for part in ("val", "test"):
        frac = fractions[f"{part}_frac"]
        if frac > 0 and getattr(data, f"{part}_source") is None and not getattr(data, part).names:
            raise ValueError(f"--{part}-frac {frac:g} of {n_names:,} names cuts 0 {part} names: give at least "
                             f"{1.5 / n_names:.2g} (one name), or 0 for no {part} split")


def _print_plan(trainer: Trainer, corpus: Corpus, held: dict[str, Corpus], resumed: bool) -> None:
    """The start report on stderr: each file's lines read, dropped (why), deduplicated and kept; the
    split used; the model. Every line read is counted once."""
    data, counts = trainer.data, trainer.model.param_counts()
    lines = [f"{corpus.name}: {corpus.intake()}"]
    lines += [f"{held_corpus.name} (--{part}-file): {held_corpus.intake(deduplicated=False)}"
              for part, held_corpus in held.items()]
    lines.append(_split_phrase(data, corpus.name))
    lines.append(
        f"{_domains_phrase(corpus.domain_counts)}alphabet {data.tokenizer.vocab_size - 1}"
        f"; model {counts['main']['total']:,} params ({counts['main']['active']:,} active) "
        f"+ MTP {counts.get('mtp', {}).get('total', 0):,}"
        + (f"; resuming at step {trainer.step} of {trainer.cfg.steps}" if resumed else "")
    )
    print("\n".join(lines), file=sys.stderr)


def _split_phrase(data: CorpusData, corpus_name: str) -> str:
    """'used: train 25,789 / val 2,865 (10% of names.txt) / test 1,000 (test.txt); 4 test names are also
    training names (kept)'."""
    def where(part: str) -> str:
        source = getattr(data, f"{part}_source")
        return source if source is not None else f"{getattr(data, f'{part}_frac'):.0%} of {corpus_name}"

    used = " / ".join(f"{part} {len(getattr(data, part).names):,} ({where(part)})" for part in ("val", "test"))
    leaks = [f"{n:,} {part}" for part, n in data.overlap.items() if n]
    return (
        f"used: train {len(data.train.names):,} / {used}"
        + (f"; {data.n_too_long:,} names too long for block_size {data.block_size} dropped" if data.n_too_long else "")
        + (f"; {' and '.join(leaks)} names are also training names (kept: a given file is scored as it is)"
           if leaks else "")
    )


def _domains_phrase(counts: dict[str, int]) -> str:
    """'domains en 5,163 / ru 4,998, ' for a labelled corpus, '' for an unlabelled one."""
    if not counts:
        return ""
    return "domains " + " / ".join(f"{label} {n:,}" for label, n in counts.items()) + ", "


def _train_and_save(trainer: Trainer, saves: _Saves, args: argparse.Namespace) -> int:
    """Run (saving every --save-every seconds), then save the weights of the last finished step unless
    no step finished or they are not finite; one line says how the run ended and where its weights are."""
    first, started = trainer.step, time.perf_counter()
    failure = _run(trainer, saves.every_so_often)
    reason = failure or trainer.state.stop_reason
    code = _exit_code(reason)
    if trainer.step == first:
        print(f"error: {reason}; no step finished, nothing saved", file=sys.stderr)
        return code
    if not trainer.weights_are_finite():
        print(f"error: {reason}; the weights are no longer finite (NaN/inf): nothing saved, try a lower --lr",
              file=sys.stderr)
        return code
    final = trainer.final_report()  # the test split, scored once, goes into the summary saved next
    path = saves.save()
    summary, seconds = trainer.summary(), time.perf_counter() - started
    rate = trainer.run_tokens_per_sec
    print(
        f"{reason}; {trainer.step} steps ({trainer.step - first} in {seconds:.1f}s"
        + (f", {rate:,.0f} tok/s over the run" if rate else "") + f"); saved {path}"
        + (f" (continue it with --resume --name {path.name})" if code == EXIT_INTERRUPTED else "")
    )
    print(_report(summary, final))
    return code


def _report(summary: dict, final: dict) -> str:
    """The final numbers, one line: last and best periodic evaluation, the whole val split, the test split."""
    parts = []
    if summary.get("val_loss") is not None:
        parts.append(f"val {summary['val_loss']:.4f} (last evaluation, {summary['eval_names']:,} names)")
    if summary.get("best_step") is not None:
        parts.append(f"best {summary['best_val_loss']:.4f} at step {summary['best_step']} (kept: --best)")
    parts.append(f"whole val {final['val_loss']:.4f} ({final['val_names']:,} names)")
    test = final["test_loss"]
    parts.append(f"test {test:.4f} ({final['test_names']:,} names, {test / math.log(2):.4f} bits/char)"
                 if test is not None else "test: none (no test names)")
    return "nats/char: " + "; ".join(parts)


def _exit_code(reason: str) -> int:
    if reason == "completed":
        return 0
    return EXIT_INTERRUPTED if reason.startswith("stopped on request") else EXIT_STOPPED_EARLY


def _run(trainer: Trainer, after_step=lambda: None) -> str | None:
    """Train with progress on stderr; why it broke off if an error did it (the trainer's own stops
    are in `trainer.state.stop_reason`). A step computes its losses and gradients before it touches
    the weights, so a run that broke off holds the weights of its last finished step."""
    live = sys.stderr.isatty()  # a redrawn bar on a terminal, one line per evaluation in a log
    first = trainer.step
    try:
        with _stop_on_interrupt(trainer):
            for m in trainer.run():
                if live or m.val_loss is not None:
                    line = _progress(m, trainer.cfg.steps, first)
                    print(line if live else line[1:], end="" if live else "\n", file=sys.stderr, flush=True)
                if m.samples:
                    print(f"\n  samples: {', '.join(m.samples)}", file=sys.stderr)
                after_step()
    except Exception as err:  # saved below like any other early end; the message goes with it
        return f"training failed at step {trainer.step + 1}: {type(err).__name__}: {one_line(err)}"
    finally:
        print(file=sys.stderr)
    return None


def _progress(m, total: int, first: int, width: int = 30) -> str:
    """One progress line: bar, losses, tokens/s (this step's swings several-fold: the moving and the
    whole-run averages are what to read) and the time left at this run's pace so far."""
    done = int(width * m.step / total)
    val = f" val {m.val_loss:.3f}" if m.val_loss is not None else ""
    left = (total - m.step) * m.elapsed / max(m.step - first, 1)
    return (
        f"\r{m.elapsed:6.0f}s step {m.step:>6}/{total} [{'#' * done}{'.' * (width - done)}] "
        f"loss {m.main_loss:.3f}{val} | {_k(m.tokens_per_sec_avg)} tok/s (run {_k(m.tokens_per_sec_run)}) "
        f"| ETA {_duration(left)}"
        + (f" | qk-clip {m.qk_clipped} heads, max logit {m.qk_max_logit:.3g}" if m.qk_max_logit is not None else "")
    )


def _k(rate: float) -> str:
    return f"{rate / 1000:.1f}K" if rate >= 1000 else f"{rate:.0f}"


def _duration(seconds: float) -> str:
    """61 -> '1m01s', 3725 -> '1h02m'."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


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


class _Saves:
    """Where and how the run saves: every `--save-every` seconds during the run (weights, optimizer and
    RNG state: what --resume needs, atomically), and once at the end, all under one name. The first save
    replaces a checkpoint only as --resume / --overwrite allow; the later ones replace the run's own
    save, never a checkpoint that is further along. A name taken meanwhile moves the run to a free one."""

    def __init__(self, trainer: Trainer, out: Path, name: str, args: argparse.Namespace):
        self.trainer, self.out, self.name = trainer, out, name
        self.overwrite, self.forward_only = args.resume or args.overwrite, args.resume
        self.include_optimizer, self.every_s = not args.no_optimizer_state, args.save_every
        self.last = time.monotonic()

    def every_so_often(self) -> None:
        if self.every_s and time.monotonic() - self.last >= self.every_s and self.trainer.weights_are_finite():
            self.save()

    def save(self) -> Path:
        try:
            path = self._save()
        except CheckpointExistsError as err:  # CheckpointAheadError too: never older weights over newer ones
            print(f"\n{err}; saving as {err.free_name!r} instead", file=sys.stderr)
            self.name, self.overwrite, self.forward_only = err.free_name, False, False
            path = self._save()
        self.overwrite = self.forward_only = True  # from now on it replaces its own save, which only moves forward
        self.last = time.monotonic()
        return path

    def _save(self) -> Path:
        return self.trainer.save(self.out, self.name, include_optimizer=self.include_optimizer,
                                 overwrite=self.overwrite, forward_only=self.forward_only)


def one_line(err: BaseException) -> str:
    """The error's message on one line, as the CLI prints every error."""
    return " ".join(str(err).split()) or type(err).__name__
