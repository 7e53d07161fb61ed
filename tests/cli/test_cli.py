"""`python -m dsmini` end to end on a tiny preset (in-process: importing torch twice is slow)."""

import pytest

from dsmini.cli.main import main

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


def test_sample_marks_names_cut_at_the_max_length(trained, capsys):
    assert main(["sample", "--checkpoint", str(trained / "toy"), "--prefix", "Ан", "-n", "6", "--max-len", "3",
                 "--seed", "3"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 6 and all(len(line) <= 2 or line == line[:3] + "…" for line in lines)
    assert any(line.endswith("…") for line in lines) and "cut at the maximum length" in captured.err


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


def test_train_on_a_labelled_file_keeps_its_domains(tmp_path, capsys):
    from dsmini.checkpoint import checkpoint_validation_set, load_checkpoint

    lines = [f"{name}\t{'short' if len(name) <= 3 else 'long'}" for name in NAMES.split("\n")]
    corpus = tmp_path / "labelled.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    code = main([
        "train", "--corpus", str(corpus), "--preset", "tiny", "--steps", "2", "--eval-every", "1",
        "--sample-every", "0", "--batch-size", "4", "--out", str(tmp_path), "--name", "labelled",
    ])
    assert code == 0
    assert "domains long 10 / short 2" in capsys.readouterr().err
    ckpt = load_checkpoint(tmp_path / "labelled")
    assert ckpt.corpus.domains == ("long", "short")
    val = checkpoint_validation_set(ckpt.corpus)  # stored: the file is not needed any more
    assert val.names and val.domains == ["short" if len(n) <= 3 else "long" for n in val.names]
    assert main(["info", "--checkpoint", str(tmp_path / "labelled")]) == 0
    assert "domains     long, short" in capsys.readouterr().out


def test_bad_labelled_file_is_a_message_with_the_line(tmp_path, capsys):
    corpus = tmp_path / "bad.txt"
    corpus.write_text("Анна\tru\nБорис\n", encoding="utf-8")
    assert main(["train", "--corpus", str(corpus), "--steps", "1"]) == 2
    assert "line 2: expected name<TAB>domain, got 'Борис'" in capsys.readouterr().err


def test_corpora_says_which_have_domains(capsys):
    assert main(["corpora"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "[domains: en, ru]" in lines["ru-en-names"]
    assert "[domains: first, patronymic, surname]" in lines["ru-name-parts"]
    assert "[domains: female, male]" in lines["ru-gender"]
    assert "[domains" not in lines["en-names"]


def test_resume_with_its_preset_a_run_saved_before_norm_eps_and_norm_topk_prob(tmp_path, capsys):
    """A checkpoint written before those fields existed resumes under `--preset` with no conflict:
    the values it loads with are what the code did then, not a flag the user contradicts."""
    import json

    corpus = tmp_path / "names.txt"
    corpus.write_text(NAMES, encoding="utf-8")
    common = ["train", "--corpus", str(corpus), "--preset", "tiny", "--eval-every", "5", "--sample-every", "0",
              "--batch-size", "8", "--out", str(tmp_path), "--name", "old"]
    assert main([*common, "--steps", "5"]) == 0
    meta_path = tmp_path / "old" / "checkpoint.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    for field in ("norm_eps", "norm_topk_prob"):
        del meta["model_config"][field]
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    capsys.readouterr()
    assert main([*common, "--steps", "8", "--resume"]) == 0, capsys.readouterr().err
    assert "8 steps" in capsys.readouterr().out
