"""The command line: run the chosen sections, print each one's tables, write the report files.

Output, in `--out` (default: the current directory; a `--quick` run: a new temporary folder):
    BENCHMARKS.md                          tables, machine, command (rewritten after every section,
                                           so an interrupted run keeps what it measured)
    dsmini/bench/results/bench.json        every raw number, per round
    dsmini/bench/results/charts/*.html     Plotly charts (plotly.js from its CDN, so each file stays small)

Nothing measured is lost by a smaller run: a `--sections` subset replaces only its own sections and
keeps the others of the results already in `--out` (each section keeps the date of the run that
measured it); a quick run never writes over a full run's results unless `--replace` says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from dsmini.checkpoint import replace_file
from dsmini.training import pick_device

from .charts import CHART_DIR, RESULTS_DIR, chart_file
from .common import Plan, full_plan, quick_plan
from .machine import load_average, machine_info
from .report import figures, render_markdown, render_section
from .sections import BY_NAME, RUN_ORDER, SECTION_NAMES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dsmini.bench",
        description="Benchmark dsmini side by side with its baselines; writes BENCHMARKS.md and its raw numbers.",
    )
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, seconds in total (tests use it); numbers mean nothing")
    p.add_argument("--corpus", nargs="+", action="extend", default=[], metavar="NAME|PATH",
                   help="extra corpora for the quality section (built-in name or .txt, one name per line)")
    p.add_argument("--out", default=None, help=f"folder for BENCHMARKS.md, and {RESULTS_DIR}/ below it for bench.json "
                   "and the charts (default: .; with --quick a new temporary folder, so a smoke run never replaces "
                   "the real numbers)")
    p.add_argument("--replace", action="store_true",
                   help="write a --quick run over a full run's results in --out, or drop the sections of earlier "
                   "runs that this one did not measure (default: keep them)")
    p.add_argument("--sections", default=",".join(SECTION_NAMES),
                   help=f"comma-separated subset of {','.join(SECTION_NAMES)}")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu",
                   help="where every section's models run (default cpu, so numbers compare with earlier runs; "
                   "auto: CUDA, else MPS, else CPU); refused when not available")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for everything but the thread sweep (default 1)")
    p.add_argument("--steps", type=int, default=None, help="quality: training steps per run (default 3000; quick 30)")
    p.add_argument("--ru-steps", type=int, default=None, help="quality: steps on ru-names (default 1000; quick 30)")
    p.add_argument("--target", action="append", default=[], metavar="CORPUS=LOSS",
                   help="quality: time-to-target threshold in nats/char (default en-names=2.1; others: dense + 5%%)")
    p.add_argument("--spec-steps", type=int, default=None,
                   help="specialisation: training steps per router run (default 1000; quick 20)")
    p.add_argument("--workers", type=int, default=None,
                   help="quality, specialisation, recipe, peer: runs at once, 1 thread each (default 2; quick 1)")
    p.add_argument("--checkpoints", type=Path, default=None, help="folder of the shipped checkpoints")
    return p


def _targets(items: list[str], parser: argparse.ArgumentParser) -> dict[str, float]:
    targets = {}
    for item in items:
        corpus, _, value = item.rpartition("=")
        try:
            targets[corpus] = float(value)
        except ValueError:
            parser.error(f"--target takes CORPUS=LOSS, e.g. en-names=2.1; got {item!r}")
        if not corpus:
            parser.error(f"--target takes CORPUS=LOSS, e.g. en-names=2.1; got {item!r}")
    return targets


def plan_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Plan:
    given = {"steps": args.steps, "ru_steps": args.ru_steps, "workers": args.workers, "checkpoints": args.checkpoints,
             "shootout_steps": args.spec_steps}
    flags = {"steps": "--steps", "ru_steps": "--ru-steps", "workers": "--workers", "shootout_steps": "--spec-steps"}
    for name, flag in flags.items():
        if given[name] is not None and given[name] < 1:
            parser.error(f"{flag} must be >= 1")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    device = _device(args.device, parser)
    plan = (quick_plan if args.quick else full_plan)(**{k: v for k, v in given.items() if v is not None})
    return dataclasses.replace(
        plan,
        device=device,
        corpora=tuple(dict.fromkeys([*plan.corpora, *args.corpus])),
        targets={**plan.targets, **_targets(args.target, parser)},
    )


def _device(requested: str, parser: argparse.ArgumentParser) -> str:
    """The device `--device` names, resolved ("auto" -> what is there); unavailable is a usage error."""
    try:
        return str(pick_device(requested))
    except ValueError as err:  # the message, no traceback
        parser.error(str(err))


def _sections(text: str, parser: argparse.ArgumentParser) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in BY_NAME]
    if unknown or not chosen:
        parser.error(f"unknown sections {unknown}; choose from {','.join(SECTION_NAMES)}")
    return chosen


def run_section(name: str, plan: Plan) -> dict[str, Any]:
    """One section's results; a failure becomes {"error": ...} so the other sections still run."""
    try:
        return BY_NAME[name].run(plan)
    except Exception as err:  # the report shows which section failed and why; the traceback goes to stderr
        traceback.print_exc()
        return {"error": f"{type(err).__name__}: {err}"}


def raw_path(out: Path) -> Path:
    """Where a run into `out` writes bench.json."""
    return out / RESULTS_DIR / "bench.json"


def out_folder(args: argparse.Namespace) -> Path:
    """`--out`, or for a quick run without it a fresh temporary folder: a smoke run from the repository
    must not replace the release numbers."""
    if args.out is not None:
        return Path(args.out)
    return Path(tempfile.mkdtemp(prefix="dsmini-bench-quick-")) if args.quick else Path(".")


def earlier_results(out: Path, quick: bool, replace: bool) -> dict[str, Any]:
    """The sections already measured in `out` that this run keeps: {} for a new folder or `--replace`.
    Raises ValueError for a quick run over a full run's results (without `--replace`) and for a
    bench.json that cannot be read (nothing is overwritten that was not understood)."""
    path = raw_path(out)
    if replace or not path.exists():
        return {}
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
        sections, was_quick = earlier["sections"], earlier["meta"]["plan"]["quick"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} holds earlier results that cannot be read ({err}); pass --replace to write over "
                         "them, or choose another --out") from None
    if quick and not was_quick:
        raise ValueError(f"{out} holds a full run's results; a --quick run writes there only with --replace "
                         "(or leave out --out: a quick run then writes to a new temporary folder)")
    if was_quick != quick:  # a full run replaces a quick one's numbers, all of them
        return {}
    date = earlier["meta"].get("date")
    return {name: {**section, "measured": section.get("measured", date)} for name, section in sections.items()}


def write_outputs(results: dict[str, Any], out: Path) -> None:
    """BENCHMARKS.md, bench.json and the charts, in section order; each file replaced whole (atomically)."""
    sections = results["sections"]
    results = {**results, "sections": {n: sections[n] for n in SECTION_NAMES if n in sections}}
    (out / CHART_DIR).mkdir(parents=True, exist_ok=True)
    replace_file(raw_path(out), (json.dumps(results, indent=1, ensure_ascii=False) + "\n").encode())
    charts = {out / chart_file(name): fig for name, fig in figures(results).items()}
    for stale in set((out / CHART_DIR).glob("*.html")) - set(charts):  # from an earlier run with other sections
        stale.unlink()
    for path, fig in charts.items():
        replace_file(path, fig.to_html(include_plotlyjs="cdn").encode())
    replace_file(out / "BENCHMARKS.md", render_markdown(results).encode())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    plan = plan_from_args(args, parser)
    chosen = _sections(args.sections, parser)
    out = out_folder(args)
    try:
        kept = earlier_results(out, plan.quick, args.replace)
    except ValueError as err:
        parser.error(str(err))
    out.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # once; only the thread sweep changes it, and restores it
    start = time.perf_counter()
    meta = {**machine_info(argv, args.threads, plan.device), "plan": plan.to_dict()}
    results: dict[str, Any] = {"meta": meta, "sections": {n: s for n, s in kept.items() if n not in chosen}}
    try:
        for name in (s.name for s in RUN_ORDER if s.name in chosen):
            results["sections"][name] = run_section(name, plan)
            print(render_section(name, results["sections"][name], results["meta"]["plan"]), flush=True)
            results["meta"].update(seconds=time.perf_counter() - start, load_at_end=load_average())
            write_outputs(results, out)
    finally:
        torch.set_num_threads(previous_threads)
    failed = [n for n, s in results["sections"].items() if "error" in s]
    print(f"wrote {out / 'BENCHMARKS.md'} and {raw_path(out)} in {time.perf_counter() - start:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
