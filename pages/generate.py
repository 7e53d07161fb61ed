"""Generate: names from a prefix, then per character the experts each layer chose and what came next."""

import streamlit as st

from dsmini.charts import next_char_figure, next_char_heatmap, routing_figure
from dsmini.probes import trace_name
from pages import _ui as ui

ui.enter_page()

st.title(ui.tr("gen.title"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    limit = ckpt.model_config.block_size - 1
    with st.form("gen_form"):
        c1, c2, c3 = st.columns([2, 1, 1])
        prefix = c1.text_input(ui.tr("gen.prefix"), key="gen_prefix", help=ui.tr("gen.prefix_help"), max_chars=limit)
        n = c2.number_input(ui.tr("gen.count"), 1, 50, 10, key="gen_n")
        seed = c3.number_input(ui.tr("gen.seed"), 0, 2**31 - 1, 0, key="gen_seed")
        c4, c5, c6, c7 = st.columns(4)
        temperature = c4.slider(ui.tr("gen.temperature"), 0.0, 2.0, 0.8, 0.05, key="gen_temperature",
                                help=ui.tr("gen.temperature_help"))
        top_k = c5.number_input(ui.tr("gen.top_k"), 0, ckpt.tokenizer.vocab_size, 0, key="gen_top_k",
                                help=ui.tr("gen.top_k_help"))
        top_p = c6.slider(ui.tr("gen.top_p"), 0.05, 1.0, 1.0, 0.05, key="gen_top_p", help=ui.tr("gen.top_p_help"))
        max_len = c7.number_input(ui.tr("gen.max_len"), 1, limit, limit, key="gen_max_len")
        submitted = st.form_submit_button(ui.tr("gen.button"), type="primary")

    if submitted:
        problem = ui.text_problem(ckpt.tokenizer, prefix, int(max_len), "gen")
        if problem:
            st.error(problem)
            st.stop()
        names = ui.seeded_names(ckpt, prefix, int(n), temperature, int(seed), int(top_k), top_p, int(max_len))
        st.session_state["gen_names"] = [name for name in names if name]
        st.session_state["gen_for"] = ckpt.name

    names = st.session_state.get("gen_names") if st.session_state.get("gen_for") == ckpt.name else None
    if names:
        st.markdown(" · ".join(f"**{name}**" for name in names))
        st.divider()
        picked = st.selectbox(ui.tr("gen.pick"), list(dict.fromkeys(names)), key="gen_pick")
        trace = trace_name(ckpt.model, ckpt.tokenizer, picked)
        st.subheader(ui.tr("gen.routing_title"))
        st.caption(ui.tr("gen.routing_caption"))
        st.plotly_chart(routing_figure(trace, ui.lang()), width="stretch", key="gen_routing")
        st.subheader(ui.tr("gen.next_title"))
        st.plotly_chart(next_char_heatmap(trace, ui.lang()), width="stretch", key="gen_next_heatmap")
        options = list(range(len(trace.labels)))
        position = st.select_slider(ui.tr("gen.position"), options=options, key=f"gen_position_{picked}",
                                    format_func=lambda i: f"{i}: {trace.labels[i]}")
        st.plotly_chart(next_char_figure(trace, position, ui.lang()), width="stretch", key="gen_next_bar")
