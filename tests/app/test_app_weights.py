"""AppTest: a checkpoint that kept its best-validation weights beside its last ones offers both in the
sidebar, and the pages then read the chosen ones; a checkpoint without them shows no choice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dsmini.checkpoint import save_checkpoint
from dsmini.config import preset
from dsmini.data import CharTokenizer
from dsmini.model import DSMini
from pages import _ui_models as ui_models
from tests.helpers import SHIPPED, app_test


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """en-names (no best weights) and "kept" (last and best weights that differ), and every load recorded."""
    (tmp_path / "en-names").symlink_to(SHIPPED / "en-names", target_is_directory=True)
    tok = CharTokenizer.from_names(["Anna", "Bob", "Olga"])
    cfg = preset("tiny", vocab_size=tok.vocab_size, block_size=8)
    torch.manual_seed(0)
    last = DSMini(cfg).eval()
    torch.manual_seed(1)
    best = DSMini(cfg).state_dict()
    save_checkpoint(tmp_path, "kept", last, tok, best_state=best)
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    loads = []
    real = ui_models.load_checkpoint

    def recording(path, **kwargs):
        ckpt = real(path, **kwargs)
        loads.append((Path(path).name, ckpt.weights, ckpt.model.state_dict()["head.weight"].clone()))
        return ckpt

    monkeypatch.setattr(ui_models, "load_checkpoint", recording)
    return {"loads": loads, "best": best, "last": last.state_dict()}


def run_app(checkpoint: str, **state) -> AppTest:
    at = app_test()
    at.session_state["lang"] = "en"
    at.session_state["checkpoint"] = checkpoint
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def weights_controls(at) -> list:
    return [c for c in at.sidebar.get("button_group") if c.key == "weights"]


def test_best_or_last_weights_for_a_checkpoint_that_has_both(folder):
    at = run_app("kept")
    assert len(weights_controls(at)) == 1
    assert ("kept", "last") in [(name, weights) for name, weights, _ in folder["loads"]]
    at = run_app("kept", weights="best")
    name, weights, head = folder["loads"][-1]
    assert (name, weights) == ("kept", "best")
    assert torch.equal(head, folder["best"]["head.weight"]) and not torch.equal(head, folder["last"]["head.weight"])


def test_no_choice_without_best_weights(folder):
    at = run_app("en-names")
    assert weights_controls(at) == []
