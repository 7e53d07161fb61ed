"""Batched self-speculative decoding (`speculative_generate`): every row equals plain greedy, whatever
the other rows do, with mixed prefix lengths, max_len cuts and rows that end early."""

from __future__ import annotations

import pytest
import torch

from dsmini.checkpoint import checkpoint_validation_set, load_checkpoint
from dsmini.config import preset
from dsmini.data import CharTokenizer
from dsmini.decoding import generate, speculative_decode, speculative_generate
from dsmini.model import DSMini
from tests.helpers import SHIPPED

TOK = CharTokenizer.from_names(["Анна", "Олег", "Мария", "Иван", "Пётр", "Ольга", "Нина", "Егор", "Лев", "Вера"])
PREFIXES = ["", "А", "Ол", "Мар", "Е", "", "Ив", "Пётр"]


def plain_ids(model, tok, prefixes, **kwargs) -> list[list[int]]:
    return [generate(model, tok, p, n=1, temperature=0, **kwargs)[0].ids for p in prefixes]


@pytest.mark.parametrize("max_len", [None, 4])
@pytest.mark.parametrize("attn_type", ["mla", "mha"])
def test_batched_greedy_equals_plain_greedy_for_every_row(attn_type, max_len):
    torch.manual_seed(1)
    model = DSMini(preset("tiny", vocab_size=TOK.vocab_size, block_size=10, attn_type=attn_type)).eval()
    results = speculative_generate(model, TOK, PREFIXES, max_len=max_len)
    assert [r.ids for r in results] == plain_ids(model, TOK, PREFIXES, max_len=max_len)
    assert [r.ids for r in results] == [speculative_decode(model, TOK, p, max_len=max_len).ids for p in PREFIXES]
    for r in results:
        assert r.drafts_accepted == sum(s.accepted for s in r.timeline)
        assert all(r.ids[s.position] == s.chosen_id for s in r.timeline)


def test_batched_on_a_shipped_checkpoint_equals_plain_and_saves_passes():
    ckpt = load_checkpoint(SHIPPED / "en-names")
    names = checkpoint_validation_set(ckpt.corpus, 40).names
    prefixes = [name[: i % 4] for i, name in enumerate(names)]
    results = speculative_generate(ckpt.model, ckpt.tokenizer, prefixes)
    assert [r.ids for r in results] == plain_ids(ckpt.model, ckpt.tokenizer, prefixes)
    # per row, the same passes and drafts as decoding it alone
    alone = [speculative_decode(ckpt.model, ckpt.tokenizer, p) for p in prefixes]
    assert [r.main_forward_passes for r in results] == [a.main_forward_passes for a in alone]
    assert [r.timeline for r in results] == [a.timeline for a in alone]
    assert sum(r.generated_tokens for r in results) > 1.3 * sum(r.main_forward_passes for r in results) - len(results)


def test_without_drafts_it_is_plain_greedy_one_pass_per_decision():
    torch.manual_seed(2)
    model = DSMini(preset("tiny", vocab_size=TOK.vocab_size, block_size=10)).eval()
    results = speculative_generate(model, TOK, PREFIXES, draft=False)
    assert [r.ids for r in results] == plain_ids(model, TOK, PREFIXES)
    assert all(r.timeline == [] and r.main_forward_passes == r.generated_tokens + (not r.finished) for r in results)


def test_n_names_from_one_prefix_and_seeded_sampling_replays():
    torch.manual_seed(3)
    model = DSMini(preset("tiny", vocab_size=TOK.vocab_size, block_size=10)).eval()
    one = speculative_generate(model, TOK, "А", n=6, temperature=1.0, seed=5)
    again = speculative_generate(model, TOK, "А", n=6, temperature=1.0, seed=5)
    assert len(one) == 6 and [r.ids for r in one] == [r.ids for r in again]
    assert all(r.ids[:2] == TOK.frame_for(model.cfg, "А", 9, what="prefix") for r in one)
    with pytest.raises(ValueError, match="at least one prefix"):
        speculative_generate(model, TOK, [])
