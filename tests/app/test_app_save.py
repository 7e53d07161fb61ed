"""AppTest for saving a run from the Train page: a taken name asks (one-click free name, or an explicit
replace), a shipped name is refused, a bad name's error stays until dismissed; and a new session that
brings the run id in its URL (a reload) gets the run back."""

import shutil
import time

import pytest
from streamlit.testing.v1 import AppTest

from dsmini.checkpoint import load_checkpoint
from dsmini.i18n import t
from pages import _ui_models as ui_models
from tests.helpers import SHIPPED, app_test, end_session, finished_run

pytestmark = pytest.mark.usefixtures("fresh_session")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A checkpoints folder holding one shipped model, so the test never writes to the real one."""
    shutil.copytree(SHIPPED / "en-names", tmp_path / "en-names")
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    return tmp_path


def save(at: AppTest, name: str) -> None:
    at.text_input(key="train_save_name").set_value(name)
    at.button(key="train_save").click().run()
    assert not at.exception, [e.value for e in at.exception]


def buttons(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_saving_under_a_taken_name_asks_and_the_free_name_saves_in_one_click(folder, lang):
    at = finished_run(lang)
    save(at, "mine")
    assert (folder / "mine").is_dir() and t("train.saved", lang, name="mine") in [s.value for s in at.success]

    save(at, "mine")  # taken: nothing is written, the page asks
    asked = t("train.save_exists", lang, name="mine")
    assert warnings(at) == [asked] and {"train_save_free", "train_save_replace", "train_save_dismiss"} <= buttons(at)
    at.run()
    at.run()  # the live panel's redraws do not hide the question
    assert warnings(at) == [asked]
    assert at.button(key="train_save_free").label == t("train.save_as", lang, name="mine-2")
    at.button(key="train_save_free").click().run()
    assert not at.exception and warnings(at) == []
    assert load_checkpoint(folder / "mine-2").step == 10
    assert t("train.saved", lang, name="mine-2") in [s.value for s in at.success]

    save(at, "mine")
    mtime = (folder / "mine" / "checkpoint.json").stat().st_mtime_ns
    at.button(key="train_save_replace").click().run()  # replacing is explicit, and then it happens
    assert not at.exception and warnings(at) == []
    assert (folder / "mine" / "checkpoint.json").stat().st_mtime_ns != mtime


@pytest.mark.slow
def test_a_shipped_name_is_refused_without_a_replace_button(folder):
    before = (folder / "en-names" / "checkpoint.json").read_bytes()
    at = finished_run("en")
    save(at, "en-names")
    assert warnings(at) == [t("train.save_shipped", "en", name="en-names")]
    assert "train_save_replace" not in buttons(at)
    at.button(key="train_save_free").click().run()
    assert (folder / "en-names-2").is_dir() and load_checkpoint(folder / "en-names-2").step == 10
    assert (folder / "en-names" / "checkpoint.json").read_bytes() == before


@pytest.mark.slow
def test_a_bad_names_error_stays_until_dismissed(folder):
    at = finished_run("en")
    save(at, "../escape")
    assert len(at.error) == 1 and at.error[0].value.startswith(t("train.save_failed", "en", error=""))
    for _ in range(3):  # each AppTest run redraws the live fragment, as its run_every would
        time.sleep(0.3)
        at.run()
        assert len(at.error) == 1
    at.button(key="train_save_dismiss").click().run()
    assert not at.error and not at.exception
    assert sorted(p.name for p in folder.iterdir()) == ["en-names"]


@pytest.mark.slow
def test_a_new_session_with_the_run_id_in_its_url_gets_the_run_back(folder):
    first = finished_run("en")
    run_id = first.query_params["run"]
    assert run_id
    end_session()  # F5
    reloaded = app_test()
    reloaded.query_params["run"] = run_id
    reloaded.run()
    reloaded.switch_page("pages/train.py").run()
    assert not reloaded.exception
    assert reloaded.get("download_button") and reloaded.query_params["run"] == run_id
    assert reloaded.get("progress")[0].proto.text == t("train.state_completed", "en", step=10, total=10)
    save(reloaded, "from-the-reload")
    assert load_checkpoint(folder / "from-the-reload").step == 10


def test_an_unknown_run_id_says_the_run_is_gone(folder):
    at = app_test()
    at.query_params["run"] = "no-such-run"
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception and t("train.run_gone", "en") in [i.value for i in at.info]
