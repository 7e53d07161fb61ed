"""`python -m dsmini` end to end on a tiny preset (in-process: importing torch twice is slow)."""

import pytest

from dsmini.__main__ import main

NAMES = "\n".join(["Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Зоя", "Иван", "Кира", "Лев", "Мира"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "names.txt"
    corpus.write_text(NAMES, encoding="utf-8")
    code = main([
        "train", "--corpus", str(corpus), "--preset", "tiny", "--steps", "20", "--eval-every", "10",
        "--sample-every", "0", "--batch-size", "8", "--out", str(root), "--name", "toy",
    ])
    assert code == 0
    return root


def test_train_writes_a_loadable_checkpoint(trained, capsys):
    assert (trained / "toy" / "model.safetensors").exists()
    assert main(["info", "--checkpoint", str(trained / "toy")]) == 0
    out = capsys.readouterr().out
    assert "steps       20" in out and "nats/char" in out and "mla" in out


def test_sample_respects_prefix_and_count(trained, capsys):
    assert main(["sample", "--checkpoint", str(trained / "toy"), "--prefix", "Ан", "-n", "4", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.startswith("Ан") for line in lines)


def test_resume_continues_to_new_step_budget(trained, capsys):
    args = ["train", "--corpus", str(trained / "names.txt"), "--preset", "tiny", "--steps", "25", "--eval-every", "5",
            "--sample-every", "0", "--batch-size", "8", "--out", str(trained), "--name", "toy", "--resume"]
    assert main(args) == 0
    assert "25 steps" in capsys.readouterr().out


def test_errors_are_messages_not_tracebacks(trained, capsys):
    assert main(["sample", "--checkpoint", str(trained / "toy"), "--prefix", "Zq"]) == 2
    assert "characters not in this model's alphabet: 'Z', 'q'" in capsys.readouterr().err
    assert main(["info", "--checkpoint", str(trained / "missing")]) == 2
    assert main(["train", "--corpus", "no-such-corpus", "--steps", "1"]) == 2
    assert "no-such-corpus" in capsys.readouterr().err


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--kv-lora-rank", "--router", "--mtp-depth", "--capacity-factor", "--optimizer", "--lr"):
        assert flag in text


def test_corpora_lists_builtins(capsys):
    assert main(["corpora"]) == 0
    out = capsys.readouterr().out
    assert "ru-names" in out and "en-names" in out
