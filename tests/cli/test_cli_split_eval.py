"""Bring your own names: `train --val-file/--test-file/--val-frac/--test-frac/--dedupe`, the start report,
best weights (`--best`), the test split scored once, `eval` (dsmini.decoding.scoring) and the throughput averages.

In-process through `dsmini.cli.main.main` on the tiny preset (a few steps each)."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import re

import pytest
import torch

from dsmini.checkpoint import CheckpointError, checkpoint_validation_set, corpus_reference, load_checkpoint
from dsmini.cli.main import main
from dsmini.config import TrainConfig, preset
from dsmini.data import (
    HeldOut,
    HeldOutCharacterError,
    LabelledNames,
    default_block_size,
    encode_names,
    load_corpus,
    prepare_corpus,
)
from dsmini.decoding import score_names, score_table
from dsmini.training.trainer import EVAL_BATCH_NAMES, Trainer, eval_limit, evaluate

TINY = ["--preset", "tiny", "--batch-size", "8", "--eval-every", "3", "--sample-every", "0"]
TRAIN = ["Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Зоя", "Иван", "Кира", "Лев", "Мира",
         "Нина", "Олег", "Павел", "Роза"]
VAL = ["Анна", "Вера", "Зоя", "Инна"]
TEST = ["Борис", "Лиза", "Лиза"]  # a repeat: a given file is scored line by line


def write(path, names):
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    return str(path)


def train(tmp_path, name, *extra, steps="6"):
    return main(["train", *TINY, "--steps", steps, "--out", str(tmp_path / "ck"), "--name", name, *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run on files: train (with 3 repeated lines), val, test; its stderr and stdout (a module fixture
    cannot take capsys, so they are redirected here)."""
    root = tmp_path_factory.mktemp("byo")
    files = {
        "train": write(root / "train.txt", TRAIN + TRAIN[:3]),
        "val": write(root / "val.txt", VAL),
        "test": write(root / "test.txt", TEST),
    }
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["train", *TINY, "--steps", "6", "--corpus", files["train"], "--val-file", files["val"],
                     "--test-file", files["test"], "--out", str(root / "ck"), "--name", "byo"])
    assert code == 0, err.getvalue()
    return {"root": root, "files": files, "stderr": err.getvalue(), "stdout": out.getvalue(),
            "ckpt": root / "ck" / "byo"}


def test_the_start_report_counts_every_line(run):
    err = run["stderr"]
    assert "train.txt: read 19 lines, dropped 0, deduplicated 3 -> 16 names" in err
    assert "val.txt (--val-file): read 4 lines, dropped 0, repeats kept -> 4 names" in err
    assert "test.txt (--test-file): read 3 lines, dropped 0, repeats kept -> 3 names" in err
    # the files are used whole: nothing cut from train; Анна, Вера, Зоя (val) and Борис (test) are training names
    assert f"used: train 16 / val 4 ({run['files']['val']}) / test 3 ({run['files']['test']})" in err
    assert "3 val and 1 test names are also training names" in err


def test_best_weights_and_the_test_split_are_kept(run, capsys):
    ckpt = load_checkpoint(run["ckpt"])
    best = load_checkpoint(run["ckpt"], best=True)
    summary = ckpt.summary
    assert ckpt.has_best and ckpt.weights == "last" and best.weights == "best"
    assert (run["ckpt"] / "best.safetensors").is_file()
    vals = [h["val_loss"] for h in ckpt.history if h.get("val_loss") is not None]
    assert summary["best_val_loss"] == min(vals) and summary["best_step"] in (3, 6)
    # the best weights are the best evaluation's: scoring them on the val names gives its loss
    val_rows = score_table(score_names(best.model, best.tokenizer, VAL))
    assert val_rows[0].nats_per_char == pytest.approx(summary["best_val_loss"], abs=1e-5)
    assert summary["test_names"] == 3 and summary["test_loss"] > 0
    assert f"test {summary['test_loss']:.4f} (3 names" in run["stdout"]
    # eval on the test file with the last weights gives the test loss training printed
    assert main(["eval", "--checkpoint", str(run["ckpt"]), "--names", run["files"]["test"]]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.split()[:1] == ["all"])
    assert float(row.split()[3]) == pytest.approx(summary["test_loss"], abs=1e-4)
    assert int(row.split()[2].replace(",", "")) == sum(len(n) + 1 for n in TEST)  # every character + the end token


def test_sample_and_info_take_best(run, capsys):
    assert main(["sample", "--checkpoint", str(run["ckpt"]), "--best", "-n", "3", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["info", "--checkpoint", str(run["ckpt"]), "--best"]) == 0
    out = capsys.readouterr().out
    assert "weights     best" in out and "test loss   " in out and "(3 names)" in out


def test_a_checkpoint_with_a_val_file_rebuilds_its_validation_names(run):
    ref = load_checkpoint(run["ckpt"]).corpus
    assert ref.val_file == "val.txt" and ref.test_file == "test.txt" and ref.val_frac == 0 and ref.test_frac == 0
    assert checkpoint_validation_set(ref).names == VAL


def test_resume_needs_the_same_val_file(run, capsys):
    args = ["train", *TINY, "--steps", "8", "--corpus", run["files"]["train"], "--out", str(run["root"] / "ck"),
            "--name", "byo", "--resume", "--test-file", run["files"]["test"]]
    assert main(args) == 2
    assert "--val-file: 'val.txt' (checkpoint) vs None (given)" in capsys.readouterr().err
    assert main(args + ["--val-file", run["files"]["val"]]) == 0
    resumed = load_checkpoint(run["ckpt"])
    assert resumed.step == 8 and resumed.has_best


def test_no_dedupe_and_fractions(tmp_path, capsys):
    corpus = write(tmp_path / "names.txt", TRAIN * 2)
    assert train(tmp_path, "nodedupe", "--corpus", corpus, "--no-dedupe", "--val-frac", "0.25", "--test-frac", "0") == 0
    err = capsys.readouterr()
    assert "names.txt: read 32 lines, dropped 0, deduplicated 0 -> 32 names" in err.err
    assert "used: train 24 / val 8 (25% of names.txt) / test 0 (0% of names.txt)" in err.err
    assert "test: none (no test names)" in err.out
    ref = load_checkpoint(tmp_path / "ck" / "nodedupe").corpus
    assert (ref.n_train, ref.n_val, ref.val_frac, ref.test_frac) == (24, 8, 0.25, 0.0)
    assert train(tmp_path, "deduped", "--corpus", corpus, "--val-frac", "0.25") == 0
    assert "deduplicated 16 -> 16 names" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--val-frac", "0.6", "--test-frac", "0.5"],
     "--val-frac 0.6 and --test-frac 0.5 must each be in [0, 1) and sum to less than 1"),
    (["--val-frac", "0"], "no validation names: give a validation file or a validation fraction above 0"),
])
def test_bad_fractions_are_refused(tmp_path, capsys, flags, message):
    corpus = write(tmp_path / "names.txt", TRAIN)
    assert train(tmp_path, "bad", "--corpus", corpus, *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("content, flag, message", [
    ("", "--val-file", "val.txt: file is empty"),
    ("\n\n", "--test-file", "val.txt: file contains only whitespace"),
    ("Анна\nВера\nJörg\n", "--val-file",
     "val.txt line 3: 'Jörg' has 'J', 'ö', 'r', 'g', which no name of --corpus names.txt has"),
    ("Анна\tru\n", "--test-file", "val.txt: this file has domain labels (name<TAB>domain) but the corpus does not"),
])
def test_bad_val_and_test_files_name_the_file_and_line(tmp_path, capsys, content, flag, message):
    corpus = write(tmp_path / "names.txt", TRAIN)
    (tmp_path / "val.txt").write_text(content, encoding="utf-8")
    assert train(tmp_path, "bad", "--corpus", corpus, flag, str(tmp_path / "val.txt")) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "ck").exists()


def test_a_corpus_of_duplicates_is_refused_naming_it(tmp_path, capsys):
    corpus = write(tmp_path / "same.txt", ["Анна"] * 5)
    assert train(tmp_path, "dup", "--corpus", corpus) == 2
    err = capsys.readouterr().err
    assert "same.txt: found 1 usable name(s) after normalisation (dropped 4 repeated); need at least 2" in err


def test_eval_refuses_unknown_characters_naming_the_line(run, tmp_path, capsys):
    names = write(tmp_path / "other.txt", ["Анна", "Вера", "Zoë"])
    assert main(["eval", "--checkpoint", str(run["ckpt"]), "--names", names]) == 2
    err = capsys.readouterr().err
    assert "other.txt line 3: 'Zoë' has 'Z', 'o', 'ë'" in err and "cannot be scored" in err
    assert main(["eval", "--checkpoint", str(run["ckpt"]), "--names", names, "--by", "domain"]) == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["eval", "--checkpoint", str(run["ckpt"]), "--names", str(empty)]) == 2
    assert "empty.txt: file is empty" in capsys.readouterr().err


def test_eval_by_domain_and_length(run, tmp_path, capsys):
    names = tmp_path / "labelled.txt"
    names.write_text("Анна\tf\nВера\tf\nБорис\tm\n", encoding="utf-8")
    assert main(["eval", "--checkpoint", str(run["ckpt"]), "--names", str(names), "--by", "domain"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == {"all", "f", "m"}
    assert (rows["f"][1], rows["f"][2], rows["m"][2]) == ("2", "10", "6")
    assert main(["eval", "--checkpoint", str(run["ckpt"]), "--names", run["files"]["val"], "--by", "length"]) == 0
    lengths = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert lengths == ["all", "3", "4"]


def test_eval_of_a_checkpoint_without_best_weights_says_so(tmp_path, capsys):
    assert main(["eval", "--checkpoint", "checkpoints/en-names", "--names", "en-names", "--best"]) == 2
    assert "has no best weights" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="has no best weights"):
        load_checkpoint("checkpoints/en-names", best=True)


# --- the library underneath ------------------------------------------------------------------


def test_scoring_counts_every_character_and_the_end_token():
    ckpt = load_checkpoint("checkpoints/en-names")
    names = ["Anna", "Bo", "Christopher"]
    scores = score_names(ckpt.model, ckpt.tokenizer, names)
    assert [s.tokens for s in scores] == [5, 3, 12]
    row = score_table(scores)[0]
    assert row.tokens == 20 and row.nats == pytest.approx(sum(s.nats for s in scores))
    assert row.bits_per_char == pytest.approx(row.nats_per_char / math.log(2))
    assert row.perplexity == pytest.approx(math.exp(row.nats_per_char))
    # the model's own training loss (mean cross-entropy over the real targets) is the same quantity
    x, y = encode_names(names, ckpt.tokenizer, ckpt.model_config.block_size)
    with torch.no_grad():
        assert float(ckpt.model(x, y).main_loss) == pytest.approx(row.nats_per_char, abs=1e-5)


def test_validation_is_batch_size_independent():
    assert (eval_limit(TrainConfig(eval_batches=2, batch_size=8))
            == eval_limit(TrainConfig(eval_batches=2, batch_size=512)))
    assert eval_limit(TrainConfig(eval_batches=2)) == 2 * EVAL_BATCH_NAMES
    assert eval_limit(TrainConfig(eval_batches=0)) is None  # the whole split


def test_throughput_averages_and_best_weights():
    corpus = load_corpus("en-names")
    names = corpus.names[:300]
    data = prepare_corpus(names, default_block_size(names), 1)
    cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    trainer = Trainer(cfg, TrainConfig(steps=8, batch_size=8, eval_every=2, sample_every=0, warmup_steps=1), data)
    steps = list(trainer.run())
    for m in steps:  # averages lie within the per-step values they average
        rates = [s.tokens_per_sec for s in steps[: m.step]]
        assert min(rates) * 0.999 <= m.tokens_per_sec_run <= max(rates) * 1.001
        assert min(rates) * 0.999 <= m.tokens_per_sec_avg <= max(rates) * 1.001
    total = sum(s.tokens for s in steps) / sum(s.tokens / s.tokens_per_sec for s in steps)
    assert steps[-1].tokens_per_sec_run == pytest.approx(total, rel=1e-6)
    vals = {m.step: m.val_loss for m in steps if m.val_loss is not None}
    best_step = min(vals, key=vals.get)
    assert trainer.state.best_step == best_step
    model = Trainer(cfg, TrainConfig(steps=1), data).model
    model.load_state_dict(trainer.best_state)
    assert evaluate(model, data.val, limit=eval_limit(trainer.cfg)) == pytest.approx(vals[best_step], abs=1e-6)
    final = trainer.final_report()
    assert final["test_names"] == len(data.test.names)
    assert final["test_loss"] == pytest.approx(evaluate(trainer.model, data.test))


def test_held_out_names_are_checked_against_the_corpus():
    with pytest.raises(HeldOutCharacterError, match="val.txt: name 'Zoë'") as err:
        prepare_corpus(TRAIN, 8, 0, val=HeldOut("val.txt", LabelledNames(["Анна", "Zoë"])))
    assert err.value.chars == ["Z", "o", "ë"]
    data = prepare_corpus(TRAIN, 6, 0, val=HeldOut("v.txt", LabelledNames(["Анна", "Анна", "Олегборис"])))
    assert data.val.names == ["Анна", "Анна"] and data.n_too_long == 1 and data.overlap == {"val": 2, "test": 0}
    assert data.val_frac == 0 and len(data.train.names) + len(data.test.names) == len(TRAIN)


def test_a_builtin_with_other_fractions_rebuilds_its_validation_names():
    corpus = load_corpus("en-names")
    data = prepare_corpus(corpus.names, default_block_size(corpus.names), 7, corpus_name="en-names",
                          builtin=True, val_frac=0.2, test_frac=0.05)
    ref = corpus_reference(data)
    assert ref.val_names is None and ref.val_frac == 0.2  # rebuilt by name, not stored
    entry = json.loads(json.dumps(ref.to_json()))
    assert checkpoint_validation_set(type(ref).from_json(entry), max_names=50).names == data.val.names[:50]


def test_progress_lines_in_a_log_are_plain(tmp_path, capfd):
    corpus = write(tmp_path / "names.txt", TRAIN)
    assert train(tmp_path, "log", "--corpus", corpus) == 0
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if " step " in line]
    assert len(lines) == 2 and not any("\r" in line for line in lines)  # one per evaluation, no redraws
    assert all(re.search(r"tok/s \(run [\d.]+K?\) \| ETA \d+m\d\ds$", line) for line in lines)


def test_train_defaults_to_the_swept_recipe_with_dropout_by_corpus_size(tmp_path):
    from dsmini.cli.main import build_parser
    from dsmini.cli.train import RECIPE, _request, resolve
    from dsmini.config import SMALL_CORPUS

    def resolved(corpus, *flags):
        args = build_parser().parse_args(["train", "--corpus", corpus, "--preset", "tiny", *flags])
        return resolve(args, _request(args))

    plan = resolved("en-names")
    assert len(plan.corpus.names) < SMALL_CORPUS
    assert (plan.train_cfg.optimizer, plan.train_cfg.muon_params, plan.train_cfg.steps) == ("muon", "dense", 3000)
    assert plan.train_cfg == RECIPE.train
    assert plan.model_cfg.dropout == RECIPE.small_corpus_dropout == 0.1
    assert resolved("en-names", "--dropout", "0.3").model_cfg.dropout == 0.3  # a flag always wins
    names = ["".join(letters) for letters in itertools.islice(itertools.product("abcdefghij", repeat=5), SMALL_CORPUS)]
    large = resolved(write(tmp_path / "large.txt", names))
    assert len(large.corpus.names) == SMALL_CORPUS and large.model_cfg.dropout == 0.0
