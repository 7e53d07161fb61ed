"""Compare: two checkpoints side by side: sizes, loss and KV cache, configs, and names from the same
prefix, seed and temperature."""

import pandas as pd
import streamlit as st

from dsmini.charts.compare import compare_figure
from dsmini.data import MAX_NAME_LEN, corpus_from_bytes, list_corpora
from dsmini.probes.compare import (
    COMPARE_DEFAULTS,
    DEFAULT_PAIR,
    compare_scores,
    compare_view,
    held_out_names,
    rows_frame,
)
from dsmini.probes.generation import GenerateSettings
from pages import _ui as ui

ui.enter_page()
HIGHLIGHT = "background-color: rgba(255, 165, 0, 0.25)"


def _styled(frame: pd.DataFrame):
    """Rows whose last column (the "≠" mark) is set get a background. One call for the whole frame: a
    call per row cost 9 ms a table in every page run, 4 ms this way (Streamlit styles it per session)."""
    def styles(whole: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame([[HIGHLIGHT if marked else ""] * whole.shape[1] for marked in whole.iloc[:, -1]],
                            index=whole.index, columns=whole.columns)

    return frame.style.apply(styles, axis=None)


def _height(rows: int) -> int:
    """Pixels that show every row without an inner scrollbar (header + rows of 35 px)."""
    return 35 * (rows + 1) + 3


def _names_column(col, ckpt, names: list[str] | None, prefix: str) -> None:
    """One model's names for the shared settings, or why this model cannot start with `prefix`."""
    if names is None:
        col.warning(ui.text_problem(ckpt.tokenizer, prefix, ckpt.model_config.block_size - 1, "cmp"))
    else:
        col.markdown("\n".join(f"1. **{name}**" if name else "1. —" for name in names))


@st.cache_resource(max_entries=8, show_spinner=False)
def _held_out(corpus: str) -> tuple[list[str], list[str] | None]:
    """A built-in corpus's held-out names, cut once per process (ru-names: ~0.09 s a cut, every rerun)."""
    return held_out_names(ui.corpus(corpus, None))


def _names_to_score(default_corpus: str | None):
    """(names, domains, caption) from the chosen built-in corpus's test split or an uploaded file."""
    corpora = list(list_corpora())
    c1, c2 = st.columns(2)
    chosen = c1.selectbox(ui.tr("cmp.score_corpus"), corpora, key="cmp_score_corpus",
                          index=corpora.index(default_corpus) if default_corpus in corpora else 0)
    upload = c2.file_uploader(ui.tr("cmp.score_upload"), type=["txt"], key="cmp_score_upload",
                              help=ui.tr("cmp.score_upload_help"))
    if upload is not None:  # every line counts, as `python -m dsmini eval` scores a file
        corpus = corpus_from_bytes(upload.getvalue(), name=upload.name, max_len=MAX_NAME_LEN, dedupe=False, min_names=1)
        return corpus.names, corpus.domains, ui.tr("cmp.score_file", n=ui.count(len(corpus.names)), file=upload.name)
    names, domains = _held_out(chosen)
    return names, domains, ui.tr("cmp.score_held_out", n=ui.count(len(names)), corpus=chosen)


def _score_frame(rows, label_a: str, label_b: str) -> pd.DataFrame:
    def group(g: str) -> str:
        return ui.tr("cmp.score_all") if g == "all" else g

    return pd.DataFrame(
        [(group(g), ui.count(ra.names), ui.num(ra.nats_per_char, 4), ui.num(rb.nats_per_char, 4),
          ui.num(ra.bits_per_char, 4), ui.num(rb.bits_per_char, 4), ui.num(ra.perplexity, 3), ui.num(rb.perplexity, 3),
          "A" if ra.nats_per_char < rb.nats_per_char else "B" if rb.nats_per_char < ra.nats_per_char else "=")
         for g, ra, rb in rows],
        columns=[ui.tr("cmp.score_group"), ui.tr("cmp.score_names"),
                 *(ui.tr(key, label=label) for key in ("cmp.score_nats", "cmp.score_bits", "cmp.score_ppl")
                   for label in (label_a, label_b)), ui.tr("cmp.score_better")],
    )


def _score_section(a, b, label_a: str, label_b: str) -> None:
    """A's and B's loss on one list of names; computed on the button, shown while A, B and the list stay."""
    st.subheader(ui.tr("cmp.score_title"))
    st.caption(ui.tr("cmp.score_caption"))
    names, domains, caption = _names_to_score(a.corpus.name)
    rows = {s: ui.tr(f"cmp.score_by_{s}") for s in ("all", "length", "domain")}  # labels fixed at render time
    by = st.radio(ui.tr("cmp.score_by"), list(rows), key="cmp_score_by", horizontal=True, format_func=rows.__getitem__)
    asked = (a.path, a.mtime, a.weights, b.path, b.mtime, b.weights, caption, by)
    if st.button(ui.tr("cmp.score_button"), key="cmp_score_button"):
        st.session_state["cmp_scores_for"] = asked
    if st.session_state.get("cmp_scores_for") != asked:
        return
    st.caption(caption)
    scored = ui.computed(compare_scores, a, b, tuple(names), tuple(domains) if domains else None,
                         None if by == "all" else by)
    if scored.problem:
        st.error(scored.problem)
        return
    st.dataframe(_score_frame(scored.rows, label_a, label_b), hide_index=True, width="stretch", key="cmp_scores")


st.title(ui.tr("cmp.title"))
st.markdown(ui.tr("cmp.intro"))

with ui.guard():
    ui.require_checkpoint()
    names = [info.name for info in ui.checkpoints()]
    defaults = [name for name in DEFAULT_PAIR if name in names] or names[:2]
    defaults = (defaults * 2)[:2]  # one checkpoint: compared with itself
    if len(names) == 1:
        st.info(ui.tr("cmp.need_two"))
    c1, c2 = st.columns(2)
    name_a = c1.selectbox(ui.tr("cmp.model_a"), names, index=names.index(defaults[0]), key="cmp_a")
    name_b = c2.selectbox(ui.tr("cmp.model_b"), names, index=names.index(defaults[1]), key="cmp_b")
    a, b = ui.load_by_name(name_a), ui.load_by_name(name_b)
    label_a, label_b = f"A: {name_a}", f"B: {name_b}"
    columns = (ui.tr("cmp.col_field"), label_a, label_b, ui.tr("cmp.col_differs"))

    tables = st.container()  # drawn above the generation widgets, filled from the one view they feed
    st.subheader(ui.tr("cmp.generate"))
    g1, g2, g3, g4 = st.columns([2, 1, 1, 1])
    prefix = g1.text_input(ui.tr("cmp.prefix"), COMPARE_DEFAULTS.prefix, key="cmp_prefix", max_chars=64)
    n = int(g2.number_input(ui.tr("cmp.count"), 1, 30, COMPARE_DEFAULTS.n, key="cmp_n"))
    seed = int(g3.number_input(ui.tr("cmp.seed"), 0, 2**31 - 1, COMPARE_DEFAULTS.seed, key="cmp_seed"))
    temperature = g4.slider(ui.tr("cmp.temperature"), 0.0, 2.0, COMPARE_DEFAULTS.temperature, 0.05,
                            key="cmp_temperature")
    view = ui.computed(compare_view, a, b, GenerateSettings(prefix, n, seed, temperature))

    with tables:
        st.subheader(ui.tr("cmp.facts"))
        st.plotly_chart(ui.figure(compare_figure, *view.facts, label_a, label_b, ui.lang()), width="stretch",
                        key="cmp_bars")
        facts = view.fact_rows
        labels = {row.key: ui.tr(f"cmp.fact.{row.key}") for row in facts}
        st.dataframe(_styled(rows_frame(facts, labels, columns)), hide_index=True, width="stretch", key="cmp_facts",
                     height=_height(len(facts)))

        st.subheader(ui.tr("cmp.config"))
        config = view.config_rows
        st.caption(ui.tr("cmp.config_caption", n=sum(row.differs for row in config), total=len(config)))
        if st.toggle(ui.tr("cmp.only_differing"), key="cmp_only_differing"):
            config = [row for row in config if row.differs]
        st.dataframe(_styled(rows_frame(config, ui.field_labels(config), columns)), hide_index=True, width="stretch",
                     key="cmp_config", height=_height(len(config)))

    for col, label, ckpt, names in zip(st.columns(2), (label_a, label_b), (a, b), view.names):
        col.markdown(f"**{label}**")
        _names_column(col, ckpt, names, prefix)

    st.divider()
    _score_section(a, b, label_a, label_b)
