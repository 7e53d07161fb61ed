"""Chained speculative decoding (each round up to mtp_depth drafts, module k reading module k-1's
state and the previous draft): greedy output equals plain greedy on 100 val names of every shipped
checkpoint, the chain's drafts are exactly what the teacher-forced MTP modules predict (so the
per-depth caches are kept right across accepted and rejected rounds), and sampled chains keep the
main model's law."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from dsmini.checkpoint import checkpoint_validation_set, load_checkpoint
from dsmini.config import preset
from dsmini.data import BOUNDARY_ID, CharTokenizer
from dsmini.decoding import generate, inference, speculative_decode, speculative_generate
from dsmini.model import DSMini
from dsmini.probes.mtp import acceptance_stats
from tests.helpers import SHIPPED

CHECKPOINTS = sorted(p.name for p in SHIPPED.iterdir() if (p / "checkpoint.json").exists())
CHAINED = "ru-names-mtp2"


def val_prefixes(ckpt, n: int = 100) -> list[str]:
    """The first 1-3 characters of the checkpoint's first `n` val names."""
    return [name[: 1 + i % 3] for i, name in enumerate(checkpoint_validation_set(ckpt.corpus, n).names)]


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_greedy_on_100_val_names_equals_plain_greedy(name):
    ckpt = load_checkpoint(SHIPPED / name)
    model, tok = ckpt.model, ckpt.tokenizer
    prefixes = val_prefixes(ckpt)
    # plain greedy of many prefixes through the same loop (equal to `generate`: tests/decoding/test_speculative.py)
    plain = [r.ids for r in speculative_generate(model, tok, prefixes, draft=False)]
    chained = speculative_generate(model, tok, prefixes)
    assert [r.ids for r in chained] == plain
    for prefix, ids in zip(prefixes[:3], plain):  # and against `generate` itself, one by one
        assert (speculative_decode(model, tok, prefix).ids == ids
                == generate(model, tok, prefix, n=1, temperature=0)[0].ids)
    stats = acceptance_stats(chained)
    assert sorted(stats.by_depth) == list(range(1, ckpt.model_config.mtp_depth + 1))
    assert stats.chars_per_forward > 1.3  # every shipped MTP model saves passes


def teacher_forced_draft(model: DSMini, ids: list[int], position: int, depth: int) -> int:
    """What MTP module `depth` predicts for ids[position] from the true ids before it, computed from
    scratch (the training path: every module fed the true tokens, no cache)."""
    idx = torch.tensor([ids[:position]])
    with inference(model):
        out = model(idx, torch.zeros_like(idx))  # real targets: MoE routes every position
    return int(out.mtp_logits[depth - 1][0, -1].argmax())


def test_chained_drafts_are_the_teacher_forced_modules_predictions():
    ckpt = load_checkpoint(SHIPPED / CHAINED)
    prefixes = val_prefixes(ckpt, 24)
    results = speculative_generate(ckpt.model, ckpt.tokenizer, prefixes)
    steps = [(r, s) for r in results for s in r.timeline]
    assert {s.depth for _, s in steps} == {1, 2}
    for r, s in steps:
        assert s.draft_id == teacher_forced_draft(ckpt.model, r.ids, s.position, s.depth), (r.text, s)
    # each row alone drafts and keeps the same as in the batch
    assert [r.timeline for r in results[:6]] == [speculative_decode(ckpt.model, ckpt.tokenizer, p).timeline
                                                 for p in prefixes[:6]]


def test_depth_1_of_a_chained_model_is_the_one_draft_loop():
    ckpt = load_checkpoint(SHIPPED / CHAINED)
    prefixes = val_prefixes(ckpt, 20)
    one, two = (speculative_generate(ckpt.model, ckpt.tokenizer, prefixes, depth=k) for k in (1, 2))
    assert [r.ids for r in one] == [r.ids for r in two]
    assert all(s.depth == 1 for r in one for s in r.timeline)
    passes = [sum(r.main_forward_passes for r in run) for run in (one, two)]
    assert passes[1] < passes[0]  # the second module's accepted drafts save passes
    with pytest.raises(ValueError, match="depth must be an integer in \\[1, mtp_depth=2\\]"):
        speculative_decode(ckpt.model, ckpt.tokenizer, "А", depth=3)


def test_sampled_chain_keeps_the_main_models_law():
    """A 2-letter alphabet, names of at most 3 letters, drafts of depth 2 from random modules: the law
    of whole names under chained speculative sampling equals the main model's, computed exactly."""
    tok = CharTokenizer(["a", "b"])
    torch.manual_seed(0)
    cfg = preset("tiny", vocab_size=tok.vocab_size, block_size=5, ffn_type="dense", n_layers=1, mtp_depth=2)
    model = DSMini(cfg).eval()
    with torch.no_grad():
        model.head.weight.mul_(8)  # spread-out p and q that differ, so a wrong rule shows
    temperature = 0.8

    def law(ids: list[int]) -> torch.Tensor:
        with torch.inference_mode():
            return model(torch.tensor([ids])).logits[0, -1].div(temperature).softmax(-1)

    expected: Counter = Counter()  # a whole name: letters + [B], or 3 letters cut at max_len
    open_ = [([BOUNDARY_ID], 1.0)]
    while open_:
        ids, p = open_.pop()
        for token, q in enumerate(law(ids).tolist()):
            if token == BOUNDARY_ID:
                expected[(*ids[1:], BOUNDARY_ID)] += p * q
            elif len(ids) == 4:  # a fourth letter: the name is cut at its three
                expected[tuple(ids[1:])] += p * q
            else:
                open_.append((ids + [token], p * q))
    trials = 600
    counts, checked = Counter(), Counter()
    for seed in range(trials):
        spec = speculative_decode(model, tok, max_len=3, temperature=temperature, seed=seed)
        counts[tuple(spec.ids[1:])] += 1
        checked.update((s.depth, s.accepted) for s in spec.timeline)
    total_variation = 0.5 * sum(abs(counts[k] / trials - p) for k, p in expected.items())
    assert sum(counts.values()) == trials
    # these 600 seeded draws: TV 0.05; accepting every draft instead gives 0.67
    assert total_variation < 0.1, (total_variation, counts, expected)
    assert checked[2, True] and checked[2, False] and checked[1, False]  # every branch of the rule was taken
