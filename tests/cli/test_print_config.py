"""`train --print-config`: the resolved settings as checkpoint.json stores them, nothing prepared or written;
and each shipped checkpoint's command in checkpoints/README.md resolves to what its checkpoint.json holds."""

import json
import re
import shlex

import pytest

from dsmini.checkpoint import atomic, save_checkpoint
from dsmini.cli.main import main
from dsmini.config import SAVED_BEFORE_FIELD, ModelConfig, TrainConfig, preset
from dsmini.data import CharTokenizer
from dsmini.model import DSMini
from tests.helpers import SHIPPED

CHECKPOINTS = SHIPPED
README = CHECKPOINTS / "README.md"


def printed(capsys, *argv: str) -> dict:
    assert main(["train", *argv, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


def readme_commands() -> dict[str, list[str]]:
    """Each checkpoint's command, as the README's tables give it: `--name` says whose it is."""
    commands = {}
    for command in re.findall(r"`(python -m dsmini train [^`]+)`", README.read_text(encoding="utf-8")):
        argv = shlex.split(command)[3:]  # after `python -m dsmini`
        name = argv[argv.index("--name") + 1]
        assert name not in commands, f"two commands for {name}"
        commands[name] = argv
    return commands


def shipped() -> list[str]:
    return sorted(p.parent.name for p in CHECKPOINTS.glob("*/checkpoint.json"))


def test_every_shipped_checkpoint_has_one_complete_command():
    commands = readme_commands()
    assert sorted(commands) == shipped()
    for argv in commands.values():
        assert {"--optimizer", "--dropout", "--seed", "--split-seed", "--steps", "--preset"} <= set(argv)
    assert "the same with" not in README.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", shipped())
def test_readme_command_resolves_to_its_checkpoint(name, capsys):
    """The command with --print-config gives the checkpoint's configs. A field the file lacks was added after
    it was saved, so the file says nothing about it; a model field that holds what the code did before the
    field existed (`SAVED_BEFORE_FIELD`: torch's RMSNorm eps, a renormalised top-k) no flag can name."""
    meta = json.loads((CHECKPOINTS / name / "checkpoint.json").read_text(encoding="utf-8"))
    resolved = printed(capsys, *readme_commands()[name][1:])
    model, train = resolved["model_config"], resolved["train_config"]
    saved_model = {k: v for k, v in meta["model_config"].items()
                   if not (k in SAVED_BEFORE_FIELD and v == SAVED_BEFORE_FIELD[k])}
    assert {k: model[k] for k in saved_model} == saved_model
    assert {k: train[k] for k in meta["train_config"]} == meta["train_config"]
    ModelConfig.from_dict(model), TrainConfig.from_dict(train)  # both load as a checkpoint's would


def test_print_config_is_shaped_as_checkpoint_json_and_writes_nothing(tmp_path, capsys, monkeypatch):
    """The printed dicts are what save_checkpoint stores for the same configs; no folder, file or lock appears."""
    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(["anna", "boris", "clara", "dmitri", "elena", "fedor"]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    resolved = printed(capsys, "--corpus", str(corpus), "--preset", "tiny", "--steps", "7", "--betas", "0.8", "0.95",
                       "--out", str(out))
    assert list(tmp_path.iterdir()) == [corpus]
    model_cfg = preset("tiny", vocab_size=resolved["model_config"]["vocab_size"], block_size=7, dropout=0.1)
    assert resolved["model_config"] == model_cfg.to_dict()  # 6 names: the small-corpus dropout
    assert resolved["model_config"]["vocab_size"] == CharTokenizer.from_names(corpus.read_text().split()).vocab_size
    train_cfg = TrainConfig.from_dict(resolved["train_config"])
    assert (train_cfg.steps, train_cfg.betas, train_cfg.optimizer) == (7, (0.8, 0.95), "muon")
    tokenizer = CharTokenizer.from_names(corpus.read_text().split())
    save_checkpoint(tmp_path / "saved", "run", DSMini(model_cfg), tokenizer, train_config=train_cfg)
    stored = json.loads((tmp_path / "saved" / "run" / "checkpoint.json").read_text(encoding="utf-8"))
    assert resolved == {"model_config": stored["model_config"], "train_config": stored["train_config"]}


def test_print_config_of_a_resume_is_the_checkpoints_run_with_what_may_change(tmp_path, capsys):
    """--resume prints the saved run with the flags a resumed run may change; it takes no lock, so it
    prints even while another run trains the checkpoint."""
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(["anna", "boris", "clara", "dmitri", "elena", "fedor"]) + "\n", encoding="utf-8")
    base = ["--corpus", str(corpus), "--preset", "tiny", "--out", str(tmp_path / "ck"), "--name", "run"]
    assert main(["train", *base, "--steps", "2", "--batch-size", "4", "--optimizer", "adamw", "--eval-every", "1",
                 "--sample-every", "0"]) == 0
    capsys.readouterr()
    with atomic.claimed(tmp_path / "ck", "run"):
        resolved = printed(capsys, *base, "--resume", "--steps", "5")
    saved = json.loads((tmp_path / "ck" / "run" / "checkpoint.json").read_text(encoding="utf-8"))
    assert resolved["model_config"] == saved["model_config"]
    assert resolved["train_config"] == {**saved["train_config"], "steps": 5}


def test_print_config_refuses_what_the_run_would(tmp_path, capsys):
    corpus = tmp_path / "names.txt"
    corpus.write_text("anna\nboris\nclara\n", encoding="utf-8")
    assert main(["train", "--corpus", str(corpus), "--lr", "-1", "--print-config"]) == 2
    assert "TrainConfig.lr" in capsys.readouterr().err
    assert main(["train", "--corpus", str(corpus), "--block-size", "0", "--print-config"]) == 2
    assert "ModelConfig.block_size" in capsys.readouterr().err
