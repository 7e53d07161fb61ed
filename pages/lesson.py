"""Lesson: seven steps for a class, each one instruction, one live chart, one thing to notice and a button
that opens the full page on the right model. The charts come from the caches the other pages use, with
their default settings (dsmini.probes.lesson), so thirty students on one step cost one computation."""

import streamlit as st

from dsmini.charts import domain_mi_curve, routing_figure
from dsmini.charts.domains import domain_damage_figure, domain_map_figure, domain_mi_figure, spec_label
from dsmini.charts.experts import specialisation_figure
from dsmini.charts.routing import expert_choice, step_candidates_figure
from dsmini.charts.shootout import mi_by_router_figure, router_label
from dsmini.checkpoint import Checkpoint
from dsmini.data import BOUNDARY_SYMBOL
from dsmini.decoding import marked
from dsmini.probes import domain_mi_history
from dsmini.probes import lesson as plan
from dsmini.probes.ablation import DAMAGE_FLOOR, domain_top_experts
from dsmini.probes.generation import generate_view
from dsmini.probes.routing import DecodeStep, step_once
from dsmini.probes.specialisation import ExpertAnalysis, ablation_view, experts_view, shootout_view
from pages import _ui as ui

ui.enter_page()
tr = ui.tr


def _model(name: str) -> Checkpoint | None:
    """The lesson's model `name`; None after saying it is missing and which command trains it again."""
    if name not in {info.name for info in ui.checkpoints()}:
        st.warning(tr("lesson.missing", name=name))
        st.code(plan.TRAIN_COMMANDS[name], language="bash")
        return None
    return ui.load_by_name(name)


def _analysis(ckpt: Checkpoint) -> ExpertAnalysis:
    with st.spinner(tr("experts.computing")):
        return ui.computed(experts_view, ckpt)


def _open(step: int, page: str, label: str | None = None, **keys) -> None:
    """The button to the full page. Its callback sets the model and the target page's own keys before
    the switch. A page's widget state is dropped while another page runs, so its widgets start from their
    defaults: only the keys that must differ from those are set."""
    if st.button(label or tr("lesson.open", page=tr(f"nav.{page}")), key=f"lesson_open_{step}",
                 on_click=st.session_state.update, kwargs=keys, icon=":material/open_in_new:"):
        st.switch_page(f"pages/{page}.py")


def _chart(figure, step: int) -> None:
    st.plotly_chart(figure, width="stretch", key=f"lesson_chart_{step}")


def _notice(text: str) -> None:
    st.info(tr("lesson.notice", text=text), icon=":material/visibility:")


def names_step(lang: str) -> None:
    ckpt = _model(plan.NAMES_MODEL)
    if ckpt is None:
        return
    view = ui.computed(generate_view, ckpt, plan.NAMES)
    names = view.names
    shown = [marked(name, done) for name, done in zip(names, view.finished)]
    st.markdown(tr("lesson.s1.do", prefix=plan.PREFIX, name=names[0]))
    st.markdown(tr("lesson.s1.names", prefix=plan.PREFIX, names=" · ".join(f"**{n}**" for n in shown)))
    _chart(routing_figure(view.trace, lang), 1)
    _notice(tr("lesson.s1.notice", k=ckpt.model_config.top_k, n=ckpt.model_config.n_routed_experts))
    _open(1, "generate", checkpoint=ckpt.name, gen_prefix=plan.PREFIX, gen_names=names, gen_shown=shown,
          gen_for=ui.checkpoint_identity(ckpt))


def _walk(ckpt: Checkpoint) -> list[DecodeStep]:
    """This session's greedy steps from the prefix; a new walk when the model is retrained."""
    owner = (ckpt.name, ckpt.mtime)
    if st.session_state.get("lesson_walk_for") != owner:
        st.session_state["lesson_walk_for"], st.session_state["lesson_walk"] = owner, []
    return st.session_state["lesson_walk"]


def _decode(ckpt: Checkpoint, text: str) -> DecodeStep:
    return step_once(ckpt.model, ckpt.tokenizer, text, plan.TEMPERATURE, plan.SEED, greedy=True)


def _advance(ckpt: Checkpoint) -> None:
    steps = _walk(ckpt)
    steps.append(_decode(ckpt, steps[-1].text if steps else plan.PREFIX))


def _reset() -> None:
    st.session_state["lesson_walk"] = []


def decode_step(lang: str) -> None:
    st.markdown(tr("lesson.s2.do", button=tr("gen.step.next")))
    ckpt = _model(plan.NAMES_MODEL)
    if ckpt is None:
        return
    steps = _walk(ckpt)  # the buttons' callbacks ran before this line: the walk includes this press
    done = bool(steps) and steps[-1].finished
    text = steps[-1].text if steps else plan.PREFIX
    shown = steps[-1] if done else _decode(ckpt, text)  # what the model expects after the text so far
    b1, b2, _ = st.columns([1, 1, 3])
    b1.button(tr("gen.step.next"), key="lesson_step_next", type="primary", disabled=done, on_click=_advance,
              args=(ckpt,))
    b2.button(tr("gen.step.reset"), key="lesson_step_reset", disabled=not steps, on_click=_reset)
    if done and shown.ended:
        st.success(tr("gen.step.ended", text=text))
    else:
        st.markdown(tr("gen.step.text", text=BOUNDARY_SYMBOL + text))
    st.markdown("  \n".join([tr("lesson.s2.read", char=shown.fed)] + [
        tr("gen.step.layer_experts", layer=layer, experts=expert_choice(shown, layer, lang))
        for layer in shown.layers]))
    _chart(step_candidates_figure(shown, lang), 2)
    _notice(tr("lesson.s2.notice"))
    _open(2, "generate", checkpoint=ckpt.name, gen_step_prefix=plan.PREFIX,  # greedy is its default too
          gen_step_for=(ckpt.name, ckpt.mtime, plan.PREFIX), gen_steps=list(steps))  # the walk goes on there


def domains_step(lang: str) -> None:
    st.markdown(tr("lesson.s3.do"))
    ckpt = _model("ru-en-names")
    if ckpt is None:
        return
    report = _analysis(ckpt).domains
    _chart(domain_map_figure(report, lang), 3)
    st.plotly_chart(ui.figure(domain_mi_figure, report, lang), width="stretch", key="lesson_chart_3_mi")
    _notice(tr("lesson.s3.notice"))
    _open(3, "experts", checkpoint=ckpt.name, experts_section="domains")


def ablation_step(lang: str) -> None:
    st.markdown(tr("lesson.s4.do", n=plan.DROP_TOP_N))
    ckpt = _model("ru-en-names")
    if ckpt is None:
        return
    report = _analysis(ckpt).domains
    spec = domain_top_experts(report, plan.DROP_DOMAIN, report.layers, plan.DROP_TOP_N)
    result = ui.computed(ablation_view, ckpt, spec, analysis=_analysis(ckpt))
    _chart(domain_damage_figure(result, lang), 4)
    c1, c2 = st.columns(2)
    c1.markdown(f"**{tr('experts.names_on')}**  \n" + " · ".join(result.names_on))
    c2.markdown(f"**{tr('experts.names_off', what=spec_label(spec, lang))}**  \n" + " · ".join(
        f"**{off}**" if off != on else off for on, off in zip(result.names_on, result.names_off)))
    st.caption(tr("lesson.s4.bold"))
    hurt_others = result.others_delta(plan.DROP_DOMAIN) > DAMAGE_FLOOR  # else "times as much" would divide by ~0
    _notice(tr("lesson.s4.notice", ratio=ui.num(result.damage_ratio(plan.DROP_DOMAIN), 1)) if hurt_others else
            tr("lesson.s4.notice_only"))
    # the Experts page's "top 2 of Russian" click on its defaults (drop, all layers): the same cached result
    _open(4, "experts", checkpoint=ckpt.name, experts_section="ablation",
          **{f"experts_off_{layer}": list(experts) for layer, experts in zip(spec.layers, spec.experts)})


def routers_step(lang: str) -> None:
    st.markdown(tr("lesson.s5.do"))
    ckpts = [_model(name) for name in plan.SHOOTOUT]  # each missing one is named
    if any(ckpt is None for ckpt in ckpts):
        return
    with st.spinner(tr("experts.computing")):
        shootout = ui.computed(shootout_view, ckpts, analyses=[ui.computed(experts_view, c) for c in ckpts])
    _chart(mi_by_router_figure(shootout, lang), 5)
    run, layer = plan.clearest_router(shootout)
    _notice(tr("lesson.s5.notice", router=router_label(run.router, run.aux_loss_coef, lang), layer=layer,
               bits=ui.num(run.mi[layer], 2), initial=ui.num(run.mi_initial[layer], 2)))
    _open(5, "experts", checkpoint=ckpts[0].name, experts_section="routers")


def training_step(lang: str) -> None:
    st.markdown(tr("lesson.s6.do", start=tr("train.start")))
    ckpt = _model("ru-en-names")
    if ckpt is not None:
        split = domain_mi_history(ckpt.history, ckpt.model_config)
        if split["steps"]:
            st.caption(tr("lesson.s6.expect", name=ckpt.name))
            _chart(domain_mi_curve(split, lang), 6)
            rise = plan.first_rise(ckpt.history)
            _notice(tr("lesson.s6.flat") if rise is None else
                    tr("lesson.s6.notice", step=rise.step, seconds=ui.num(rise.seconds)))
        else:  # saved before training recorded the curve
            st.info(tr("lesson.s6.no_history", name=ckpt.name))
    _open(6, "train", label=tr("lesson.s6.start"), train_corpus="ru-en-names")


def letters_step(lang: str) -> None:
    st.markdown(tr("lesson.s7.do"))
    ckpt = _model(plan.NAMES_MODEL)
    if ckpt is None:
        return
    _chart(specialisation_figure(_analysis(ckpt).letters, lang), 7)
    _notice(tr("lesson.s7.notice"))
    _open(7, "experts", checkpoint=ckpt.name, experts_section="letters")


STEPS = (names_step, decode_step, domains_step, ablation_step, routers_step, training_step, letters_step)


def _current() -> int:
    step = st.session_state.setdefault("lesson_step", 1)
    return step if step in range(1, len(STEPS) + 1) else 1


def _go(delta: int) -> None:
    st.session_state["lesson_step"] = min(max(_current() + delta, 1), len(STEPS))


st.title(tr("lesson.title"))
st.caption(tr("lesson.intro"))

with ui.guard():
    step = _current()
    st.progress(step / len(STEPS), text=tr("lesson.progress", step=step, total=len(STEPS)))
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button(tr("lesson.back"), key="lesson_back", on_click=_go, args=(-1,), disabled=step == 1,
              icon=":material/arrow_back:", width="stretch")
    b2.button(tr("lesson.next"), key="lesson_next", on_click=_go, args=(1,), disabled=step == len(STEPS),
              type="primary", icon=":material/arrow_forward:", width="stretch")
    st.subheader(tr(f"lesson.s{step}.title"))
    STEPS[step - 1](ui.lang())
