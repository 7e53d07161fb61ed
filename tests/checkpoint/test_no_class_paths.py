"""Checkpoint files stay readable whatever the package's layout: they name no module or class of dsmini,
so moving code never breaks a saved model."""

import json
import re

import pytest

from dsmini.checkpoint import save_checkpoint
from dsmini.config import preset
from dsmini.data import CharTokenizer
from dsmini.model import DSMini
from tests.helpers import SHIPPED

MODULE_PATH = re.compile(r"\bdsmini\.[a-z_]+")  # dsmini.model, dsmini.checkpoint.store, ...


def module_paths(text: str) -> list[str]:
    return MODULE_PATH.findall(text)


def test_the_scan_finds_a_module_path():
    assert module_paths('{"class": "dsmini.model.transformer.DSMini", "dsmini_version": "0.1.0"}') == [
        "dsmini.model"
    ]


@pytest.mark.parametrize("name", sorted(p.parent.name for p in SHIPPED.glob("*/checkpoint.json")))
def test_a_shipped_checkpoint_names_no_module(name):
    assert module_paths((SHIPPED / name / "checkpoint.json").read_text()) == []


def test_a_new_checkpoint_names_no_module(tmp_path):
    tokenizer = CharTokenizer.from_names(["anna", "boris"])
    model = DSMini(preset("tiny", vocab_size=tokenizer.vocab_size, block_size=8))
    path = save_checkpoint(tmp_path, "run", model, tokenizer)
    assert json.loads((path / "checkpoint.json").read_text())["model_config"]["vocab_size"] == tokenizer.vocab_size
    assert module_paths((path / "checkpoint.json").read_text()) == []
