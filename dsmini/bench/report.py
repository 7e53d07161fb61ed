"""bench results (plain dicts) -> BENCHMARKS.md text and the charts. Pure: no measuring, no files.

This module assembles the document: the headline, the machine table and each section under its
title, in the order `sections.py` registers them. Each section's own markdown, headline bullets and
figures are the functions registered there (`report_sections.py` for 1-6, a `report_<name>.py` each
for 7-10, `charts.py`); the shared number and table formatting is in `report_format.py`.

`render_section` is also what the CLI prints after each section, so the terminal and the file
show the same tables.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from .charts import RESULTS_DIR
from .report_format import md_table
from .sections import BY_NAME, REPORT_ORDER, Section


def render_section(name: str, section: dict[str, Any], plan: dict[str, Any]) -> str:
    body = f"Failed: `{section['error']}`" if "error" in section else BY_NAME[name].render(section, plan)
    kept = f"\n_Kept from an earlier run, measured {section['measured']}._\n" if "measured" in section else ""
    return f"## {BY_NAME[name].heading}\n\n{body}\n{kept}"


def _measured(sections: dict[str, Any]) -> list[tuple[Section, dict[str, Any]]]:
    """(registered section, its results) for each section that ran without an error, in report order."""
    return [(s, sections[s.name]) for s in REPORT_ORDER if s.name in sections and "error" not in sections[s.name]]


def headline(sections: dict[str, Any]) -> list[str]:
    """The key ratios, one bullet each, for whichever sections ran."""
    return [f"- {line}" for section, measured in _measured(sections) for line in section.headline(measured)]


def figures(results: dict[str, Any]) -> dict[str, go.Figure]:
    """Every figure the results allow, by name (see `charts.chart_file`); sections that failed have none."""
    return {name: fig for section, measured in _measured(results.get("sections", {}))
            for name, fig in section.charts(measured).items()}


# ---------------------------------------------------------------------------------------------
# The document


def render_markdown(results: dict[str, Any]) -> str:
    """The whole BENCHMARKS.md from `{"meta": ..., "sections": {name: dict}}`."""
    meta, sections = results["meta"], results["sections"]
    plan = meta["plan"]
    load_end = meta.get("load_at_end")
    machine = md_table(["", ""], [
        ["CPU", f"{meta['cpu']} ({meta['cores']} logical cores)"],
        ["RAM", f"{meta['ram_gb']} GB" if meta["ram_gb"] else "–"],
        ["GPU", meta["gpu"] or "none (CPU only)"],
        ["models ran on", f"`{meta.get('device', 'cpu')}` ({meta.get('device_name') or meta['cpu']})"],
        ["software", f"Python {meta['python']}, torch {meta['torch']}, {meta['platform']}"],
        ["torch threads", str(meta["threads"])],
        ["load average (1/5/15 min)", f"{meta['load_at_start']} at start, {load_end} at end"],
        ["commit", meta["commit"] or "–"],
        ["date", meta["date"]],
        ["duration", f"{meta['seconds'] / 60:.1f} min" if meta.get("seconds") else "–"],
    ])
    parts = [
        "# dsmini benchmarks",
        f"Produced by `{meta['command']}` (raw numbers: `{RESULTS_DIR}/bench.json`). Run it again to refresh.",
    ]
    if plan["quick"]:
        parts.append("> **Quick mode**: tiny sizes that exercise every measurement in seconds; "
                     "the numbers mean nothing.")
    summary = headline(sections)
    if summary:
        parts += ["## Headline", "\n".join(summary)]
    parts += [
        "## Machine", machine,
        "Method: medians of repeated runs; variants measured side by side in one process with the same threads and "
        "data, interleaved in rounds (A B C D A B C D ...) so drift in the machine's speed hits all alike. "
        "Nothing else of this benchmark runs during the throughput section.",
    ]
    parts += [render_section(s.name, sections[s.name], plan) for s in REPORT_ORDER if s.name in sections]
    return "\n\n".join(p.rstrip() for p in parts) + "\n"
