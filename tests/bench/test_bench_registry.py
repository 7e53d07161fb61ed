"""The benchmark's section registry (`dsmini/bench/sections.py`) is what every part reads: the committed
results still render to the committed BENCHMARKS.md, every registered section renders, in order, with its
charts linked, and the CLI runs, orders and offers exactly the registered sections."""

import json

import pytest

from dsmini.bench import cli
from dsmini.bench.charts import CHART_DIR, chart_file
from dsmini.bench.common import REPO_ROOT
from dsmini.bench.report import figures, headline, render_markdown, render_section
from dsmini.bench.sections import BY_NAME, REPORT_ORDER, RUN_ORDER, SECTION_NAMES

COMMITTED = json.loads(cli.raw_path(REPO_ROOT).read_text(encoding="utf-8"))


def test_the_committed_results_render_to_the_committed_benchmarks_md():
    """BENCHMARKS.md is the rendered results with readings written in between: every rendered line is
    in it, in order. A renderer whose text changed needs BENCHMARKS.md regenerated from bench.json."""
    committed = (REPO_ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines()
    at = 0
    for line in render_markdown(COMMITTED).splitlines():
        try:
            at = committed.index(line, at) + 1
        except ValueError:
            pytest.fail(f"rendered line not in BENCHMARKS.md after its line {at}: {line!r}")


def test_sections_are_numbered_once_and_named_once():
    assert sorted(s.number for s in RUN_ORDER) == list(range(1, len(RUN_ORDER) + 1))
    assert len(BY_NAME) == len(RUN_ORDER) and list(SECTION_NAMES) == [s.name for s in REPORT_ORDER]
    assert RUN_ORDER[0].name == "throughput"  # measured while nothing else of the benchmark has run


def test_every_section_renders_under_its_heading_in_number_order_with_its_charts_linked():
    assert set(COMMITTED["sections"]) == set(SECTION_NAMES)  # the committed run measured every section
    text = render_markdown(COMMITTED)
    starts = [text.index(f"\n## {s.heading}\n") for s in REPORT_ORDER]
    assert starts == sorted(starts)
    plan = COMMITTED["meta"]["plan"]
    for section in REPORT_ORDER:
        body = render_section(section.name, COMMITTED["sections"][section.name], plan)
        assert body in text and "Failed" not in body
        for name in section.charts(COMMITTED["sections"][section.name]):
            assert chart_file(name) in body
    drawn = [name for s in REPORT_ORDER for name in s.charts(COMMITTED["sections"][s.name])]
    assert list(figures(COMMITTED)) == drawn  # no two sections draw a chart of the same name


def test_a_failed_section_has_no_headline_or_charts_and_says_why():
    failed = {**COMMITTED, "sections": {**COMMITTED["sections"], "quality": {"error": "RuntimeError: boom"}}}
    assert "quality-0" in figures(COMMITTED) and not [n for n in figures(failed) if n.startswith("quality")]
    assert len(headline(failed["sections"])) < len(headline(COMMITTED["sections"]))
    assert f"## {BY_NAME['quality'].heading}\n\nFailed: `RuntimeError: boom`" in render_markdown(failed)


def test_the_cli_offers_runs_and_writes_the_registered_sections(tmp_path, monkeypatch, capsys):
    parser = cli.build_parser()
    assert parser.parse_args([]).sections == ",".join(SECTION_NAMES)
    assert f"subsetof{','.join(SECTION_NAMES)}" in "".join(parser.format_help().split())  # wrapped anywhere
    ran = []
    monkeypatch.setattr(cli, "run_section", lambda name, plan: ran.append(name) or COMMITTED["sections"][name])
    assert cli.main(["--device", "cpu", "--out", str(tmp_path)]) == 0
    assert ran == [s.name for s in RUN_ORDER]
    written = json.loads(cli.raw_path(tmp_path).read_text(encoding="utf-8"))
    assert list(written["sections"]) == list(SECTION_NAMES) and written["sections"] == COMMITTED["sections"]
    assert {p.name for p in (tmp_path / CHART_DIR).iterdir()} == {f"{n}.html" for n in figures(COMMITTED)}
    written_md, rendered = (tmp_path / "BENCHMARKS.md").read_text(encoding="utf-8"), render_markdown(COMMITTED)
    first = f"\n## {REPORT_ORDER[0].heading}\n"  # from there on, nothing of this run's machine or date
    assert written_md[written_md.index(first):] == rendered[rendered.index(first):]
    with pytest.raises(SystemExit):
        cli.main(["--device", "cpu", "--out", str(tmp_path), "--sections", "memory,nope"])
    assert f"unknown sections ['nope']; choose from {','.join(SECTION_NAMES)}" in capsys.readouterr().err
