"""Generate: names from a prefix, then per character the experts each layer chose and what came next;
and step-through decoding, one character per press."""

import streamlit as st

from dsmini.charts import next_char_figure, next_char_heatmap, routing_figure
from dsmini.charts.routing import expert_choice, step_candidates_figure, step_table
from dsmini.checkpoint import Checkpoint
from dsmini.data import BOUNDARY_SYMBOL
from dsmini.decoding import marked
from dsmini.probes.generation import GenerateSettings, generate_view, name_trace
from dsmini.probes.routing import DecodeStep, step_once
from pages import _ui as ui

ui.enter_page()
DEFAULTS = GenerateSettings()


def _walk(ckpt: Checkpoint, start: str) -> list[DecodeStep]:
    """This session's steps from `start` on this checkpoint version: a new, empty walk whenever the
    model or the start changes, so no step of another model or start is ever shown."""
    owner = (*ui.checkpoint_identity(ckpt), start)
    if st.session_state.get("gen_step_for") != owner:
        st.session_state["gen_step_for"], st.session_state["gen_steps"] = owner, []
    return st.session_state["gen_steps"]


def _text(steps: list[DecodeStep], start: str) -> str:
    return steps[-1].text if steps else start


def _finished(steps: list[DecodeStep], text: str, max_len: int) -> bool:
    """The model ended the name, or it is full at the max length set now (the form may have changed it)."""
    return bool(steps and steps[-1].ended) or len(text) >= max_len


def _step_through(ckpt: Checkpoint, temperature: float, seed: int, top_k: int, top_p: float, max_len: int) -> None:
    """Next character / Reset over a walk kept in the session; the form's settings drive the draws."""
    st.divider()
    st.subheader(ui.tr("gen.step.title"))
    st.caption(ui.tr("gen.step.caption"))
    c1, c2 = st.columns([1, 2])
    start = c1.text_input(ui.tr("gen.step.prefix"), key="gen_step_prefix", help=ui.tr("gen.step.prefix_help"),
                          max_chars=ckpt.model_config.block_size - 1)
    modes = {"greedy": ui.tr("gen.step.greedy"),
             "sample": ui.tr("gen.step.sample", temperature=ui.num(temperature, 3, style="g"), seed=seed)}
    mode = c2.segmented_control(ui.tr("gen.step.mode"), list(modes), format_func=modes.get, default="greedy",
                                required=True, key="gen_step_mode")
    problem = ui.text_problem(ckpt.tokenizer, start, max_len, "gen.step")
    if problem:
        st.error(problem)
        return
    steps = _walk(ckpt, start)
    # the buttons' clicks are read before the buttons are drawn, so "Next" is disabled by the very
    # press that finished the name
    if st.session_state.get("gen_step_reset"):
        steps.clear()
    elif st.session_state.get("gen_step_next") and not _finished(steps, _text(steps, start), max_len):
        steps.append(step_once(ckpt.model, ckpt.tokenizer, _text(steps, start), temperature, seed, mode == "greedy",
                               top_k, top_p, max_len))
    text = _text(steps, start)
    finished = _finished(steps, text, max_len)
    b1, b2, _ = st.columns([1, 1, 3])
    b1.button(ui.tr("gen.step.next"), type="primary", disabled=finished, key="gen_step_next")
    b2.button(ui.tr("gen.step.reset"), disabled=not steps, key="gen_step_reset")
    if steps and steps[-1].ended:
        st.success(ui.tr("gen.step.ended", text=text))
    elif finished:
        st.info(ui.tr("gen.step.max_len", text=marked(text, False), max_len=max_len))
    else:
        st.markdown(ui.tr("gen.step.text", text=BOUNDARY_SYMBOL + text))
    if not steps:
        return
    last, lang = steps[-1], ui.lang()
    st.markdown(ui.tr("gen.step.last", step=len(steps), fed=last.fed, char=last.char, p=ui.num(last.prob, 3)))
    for layer in last.layers:
        st.markdown(ui.tr("gen.step.layer_experts", layer=layer, experts=expert_choice(last, layer, lang)))
    st.plotly_chart(ui.shown(step_candidates_figure(last, lang)), width="stretch", key="gen_step_candidates")
    st.dataframe(step_table(steps, lang), hide_index=True, width="stretch", key="gen_step_history")


st.title(ui.tr("gen.title"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    limit = ckpt.model_config.block_size - 1
    with st.form("gen_form"):
        c1, c2, c3 = st.columns([2, 1, 1])
        prefix = c1.text_input(ui.tr("gen.prefix"), DEFAULTS.prefix, key="gen_prefix", help=ui.tr("gen.prefix_help"),
                               max_chars=limit)
        n = c2.number_input(ui.tr("gen.count"), 1, 50, DEFAULTS.n, key="gen_n")
        seed = c3.number_input(ui.tr("gen.seed"), 0, 2**31 - 1, DEFAULTS.seed, key="gen_seed")
        c4, c5, c6, c7 = st.columns(4)
        temperature = c4.slider(ui.tr("gen.temperature"), 0.0, 2.0, DEFAULTS.temperature, 0.05, key="gen_temperature",
                                help=ui.tr("gen.temperature_help"))
        top_k = c5.number_input(ui.tr("gen.top_k"), 0, ckpt.tokenizer.vocab_size, DEFAULTS.top_k, key="gen_top_k",
                                help=ui.tr("gen.top_k_help"))
        top_p = c6.slider(ui.tr("gen.top_p"), 0.05, 1.0, DEFAULTS.top_p, 0.05, key="gen_top_p",
                          help=ui.tr("gen.top_p_help"))
        max_len = c7.number_input(ui.tr("gen.max_len"), 1, limit, DEFAULTS.max_len or limit, key="gen_max_len")
        submitted = st.form_submit_button(ui.tr("gen.button"), type="primary")

    if submitted:
        problem = ui.text_problem(ckpt.tokenizer, prefix, int(max_len), "gen")
        if problem:
            st.error(problem)
            st.stop()
        # the model's own limit is the default (None): the same computation as the lesson's names
        settings = GenerateSettings(prefix, int(n), int(seed), temperature, int(top_k), top_p,
                                    None if max_len == limit else int(max_len))
        view = ui.computed(generate_view, ckpt, settings)
        kept = [(name, done) for name, done in zip(view.names, view.finished) if name]
        st.session_state["gen_names"] = [name for name, _ in kept]
        st.session_state["gen_shown"] = [marked(name, done) for name, done in kept]
        st.session_state["gen_for"] = ui.checkpoint_identity(ckpt)

    same_model = st.session_state.get("gen_for") == ui.checkpoint_identity(ckpt)
    names = st.session_state.get("gen_names") if same_model else None
    if names:
        ui.show_names(st.session_state["gen_shown"])
        st.divider()
        picked = st.selectbox(ui.tr("gen.pick"), list(dict.fromkeys(names)), key="gen_pick")
        trace = ui.computed(name_trace, ckpt, picked)
        st.subheader(ui.tr("gen.routing_title"))
        st.caption(ui.tr("gen.routing_caption"))
        st.plotly_chart(ui.figure(routing_figure, trace, ui.lang()), width="stretch", key="gen_routing")
        st.subheader(ui.tr("gen.next_title"))
        st.plotly_chart(ui.figure(next_char_heatmap, trace, ui.lang()), width="stretch", key="gen_next_heatmap")
        options = list(range(len(trace.labels)))
        position = st.select_slider(ui.tr("gen.position"), options=options, key=f"gen_position_{picked}",
                                    format_func=lambda i: f"{i}: {trace.labels[i]}")
        st.plotly_chart(ui.figure(next_char_figure, trace, position, ui.lang()), width="stretch", key="gen_next_bar")

    _step_through(ckpt, temperature, int(seed), int(top_k), top_p, int(max_len))
