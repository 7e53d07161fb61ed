"""Views stored beside the shipped checkpoints (`python -m dsmini warm`): they match the checkpoints and
the code as they are now, read back equal to what the view computes, and are never trusted otherwise."""

import json
import shutil

import pytest
import torch

from dsmini.checkpoint import load_checkpoint
from dsmini.cli.warm import shipped, stored_calls
from dsmini.probes.generation import GenerateSettings, generate_view
from dsmini.probes.store import StoredViews, code_version, encode, entry_key, store_paths, stored_view, write_views
from tests.helpers import SHIPPED

REGENERATE = "run `python -m dsmini warm --checkpoints checkpoints` and commit checkpoints/.views"


def _same(a, b) -> bool:
    """Equal trees, equal tensors."""
    ta, tb = [], []
    return encode(a, ta) == encode(b, tb) and all(torch.equal(x, y) for x, y in zip(ta, tb, strict=True))


@pytest.mark.parametrize("name", sorted(shipped(SHIPPED)))
def test_the_stored_views_match_each_shipped_checkpoint_and_the_code(name):
    listed = shipped(SHIPPED)
    stored = StoredViews(listed[name], code_version())
    expected = stored_calls(load_checkpoint(listed[name]), listed)
    assert expected and set(expected) <= set(stored.entries), f"the stored views of {name} are stale: {REGENERATE}"


def test_a_stored_view_reads_back_equal_to_the_computed_one():
    ckpt = load_checkpoint(SHIPPED / "en-names")
    settings = GenerateSettings()
    found = stored_view(generate_view, (ckpt, settings))
    assert found is not None, REGENERATE
    assert _same(found, generate_view(ckpt, settings))


@pytest.fixture
def copy(tmp_path):
    """en-names in a folder of its own, with one stored view."""
    shutil.copytree(SHIPPED / "en-names", tmp_path / "en-names")
    ckpt = load_checkpoint(tmp_path / "en-names")
    key = entry_key(generate_view, (ckpt, GenerateSettings()))
    write_views(ckpt.path, {key: generate_view(ckpt, GenerateSettings())})
    return ckpt, key


def test_stored_views_are_not_used_for_other_code_or_tampered_tensors(copy, caplog):
    ckpt, key = copy
    assert StoredViews(ckpt.path, code_version()).get(key) is not None
    assert StoredViews(ckpt.path, "other code").entries == {}
    json_path, tensor_path = store_paths(ckpt.path)
    tensor_path.write_bytes(tensor_path.read_bytes()[:-1] + b"\x01")
    assert StoredViews(ckpt.path, code_version()).entries == {} and "does not match" in caplog.text


def test_a_resaved_checkpoint_has_no_stored_view(copy):
    ckpt, key = copy
    meta = ckpt.path / "checkpoint.json"
    meta.write_bytes(meta.read_bytes() + b" ")  # another save: other bytes, other mtime
    resaved = load_checkpoint(ckpt.path)
    assert entry_key(generate_view, (resaved, GenerateSettings())) != key
    assert entry_key(generate_view, (ckpt, GenerateSettings())) is None  # the loaded one is no longer on disk


def test_only_dsmini_dataclasses_are_rebuilt(copy, caplog):
    ckpt, key = copy
    json_path, _ = store_paths(ckpt.path)
    meta = json.loads(json_path.read_bytes())
    meta["entries"][key] = {"$dc": "subprocess:Popen", "args": "true"}
    json_path.write_text(json.dumps(meta))
    assert StoredViews(ckpt.path, code_version()).get(key) is None and "not a dsmini class" in caplog.text
