"""`python -m dsmini.bench --quick` end to end, plus the benchmark's pure pieces.

Quick mode runs every measurement on tiny sizes; these tests check the report is complete and
its numbers are sane (finite, positive, consistent), never how fast anything is.
"""

import json
import math
import threading

import pytest
import torch

from dsmini.bench import main, render_markdown
from dsmini.bench.archs import ARCHS, active_ffn_dim, arch_config
from dsmini.bench.charts import chart_file
from dsmini.bench.cli import raw_path
from dsmini.bench.common import REPO_ROOT, Progress, Rendezvous, interleaved, map_job_groups, quick_plan
from dsmini.bench.quality import job_groups, keep_loaded, point_at, same_load, time_to_target, val_at
from dsmini.bench.report import figures, render_section
from dsmini.bench.report_specialisation import _damage
from dsmini.bench.sections import REPORT_ORDER, SECTION_NAMES
from dsmini.bench.specialisation import ABLATION_KINDS, ROUTERS, TOP_N, domain_data, router_verdict, shipped_ablation
from dsmini.config import TrainConfig, preset
from dsmini.model import DSMini
from dsmini.probes.ablation import DAMAGE_FLOOR
from dsmini.training import Trainer

NAMES = ["Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Зоя", "Иван", "Кира", "Лев", "Мира",
         "Нина", "Олег", "Петр", "Рита", "Семен", "Таня", "Ульяна", "Фаина"]


def _checkpoints_with_tiny_ru_en(root):
    """The shipped checkpoints (linked) and a tiny `ru-en-names` model trained here, so the
    specialisation section's ablations run whether or not the shipped one exists yet."""
    root.mkdir()
    for name in ("en-names", "ru-names"):
        (root / name).symlink_to(REPO_ROOT / "checkpoints" / name, target_is_directory=True)
    data = domain_data()
    cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    trainer = Trainer(cfg, TrainConfig(steps=20, batch_size=16, eval_every=20, sample_every=0, device="cpu"), data)
    for _ in trainer.run():
        pass
    trainer.save(root, "ru-en-names", include_optimizer=False)
    return root


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    corpus = out / "toy.txt"
    corpus.write_text("\n".join(NAMES), encoding="utf-8")
    checkpoints = _checkpoints_with_tiny_ru_en(out / "checkpoints")
    code = main(["--quick", "--device", "cpu", "--out", str(out), "--corpus", str(corpus), "--target", "en-names=3.5",
                 "--checkpoints", str(checkpoints)])
    results = json.loads(raw_path(out).read_text(encoding="utf-8"))
    return code, out, results, str(corpus)


def _finite_positive(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)


def test_every_section_runs_without_error(bench):
    code, _, results, _ = bench
    assert code == 0
    assert list(results["sections"]) == list(SECTION_NAMES)
    assert not [name for name, s in results["sections"].items() if "error" in s]


def test_markdown_has_all_sections_machine_and_charts(bench):
    _, out, results, _ = bench
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    for section in REPORT_ORDER:
        assert f"## {section.heading}" in text
    meta = results["meta"]
    assert meta["command"].startswith("python -m dsmini.bench --quick --device cpu --out ")
    assert meta["command"] in text and meta["torch"] in text and meta["cpu"] in text
    assert meta["threads"] == 1 and meta["cores"] >= 1
    assert meta["device"] == meta["plan"]["device"] == "cpu" and meta["device_name"] == meta["cpu"]
    assert f"| models ran on | `cpu` ({meta['cpu']}) |" in text
    charts = figures(results)
    assert "quality-1" in charts  # a chart per corpus, the toy one too
    for name in charts:
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
    assert _finite_positive(moe["dense_ms"], moe["moe_ms"], moe["ratio"], moe["router_forward_ms"],
                            moe["ratio_all_rows"])
    assert 0 < moe["real_tokens"] < moe["tokens"] == moe["batch_size"] * s["block_size"]  # a real batch's padding
    assert all(_finite_positive(t["tokens_per_sec"]) for t in s["thread_sweep"]["threads"].values())
    other = s["other_batches"]["8"]  # the quick plan's second batch size
    assert _finite_positive(other["full_vs_dense"], other["moe_layer"], other["moe_layer_all_rows"], other["mtp_share"])
    assert set(other["tokens_per_sec"]) == set(s["archs"])


def test_quality_numbers_for_every_corpus(bench):
    _, _, results, toy = bench
    s = results["sections"]["quality"]
    assert list(s["corpora"]) == ["en-names", toy]
    assert s["corpora"]["en-names"]["target"] == 3.5  # --target overrides the default 2.1
    assert s["device"] == "cpu" and all(r["device"] == "cpu" for c in s["corpora"].values() for r in c["runs"].values())
    for summary in s["corpora"].values():
        assert _finite_positive(summary["budget_seconds"], summary["target"])
        for run in summary["runs"].values():
            assert run["steps_done"] == 30 and run["stop_reason"] == "completed"
            assert _finite_positive(run["final_val"], run["best_curve_val"], run["train_seconds"])
            assert [p["step"] for p in run["curve"]] == [10, 20, 30]
            assert run["final_val"] < 8  # well under ln(vocab) * 2: the loss is a real cross-entropy
    fastest = min(summary["runs"].values(), key=lambda r: r["train_seconds"])
    assert fastest["val_at_budget"] == fastest["curve"][-1]["val"]


def test_quality_dense_vs_full_at_equal_wall_clock(bench):
    """The issue's row: both at the same training seconds, and the seconds each took to reach the
    dense baseline's final val loss, with the load they ran under and the verdict in the report."""
    _, out, results, _ = bench
    s = results["sections"]["quality"]
    assert s["device"] == "cpu" and s["workers"] == 1
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    for corpus, summary in s["corpora"].items():
        dense, full, c = summary["runs"]["dense"], summary["runs"]["full"], summary["dense_vs_full"]
        assert c["seconds"] == min(dense["train_seconds"], full["train_seconds"]) > 0
        for key, run in (("dense", dense), ("full", full)):
            assert c["at_equal_time"][key] == point_at(run["curve"], c["seconds"])
            assert run["load"]["group"] == [key] and run["load"]["ballast_steps"] == 0  # one worker: alone
            assert run["load"]["train_start"] < run["load"]["train_end"] <= run["load"]["loaded_until"]
        assert c["target"] == dense["curve"][-1]["val"] and c["target_names"] == dense["curve_val_names"]
        reach = c["time_to_dense_final"]
        first = next(p for p in dense["curve"] if p["val"] <= c["target"])  # dense always gets there
        assert reach["dense"] == {"seconds": first["seconds"], "step": first["step"]}
        under = [p for p in full["curve"] if p["val"] <= c["target"]]
        assert reach["full"] == ({"seconds": under[0]["seconds"], "step": under[0]["step"]} if under else None)
        assert c["full_first"] == bool(under and under[0]["seconds"] < first["seconds"])
        assert c["load"] == {"kind": "alone", "group": []}
        answer = "yes" if c["full_first"] else "no"
        full_s = f"{reach['full']['seconds']:.1f} s" if reach["full"] else "not reached"
        verdict = f"first: **{answer}** ({full_s} vs {reach['dense']['seconds']:.1f} s)"
        assert f"**Full model gets there first: {answer}** ({full_s} vs {reach['dense']['seconds']:.1f} s)." in text
        full_at = c["at_equal_time"]["full"]  # None when full had no curve point yet at that time (a quick run can)
        full_val = f"{full_at['val']:.3f}" if full_at else "–"
        assert f"- `{corpus}`, equal wall-clock: val **{full_val}** (full)" in text
        assert verdict + " (same load: alone)." in text
    assert text.count("**Dense vs full at equal wall-clock**: both ran alone, one run at a time") == len(s["corpora"])


def test_decoding_numbers(bench):
    s = bench[2]["sections"]["decoding"]
    for curve in s["archs"].values():
        assert len(curve["cached_ms"]) == len(curve["uncached_ms"]) == len(s["prefix_lengths"])
        assert _finite_positive(*curve["cached_ms"], *curve["uncached_ms"])
    assert "naive_cached_ms" in s["archs"]["mla"] and "naive_cached_ms" not in s["archs"]["dense"]
    assert s["device"] == "cpu"
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
    measured = [r for r in s["checkpoints"].values() if "skipped" not in r]  # the fixture links two of them
    assert measured
    for r in measured:
        assert r["same_outputs"] is True
        assert 0 <= r["acceptance_rate"] <= 1
        assert 1 <= r["chars_per_forward"] <= 1 + r["mtp_depth"]  # D chained drafts: at most D + 1 tokens per pass
        assert [c["depth"] for c in r["chains"]] == list(range(1, r["mtp_depth"] + 1))
        assert _finite_positive(r["speedup"], r["greedy_ms_per_name"], r["speculative_ms_per_name"])


def test_app_pages_timed_without_failed_probes(bench):
    s = bench[2]["sections"]["app"]
    assert s["checkpoints"] == ["en-names"]
    for page, by_ckpt in s["pages"].items():
        r = by_ckpt["en-names"]
        assert not [n for n in r["notes"] if "probe failed" in n or "no entry" in n], (page, r["notes"])
        assert r["calls"] and _finite_positive(r["total_ms"])


def test_specialisation_router_runs(bench):
    s = bench[2]["sections"]["specialisation"]["routers"]
    routers = [router for router, _ in ROUTERS]
    assert routers == ["sigmoid_bias", "softmax_topk", "noisy_topk"] and list(s["summary"]) == routers
    assert len(s["seeds"]) >= 3
    expected = [(router, seed) for router in routers for seed in s["seeds"]]
    assert [(r["router"], r["seed"]) for r in s["runs"]] == expected
    for r in s["runs"]:
        assert r["aux_loss_coef"] == (0.0 if r["router"] == "sigmoid_bias" else 0.01)
        assert r["steps_done"] == 20 and r["domains"] == ["en", "ru"] and r["layers"] == [1]  # tiny: layer 0 dense
        assert 0.9 < r["mi_ceiling"] <= 1.0  # H(domain) of two near-balanced domains
        assert all(0 <= mi <= r["mi_ceiling"] + 1e-9 for mi in r["mi"] + r["mi_initial"])
        assert all(1 <= x <= 4 for x in r["imbalance"])  # max/mean load of 4 experts
        assert _finite_positive(r["val_loss"], r["train_seconds"]) and r["val_loss"] < 8
    for router, summary in s["summary"].items():
        mine = [r for r in s["runs"] if r["router"] == router]
        assert summary["best_mi"]["mean"] == pytest.approx(sum(max(r["mi"]) for r in mine) / len(mine))
        for x in summary["mi"] + [summary["best_mi"], summary["val_loss"], summary["max_imbalance"]]:
            assert x["min"] <= x["mean"] + 1e-12 and x["mean"] <= x["max"] + 1e-12
    verdict = s["verdict"]
    assert sorted(verdict["ranked"]) == sorted(routers) and verdict["top"] == verdict["ranked"][0]
    assert list(verdict["separated"]) == verdict["ranked"][1:]
    best = [s["summary"][r]["best_mi"]["mean"] for r in verdict["ranked"]]
    assert best == sorted(best, reverse=True)


def test_specialisation_ablation_rows(bench):
    s = bench[2]["sections"]["specialisation"]["ablation"]
    assert s["checkpoint"] == "ru-en-names" and s["domains"] == ["en", "ru"] and s["layers"] == [1]
    assert [(r["kind"], r["domain"]) for r in s["rows"]] == [(k, d) for k in ABLATION_KINDS for d in ("en", "ru")]
    for r in s["rows"]:
        assert r["layers"] == [1] and len(r["experts"][0]) == TOP_N and all(0 <= e < 4 for e in r["experts"][0])
        assert all(math.isfinite(v) for v in (r["delta_domain"], r["delta_other"], r["mean_on"], r["mean_off"]))
        assert r["ratio"] == pytest.approx(r["delta_domain"] / max(r["delta_other"], DAMAGE_FLOOR))
    assert all(0 <= mi <= 1 for mi in s["mi"] + s["mi_initial"])


def test_specialisation_page_run(bench):
    s = bench[2]["sections"]["specialisation"]["page_run"]
    steps = [p["step"] for p in s["curve"]]
    assert steps and steps == list(range(10, 10 * len(steps) + 1, 10)) and steps[-1] <= 30
    seconds = [p["seconds"] for p in s["curve"]]
    assert _finite_positive(s["build_seconds"], *seconds) and seconds == sorted(seconds)
    assert all(0 <= mi <= 1 for p in s["curve"] for mi in p["mi"]) and all(0 <= mi <= 1 for mi in s["mi_initial"])
    reached = s["reached"]
    if reached is None:
        assert steps[-1] == 30
    else:
        assert reached == s["curve"][-1] and max(m / m0 for m, m0 in zip(reached["mi"], s["mi_initial"])) >= 5


def test_specialisation_report_and_headline(bench):
    _, out, results, _ = bench
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    top = results["sections"]["specialisation"]["routers"]["verdict"]["top"]
    assert f"**Most specialised: `{top}`**" in text and f"- Experts by language (`ru-en-names`): **`{top}`**" in text
    for heading in ("### Router shoot-out", "### Ablation on the shipped checkpoint", "### Time to specialise"):
        assert heading in text
    assert "Start to specialised: **" in text and "(target <= 90 s: " in text


def test_specialisation_skips_ablation_without_the_checkpoint(bench, tmp_path):
    _, _, results, _ = bench
    skipped = shipped_ablation(quick_plan(checkpoints=tmp_path))
    assert skipped == {"skipped": f"no checkpoint at {tmp_path / 'ru-en-names'}: the ablations need the shipped "
                                  "`ru-en-names` model"}
    section = {**results["sections"]["specialisation"], "ablation": skipped}
    text = render_section("specialisation", section, results["meta"]["plan"])
    assert "Skipped: no checkpoint at" in text and "dropping a language" not in render_markdown(
        {**results, "sections": {"specialisation": section}})


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
    assert time_to_target(curve, 2.2) == {"seconds": 30.0, "step": 300}  # strictly under
    assert time_to_target(curve, 2.2, inclusive=True) == {"seconds": 20.0, "step": 200}  # at or under
    assert point_at(curve, 29.0) == curve[1] and point_at(curve, 9.9) is None


def _run(arch, group, start, end, loaded, together=True):
    return {"arch": arch, "load": {"group": group, "started_together": together, "train_start": start,
                                   "train_end": end, "loaded_until": loaded, "ballast_steps": 0}}


def test_same_load_from_the_runs_clock_times():
    pair = ["dense", "full"]
    assert same_load(_run("dense", ["dense"], 0, 10, 10), _run("full", ["full"], 11, 30, 30))["kind"] == "alone"
    dense, full = _run("dense", pair, 100.0, 110.0, 130.5), _run("full", pair, 100.2, 130.0, 130.1)
    assert same_load(dense, full) == {"kind": "concurrent", "group": pair, "start_gap_s": pytest.approx(0.2)}
    stopped_early = _run("dense", pair, 100.0, 110.0, 115.0)  # full trained on alone after 115 s
    assert same_load(stopped_early, full)["kind"] == "unequal"
    assert same_load(_run("dense", pair, 100.0, 110.0, 130.5, together=False), full)["kind"] == "unequal"
    assert same_load(_run("dense", pair, 90.0, 110.0, 130.5), full)["kind"] == "unequal"  # started 10 s apart


@pytest.mark.parametrize("workers, expected", [
    (1, [["dense"], ["full"], ["mla"], ["moe"]]),
    (2, [["dense", "full"], ["mla", "moe"]]),
    (3, [["dense", "full", "mla"], ["moe"]]),
])
def test_quality_groups_put_dense_and_full_together(tmp_path, workers, expected):
    plan = quick_plan(workers=workers, corpora=("en-names", "ru-names"), device="cpu")
    groups = job_groups(plan, tmp_path)
    assert [[job.arch for job in group] for group in groups] == expected * 2
    assert [group[0].corpus for group in groups] == ["en-names"] * len(expected) + ["ru-names"] * len(expected)
    for group in groups:
        members = tuple(job.arch for job in group)
        for job in group:
            assert job.device == "cpu"
            assert job.meet == (None if len(group) == 1 else Rendezvous(job.meet.folder, members, job.arch))
        assert len({job.meet.folder for job in group if job.meet}) <= 1  # one folder per group


def test_rendezvous_starts_a_group_together_and_times_out_alone(tmp_path):
    members = ("a", "b")
    started = {}

    def member(me):
        started[me] = Rendezvous(str(tmp_path), members, me).wait("ready")

    threads = [threading.Thread(target=member, args=(me,)) for me in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert started == {"a": True, "b": True}
    alone = Rendezvous(str(tmp_path), ("a", "c"), "a", timeout_s=0.05)
    assert alone.wait("done") is False and not alone.everyone("done")  # c never came; no hang


def test_keep_loaded_trains_until_the_group_is_done(tmp_path):
    data = domain_data()
    cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    train_cfg = TrainConfig(steps=5, batch_size=8, eval_every=5, sample_every=0, device="cpu")
    assert keep_loaded(None, cfg, train_cfg, data) == 0
    meet = Rendezvous(str(tmp_path), ("dense", "full"), "dense")
    partner = threading.Timer(0.3, Rendezvous(str(tmp_path), ("dense", "full"), "full").arrive, args=("done",))
    partner.start()
    assert keep_loaded(meet, cfg, train_cfg, data) >= 1  # steps until the partner's "done", then it returns
    partner.join()
    assert keep_loaded(meet, cfg, train_cfg, data) == 0  # everyone already done: no ballast at all


def test_map_job_groups_refuses_a_group_larger_than_the_workers():
    with pytest.raises(ValueError, match="a group of 3 jobs cannot run at once on 2 workers"):
        map_job_groups(str, [[1, 2, 3]], 2, Progress("test", 3))
    assert map_job_groups(lambda job: {"job": job}, [[1, 2], [3]], 1, Progress("test", 3)) == [
        {"job": 1}, {"job": 2}, {"job": 3}]


def test_interleaved_takes_turns():
    order = []
    values = interleaved({"a": lambda: order.append("a") or 1.0, "b": lambda: order.append("b") or 2.0}, rounds=3)
    assert order == ["a", "b"] * 3 and values == {"a": [1.0] * 3, "b": [2.0] * 3}


def test_router_verdict_separates_by_seed_ranges():
    def summary(mean, low, high):
        return {"best_mi": {"mean": mean, "min": low, "max": high}}

    verdict = router_verdict({"a": summary(0.3, 0.25, 0.35), "b": summary(0.4, 0.33, 0.5),
                              "c": summary(0.1, 0.05, 0.2)})
    assert verdict == {"ranked": ["b", "a", "c"], "top": "b", "separated": {"a": False, "c": True}, "clear": False}


def test_damage_ratio_text_marks_a_floored_denominator():
    row = {"domain": "ru", "ratio": 4.0, "delta_domain": 0.04, "delta_other": 0.01}
    assert _damage(row) == "4.0x"
    assert _damage({**row, "delta_other": -0.002, "ratio": 0.04 / DAMAGE_FLOOR}) == "> 40.0x"
    assert _damage({**row, "delta_domain": 0.0005, "delta_other": 0.0}) == "neither hurt"


@pytest.mark.parametrize("args", [["--sections", "nope"], ["--target", "en-names"], ["--threads", "0"],
                                  ["--spec-steps", "0"]])
def test_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_recipe_by_the_clock_rows_budgets_and_report(bench):
    from dsmini.bench.recipe import EQUAL_STEPS, EQUAL_TIME, RECIPES, REFERENCE, RecipeJob

    _, out, results, _ = bench
    s = results["sections"]["recipe"]
    c = s["corpora"]["en-names"]
    rows = c["rows"]
    assert list(rows) == ["adamw", "muon_dense"]  # the quick plan's two recipes, in RECIPES order
    ref = rows[REFERENCE]
    assert ref[EQUAL_TIME] == ref[EQUAL_STEPS] and ref[EQUAL_TIME]["steps"] == s["reference_steps"] == 20
    for key, r in rows.items():
        assert _finite_positive(r["step_s"]) and 0 < r["optimizer_share"] < 1
        # equal time: the steps its timed speed buys in the reference's seconds
        assert r[EQUAL_TIME]["steps"] == max(1, round(c["budget_seconds"] / r["step_s"]))
        assert r[EQUAL_STEPS]["steps"] == 20
        for run in (r[EQUAL_TIME], r[EQUAL_STEPS]):
            vals = [p["val"] for p in run["curve"]]
            assert run["best_val"] == min(vals) and run["final_val"] == vals[-1] and _finite_positive(*vals)
            assert run["curve"][-1]["step"] == run["steps"] and run["dropout"] == 0.1
    assert c["budget_seconds"] == pytest.approx(20 * ref["step_s"])
    for budget in (EQUAL_TIME, EQUAL_STEPS):
        assert c[f"winner_{budget}"] == min(rows, key=lambda k: rows[k][budget]["best_val"])
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "## 8. The training recipe, by the clock" in text and "| `muon_dense`" in text
    assert "- Training recipe by the clock: `en-names` at equal wall-clock" in text
    # a run's schedule is fitted to its own steps
    muon = next(r for r in RECIPES if r.key == "muon")
    cfg = RecipeJob("ru-names", muon, 1234, EQUAL_TIME, 12, "small").train_config()
    assert (cfg.steps, cfg.warmup_steps, cfg.optimizer, cfg.lr) == (1234, 100, "muon", TrainConfig().lr)
    assert RecipeJob("ru-names", muon, 500, EQUAL_TIME, 12, "small").train_config().warmup_steps == 50


def test_cue_positions_point_at_the_gender_letters():
    from dsmini.bench.attention import cue_positions

    name = "Иванова Мария Петровна"
    at = cue_positions(name)
    # position p predicts character p of the name; character i sits at position i + 1
    assert name[at["query"]] == "н" and name[at["query"] - 1] == "в"  # the choice -на / -ич
    assert name[at["surname"] - 1] == "а" and name[at["first"] - 1] == "я"  # Иванов|а, Мари|я
    assert cue_positions("Ли Ян Ильич") == {"query": 9, "surname": 2, "first": 5}


def test_attention_section_compares_five_types_with_cache_and_cue(bench):
    from dsmini.bench.attention import ATTN_TYPES, attention_config, cue_positions
    from dsmini.bench.throughput import corpus_data

    _, out, results, _ = bench
    s = results["sections"]["attention"]
    runs = s["runs"]
    plan = quick_plan()
    assert list(runs) == list(ATTN_TYPES) == ["mla", "dsa", "moba", "loglinear", "mha"]
    assert s["corpus"] == "ru-full-names" and s["steps"] == plan.attention_steps
    data = corpus_data("ru-full-names")
    names = data.val.names[: plan.attention_cue_names]
    cfg = {k: attention_config(k, "tiny", data) for k in ATTN_TYPES}
    for key, r in runs.items():
        assert r["attn_type"] == key and r["ffn_type"] == "moe" and r["mtp_depth"] == 1  # only attention changes
        assert r["steps_done"] == plan.attention_steps and r["seed"] == runs["mla"]["seed"]
        assert (r["n_train"], r["n_val"], r["cue_names"]) == (4_000, 500, len(names))
        assert _finite_positive(r["final_val"], r["tokens_per_sec"], r["train_seconds"])
        assert r["cache_matches_table"] and 0 <= r["ending_accuracy"] <= 1
        assert r["vs_reference"]["final_val"] == pytest.approx(r["final_val"] - runs["mla"]["final_val"])
    assert s["budget_seconds"] == min(r["train_seconds"] for r in runs.values())
    assert all(r["val_at_budget"] is not None for r in runs.values() if r["train_seconds"] == s["budget_seconds"])
    # the real caches: MLA's latent + RoPE key per layer (MoBA and log-linear keep just that), DSA
    # adds its indexer key, MHA keys and values of every head (float32)
    c = cfg["mla"]
    mla_bytes = c.n_layers * (c.kv_lora_rank + c.qk_rope_head_dim) * 4
    assert runs["mla"]["cache_bytes_per_token"] == runs["moba"]["cache_bytes_per_token"] == mla_bytes
    assert runs["loglinear"]["cache_bytes_per_token"] == mla_bytes
    assert runs["dsa"]["cache_bytes_per_token"] == mla_bytes + c.n_layers * c.dsa_index_dim * 4
    assert runs["mha"]["cache_bytes_per_token"] == c.n_layers * 2 * c.n_heads * c.mha_head_dim * 4
    # dense types see everything: no cue numbers
    assert not {"cue_surname", "cue_either", "density"} & (set(runs["mla"]) | set(runs["mha"]))
    # the selection's size is fixed by the rule, so density follows from the names alone
    queries = [cue_positions(n)["query"] for n in names]

    def mean(values):
        return sum(values) / len(values)

    k = cfg["dsa"].dsa_top_k
    assert runs["dsa"]["density"] == pytest.approx(mean([min(k, q + 1) / (q + 1) for q in queries]), abs=1e-6)
    b, top = cfg["moba"].moba_block_size, cfg["moba"].moba_top_blocks
    moba = [(q % b + 1 + b * min(top, q // b)) / (q + 1) for q in queries]  # own block so far + top blocks
    assert runs["moba"]["density"] == pytest.approx(mean(moba), abs=1e-6)
    for key in ("dsa", "moba"):
        r = runs[key]
        assert all(0 <= r[f"cue_{part}"] <= r["cue_either"] <= 1 for part in ("surname", "first"))
        assert r["cue_either"] <= r["cue_surname"] + r["cue_first"] + 1e-9
    # log-linear allows all; token by token only within the query's aligned block of 2^(F-1)
    log = runs["loglinear"]
    assert log["cue_either"] == log["density"] == 1.0
    span = 2 ** (cfg["loglinear"].loglinear_fine_levels - 1)
    fine = [cue_positions(n)["surname"] // span == cue_positions(n)["query"] // span for n in names]
    assert log["fine_cue_surname"] == pytest.approx(mean(fine), abs=1e-6)
    assert log["fine_density"] == pytest.approx(mean([(q % span + 1) / (q + 1) for q in queries]), abs=1e-6)
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "## 9. Attention types on full names" in text and "| DSA (DeepSeek-V3.2: indexer top-k) |" in text
    assert "- Attention types on `ru-full-names` after 6 steps: best val **" in text
    assert f"| {mla_bytes} |" in text


def test_peer_section_races_a_plain_gpt_to_its_final_val(bench):
    from dsmini.bench.peer import DSMINI, PEER

    _, out, results, _ = bench
    s = results["sections"]["peer"]
    peer, ours = s["runs"][PEER], s["runs"][DSMINI]
    assert s["target"] == peer["curve"][-1]["val"]
    assert peer["time_to_target"] is not None and peer["time_to_target"]["step"] <= peer["steps"]
    for r in (peer, ours):
        assert r["best_val"] == min(p["val"] for p in r["curve"])
        assert [p["seconds"] for p in r["curve"]] == sorted(p["seconds"] for p in r["curve"])
    assert peer["recipe"] == {"optimizer": "adamw", "lr": 5e-4, "batch_size": 32, "dropout": 0.0,
                              "params": peer["recipe"]["params"]}
    if ours["time_to_target"] is None:
        assert s["time_ratio"] is None
    else:
        assert s["time_ratio"] == pytest.approx(ours["time_to_target"]["seconds"] / peer["time_to_target"]["seconds"])
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "## 10. Time to quality against a plain GPT" in text and "- Against a plain GPT on `en-surnames`" in text


def test_plain_gpt_is_makemores_shape_and_scored_as_dsmini_scores():
    import torch.nn.functional as F

    from dsmini.bench.peer import PlainGPT, peer_val
    from dsmini.data import prepare_corpus

    data = prepare_corpus(NAMES, block_size=8, seed=0, corpus_name="toy")
    model = PlainGPT(data.tokenizer.vocab_size, data.block_size)
    assert len(model.blocks) == 4 and model.blocks[0].attn.n_heads == 4 and model.wte.embedding_dim == 64
    x, y = data.train.x, data.train.y
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (*x.shape, data.tokenizer.vocab_size)
    expected = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=-1, reduction="sum") / (y != -1).sum()
    assert peer_val(model, data.train, limit=len(x), batch_size=5) == pytest.approx(expected.item(), rel=1e-5)
    # causal: a later character never changes an earlier position's logits
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % data.tokenizer.vocab_size
    assert torch.allclose(model(changed)[:, :-1], logits[:, :-1], atol=1e-6)
