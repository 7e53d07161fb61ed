"""`python -m dsmini.bench`: side-by-side measurements -> BENCHMARKS.md + bench.json.

One module per section, each a few small functions (one per measurement) that return plain
dicts; `report.render_markdown(results)` turns those dicts into the document, `charts` into
Plotly figures, `cli` runs the sections and writes the files.

    throughput   training tokens/s of four architectures at matched active parameters;
                 MoE layer vs dense FFN; 1 thread vs all cores
    quality      val loss after equal steps and equal wall-clock; time to a target loss
    decoding     ms/char with and without the KV cache over prefix lengths; MLA naive vs
                 absorbed; batched names/s
    memory       KV-cache bytes/token per attention type, measured == formula
    mtp          self-speculative decoding on the shipped checkpoints
    app          each explorer page's main computation, timed directly

Method, everywhere: medians of repeated runs; variants measured side by side in the same
process, with the same threads and data, interleaved in rounds (A B C D A B C D ...) so drift
in the machine's speed hits all of them alike.
"""

from .cli import main
from .report import render_markdown

__all__ = ["main", "render_markdown"]
