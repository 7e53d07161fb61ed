"""Attention: every layer × head map for a typed name; for MLA, each score split into content + position;
for the sparse types (DSA, MoBA, log-linear), what each query was allowed to see."""

import streamlit as st

from dsmini.charts.attention import attention_grid_figure, score_split_figure
from dsmini.charts.attention_selection import selection_figure
from dsmini.data import nfc
from dsmini.probes.attention import AttentionSettings, attention_view, sample_name
from pages import _ui as ui

ui.enter_page()

st.title(ui.tr("attention.title"))
st.caption(ui.tr("attention.intro"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    cfg, tokenizer = ckpt.model_config, ckpt.tokenizer
    max_len = cfg.block_size - 1
    name = st.text_input(
        ui.tr("attention.name"), sample_name(tokenizer, cfg.block_size), key=f"att_name_{ckpt.name}",
        help=ui.tr("attention.name_help", max_len=max_len),
    )
    name = nfc(name)  # a "й" typed as "и" + breve is one character
    problem = ui.text_problem(tokenizer, name, max_len, "attention")
    if problem:
        st.error(problem)
        st.stop()
    trace = ui.computed(attention_view, ckpt, AttentionSettings(name))

    st.subheader(ui.tr("attention.grid_title"))
    st.caption(ui.tr("attention.grid_caption"))
    st.plotly_chart(ui.figure(attention_grid_figure, trace, ui.lang()), width="stretch", key="att_grid")

    st.subheader(ui.tr("attention.split_title"))
    if not trace.has_split:
        st.info(ui.tr("attention.no_split", kind=cfg.attn_type.upper()))
        st.stop()
    c1, c2 = st.columns(2)
    layer = c1.selectbox(ui.tr("attention.layer"), range(trace.n_layers), key=f"att_layer_{ckpt.name}")
    head = c2.selectbox(ui.tr("attention.head"), range(trace.n_heads), key=f"att_head_{ckpt.name}")
    st.caption(ui.tr("attention.split_caption"))
    st.plotly_chart(ui.figure(score_split_figure, trace, layer, head, ui.lang()), width="stretch", key="att_split")

    if trace.is_sparse:
        st.subheader(ui.tr("attention.selection_title"))
        st.caption(ui.tr(
            f"attention.selection_caption.{cfg.attn_type}", k=cfg.dsa_top_k, size=cfg.moba_block_size,
            top=cfg.moba_top_blocks, fine=cfg.loglinear_fine_levels,
        ))
        st.plotly_chart(ui.figure(selection_figure, trace, layer, head, ui.lang()), width="stretch",
                        key="att_selection")
