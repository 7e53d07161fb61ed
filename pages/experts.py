"""Experts: which domains and letters each routed expert takes, what breaks when experts are switched
off, and how the three routers compare on one corpus."""

import streamlit as st

from dsmini.charts.domains import (
    ablation_figure,
    domain_damage_figure,
    domain_map_figure,
    domain_mi_figure,
    domain_name,
    spec_label,
)
from dsmini.charts.experts import (
    expert_load_figure,
    expert_profile_figure,
    letter_expert_figure,
    position_expert_figure,
    specialisation_figure,
)
from dsmini.charts.shootout import shootout_figures, shootout_table
from dsmini.checkpoint import Checkpoint
from dsmini.i18n import t
from dsmini.probes.ablation import (
    ABLATION_KINDS,
    GENERATED_NAMES,
    GENERATION_SEED,
    GENERATION_TEMPERATURE,
    MIN_LETTER_TOKENS,
    AblationSpec,
    domain_top_experts,
)
from dsmini.probes.experts import INITIAL_SEED
from dsmini.probes.lesson import SHOOTOUT
from dsmini.probes.specialisation import ExpertAnalysis, ablation_view, experts_view, shootout_view
from pages import _ui as ui

ui.enter_page()

SECTIONS = ("domains", "letters", "ablation", "routers")
MIXED_MODEL = SHOOTOUT[0]  # the shipped model whose names carry domains: where the headline finding is


def domain_section(analysis: ExpertAnalysis, lang: str) -> None:
    report = analysis.domains
    if report is None:
        st.info(ui.tr("experts.no_domains"))
        return
    layer = report.clearest_layer
    m1, m2, m3 = st.columns(3)
    m1.metric(ui.tr("experts.m_domain_mi", layer=ui.tr("chart.layer", layer=layer)), ui.num(report.mi[layer], 3))
    m2.metric(ui.tr("experts.m_domain_mi_initial"), ui.num(report.mi_initial[layer], 3))
    ratio = report.mi_ratio(layer)
    m3.metric(ui.tr("experts.m_domain_ratio"), "∞" if ratio == float("inf") else ui.num(ratio, 1) + "×")
    st.plotly_chart(ui.figure(domain_mi_figure, report, lang), width="stretch", key="experts_domain_mi")
    st.caption(ui.tr("experts.domain_mi_caption", ceiling=ui.num(report.mi_ceiling, 2), seed=INITIAL_SEED))
    untrained = st.toggle(ui.tr("experts.show_untrained"), key="experts_domain_untrained")
    st.plotly_chart(ui.figure(domain_map_figure, report, lang, initial=untrained), width="stretch",
                    key="experts_domain_map")
    st.caption(ui.tr("experts.domain_map_caption", k=report.top_k, n=report.n_experts))


def letter_section(analysis: ExpertAnalysis, lang: str) -> None:
    report = analysis.letters
    view = st.segmented_control(ui.tr("experts.view"), ["allk", "top1"], default="allk", required=True,
                                format_func=lambda v: t(f"experts.view_{v}", lang), key="experts_view")
    st.subheader(ui.tr("experts.letters_title"))
    st.caption(ui.tr("experts.letters_caption"))
    st.plotly_chart(ui.figure(letter_expert_figure, report, view, lang), width="stretch", key="experts_letters")
    st.subheader(ui.tr("experts.positions_title"))
    st.caption(ui.tr("experts.positions_caption"))
    st.plotly_chart(ui.figure(position_expert_figure, report, view, lang), width="stretch", key="experts_positions")
    c1, c2 = st.columns(2)
    with c1:
        st.subheader(ui.tr("experts.load_title"))
        st.caption(ui.tr("experts.load_caption", dropped=sum(report.n_dropped.values())))
        st.plotly_chart(ui.figure(expert_load_figure, report, lang), width="stretch", key="experts_load")
    with c2:
        st.subheader(ui.tr("experts.mi_title"))
        st.caption(ui.tr("experts.mi_caption", ceiling=ui.num(report.mi_ceiling, 3), seed=INITIAL_SEED))
        st.plotly_chart(ui.figure(specialisation_figure, report, lang), width="stretch", key="experts_mi")
    st.subheader(ui.tr("experts.pick_title"))
    c1, c2 = st.columns([1, 3])
    layer = c1.selectbox(ui.tr("experts.layer"), report.layers, key="experts_layer",
                         format_func=lambda i: t("chart.layer", lang, layer=i))
    expert = c2.pills(ui.tr("experts.expert"), list(range(report.n_experts)), default=0, required=True,
                      key="experts_expert")
    st.caption(ui.tr("experts.pick_caption", k=report.top_k))
    st.plotly_chart(ui.figure(expert_profile_figure, report.profiles[layer][expert], lang), width="stretch",
                    key="experts_profile")


def _pick_domain_experts(analysis: ExpertAnalysis, domain: str) -> None:
    """One click: select the top experts of `domain` in every chosen layer, to be dropped."""
    layers = _chosen_layers(analysis)
    spec = domain_top_experts(analysis.domains, domain, layers, int(st.session_state.get("experts_top_n", 2)))
    for layer, experts in zip(spec.layers, spec.experts):
        st.session_state[f"experts_off_{layer}"] = list(experts)
    st.session_state["experts_kind"] = "drop"


def _chosen_layers(analysis: ExpertAnalysis) -> list[int]:
    layers = analysis.routed.layers
    picked = st.session_state.get("experts_ablation_layer", "all")
    return layers if picked == "all" or picked not in layers else [picked]


def ablation_section(ckpt: Checkpoint, analysis: ExpertAnalysis, lang: str) -> None:
    routed, report = analysis.routed, analysis.domains
    st.caption(ui.tr("experts.ablation_intro"))
    c1, c2 = st.columns([2, 1])
    st.session_state.setdefault("experts_kind", "drop")  # a default, not `default=`: one click sets it (drop)
    kind = c1.segmented_control(ui.tr("experts.kind"), list(ABLATION_KINDS), required=True,
                                format_func=lambda k: t(f"experts.kind_{k}", lang), key="experts_kind")
    c2.selectbox(ui.tr("experts.ablation_layer"), ["all", *routed.layers], key="experts_ablation_layer",
                 format_func=lambda i: t("experts.all_layers", lang) if i == "all" else t("chart.layer", lang, layer=i))
    st.caption(ui.tr(f"experts.kind_{kind}_help"))
    layers = _chosen_layers(analysis)
    if report is not None and kind != "mask_top":
        c1, *buttons = st.columns([1] + [1] * len(report.domains))
        c1.number_input(ui.tr("experts.top_n"), 1, routed.n_experts - routed.top_k, 2, key="experts_top_n")
        for column, domain in zip(buttons, report.domains):
            column.button(ui.tr("experts.top_of_domain", domain=domain_name(domain, lang)), key=f"experts_top_{domain}",
                          on_click=_pick_domain_experts, args=(analysis, domain), width="stretch")
    if kind == "mask_top":
        r = st.slider(ui.tr("experts.mask_r"), 1, routed.n_experts - routed.top_k, 1, key="experts_mask_r")
        experts: tuple = ()
    else:
        r = 0
        experts = tuple(
            tuple(sorted(st.pills(ui.tr("experts.off_in", layer=t("chart.layer", lang, layer=layer)),
                                  list(range(routed.n_experts)), selection_mode="multi", key=f"experts_off_{layer}")))
            for layer in layers
        )
    shared_off = st.checkbox(ui.tr("experts.shared_off"), key="experts_shared_off",
                             disabled=routed.n_shared_experts == 0)
    spec = AblationSpec(layers=tuple(layers), experts=experts, kind=kind, mask_top=r, shared_off=shared_off)
    if kind != "mask_top" and not any(experts) and not shared_off:
        st.info(ui.tr("experts.pick_something"))
        return
    result = ui.computed(ablation_view, ckpt, spec, analysis=analysis)
    m1, m2, m3 = st.columns(3)
    m1.metric(ui.tr("experts.m_loss_on"), ui.num(result.mean_on, 4))
    m2.metric(ui.tr("experts.m_loss_off"), ui.num(result.mean_off, 4),
              delta=ui.num(result.mean_off - result.mean_on, 4, sign=True),
              delta_color="inverse")
    m3.metric(ui.tr("experts.m_share"), ui.num(result.share_before, 1, style="%"))
    if result.domains.labels:
        worst = result.domains.labels[0]
        st.plotly_chart(ui.figure(domain_damage_figure, result, lang), width="stretch", key="experts_damage")
        if len(result.domains.labels) > 1:
            st.markdown(ui.tr("experts.damage_ratio", domain=domain_name(worst, lang),
                              delta=ui.num(result.domains.delta_of(worst), 3, sign=True),
                              others=ui.num(result.others_delta(worst), 3, sign=True),
                              ratio=ui.num(result.damage_ratio(worst))))
    st.plotly_chart(ui.figure(ablation_figure, result, lang), width="stretch", key="experts_ablation")
    st.caption(ui.tr("experts.ablation_caption", n=len(analysis.names), min=MIN_LETTER_TOKENS))
    c1, c2 = st.columns(2)
    c1.markdown(f"**{ui.tr('experts.names_on')}**  \n" + " · ".join(result.names_on))
    c2.markdown(f"**{ui.tr('experts.names_off', what=spec_label(spec, lang))}**  \n" + " · ".join(
        f"**{off}**" if off != on else off for on, off in zip(result.names_on, result.names_off)))  # bold: changed
    st.caption(ui.tr("experts.names_caption", n=GENERATED_NAMES, seed=GENERATION_SEED,
                     temperature=GENERATION_TEMPERATURE))


def router_section(ckpt: Checkpoint, lang: str) -> None:
    """The checkpoints trained on this one's corpus, side by side (the router shoot-out)."""
    infos = [info for info in ui.checkpoints() if info.corpus == ckpt.corpus.name]
    ckpts = [ui.load_by_name(info.name) for info in infos]
    ckpts = [c for c in ckpts if c.model_config.n_moe_layers]
    if len(ckpts) < 2:
        st.info(ui.tr("experts.routers_none", corpus=ckpt.corpus.name or "?"))
        return
    shootout = ui.computed(shootout_view, ckpts, analyses=[ui.computed(experts_view, c) for c in ckpts])
    st.caption(ui.tr("experts.routers_intro", n=len(ckpts)))
    st.dataframe(shootout_table(shootout, lang), hide_index=True, width="stretch")
    for i, fig in enumerate(shootout_figures(shootout, lang)):
        st.plotly_chart(fig, width="stretch", key=f"experts_routers_{i}")
    st.caption(ui.tr("experts.routers_caption"))


st.title(ui.tr("experts.title"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    cfg = ckpt.model_config
    if not cfg.n_moe_layers:
        st.info(ui.tr("chart.no_moe"))
        st.stop()
    st.markdown(ui.tr("experts.intro", k=cfg.top_k, n=cfg.n_routed_experts))
    with st.spinner(ui.tr("experts.computing")):
        analysis = ui.computed(experts_view, ckpt)
    lang = ui.lang()
    st.caption(ui.tr("experts.sample", n=len(analysis.names), corpus=ckpt.corpus.name or "?",
                     tokens=analysis.routed.ids.numel()))
    # a default, not `default=`: the lesson opens this page on a chosen section through the same key
    if analysis.domains is None and MIXED_MODEL in {info.name for info in ui.checkpoints()}:
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.info(ui.tr("experts.try_mixed", model=MIXED_MODEL))
        c2.button(ui.tr("experts.open_mixed", model=MIXED_MODEL), key="experts_open_mixed", width="stretch",
                  on_click=st.session_state.update, kwargs={"checkpoint": MIXED_MODEL, "experts_section": "domains"})
    st.session_state.setdefault("experts_section", "domains" if analysis.domains is not None else "letters")
    section = st.segmented_control(ui.tr("experts.section"), list(SECTIONS), required=True,
                                   format_func=lambda s: t(f"experts.section_{s}", lang), key="experts_section")
    st.caption(ui.tr("experts.geometry"))
    if section == "domains":
        domain_section(analysis, lang)
    elif section == "letters":
        letter_section(analysis, lang)
    elif section == "ablation":
        ablation_section(ckpt, analysis, lang)
    else:
        router_section(ckpt, lang)
