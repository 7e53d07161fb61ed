"""AppTest for every page: driven through its widgets, on the shipped checkpoints."""

import runpy
import time

import numpy as np
import plotly.graph_objects as go
import pytest

from dsmini.i18n import fmt_int, t
from dsmini.jobs.slots import set_max_concurrent_jobs
from pages import _ui as ui
from pages import _ui_shared
from tests.helpers import APP, charts, no_errors, opened


def test_app_script_is_inert_when_a_training_process_imports_it():
    """multiprocessing re-imports `__main__` (under Streamlit, app.py) in every training process it starts."""
    namespace = runpy.run_path(str(APP), run_name="__mp_main__")
    assert callable(namespace["main"]) and "st" not in namespace and "ui" not in namespace


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_home_shows_model_card_diagram_and_generates(at, lang):
    at.session_state["lang"] = lang
    at.run()
    no_errors(at)
    assert at.title[0].value == t("home.title", lang)
    assert len(charts(at)) == 1  # the architecture diagram
    labels = [m.label for m in at.metric]
    assert t("home.val_loss", lang) in labels
    total = ui.load_by_name(at.session_state["checkpoint"]).param_counts["main"]["total"]
    params = next(m.value for m in at.metric if m.label == t("home.params", lang))
    assert params == fmt_int(total, lang) and total > 1000  # grouped as the language writes numbers
    assert ("\u202f" in params) == (lang == "ru") and ("," in params) == (lang == "en")
    at.button(key="home_generate").click().run()
    no_errors(at)
    names = at.session_state["home_names"]
    assert len(names) == 10 and all(names)
    assert " · ".join(f"**{n}**" for n in names) in [m.value for m in at.markdown]


def test_home_forgets_the_names_of_the_previous_model(at):
    at.run()  # an English session opens on en-names
    assert at.selectbox(key="checkpoint").value == "en-names"
    at.button(key="home_generate").click().run()
    shown = " · ".join(f"**{n}**" for n in at.session_state["home_names"])
    assert shown in [m.value for m in at.markdown]
    at.session_state["checkpoint"] = "ru-names"  # the sidebar's pick (AppTest loses the sidebar after a click)
    at.run()
    no_errors(at)
    assert any(m.value == "ru-names" for m in at.metric)
    assert shown not in [m.value for m in at.markdown]  # the new card shows no names of the old model
    at.button(key="home_generate").click().run()
    assert all(name.strip("…").isalpha() for name in at.session_state["home_names"])


def test_sidebar_lists_shipped_checkpoints_and_switches(at):
    at.run()
    # the sidebar says where pages compute and where training runs (no GPU here: both on the CPU)
    assert t("ui.device", "en", explorer="cpu", training="cpu") in [c.value for c in at.caption]
    picker = at.selectbox(key="checkpoint")
    assert {"en-names", "ru-names"} <= set(picker.options)
    picker.set_value("ru-names").run()
    no_errors(at)
    assert any(m.value == "ru-names" for m in at.metric)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_generate_page_names_and_routing_chart_shape(at, lang):
    at.session_state["lang"] = lang
    at.session_state["checkpoint"] = "ru-names"
    at.run()
    at.switch_page("pages/generate.py").run()
    no_errors(at)
    at.text_input(key="gen_prefix").set_value("Крас")
    at.number_input(key="gen_n").set_value(5)
    at.button[0].click().run()  # the form's submit button
    no_errors(at)
    names = at.session_state["gen_names"]
    assert len(names) == 5 and all(n.startswith("Крас") for n in names)
    figures = charts(at)
    assert len(figures) == 3  # routing, next-char heatmap, next-char bars
    picked = at.selectbox(key="gen_pick").value
    ckpt = ui.load_by_name("ru-names")
    cfg = ckpt.model_config
    routing = figures[0]
    heatmaps = [trace for trace in routing["data"] if trace["type"] == "heatmap"]
    assert len(heatmaps) == cfg.n_layers - cfg.n_dense_layers  # one panel per MoE layer
    for panel in heatmaps:
        rows = panel["z"]
        assert len(rows) == cfg.n_routed_experts + 1  # + the always-on shared row
        assert all(len(row) == len(picked) + 1 for row in rows)  # boundary + each character


# «e» + U+0301 is «é» once NFC-normalised, as the CLI reads it: the refusal names «é», not a bare accent
@pytest.mark.parametrize("prefix, named", [("Жa", "'Ж'"), ("Re\u0301", "'é'")], ids=["cyrillic", "combining-accent"])
def test_generate_page_refuses_out_of_vocabulary_prefix(at, prefix, named):
    at.session_state["checkpoint"] = "en-names"
    at.run()
    at.switch_page("pages/generate.py").run()
    at.text_input(key="gen_prefix").set_value(prefix)
    at.button[0].click().run()
    assert not at.exception
    assert named in at.error[0].value and "\u0301'" not in at.error[0].value


def test_generate_page_extreme_widget_values(at):
    at.session_state["checkpoint"] = "en-names"
    at.run()
    at.switch_page("pages/generate.py").run()
    at.slider(key="gen_temperature").set_value(0.0)
    at.number_input(key="gen_top_k").set_value(0)
    at.number_input(key="gen_max_len").set_value(1)
    at.text_input(key="gen_prefix").set_value("Ma")
    at.button[0].click().run()
    assert not at.exception
    assert at.error  # prefix longer than max length: a message, not a crash
    at.text_input(key="gen_prefix").set_value("")
    at.button[0].click().run()
    no_errors(at)
    assert all(len(n) <= 1 for n in at.session_state["gen_names"])
    shown = at.session_state["gen_shown"]
    assert all(s in (n, n + "…") for s, n in zip(shown, at.session_state["gen_names"]))
    assert any(s.endswith("…") for s in shown)  # one letter: a name the model had not ended is marked
    assert t("gen.cut_legend", "en") in [c.value for c in at.caption]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_train_page_runs_a_tiny_job_live_and_stops_it(at, lang):
    set_max_concurrent_jobs(1)
    opened(at, "train", lang)
    assert at.metric[0].value  # corpus stats shown before training
    at.selectbox(key="train_preset").set_value("tiny")
    at.number_input(key="train_steps").set_value(2000)
    at.button(key="train_start").click().run()
    no_errors(at)
    deadline = time.time() + 60
    while time.time() < deadline:
        at.run()  # run_every fragments do not rerun by themselves in AppTest
        if any(t("train.m_loss", lang) == m.label and m.value != "-" for m in at.metric):
            break
        time.sleep(0.5)
    no_errors(at)
    loss = next(m for m in at.metric if m.label == t("train.m_loss", lang))
    assert float(loss.value.replace(",", ".")) > 0  # Russian: a decimal comma
    assert ("," in loss.value) == (lang == "ru")
    live_loss = [trace for spec in charts(at) for trace in spec["data"]
                 if trace.get("name") == t("chart.loss.train", lang)]
    assert live_loss and live_loss[0]["y"][-1] > 0  # the live loss curve, a Plotly chart in the page's language
    at.button(key="train_stop").click().run()
    deadline = time.time() + 30
    while time.time() < deadline and not at.get("download_button"):
        time.sleep(0.3)
        at.run()
    no_errors(at)
    assert at.button(key="train_resume")  # finished actions are offered
    assert t("train.state_stopped", lang, step="#", total="#").split("#")[0] in at.get("progress")[0].proto.text


def test_train_settings_survive_a_visit_to_another_page(at):
    at.run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="train_preset").set_value("tiny")
    at.selectbox(key="train_corpus").set_value("ru-names")
    at.number_input(key="train_steps").set_value(1234)
    at.number_input(key="train_lr").set_value(0.01).run()
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/train.py").run()
    no_errors(at)
    assert at.selectbox(key="train_preset").value == "tiny" and at.selectbox(key="train_corpus").value == "ru-names"
    assert at.number_input(key="train_steps").value == 1234 and at.number_input(key="train_lr").value == 0.01
    assert at.number_input(key="train_batch").value == 64  # untouched: still the default


def test_figures_are_built_once_for_every_session_that_shows_them():
    """ui.figure: the same chart of the same shared inputs is one object, whoever asks; other inputs
    (a language, a per-session object) get their own; the cache stays bounded."""
    built = []

    def chart(view, lang, initial=False):
        built.append((lang, initial))
        return {"lang": lang}

    view = {"shared": [1, 2]}  # unhashable, like a view's parts: keyed by identity
    first = ui.figure(chart, view, "en")
    assert ui.figure(chart, view, "en") is first and built == [("en", False)]
    assert ui.figure(chart, view, "ru") is not first and ui.figure(chart, view, "en", initial=True) is not first
    assert ui.figure(chart, {"shared": [1, 2]}, "en") is not first  # an equal copy is another object
    assert len(built) == 4
    for i in range(ui.MAX_FIGURES + 10):
        ui.figure(chart, view, f"lang{i}")
    assert len(_ui_shared._FIGURES) == ui.MAX_FIGURES


def test_a_shared_figure_is_sent_as_built_and_serialised_once():
    """ui.frozen: what st.plotly_chart reads from a shared figure (its to_dict()) is the figure's own,
    made once for every session that shows it."""
    fig = go.Figure(go.Heatmap(z=np.arange(6.0).reshape(2, 3)), layout={"title": "shared", "height": 200})
    expected = fig.to_dict()
    shared = ui.frozen(fig)
    assert shared is fig and isinstance(shared, go.Figure)
    assert shared.to_dict() == expected and shared.to_dict() is shared.to_dict()


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_large_text_switch_scales_the_charts(at, lang):
    at.session_state["lang"] = lang
    at.run()
    (normal,) = charts(at)
    at.toggle(key="large_text").set_value(True).run()
    no_errors(at)
    (large,) = charts(at)  # the architecture diagram
    assert large["layout"]["font"]["size"] == round(12 * ui.LARGE_TEXT_SCALE)
    assert large["layout"]["height"] > normal["layout"]["height"]
    if lang == "ru":  # a decimal comma and a narrow no-break space on ticks and hover numbers
        assert large["layout"]["separators"] == ",\u202f"
