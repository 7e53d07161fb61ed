"""`python -m dsmini.bench`: side-by-side measurements -> BENCHMARKS.md + bench.json.

One module per section, each a few small functions (one per measurement) that return plain
dicts; `sections.py` registers every section once (its runner, markdown, headline bullets and
charts, with what each measures), and everything else reads that registry: `report` turns the
dicts into the document and the figures, `cli` runs the sections and writes the files.

Method, everywhere: medians of repeated runs; variants measured side by side in the same
process, with the same threads and data, interleaved in rounds (A B C D A B C D ...) so drift
in the machine's speed hits all of them alike.
"""

from .cli import main
from .report import render_markdown

__all__ = ["main", "render_markdown"]
