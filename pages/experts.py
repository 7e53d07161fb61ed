"""Experts: which routed experts handle which letters, positions and contexts; switch one off."""

import streamlit as st

from dsmini.charts.experts import (
    ablation_figure, expert_load_figure, expert_profile_figure, letter_expert_figure, position_expert_figure,
    specialisation_figure,
)
from dsmini.checkpoint import Checkpoint
from dsmini.data import validation_names
from dsmini.generate import generate
from dsmini.i18n import t
from dsmini.probes.experts import (
    INITIAL_SEED, MAX_NAMES, MIN_LETTER_TOKENS, Ablation, ExpertReport, RoutedTokens, ablate_expert, expert_analysis,
    expert_mask,
)
from pages import _ui as ui

ui.enter_page()

SEED, TEMPERATURE, N_NAMES = 0, 0.8, 8  # the generated names with the expert on and off


@st.cache_data(max_entries=8, show_spinner=False)
def _names(corpus: str, block_size: int, split_seed: int) -> list[str]:
    """The checkpoint's validation names (the head of its seeded split), recreated from the corpus."""
    return validation_names(ui.corpus(corpus, None).names, block_size, split_seed, MAX_NAMES)


@st.cache_resource(max_entries=4, show_spinner=False)
def _analysis(path: str, mtime: float, _ckpt: Checkpoint, _names: list[str]) -> tuple[RoutedTokens, ExpertReport]:
    """The names' routing (read-only, shared by every session) and its report; once per checkpoint version."""
    return expert_analysis(_ckpt.model, _ckpt.tokenizer, _names)


@st.cache_data(max_entries=64, show_spinner=False)
def _ablation(path: str, mtime: float, layer: int, expert: int, _ckpt: Checkpoint, _names: list[str],
              _base: RoutedTokens) -> tuple[Ablation, list[str], list[str]]:
    """Loss per letter and names generated with `expert` of `layer` off vs on (same seed)."""
    ablation = ablate_expert(_ckpt.model, _ckpt.tokenizer, _names, layer, expert, _base)
    off = {layer: expert_mask(_base.n_experts, expert)}
    on_names, off_names = (
        [g.text for g in generate(_ckpt.model, _ckpt.tokenizer, n=N_NAMES, temperature=TEMPERATURE, seed=SEED,
                                  disabled_experts=disabled)]
        for disabled in (None, off)
    )
    return ablation, on_names, off_names


st.title(ui.tr("experts.title"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    cfg = ckpt.model_config
    if not any(cfg.is_moe_layer(i) for i in range(cfg.n_layers)):
        st.info(ui.tr("chart.no_moe"))
        st.stop()
    st.markdown(ui.tr("experts.intro", k=cfg.top_k, n=cfg.n_routed_experts))
    corpus = ckpt.corpus
    try:
        names = _names(corpus["name"], corpus["block_size"], corpus["split_seed"])
    except (KeyError, OSError, ValueError) as err:  # an uploaded or missing corpus: nothing to route
        st.info(ui.tr("experts.no_corpus", corpus=corpus.get("name", "?"), error=err))
        st.stop()
    with st.spinner(ui.tr("experts.computing")):
        routed, report = _analysis(str(ckpt.path), ckpt.mtime, ckpt, names)
    lang = ui.lang()
    st.caption(ui.tr("experts.sample", n=report.n_names, corpus=corpus["name"], seed=corpus["split_seed"],
                     tokens=report.n_tokens))
    # format_func closes over `lang`: AppTest calls it outside the script run, where the session is unknown
    view = st.segmented_control(ui.tr("experts.view"), ["allk", "top1"], default="allk", required=True,
                                format_func=lambda v: t(f"experts.view_{v}", lang), key="experts_view")

    st.subheader(ui.tr("experts.letters_title"))
    st.caption(ui.tr("experts.letters_caption"))
    st.plotly_chart(letter_expert_figure(report, view, lang), width="stretch", key="experts_letters")
    st.subheader(ui.tr("experts.positions_title"))
    st.caption(ui.tr("experts.positions_caption"))
    st.plotly_chart(position_expert_figure(report, view, lang), width="stretch", key="experts_positions")

    c1, c2 = st.columns(2)
    with c1:
        st.subheader(ui.tr("experts.load_title"))
        st.caption(ui.tr("experts.load_caption", dropped=sum(report.n_dropped.values())))
        st.plotly_chart(expert_load_figure(report, lang), width="stretch", key="experts_load")
    with c2:
        st.subheader(ui.tr("experts.mi_title"))
        st.caption(ui.tr("experts.mi_caption", ceiling=round(report.mi_ceiling, 3), seed=INITIAL_SEED))
        st.plotly_chart(specialisation_figure(report, lang), width="stretch", key="experts_mi")

    st.subheader(ui.tr("experts.pick_title"))
    c1, c2 = st.columns([1, 3])
    layer = c1.selectbox(ui.tr("experts.layer"), report.layers, key="experts_layer",
                         format_func=lambda i: t("chart.layer", lang, layer=i))
    expert = c2.pills(ui.tr("experts.expert"), list(range(report.n_experts)), default=0, required=True,
                      key="experts_expert")
    st.caption(ui.tr("experts.pick_caption", k=report.top_k))
    st.plotly_chart(expert_profile_figure(report.profiles[layer][expert], lang), width="stretch",
                    key="experts_profile")

    st.subheader(ui.tr("experts.ablation_title"))
    ablation, on_names, off_names = _ablation(str(ckpt.path), ckpt.mtime, layer, expert, ckpt, names, routed)
    st.caption(ui.tr("experts.ablation_caption", n=report.n_names, expert=expert,
                     layer=ui.tr("chart.layer", layer=layer), min=MIN_LETTER_TOKENS))
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(ui.tr("experts.m_loss_on"), f"{ablation.mean_on:.4f}")
    m2.metric(ui.tr("experts.m_loss_off", expert=expert), f"{ablation.mean_off:.4f}",
              delta=f"{ablation.mean_off - ablation.mean_on:+.4f}", delta_color="inverse")
    m3.metric(ui.tr("experts.m_share"), f"{ablation.share_before:.1%}")
    m4.metric(ui.tr("experts.m_chosen"), ablation.times_chosen)
    st.plotly_chart(ablation_figure(ablation, lang), width="stretch", key="experts_ablation")
    c1, c2 = st.columns(2)
    c1.markdown(f"**{ui.tr('experts.names_on')}**  \n" + " · ".join(on_names))
    c2.markdown(f"**{ui.tr('experts.names_off', expert=expert)}**  \n" + " · ".join(
        f"**{off}**" if off != on else off for on, off in zip(on_names, off_names)))  # bold: changed
    st.caption(ui.tr("experts.names_caption", seed=SEED, temperature=TEMPERATURE))
