"""Markdown building blocks shared by the benchmark report's renderers: numbers, verdicts, tables, chart links.

Kept apart from the sections so every section writes a missing number, a missed target and a table
the same way (`report.py` assembles the document, `report_sections.py` and
`report_specialisation.py` write the sections).
"""

from __future__ import annotations

from .archs import ARCH_BY_KEY
from .charts import chart_file


def fmt_num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def fmt_int(x: float | None) -> str:
    return "–" if x is None else f"{round(x):,}"


def met_or_missed(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def chart_link(name: str, what: str) -> str:
    return f"Chart: [{what}]({chart_file(name)}) (interactive Plotly HTML)."


def arch_label(key: str) -> str:
    return ARCH_BY_KEY[key].label
