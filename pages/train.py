"""Train: pick a corpus and an architecture, then watch a run live (it lives in a background job)."""

import dataclasses
import math
from pathlib import Path

import streamlit as st

from dsmini.charts import domain_mi_curve, expert_load_bars, imbalance_figure, length_figure, loss_figure
from dsmini.charts.domains import domain_name
from dsmini.checkpoint import CheckpointExistsError
from dsmini.config import ATTN_TYPES, FFN_TYPES, OPTIMIZERS, PRESETS, RECIPES, ROUTERS, TrainConfig
from dsmini.data import CorpusError, default_block_size, list_corpora, list_corpus_domains
from dsmini.jobs import JobError, TrainingJob
from dsmini.probes import domain_mi_history, expert_load_history, live_domain_mi, loss_curves
from dsmini.probes.training import corpus_view
from pages import _ui as ui

RECIPE = RECIPES["page"]  # the defaults of every widget below
SAVE_PROBLEM = "train_save_problem"  # session_state: why the last save failed, shown until the user acts
# the settings widgets, kept for the session across pages (ui.keep); an upload cannot be (Streamlit's file_uploader)
SETTINGS = ["train_source", "train_corpus", "train_preset", "train_attn", "train_ffn", "train_router", "train_mtp",
            "train_routed", "train_shared", "train_topk", "train_aux", "train_capacity", "train_width", "train_layers",
            "train_heads", "train_steps", "train_lr", "train_batch", "train_opt"]

ui.enter_page()
ui.keep(SETTINGS)

st.title(ui.tr("train.title"))
st.caption(ui.tr("train.intro"))
jobs = ui.session_jobs()


def claim_run_from_url() -> None:
    """A reloaded or reopened tab is a new session that brings its run id in the URL: take the run back
    from the registry. A session that has a run puts its id back in the URL (switching pages drops it)."""
    run_id = st.query_params.get("run")
    if jobs["job"] is not None:
        st.query_params["run"] = jobs["run"]
    elif run_id:
        job = ui.job_registry().claim(run_id, jobs["holder"])
        if job is None:  # released after an hour unclaimed, or the server restarted
            st.info(ui.tr("train.run_gone"))
        else:
            jobs["job"], jobs["run"] = job, run_id


def corpus_picker():
    """The corpus chosen (built-in or uploaded) and its cache key; stops the page on bad input."""
    source = st.segmented_control(
        ui.tr("train.source"), ["builtin", "upload"], default=ui.kept("train_source", "builtin"), key="train_source",
        format_func=lambda s: ui.tr(f"train.source_{s}"),
    )
    if source == "upload":
        upload = st.file_uploader(ui.tr("train.upload"), type=["txt"], key="train_upload",
                                  help=ui.tr("train.upload_help"))
        if upload is None:
            st.stop()
        key = (Path(upload.name).stem, upload.getvalue())
    else:
        names = list(list_corpora())
        default = "ru-names" if ui.lang() == "ru" else "en-names"
        labels = {name: corpus_label(name, domains) for name, domains in list_corpus_domains().items()}
        key = (st.selectbox(ui.tr("train.corpus"), names, index=ui.kept_index("train_corpus", names, default),
                            key="train_corpus", format_func=labels.__getitem__, help=ui.tr("train.corpus_help")), None)
    try:
        return ui.corpus(*key), key
    except CorpusError as err:
        st.error(str(err))
        st.stop()


def corpus_label(name: str, domains: list[str]) -> str:
    """A mixed corpus names its domains in the list, so a class finds the ones whose domain split the live
    panel shows."""
    return ui.tr("train.corpus_mixed", name=name, domains=" / ".join(domains)) if domains else name


def show_stats(corpus) -> None:
    view = corpus_view(corpus)  # milliseconds: not worth a cache key over every name
    stats = view.stats
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(ui.tr("train.n_names"), ui.count(stats.count))
    c2.metric(ui.tr("train.alphabet"), len(stats.alphabet))
    c3.metric(ui.tr("train.mean_len"), ui.num(stats.mean_len, 1))
    c4.metric(ui.tr("train.max_len"), stats.max_len)
    domains = " · ".join(f"{label} {ui.count(n)}" for label, n in view.domain_counts.items())
    st.caption(ui.tr("train.examples", names=", ".join(view.examples)) + " · " + view.dropped.describe(lang=ui.lang())
               + (" · " + ui.tr("train.domains", domains=domains) if domains else ""))
    st.plotly_chart(ui.shown(length_figure(stats.length_hist, ui.lang())), width="stretch", key="train_lengths")


def choice(where, label: str, options, key: str, default=None, **more):
    """A selectbox whose pick survives leaving the page (ui.keep)."""
    return where.selectbox(ui.tr(label), options, index=ui.kept_index(key, options, default or options[0]), key=key,
                           **more)


def number(where, label: str, low, high, default, key: str, step=None, **more):
    """A number input whose value survives leaving the page (ui.keep)."""
    return where.number_input(ui.tr(label), low, high, ui.kept(key, default), step, key=key, **more)


def architecture_form():
    """ModelConfig overrides chosen with widgets (defaults: the preset's values)."""
    with st.expander(ui.tr("train.arch"), expanded=False):
        name = choice(st, "train.preset", list(PRESETS), "train_preset", default=RECIPE.preset)
        base = PRESETS[name]
        c = st.columns(4)
        over = dict(
            attn_type=choice(c[0], "train.attn_type", ATTN_TYPES, "train_attn"),
            ffn_type=choice(c[1], "train.ffn_type", FFN_TYPES, "train_ffn"),
            router=choice(c[2], "train.router", ROUTERS, "train_router"),
            mtp_depth=number(c[3], "train.mtp_depth", 0, 4, base.mtp_depth, "train_mtp"),
        )
        c = st.columns(4)
        over.update(
            n_routed_experts=number(c[0], "train.routed", 1, 64, base.n_routed_experts, "train_routed"),
            n_shared_experts=number(c[1], "train.shared", 0, 8, base.n_shared_experts, "train_shared"),
            top_k=number(c[2], "train.top_k", 1, 64, base.top_k, "train_topk"),
            aux_loss_coef=number(c[3], "train.aux", 0.0, 1.0, base.aux_loss_coef, "train_aux", 0.01),
        )
        c = st.columns(4)
        capacity = number(c[0], "train.capacity", 0.0, 8.0, 0.0, "train_capacity", 0.25,
                          help=ui.tr("train.capacity_help"))
        over.update(
            capacity_factor=capacity or None,
            d_model=number(c[1], "train.d_model", 16, 256, base.d_model, "train_width", 16),
            n_layers=number(c[2], "train.n_layers", 1, 8, base.n_layers, "train_layers"),
            n_heads=number(c[3], "train.n_heads", 1, 16, base.n_heads, "train_heads"),
        )
    return name, over


def training_form() -> TrainConfig:
    c, recipe = st.columns(4), RECIPE.train
    return dataclasses.replace(
        recipe,
        steps=int(number(c[0], "train.steps", 10, 20000, recipe.steps, "train_steps", 50)),
        lr=number(c[1], "train.lr", 1e-5, 1e-1, recipe.lr, "train_lr", format="%.4f"),
        batch_size=int(number(c[2], "train.batch", 4, 512, recipe.batch_size, "train_batch", 4)),
        optimizer=choice(c[3], "train.optimizer", OPTIMIZERS, "train_opt", default=recipe.optimizer,
                         help=ui.tr("train.optimizer_help")),
    )


def start(corpus_key, preset_name, overrides, train_cfg) -> None:
    corpus = ui.corpus(*corpus_key)
    block_size = default_block_size(corpus.names)
    data = ui.prepared(*corpus_key, block_size=block_size, seed=train_cfg.split_seed)
    model_cfg = RECIPE.model(len(corpus.names), preset_name, vocab_size=data.tokenizer.vocab_size,
                             block_size=block_size, **overrides)
    job = TrainingJob(model_cfg, train_cfg, data, domain_mi=live_domain_mi)
    job.start()
    jobs["job"], jobs["run"] = job, ui.job_registry().add(job, jobs["holder"])
    st.query_params["run"] = jobs["run"]
    st.session_state.pop(SAVE_PROBLEM, None)


@st.fragment(run_every=1.0)
def live() -> None:
    """Redrawn every second from the job's snapshot; the run itself never depends on this page."""
    job = jobs["job"]
    if job is None:
        return
    snap = job.snapshot()
    cfg = job.model_cfg
    st.progress(snap.step / snap.total_steps,
                text=ui.tr(f"train.state_{snap.state}", step=snap.step, total=snap.total_steps))
    if snap.state == "queued":
        st.info(ui.tr("train.queued", position=snap.queue_position or 1))
    if snap.message and snap.state == "failed":
        st.error(snap.message)
    if snap.unattended:
        st.warning(ui.tr("train.unattended", seconds=int(ui.job_registry().grace_s)))
    last = snap.last or {}
    c = st.columns(4)
    c[0].metric(ui.tr("train.m_loss"), ui.num(last.get('main_loss'), 3))
    c[1].metric(ui.tr("train.m_val"), ui.num(snap.val_losses[-1][1] if snap.val_losses else None, 3))
    c[2].metric(ui.tr("train.m_speed"), ui.num(last.get('tokens_per_sec')))
    c[3].metric(ui.tr("train.m_dropped"), sum(last.get("dropped", ())) if last else "-",
                help=ui.tr("train.m_dropped_help"))
    buttons = st.columns(3)
    buttons[0].button(ui.tr("train.stop"), on_click=job.stop, disabled=not snap.active, key="train_stop")
    if snap.history:
        st.plotly_chart(ui.shown(loss_figure(loss_curves(snap.history, ui.lang()), ui.lang())), width="stretch",
                        key="train_loss")
        load = expert_load_history(snap.history, cfg)
        if load["layers"]:
            left, right = st.columns(2)
            left.plotly_chart(ui.shown(expert_load_bars(load, ui.lang())), width="stretch", key="train_load")
            right.plotly_chart(ui.shown(imbalance_figure(load, ui.lang())), width="stretch", key="train_imbalance")
        split = domain_mi_history(snap.history, cfg)
        if split["steps"]:  # only runs on a corpus with domains measure it, from their first eval step
            domain_split(split, job.data.domain_labels)
    if snap.samples:
        st.markdown(ui.tr("train.samples") + " " + " · ".join(f"**{s}**" for s in snap.samples))
    if snap.finished:
        finished_actions(job, snap)


def domain_split(split, domains: list[str]) -> None:
    """The live I(domain; expert) curve beside the untrained model, and how many times higher it is now."""
    layer = ui.tr("chart.layer", layer=split["layers"][split["best"]])
    ratio = split["ratio"]
    st.metric(ui.tr("train.m_domain_ratio", layer=layer), "∞" if math.isinf(ratio) else ui.num(ratio, 1) + "×",
              help=ui.tr("train.m_domain_ratio_help"))
    st.plotly_chart(ui.shown(domain_mi_curve(split, ui.lang())), width="stretch", key="train_domain_mi")
    st.caption(ui.tr("train.domain_mi_caption", domains=" / ".join(domain_name(d, ui.lang()) for d in domains)))


def finished_actions(job, snap) -> None:
    extra = st.number_input(ui.tr("train.extra_steps"), 10, 20000, 300, 50, key="train_extra")
    if st.button(ui.tr("train.resume"), disabled=snap.state == "failed", key="train_resume"):
        job.resume(int(extra))
        st.rerun(scope="fragment")
    c1, c2 = st.columns([3, 1])
    name = c1.text_input(ui.tr("train.save_name"), key="train_save_name", help=ui.tr("train.save_help"))
    if c2.button(ui.tr("train.save"), key="train_save", type="primary"):
        save_run(job, name)
        st.rerun()  # the whole app: the sidebar picker lists the new model, save_problem() shows what went wrong
    if st.session_state.get("train_saved"):
        st.success(ui.tr("train.saved", name=st.session_state["train_saved"]))
    stem = name or "dsmini-run"
    ui.downloads(job.model_cfg, stem, lambda: job.download_bytes(stem), lambda: job.transformers_bytes(stem),
                 key="train")


def save_run(job, name: str, overwrite: bool = False) -> None:
    """Save, and keep the outcome in session_state: a message shown only in the run of the click would
    vanish under the live panel's next redraw, a second later."""
    st.session_state.pop(SAVE_PROBLEM, None)
    st.session_state.pop("train_saved", None)
    try:
        st.session_state["train_saved"] = job.save(ui.checkpoints_folder(), name, overwrite=overwrite).name
    except CheckpointExistsError as err:
        st.session_state[SAVE_PROBLEM] = {"name": name, "free": err.free_name, "shipped": err.shipped}
    except (ValueError, JobError) as err:  # CheckpointError: bad name, disk full, read-only folder; resumed meanwhile
        st.session_state[SAVE_PROBLEM] = {"error": str(err)}


def save_problem(job) -> None:
    """Why the last save failed, outside the live panel so no redraw hides it, until the user acts: a taken
    name offers the free one in one click, or replacing it explicitly (never a shipped one)."""
    problem = st.session_state.get(SAVE_PROBLEM)
    if not problem:
        return
    if "error" in problem:
        st.error(ui.tr("train.save_failed", error=problem["error"]))
    else:
        st.warning(ui.tr("train.save_shipped" if problem["shipped"] else "train.save_exists", name=problem["name"]))
        c = st.columns(3)
        c[0].button(ui.tr("train.save_as", name=problem["free"]), on_click=save_run, args=(job, problem["free"]),
                    key="train_save_free", type="primary")
        if not problem["shipped"]:
            c[1].button(ui.tr("train.save_replace", name=problem["name"]), on_click=save_run,
                        args=(job, problem["name"], True), key="train_save_replace")
    st.button(ui.tr("train.dismiss"), on_click=st.session_state.pop, args=(SAVE_PROBLEM, None),
              key="train_save_dismiss")


with ui.guard():
    claim_run_from_url()
    job = jobs["job"]
    busy = job is not None and job.snapshot().active
    with st.expander(ui.tr("train.setup"), expanded=not busy):
        corpus, corpus_key = corpus_picker()
        show_stats(corpus)
        preset_name, overrides = architecture_form()
        train_cfg = training_form()
        if st.button(ui.tr("train.start"), type="primary", disabled=busy, key="train_start"):
            start(corpus_key, preset_name, overrides, train_cfg)
            st.rerun()
    live()
    if jobs["job"] is not None:
        save_problem(jobs["job"])
