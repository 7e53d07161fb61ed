"""KV cache: bytes per character for MHA / GQA / MQA / MLA (Table 1 and real caches), growth with
length, the same at DeepSeek-V2/V3 size, and naive vs absorbed MLA decoding time."""

import streamlit as st

from dsmini.charts.cache import cache_growth_figure, cache_table, scale_table
from dsmini.probes.cache import EXTRAPOLATE_TO, kv_cache_view
from pages import _ui as ui

ui.enter_page()

st.title(ui.tr("kv.title"))
st.caption(ui.tr("kv.intro"))

with ui.guard():
    ckpt = ui.require_checkpoint()
    cfg, lang = ckpt.model_config, ui.lang()
    view = ui.computed(kv_cache_view, ckpt)
    dims, rows = view.dims, view.rows

    st.subheader(ui.tr("kv.model_title"))
    st.caption(ui.tr(
        "kv.model_caption", layers=dims.n_layers, heads=dims.n_heads, d_h=dims.head_dim, n_g=dims.n_groups,
        d_c=dims.kv_lora_rank, d_r=dims.qk_rope_head_dim,
    ))
    # st.table, not st.dataframe: its headers wrap, so all eight columns fit at 1280 px in both languages
    # (a data grid sizes columns to their headers and scrolled the last ones out of sight)
    st.table(cache_table(rows, dims, lang), hide_index=True)
    mismatched = [r.attn_type.upper() for r in rows if not r.matches]
    if mismatched:
        st.error(ui.tr("kv.match_bad", kinds=", ".join(mismatched)))
    else:
        st.success(ui.tr("kv.match_ok", n=len(rows)))
    for kind, reason in view.skipped.items():
        st.info(ui.tr("kv.skipped", kind=kind.upper(), reason=reason))

    st.subheader(ui.tr("kv.growth_title"))
    st.caption(ui.tr("kv.growth_caption", max_len=EXTRAPOLATE_TO))
    st.plotly_chart(ui.figure(cache_growth_figure, view.growth, cfg.attn_type, lang), width="stretch", key="kv_growth")

    st.subheader(ui.tr("kv.scale_title"))
    st.caption(ui.tr("kv.scale_caption"))
    for label, big, big_rows in view.scale:
        st.markdown(f"**{ui.tr(f'kv.{label}')}**")
        st.dataframe(scale_table(big_rows, big, lang), hide_index=True)

    st.subheader(ui.tr("kv.absorb_title"))
    if cfg.attn_type != "mla":
        st.info(ui.tr("kv.not_mla", kind=cfg.attn_type.upper()))
        st.stop()
    timing = view.timing
    c1, c2, c3 = st.columns(3)
    c1.metric(ui.tr("kv.naive"), ui.num(timing.naive_ms_per_char, 2))
    c2.metric(ui.tr("kv.absorbed"), ui.num(timing.absorbed_ms_per_char, 2))
    c3.metric(ui.tr("kv.speedup"), ui.num(timing.speedup, 2) + "×")
    if timing.same_logits:
        st.success(ui.tr("kv.same_ok", diff=ui.num(timing.max_abs_diff, 1, style="e")))
    else:
        st.error(ui.tr("kv.same_bad", diff=ui.num(timing.max_abs_diff, 1, style="e")))
    st.caption(ui.tr("kv.timing_note", names=len(view.timing_prefixes), chars=timing.chars, repeats=timing.repeats))
    up_projected = cfg.n_heads * (cfg.qk_nope_head_dim + cfg.v_head_dim)  # what naive MLA rebuilds per position
    st.caption(ui.tr("kv.absorb_caption", d_c=cfg.kv_lora_rank, heads=up_projected))
