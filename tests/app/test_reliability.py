"""Bad input through the app: every refusal is a clear message and the app keeps running."""

import shutil
import time

import pytest
import torch

from pages import _ui as ui
from pages import _ui_models as ui_models
from tests.helpers import SHIPPED, app_test


@pytest.fixture
def train_page():
    at = app_test()
    at.run()
    at.switch_page("pages/train.py").run()
    at.segmented_control(key="train_source").set_value("upload").run()
    return at


def upload(at, content: bytes, name: str = "names.txt"):
    at.file_uploader(key="train_upload").set_value((name, content, "text/plain"))
    return at.run()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"   \n\t\n  \n", "whitespace"),
        (b"\x00\x01\x02binary\x00junk", "binary"),
        ("Анна\nБорис\n".encode("cp1251"), "UTF-8"),
        (b"Anna\n", "at least 2"),
        ("\n".join(chr(0x4E00 + i) * 3 for i in range(3000)).encode(), "distinct characters"),
        (b"A" * (6 * 1024 * 1024), "MB"),
    ],
    ids=["empty", "whitespace", "binary", "not-utf8", "single-name", "huge-alphabet", "over-size-cap"],
)
def test_bad_uploads_give_a_clear_message(train_page, content, message):
    at = upload(train_page, content)
    assert not at.exception
    assert len(at.error) == 1 and message.lower() in at.error[0].value.lower(), at.error[0].value


def test_crlf_bom_upload_and_overlong_names_are_handled(train_page):
    text = "\ufeffAnna\r\nBoris\r\nClara\r\n" + "X" * 500 + "\r\n"
    at = upload(train_page, text.encode("utf-8"))
    assert not at.exception and not at.error
    assert at.metric[0].value == "3"  # the 500-char line is dropped (and counted), BOM/CRLF stripped
    assert any("1 too long" in c.value for c in at.caption)  # the corpus caption counts the dropped line


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch):
    shutil.copytree(SHIPPED / "en-names", tmp_path / "good")
    shutil.copytree(SHIPPED / "en-names", tmp_path / "truncated")
    weights = tmp_path / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "checkpoint.json").write_text('{"format": "something-else"}')
    (tmp_path / "evil.pkl").write_bytes(b"\x80\x04cos\nsystem\n.")
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    return tmp_path


def test_broken_checkpoints_never_crash_the_app(checkpoint_dir):
    at = app_test()
    at.run()
    assert not at.exception
    picker = at.selectbox(key="checkpoint")
    assert "foreign" not in picker.options and "evil.pkl" not in picker.options
    picker.set_value("good").run()
    assert not at.exception and not at.error
    if "truncated" in picker.options:  # listed from its JSON, refused when loaded
        picker.set_value("truncated").run()
        assert not at.exception
        assert at.error and "truncated" in at.error[0].value


@pytest.mark.slow
def test_save_names_with_paths_are_refused(checkpoint_dir):
    from dsmini.jobs.slots import set_max_concurrent_jobs

    set_max_concurrent_jobs(8)  # never queued behind a run another test left stopping
    at = app_test()
    at.run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="train_preset").set_value("tiny")
    at.number_input(key="train_steps").set_value(10)
    at.button(key="train_start").click().run()
    deadline = time.time() + 90
    while time.time() < deadline:
        at.run()
        if at.get("text_input") and any(w.key == "train_save_name" for w in at.text_input):
            break
    for bad in ["../evil", "a/b", ".hidden", ""]:
        at.text_input(key="train_save_name").set_value(bad)
        at.button(key="train_save").click().run()
        assert not at.exception
        assert at.error, bad
    assert sorted(p.name for p in checkpoint_dir.iterdir()) == ["evil.pkl", "foreign", "good", "truncated"]
    at.text_input(key="train_save_name").set_value("my-run")
    at.button(key="train_save").click().run()
    assert not at.exception and not at.error
    assert (checkpoint_dir / "my-run" / "model.safetensors").exists()
    assert "my-run" in [info.name for info in ui.checkpoints()]  # what the sidebar picker lists


@pytest.mark.slow
def test_no_page_changes_the_shared_models():
    """Every session reads the same cached Checkpoint: a page that changed its weights, buffers, mode or
    router biases would change what every other student sees."""
    shared = ui.load_by_name("en-names")

    def fingerprint():
        return {k: v.clone() for k, v in shared.model.state_dict().items()}, shared.model.training

    before_weights, before_mode = fingerprint()
    at = app_test()
    at.session_state["checkpoint"] = "en-names"
    at.run()
    at.button(key="home_generate").click().run()
    at.switch_page("pages/generate.py").run()
    at.text_input(key="gen_prefix").set_value("Ma")
    at.button[0].click().run()
    at.switch_page("pages/experts.py").run()
    at.pills(key="experts_expert").set_value(5).run()  # ablation: that expert switched off, for this run only
    for page in ("attention", "kv_cache", "compare"):
        at.switch_page(f"pages/{page}.py").run()
    at.switch_page("pages/mtp.py").run()
    at.button(key="mtp_measure").click().run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    after_weights, after_mode = fingerprint()
    assert after_mode == before_mode is False  # eval mode: no dropout, no router noise, no bias updates
    assert after_weights.keys() == before_weights.keys()
    assert all(torch.equal(before_weights[k], after_weights[k]) for k in before_weights)
