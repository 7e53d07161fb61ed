"""Home: what dsmini is, the loaded model in one picture, its card, and names in one click."""

import streamlit as st

from dsmini.charts import architecture_figure
from dsmini.checkpoint import checkpoint_zip_bytes
from dsmini.export import export_zip_bytes
from dsmini.probes.generation import home_names, home_view
from pages import _ui as ui

ui.enter_page()

st.title(ui.tr("home.title"))
st.markdown(ui.tr("home.intro"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    card = ui.computed(home_view, ckpt)
    counts = card.param_counts
    st.plotly_chart(ui.figure(architecture_figure, card.config, ui.lang()), width="stretch", key="architecture")

    st.subheader(ui.tr("home.card", name=ckpt.name))
    val = card.val_loss
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(ui.tr("home.corpus"), card.corpus)
    c2.metric(ui.tr("home.params"), ui.count(counts['main']['total']), help=ui.tr("home.params_help"))
    c3.metric(ui.tr("home.active"), ui.count(counts['main']['active']), help=ui.tr("home.active_help"))
    c4.metric(ui.tr("home.val_loss"), ui.num(val, 3), help=ui.tr("home.val_loss_help"))
    ui.downloads(ckpt.model_config, ckpt.name, lambda: checkpoint_zip_bytes(ckpt.path), lambda: export_zip_bytes(ckpt),
                 key="home")

    if st.button(ui.tr("home.generate10"), key="home_generate", type="primary"):
        st.session_state["home_names"] = home_names(ckpt)  # new names on every press: never cached
        st.session_state["home_names_for"] = ui.checkpoint_identity(ckpt)
    if st.session_state.get("home_names_for") == ui.checkpoint_identity(ckpt):  # never another model's names
        ui.show_names(st.session_state["home_names"])
