"""A smaller benchmark run never loses measured numbers: a quick run writes elsewhere by default and never
over a full run's results unless told to; a `--sections` run keeps the other sections."""

import json

import pytest

from dsmini.bench import main
from dsmini.bench.cli import raw_path


def _run(*argv) -> int:
    return main(["--quick", "--device", "cpu", "--sections", "memory", *map(str, argv)])


def _results(out):
    return json.loads(raw_path(out).read_text(encoding="utf-8"))


def test_a_quick_run_without_out_writes_a_temporary_folder_not_here(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _run() == 0
    assert list(tmp_path.iterdir()) == []
    assert "dsmini-bench-quick-" in capsys.readouterr().err


def test_a_quick_run_is_refused_over_a_full_runs_results_unless_replace(tmp_path, capsys):
    raw_path(tmp_path).parent.mkdir(parents=True)
    full = {"meta": {"plan": {"quick": False}, "date": "2026-01-01 00:00 UTC"}, "sections": {"memory": {"x": 1}}}
    raw_path(tmp_path).write_text(json.dumps(full), encoding="utf-8")
    with pytest.raises(SystemExit) as refused:
        _run("--out", tmp_path)
    assert refused.value.code == 2 and "holds a full run's results" in capsys.readouterr().err
    assert _results(tmp_path) == full and not (tmp_path / "BENCHMARKS.md").exists()
    assert _run("--out", tmp_path, "--replace") == 0
    assert _results(tmp_path)["meta"]["plan"]["quick"] is True


def test_a_partial_run_keeps_the_other_sections_with_their_date(tmp_path):
    assert _run("--out", tmp_path) == 0
    first = _results(tmp_path)
    assert main(["--quick", "--device", "cpu", "--sections", "decoding", "--out", str(tmp_path)]) == 0
    merged = _results(tmp_path)
    assert set(merged["sections"]) == {"memory", "decoding"}
    assert merged["sections"]["memory"]["measured"] == first["meta"]["date"]
    assert "Kept from an earlier run" in (tmp_path / "BENCHMARKS.md").read_text(encoding="utf-8")


def test_unreadable_earlier_results_are_not_overwritten(tmp_path, capsys):
    raw_path(tmp_path).parent.mkdir(parents=True)
    raw_path(tmp_path).write_text("{not json", encoding="utf-8")
    with pytest.raises(SystemExit):
        _run("--out", tmp_path)
    assert "cannot be read" in capsys.readouterr().err and raw_path(tmp_path).read_text() == "{not json"
