"""AppTest for the transformers download: beside the dsmini checkpoint on Home's model card and under a
finished run on the Train page, a zip of the exported folder; a model transformers cannot express gets
the reason instead of the button."""

import io
import zipfile

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from dsmini.i18n import t
from tests.helpers import app_test, finished_run

pytestmark = pytest.mark.usefixtures("fresh_session")


@pytest.fixture
def built_on_click(monkeypatch) -> dict:
    """file name -> the callable a download button runs on click (AppTest cannot click one)."""
    deferred = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        deferred[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return deferred


def zip_names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.namelist()


def download_keys(at: AppTest) -> set[str]:
    return {b.key for b in at.get("download_button")}


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_home_card_offers_the_transformers_folder_beside_the_checkpoint(built_on_click, lang):
    at = app_test()
    at.session_state["lang"] = lang
    at.run()
    name = at.selectbox(key="checkpoint").value  # a session opens on its language's names
    assert not at.exception and name == {"en": "en-names", "ru": "ru-names"}[lang]
    assert download_keys(at) >= {"home_download", "home_transformers"}
    labels = {b.label for b in at.get("download_button")}
    assert {t("export.checkpoint", lang), t("export.download", lang)} <= labels
    assert f"{name}-transformers/config.json" in zip_names(built_on_click[f"{name}-transformers.zip"]())
    assert f"{name}/checkpoint.json" in zip_names(built_on_click[f"{name}.zip"]())


def test_home_says_why_a_model_has_no_transformers_folder(built_on_click):
    at = app_test()
    at.run()
    at.selectbox(key="checkpoint").set_value("ru-full-names").run()
    assert not at.exception
    assert download_keys(at) == {"home_download"}
    assert t("export.refused", "en", setting="attn_type=moba") in [i.value for i in at.info]


@pytest.mark.slow
def test_a_finished_run_offers_the_transformers_folder(built_on_click):
    at = finished_run("en")
    assert download_keys(at) >= {"train_download", "train_transformers"}
    names = zip_names(built_on_click["dsmini-run-transformers.zip"]())
    assert "dsmini-run-transformers/config.json" in names and "dsmini-run-transformers/model.safetensors" in names
