"""AppTest for the Lesson page: the seven steps in both languages on the shipped models (titles,
instructions, what to notice, each step's chart), the step-through button, every "open the page"
button landing on its page with its model, and the steps whose model is missing or predates the
live I(domain; expert) curve."""

import pytest

from dsmini.charts.domains import domain_name, spec_label
from dsmini.charts.shootout import router_label
from dsmini.checkpoint import copy_checkpoint, save_checkpoint
from dsmini.i18n import fmt_num, t
from dsmini.probes import lesson as plan
from dsmini.probes.ablation import DAMAGE_FLOOR, domain_top_experts
from dsmini.probes.generation import generate_view
from dsmini.probes.specialisation import ablation_view, experts_view, shootout_view
from pages import _ui as ui
from pages import _ui_models as ui_models
from tests.helpers import charts, no_errors, opened, traces

N_STEPS = 7


def open_lesson(app, lang: str = "en", step: int = 1):
    return opened(app, "lesson", lang, lesson_step=step)


def markdowns(app) -> list[str]:
    return [m.value for m in app.markdown]


def notice(app, lang: str) -> str:
    """The step's "what to notice" line, without its label."""
    label = t("lesson.notice", lang, text="")
    lines = [i.value for i in app.info if i.value.startswith(label)]
    assert len(lines) == 1, [i.value for i in app.info]
    return lines[0][len(label):]


def name_so_far(app, lang: str) -> str:
    head, tail = t("gen.step.text", lang, text="#").split("#")
    return next(m[len(head):-len(tail)] for m in markdowns(app) if m.startswith(head))


def shipped_names() -> list[str]:
    return ui.computed(generate_view, ui.load_by_name("ru-names"), plan.NAMES).names


def check_step(app, step: int, lang: str) -> None:
    """Step `step` as the class sees it: its strings, its chart and its button."""
    assert app.get("progress")[0].proto.text == t("lesson.progress", lang, step=step, total=N_STEPS)
    assert [s.value for s in app.subheader] == [t(f"lesson.s{step}.title", lang)]
    assert not app.warning  # every model it needs is there
    figures = charts(app)
    text = markdowns(app)
    mixed = ui.load_by_name("ru-en-names")
    if step == 1:
        ru = ui.load_by_name("ru-names")
        cfg, names = ru.model_config, shipped_names()
        assert t("lesson.s1.do", lang, prefix=plan.PREFIX, name=names[0]) in text
        assert t("lesson.s1.names", lang, prefix=plan.PREFIX, names=" · ".join(f"**{n}**" for n in names)) in text
        assert notice(app, lang) == t("lesson.s1.notice", lang, k=cfg.top_k, n=cfg.n_routed_experts)
        (routing,) = figures
        panels = traces(routing, "heatmap")
        assert len(panels) == cfg.n_moe_layers
        assert all(len(p["z"]) == cfg.n_routed_experts + 1 and len(p["z"][0]) == len(names[0]) + 1 for p in panels)
    elif step == 2:
        assert t("lesson.s2.do", lang, button=t("gen.step.next", lang)) in text
        assert notice(app, lang) == t("lesson.s2.notice", lang)
        (candidates,) = figures
        assert len(traces(candidates, "bar")[0]["x"]) >= 2
    elif step == 3:
        assert t("lesson.s3.do", lang) in text and notice(app, lang) == t("lesson.s3.notice", lang)
        domain_map, mi = figures
        report = ui.computed(experts_view, mixed).domains
        maps = traces(domain_map, "heatmap")
        assert len(maps) == len(report.layers)
        assert all(m["y"] == [domain_name(d, lang) for d in ("en", "ru")] and len(m["z"]) == 2 for m in maps)
        assert len(traces(mi, "bar")) == 2  # trained and untrained (grey)
    elif step == 4:
        assert t("lesson.s4.do", lang, n=plan.DROP_TOP_N) in text
        report = ui.computed(experts_view, mixed).domains
        result = ui.computed(ablation_view, mixed, domain_top_experts(report, "ru", report.layers, plan.DROP_TOP_N))
        ratio = result.damage_ratio("ru")
        assert notice(app, lang) == (t("lesson.s4.notice", lang, ratio=fmt_num(ratio, 1, lang))
                                     if result.others_delta("ru") > DAMAGE_FLOOR else t("lesson.s4.notice_only", lang))
        assert ratio > 1  # the Russian experts served Russian names
        (damage,) = figures
        assert len(traces(damage, "bar")[0]["x"]) == 2
        spec = domain_top_experts(report, "ru", report.layers, plan.DROP_TOP_N)
        after = next(m for m in text
                     if m.startswith(f"**{t('experts.names_off', lang, what=spec_label(spec, lang))}**"))
        changed = [off for on, off in zip(result.names_on, result.names_off) if on != off]
        assert changed and all(f"**{name}**" in after for name in changed)  # bold: the names that changed
    elif step == 5:
        assert t("lesson.s5.do", lang) in text
        shootout = ui.computed(shootout_view, [ui.load_by_name(name) for name in plan.SHOOTOUT])
        run, layer = plan.clearest_router(shootout)
        assert notice(app, lang) == t("lesson.s5.notice", lang,
                                      router=router_label(run.router, run.aux_loss_coef, lang),
                                      layer=layer, bits=fmt_num(run.mi[layer], 2, lang),
                                      initial=fmt_num(run.mi_initial[layer], 2, lang))
        (by_router,) = figures
        assert [bar["name"].split(":")[0] for bar in traces(by_router, "bar")] == list(plan.SHOOTOUT)
    elif step == 6:
        assert t("lesson.s6.do", lang, start=t("train.start", lang)) in text
        if any(row.get("domain_mi") for row in mixed.history):
            assert len(figures) == 1 and notice(app, lang)
        else:  # the shipped history predates the field: a note, not a chart
            assert not figures and [i.value for i in app.info] == [t("lesson.s6.no_history", lang, name="ru-en-names")]
        assert app.button(key="lesson_open_6").label == t("lesson.s6.start", lang)
    else:
        assert t("lesson.s7.do", lang) in text and notice(app, lang) == t("lesson.s7.notice", lang)
        (letters,) = figures
        trained, initial = traces(letters, "bar")
        assert min(trained["y"]) < max(initial["y"])  # letter information fell with training somewhere


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_lesson_walks_all_seven_steps_and_back(at, lang):
    open_lesson(at, lang)
    assert at.title[0].value == t("lesson.title", lang)
    assert at.button(key="lesson_back").disabled
    for step in range(1, N_STEPS + 1):
        assert at.session_state["lesson_step"] == step
        check_step(at, step, lang)
        if step < N_STEPS:
            at.button(key="lesson_next").click().run()
            no_errors(at)
    assert at.button(key="lesson_next").disabled
    at.button(key="lesson_back").click().run()
    no_errors(at)
    assert at.session_state["lesson_step"] == N_STEPS - 1
    check_step(at, N_STEPS - 1, lang)


def test_lesson_step_through_adds_one_character_per_press(at):
    open_lesson(at, "ru", step=2)
    assert name_so_far(at, "ru") == "|" + plan.PREFIX
    assert at.button(key="lesson_step_reset").disabled
    candidates = charts(at)[0]["layout"]["yaxis"]["ticktext"]
    for presses in (1, 2):
        at.button(key="lesson_step_next").click().run()
        no_errors(at)
        assert len(name_so_far(at, "ru")) == len("|" + plan.PREFIX) + presses
    walk = at.session_state["lesson_walk"]
    assert walk[0].char in candidates and walk[1].read == walk[0].text  # greedy: the chart's pick, then on from there
    read = t("lesson.s2.read", "ru", char=walk[-1].text[-1])
    assert any(m.startswith(read) for m in markdowns(at))  # the experts of the character just added
    at.button(key="lesson_step_reset").click().run()
    assert name_so_far(at, "ru") == "|" + plan.PREFIX and not at.session_state["lesson_walk"]


def test_lesson_step_through_stops_when_the_model_ends_the_name(at):
    open_lesson(at, "en", step=2)
    for _ in range(ui.load_by_name("ru-names").model_config.block_size):
        if at.button(key="lesson_step_next").disabled:
            break
        at.button(key="lesson_step_next").click().run()
    no_errors(at)
    walk = at.session_state["lesson_walk"]
    assert walk[-1].finished
    if walk[-1].ended:
        assert at.success[0].value == t("gen.step.ended", "en", text=walk[-1].text)


def _page_state(app, step: int):
    """Open the lesson at `step` (walking two characters on step 2) and press its "open" button."""
    open_lesson(app, "en", step=step)
    if step == 2:
        for _ in range(2):
            app.button(key="lesson_step_next").click().run()
    app.button(key=f"lesson_open_{step}").click().run()
    no_errors(app)
    return app


@pytest.mark.parametrize(("step", "title", "checkpoint", "section"), [
    (1, "gen.title", "ru-names", None), (2, "gen.title", "ru-names", None),
    (3, "experts.title", "ru-en-names", "domains"), (4, "experts.title", "ru-en-names", "ablation"),
    (5, "experts.title", "ru-en-names", "routers"), (6, "train.title", None, None),
    (7, "experts.title", "ru-names", "letters"),
])
def test_lesson_open_buttons_land_on_the_page_with_its_model(at, step, title, checkpoint, section):
    _page_state(at, step)
    assert at.title[0].value == t(title, "en")
    if checkpoint:
        assert at.session_state["checkpoint"] == checkpoint
    if section:
        assert at.segmented_control(key="experts_section").value == section
    if step == 1:
        assert at.text_input(key="gen_prefix").value == plan.PREFIX
        assert " · ".join(f"**{n}**" for n in shipped_names()) in markdowns(at)
        assert len(charts(at)) == 3  # the generated names' routing, as after pressing Generate there
    elif step == 2:
        assert at.text_input(key="gen_step_prefix").value == plan.PREFIX
        assert len(at.session_state["gen_steps"]) == 2 and len(name_so_far(at, "en")) == len("|" + plan.PREFIX) + 2
    elif step == 4:
        report = ui.computed(experts_view, ui.load_by_name("ru-en-names")).domains
        spec = domain_top_experts(report, "ru", report.layers, plan.DROP_TOP_N)
        assert [tuple(at.pills(key=f"experts_off_{layer}").value) for layer in spec.layers] == list(spec.experts)
        assert at.get("plotly_chart")  # the ablation ran: the same one the lesson showed
    elif step == 5:
        assert at.dataframe  # the shoot-out table
    elif step == 6:
        assert at.selectbox(key="train_corpus").value == "ru-en-names"


def test_lesson_names_each_missing_model_and_its_command(at, tmp_path, monkeypatch):
    """A teacher deleted the mixed models: their steps say which and how to train them, nothing crashes."""
    copy_checkpoint(ui_models.CHECKPOINTS / "ru-names", tmp_path, "ru-names")
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    open_lesson(at, "ru", step=1)
    for step in range(1, N_STEPS + 1):
        no_errors(at)
        missing = {3: ["ru-en-names"], 4: ["ru-en-names"], 5: list(plan.SHOOTOUT), 6: ["ru-en-names"]}.get(step, [])
        assert [w.value for w in at.warning] == [t("lesson.missing", "ru", name=name) for name in missing]
        assert [c.value for c in at.code] == [plan.TRAIN_COMMANDS[name] for name in missing]
        assert bool(charts(at)) == (not missing)
        opens = [b.key for b in at.button if b.key.startswith("lesson_open_")]
        assert opens == ([] if step in (3, 4, 5) else [f"lesson_open_{step}"])  # the Train page needs no model
        if step < N_STEPS:
            at.button(key="lesson_next").click().run()


def test_lesson_training_step_shows_the_recorded_curve(at, tmp_path, monkeypatch):
    """A ru-en-names whose history recorded I(domain; expert): its curve, and when it first rose."""
    mixed = ui.load_by_name("ru-en-names")
    initial = [0.04, 0.03, 0.09]
    history = [{"step": 50 * i, "elapsed": 10.0 * i, "domain_mi": [0.02 * i] * 3, "domain_mi_initial": initial}
               for i in range(1, 7)]
    save_checkpoint(tmp_path, "ru-en-names", mixed.model, mixed.tokenizer, train_config=mixed.train_config,
                    corpus=mixed.corpus, history=history, summary=mixed.summary, step=history[-1]["step"])
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    open_lesson(at, "en", step=6)
    (curve,) = charts(at)
    assert [len(line["x"]) for line in traces(curve, "scatter")] == [6] * 4  # three layers + the untrained line
    assert notice(at, "en") == t("lesson.s6.notice", "en", step=250, seconds=50)  # 0.10 > 0.09 first at step 250


def test_first_rise_and_clearest_router():
    rows = [{"step": 1, "elapsed": 1.0},
            {"step": 2, "elapsed": 2.0, "domain_mi": [0.1, 0.2], "domain_mi_initial": [0.3, 0.1]},
            {"step": 3, "elapsed": 3.5, "domain_mi": [0.1, 0.4], "domain_mi_initial": [0.3, 0.1]}]
    assert plan.first_rise(rows) == plan.FirstRise(step=3, seconds=3.5)
    assert plan.first_rise(rows[:2]) is None and plan.first_rise([]) is None
    assert set(plan.TRAIN_COMMANDS) == {"ru-names", *plan.SHOOTOUT}
    assert all(f"--name {name} " in command and "--out checkpoints" in command
               for name, command in plan.TRAIN_COMMANDS.items())
