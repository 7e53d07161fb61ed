"""`python -m dsmini.bench --quick` end to end, plus the benchmark's pure pieces.

Quick mode runs every measurement on tiny sizes; these tests check the report is complete and
its numbers are sane (finite, positive, consistent), never how fast anything is.
"""

import json
import math

import pytest

from dsmini.bench import main, render_markdown
from dsmini.bench.archs import ARCHS, active_ffn_dim, arch_config
from dsmini.bench.charts import chart_file
from dsmini.bench.common import SECTIONS, interleaved
from dsmini.bench.quality import time_to_target, val_at
from dsmini.bench.report import TITLES
from dsmini.model import DSMini

NAMES = ["Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Зоя", "Иван", "Кира", "Лев", "Мира",
         "Нина", "Олег", "Петр", "Рита", "Семен", "Таня", "Ульяна", "Фаина"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    corpus = out / "toy.txt"
    corpus.write_text("\n".join(NAMES), encoding="utf-8")
    code = main(["--quick", "--out", str(out), "--corpus", str(corpus), "--target", "en-names=3.5"])
    results = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    return code, out, results, str(corpus)


def _finite_positive(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)


def test_every_section_runs_without_error(bench):
    code, _, results, _ = bench
    assert code == 0
    assert list(results["sections"]) == list(SECTIONS)
    assert not [name for name, s in results["sections"].items() if "error" in s]


def test_markdown_has_all_sections_machine_and_charts(bench):
    _, out, results, _ = bench
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    for title in TITLES.values():
        assert f"## {title}" in text
    meta = results["meta"]
    assert meta["command"].startswith("python -m dsmini.bench --quick --out ")
    assert meta["command"] in text and meta["torch"] in text and meta["cpu"] in text
    assert meta["threads"] == 1 and meta["cores"] >= 1
    for name in ("throughput", "quality-0", "quality-1", "decoding", "memory"):
        chart = out / chart_file(name)
        assert chart.exists() and "cdn.plot.ly" in chart.read_text(encoding="utf-8")[:5000]
        assert chart_file(name) in text


def test_render_markdown_is_a_pure_function_of_the_json(bench):
    _, out, results, _ = bench
    assert render_markdown(results) == (out / "BENCHMARKS.md").read_text(encoding="utf-8")


def test_throughput_numbers(bench):
    s = bench[2]["sections"]["throughput"]
    assert list(s["archs"]) == [a.key for a in ARCHS]
    for arch in s["archs"].values():
        assert _finite_positive(arch["tokens_per_sec"], arch["ratio"], *arch["tokens_per_sec_rounds"])
        assert arch["d_ff"] == arch["active_ffn_dim"]
    assert s["archs"]["dense"]["ratio"] == 1.0
    moe = s["moe_layer"]
    assert _finite_positive(moe["dense_ms"], moe["moe_ms"], moe["ratio"], moe["router_forward_ms"])
    assert all(_finite_positive(t["tokens_per_sec"]) for t in s["thread_sweep"]["threads"].values())


def test_quality_numbers_for_every_corpus(bench):
    _, _, results, toy = bench
    s = results["sections"]["quality"]
    assert list(s["corpora"]) == ["en-names", toy]
    assert s["corpora"]["en-names"]["target"] == 3.5  # --target overrides the default 2.1
    for summary in s["corpora"].values():
        assert _finite_positive(summary["budget_seconds"], summary["target"])
        for run in summary["runs"].values():
            assert run["steps_done"] == 30 and run["stop_reason"] == "completed"
            assert _finite_positive(run["final_val"], run["best_curve_val"], run["train_seconds"])
            assert [p["step"] for p in run["curve"]] == [10, 20, 30]
            assert run["final_val"] < 8  # well under ln(vocab) * 2: the loss is a real cross-entropy
    fastest = min(summary["runs"].values(), key=lambda r: r["train_seconds"])
    assert fastest["val_at_budget"] == fastest["curve"][-1]["val"]


def test_decoding_numbers(bench):
    s = bench[2]["sections"]["decoding"]
    for curve in s["archs"].values():
        assert len(curve["cached_ms"]) == len(curve["uncached_ms"]) == len(s["prefix_lengths"])
        assert _finite_positive(*curve["cached_ms"], *curve["uncached_ms"])
    assert "naive_cached_ms" in s["archs"]["mla"] and "naive_cached_ms" not in s["archs"]["dense"]
    assert _finite_positive(s["batched"]["names_per_sec"], s["batched"]["chars_per_sec"])


def test_cache_memory_measured_equals_formula(bench):
    s = bench[2]["sections"]["memory"]
    for rows in s["presets"].values():
        for row in rows.values():
            assert row["equal"] is True
            assert row["values_per_token"] == row["formula_values_per_token"]
            assert row["bytes_per_token"] == row["formula_bytes_per_token"] == 4 * row["values_per_token"]
        assert rows["mha"]["vs_mha"] == 1.0
        assert rows["mla"]["bytes_per_token"] < rows["mha"]["bytes_per_token"]
        assert rows["mqa"]["bytes_per_token"] <= rows["gqa"]["bytes_per_token"] < rows["mha"]["bytes_per_token"]


def test_mtp_numbers(bench):
    s = bench[2]["sections"]["mtp"]
    for r in s["checkpoints"].values():
        assert r["same_outputs"] is True
        assert 0 <= r["acceptance_rate"] <= 1
        assert 1 <= r["chars_per_forward"] <= 2  # depth-1 drafts: at most 2 tokens per pass
        assert _finite_positive(r["speedup"], r["greedy_ms_per_name"], r["speculative_ms_per_name"])


def test_app_pages_timed_without_failed_recipes(bench):
    s = bench[2]["sections"]["app"]
    assert s["checkpoints"] == ["en-names"]
    for page, by_ckpt in s["pages"].items():
        r = by_ckpt["en-names"]
        assert not [n for n in r["notes"] if "recipe failed" in n or "no recipe" in n], (page, r["notes"])
        assert r["calls"] and _finite_positive(r["total_ms"])


# ---------------------------------------------------------------------------------------------
# Pure pieces


def test_architectures_match_active_parameters():
    """Dense FFNs are as wide as the experts one token uses, so active parameters agree within 2%."""
    cfgs = {a.key: arch_config(a.key, "small", vocab_size=53, block_size=12) for a in ARCHS}
    assert active_ffn_dim(cfgs["full"]) == cfgs["dense"].d_ff == 192
    active = {k: DSMini(c).param_counts()["main"]["active"] for k, c in cfgs.items()}
    assert max(active.values()) / min(active.values()) < 1.02
    assert (cfgs["full"].attn_type, cfgs["full"].ffn_type, cfgs["full"].mtp_depth) == ("mla", "moe", 1)
    assert (cfgs["dense"].attn_type, cfgs["dense"].ffn_type, cfgs["dense"].mtp_depth) == ("mha", "dense", 0)


def test_val_curve_readers():
    curve = [{"step": 100, "seconds": 10.0, "val": 2.5}, {"step": 200, "seconds": 20.0, "val": 2.2},
             {"step": 300, "seconds": 30.0, "val": 2.05}]
    assert val_at(curve, 25.0) == 2.2 and val_at(curve, 30.0) == 2.05 and val_at(curve, 5.0) is None
    assert time_to_target(curve, 2.1) == {"seconds": 30.0, "step": 300}
    assert time_to_target(curve, 2.0) is None


def test_interleaved_takes_turns():
    order = []
    values = interleaved({"a": lambda: order.append("a") or 1.0, "b": lambda: order.append("b") or 2.0}, rounds=3)
    assert order == ["a", "b"] * 3 and values == {"a": [1.0] * 3, "b": [2.0] * 3}


@pytest.mark.parametrize("args", [["--sections", "nope"], ["--target", "en-names"], ["--threads", "0"]])
def test_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
