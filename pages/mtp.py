"""MTP drafts: how often the MTP modules' guesses are accepted, per draft depth (chained drafts),
by position and by letter, one generation draft by draft, and the wall-clock speed-up each chain
depth buys beside its ceiling; every depth's teacher-forced accuracy beside the main model's."""

import streamlit as st

from dsmini.charts.mtp import acceptance_by_letter_figure, acceptance_by_position_figure, draft_timeline_figure
from dsmini.charts.mtp_chain import chain_figure, speed_figure
from dsmini.charts.mtp_depths import depth_accuracy_table
from dsmini.probes.mtp import SPEED_REPEATS, MTPSettings, check_mtp, draft_timeline, mtp_speed, mtp_view
from pages import _ui as ui

ui.enter_page()
DEFAULTS = MTPSettings()


def timeline_figure(result, tokenizer, lang: str):
    """One run's draft timeline, from parts of the shared view and checkpoint, so `ui.figure` shares it
    (a timeline made per page run would be a new object, never found again)."""
    return draft_timeline_figure(draft_timeline(result, tokenizer), lang)


def _examples(prefixes: list[str], shown: int = 12) -> str:
    return ", ".join(prefixes[:shown]) + (" …" if len(prefixes) > shown else "")


st.title(ui.tr("mtp.title"))
st.markdown(ui.tr("mtp.intro"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    try:
        check_mtp(ckpt.model)
    except ValueError:
        st.info(ui.tr("mtp.no_mtp"))
        st.stop()
    key = (str(ckpt.path), ckpt.mtime)
    c1, c2, c3 = st.columns(3)
    n = c1.slider(ui.tr("mtp.n_prefixes"), 4, 80, DEFAULTS.n_prefixes, 4, key="mtp_n",
                  help=ui.tr("mtp.n_prefixes_help"))
    temperature = c2.slider(ui.tr("mtp.temperature"), 0.05, 2.0, DEFAULTS.temperature, 0.05, key="mtp_temperature",
                            help=ui.tr("mtp.temperature_help"))
    seed = int(c3.number_input(ui.tr("mtp.seed"), 0, 2**31 - 1, DEFAULTS.seed, key="mtp_seed"))

    with st.spinner(ui.tr("mtp.spinner", n=n)):
        view = ui.computed(mtp_view, ckpt, MTPSettings(n, temperature, seed))
    prefixes, greedy, sampled, matches = view.prefixes, view.greedy, view.sampled, view.matches
    st.caption(ui.tr(f"mtp.source_{view.source}", corpus=ckpt.corpus.name or "?", examples=_examples(prefixes)))

    m = st.columns(5)
    for col, label, stats in ((m[0], ui.tr("mtp.m_greedy"), greedy),
                              (m[1], ui.tr("mtp.m_sampled", temperature=temperature), sampled)):
        col.metric(label, ui.num(stats.overall.rate, 1, style="%"), help=ui.tr(
            "mtp.m_acceptance_help", accepted=stats.overall.accepted, proposed=stats.overall.proposed))
    for col, label, stats in ((m[2], ui.tr("mtp.m_cpf"), greedy),
                              (m[3], ui.tr("mtp.m_cpf_sampled", temperature=temperature), sampled)):
        col.metric(label, ui.num(stats.chars_per_forward, 2), help=ui.tr(
            "mtp.m_cpf_help", tokens=stats.generated_tokens, passes=stats.forward_passes))
    mark = "✓" if matches == len(prefixes) else "✗"
    m[4].metric(ui.tr("mtp.m_identical"), f"{mark} ({matches}/{len(prefixes)})", help=ui.tr("mtp.m_identical_help"))

    st.subheader(ui.tr("mtp.chain.title"))
    st.caption(ui.tr("mtp.chain.caption"))
    st.plotly_chart(ui.figure(chain_figure, view.chains, sampled, temperature, ui.lang()), width="stretch",
                    key="mtp_chain")

    st.subheader(ui.tr("mtp.depth_title"))
    if view.depths:
        st.caption(ui.tr("mtp.depth_caption", n=view.accuracy_names))
        st.dataframe(ui.figure(depth_accuracy_table, view.depths, ui.lang()), hide_index=True)
    else:
        st.info(ui.tr("mtp.depth_unknown"))

    st.subheader(ui.tr("mtp.by_position"))
    st.plotly_chart(ui.figure(acceptance_by_position_figure, greedy, sampled, temperature, ui.lang()), width="stretch",
                    key="mtp_by_position")
    st.subheader(ui.tr("mtp.by_letter"))
    st.caption(ui.tr("mtp.by_letter_caption"))
    st.plotly_chart(ui.figure(acceptance_by_letter_figure, greedy, sampled, temperature, ui.lang()), width="stretch",
                    key="mtp_by_letter")

    st.subheader(ui.tr("mtp.timeline"))
    c1, c2 = st.columns([1, 2])
    picked = c1.selectbox(ui.tr("mtp.timeline_prefix"), list(range(len(prefixes))), format_func=prefixes.__getitem__,
                          key="mtp_pick")
    runs = {"greedy": ui.tr("mtp.run_greedy"), "sampled": ui.tr("mtp.run_sampled", temperature=temperature)}
    run = c2.segmented_control(ui.tr("mtp.timeline_run"), list(runs), format_func=runs.get, default="greedy",
                               key="mtp_run") or "greedy"
    result = (view.greedy_runs if run == "greedy" else view.sampled_runs)[picked]
    st.plotly_chart(ui.figure(timeline_figure, result, ckpt.tokenizer, ui.lang()), width="stretch", key="mtp_timeline")

    st.subheader(ui.tr("mtp.speed"))
    st.caption(ui.tr("mtp.speed_caption", n=len(prefixes), repeats=SPEED_REPEATS))
    if st.button(ui.tr("mtp.speed_button"), key="mtp_measure"):
        st.session_state["mtp_speed_for"] = (*key, prefixes)
    if st.session_state.get("mtp_speed_for") == (*key, prefixes):
        with st.spinner(ui.tr("mtp.speed_spinner", repeats=SPEED_REPEATS)):
            speed = ui.computed(mtp_speed, ckpt, n)
        report = speed.report
        s1, s2, s3 = st.columns(3)
        s1.metric(ui.tr("mtp.m_spec_speed"), ui.num(report.speculative_per_second))
        s2.metric(ui.tr("mtp.m_plain_speed"), ui.num(report.plain_per_second))
        s3.metric(ui.tr("mtp.m_speedup"), ui.num(report.speedup, 2) + "×",
                  help=ui.tr("mtp.m_speedup_help", tokens=report.tokens))
        st.plotly_chart(ui.figure(speed_figure, speed, ui.lang()), width="stretch", key="mtp_speed_chart")
        st.caption(ui.tr("mtp.chain.speed_caption"))
        costs = speed.costs
        st.caption(ui.tr(
            "mtp.chain.costs", prefill=ui.num(costs["prefill_ms"], 2),
            main=" / ".join(ui.num(v, 2) for k, v in costs.items() if k.startswith("main_pass")),
            mtp=" / ".join(ui.num(v, 2) for k, v in costs.items() if k.startswith("mtp_step"))))
