"""Home: what dsmini is, the loaded model in one picture, its card, and names in one click."""

import streamlit as st

from dsmini.charts import architecture_figure
from dsmini.generate import generate
from pages import _ui as ui

ui.enter_page()

st.title(ui.tr("home.title"))
st.markdown(ui.tr("home.intro"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    cfg, counts, summary = ckpt.model_config, ckpt.param_counts, ckpt.summary or {}
    st.plotly_chart(architecture_figure(cfg, ui.lang()), width="stretch", key="architecture")

    st.subheader(ui.tr("home.card", name=ckpt.name))
    val = summary.get("val_loss")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(ui.tr("home.corpus"), ckpt.corpus.name or "?")
    c2.metric(ui.tr("home.params"), f"{counts['main']['total']:,}", help=ui.tr("home.params_help"))
    c3.metric(ui.tr("home.active"), f"{counts['main']['active']:,}", help=ui.tr("home.active_help"))
    c4.metric(ui.tr("home.val_loss"), f"{val:.3f}" if val is not None else "-", help=ui.tr("home.val_loss_help"))

    if st.button(ui.tr("home.generate10"), key="home_generate", type="primary"):
        st.session_state["home_names"] = [g.text for g in generate(ckpt.model, ckpt.tokenizer, n=10, temperature=0.8)]
    if st.session_state.get("home_names"):
        st.markdown(" · ".join(f"**{n}**" for n in st.session_state["home_names"]))
