"""The checkpoints shipped in checkpoints/ load, have the full architecture and write real names."""

import re
from pathlib import Path

import pytest

from dsmini.checkpoint import list_checkpoints, load_checkpoint
from dsmini.generate import generate
from dsmini.speculative import speculative_decode

ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = {"ru-names": re.compile(r"^[А-ЯЁ][а-яё-]+$"), "en-names": re.compile(r"^[A-Z][a-z]+$")}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_is_small_full_architecture_and_trained(name):
    path = ROOT / name
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size < 5 * 1024 * 1024
    ckpt = load_checkpoint(path)
    cfg = ckpt.model_config
    assert (cfg.attn_type, cfg.ffn_type) == ("mla", "moe")
    assert cfg.n_shared_experts >= 1 and cfg.mtp_depth == 1
    assert ckpt.summary["val_loss"] < 2.1  # nats/char; an untrained model is ln(vocab) ~ 4
    assert name in {info.name for info in list_checkpoints(ROOT)}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_writes_names_of_its_language(name):
    ckpt = load_checkpoint(ROOT / name)
    names = [g.text for g in generate(ckpt.model, ckpt.tokenizer, n=40, temperature=0.8, seed=0)]
    looks_right = sum(bool(SHIPPED[name].match(n)) for n in names)
    assert looks_right >= 34, names  # capitalised, letters of the right alphabet
    assert len(set(names)) >= 30  # not one memorised answer


def test_ru_prefix_krас_gives_russian_surnames():
    ckpt = load_checkpoint(ROOT / "ru-names")
    names = [g.text for g in generate(ckpt.model, ckpt.tokenizer, prefix="Крас", n=10, temperature=0.8, seed=1)]
    assert all(n.startswith("Крас") and len(n) > 4 for n in names)
    assert all(SHIPPED["ru-names"].match(n) for n in names)


def test_shipped_mtp_head_drafts_well():
    ckpt = load_checkpoint(ROOT / "ru-names")
    results = [speculative_decode(ckpt.model, ckpt.tokenizer, prefix=p) for p in ("Крас", "Ив", "Смир", "Пет")]
    proposed = sum(r.drafts_proposed for r in results)
    accepted = sum(r.drafts_accepted for r in results)
    assert proposed > 0 and accepted / proposed > 0.3
