"""Generation invariants: cached decoding == full recompute, sampling knobs, argument checks,
speculative decoding == plain greedy, and speculative sampling keeps the model's distribution."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from dsmini.config import preset
from dsmini.data import BOUNDARY_ID, CharTokenizer, UnknownCharacterError, encode_names
from dsmini.decoding.generate import (
    TOP_ALTERNATIVES,
    decode_one_token,
    generate,
    greedy_without_cache,
    next_token_probs,
    prefill,
    sample_next,
)
from dsmini.decoding.speculative import speculative_decode, verify_draft
from dsmini.model import DSMini
from tests.helpers import RU_NAMES as NAMES

TOK = CharTokenizer.from_names(NAMES)
BLOCK = 12
PREFIXES = ["", "А", "Ол", "Вер"]


def make_model(attn_type: str = "mla", seed: int = 0, tokenizer: CharTokenizer = TOK, **overrides) -> DSMini:
    torch.manual_seed(seed)
    cfg = preset("tiny", vocab_size=tokenizer.vocab_size, block_size=BLOCK, attn_type=attn_type, **overrides)
    return DSMini(cfg).eval()


@pytest.fixture(scope="module")
def trained() -> DSMini:
    """The tiny MLA model overfitted on NAMES: greedy names end, and the MTP head drafts well."""
    model = make_model().train()
    x, y = encode_names(NAMES, TOK, BLOCK)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):  # well past fitting: at 40 steps a greedy name could turn on a float's last bit
        loss = model(x, y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def start_ids(prefix: str) -> list[int]:
    return [BOUNDARY_ID, *TOK.encode(prefix)]


# --- cached decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize("absorb", [True, False])
@pytest.mark.parametrize("attn_type", ["mla", "mha", "gqa", "mqa"])
def test_cached_greedy_equals_full_recompute(attn_type, absorb):
    model = make_model(attn_type)
    for prefix in PREFIXES:
        expected = greedy_without_cache(model, start_ids(prefix))
        rows = generate(model, TOK, prefix, n=3, temperature=0, absorb=absorb)
        assert [g.ids for g in rows] == [expected] * 3  # batching changes no row


def test_trained_model_greedy_completes_names(trained):
    for prefix in ["А", "Ол", "Ве", "Н"]:
        (g,) = generate(trained, TOK, prefix, n=1, temperature=0)
        assert g.ids == greedy_without_cache(trained, start_ids(prefix))
        assert g.finished and g.text in NAMES


def test_prefill_and_decode_one_token_continue_the_cache():
    model = make_model()
    cache = model.new_cache(1)
    ids = torch.tensor([start_ids("Анн")])
    with torch.inference_mode():
        first = prefill(model, ids[:, :2], cache)
        second = decode_one_token(model, ids[:, 2:3], cache)
        full = model(ids[:, :3]).logits
        assert cache.length == 3
        torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), full, atol=1e-5, rtol=1e-4)
        with pytest.raises(ValueError, match="empty cache"):
            prefill(model, ids, cache)
        with pytest.raises(ValueError, match="one token per row"):
            decode_one_token(model, ids, cache)


# --- what comes back ---------------------------------------------------------------------------


def check_well_formed(g, prefix: str, max_len: int) -> None:
    assert g.text.startswith(prefix)
    assert TOK.decode(g.ids) == g.text
    assert g.ids[0] == BOUNDARY_ID
    assert BOUNDARY_ID not in g.ids[1:-1]  # the boundary only frames the name
    assert g.finished == (g.ids[-1] == BOUNDARY_ID and len(g.ids) > 1)
    assert len(g.text) <= max_len
    if not g.finished:
        assert len(g.text) == max_len  # only max_len stops an unfinished name


def test_prefix_and_max_len_respected():
    model = make_model()
    out = generate(model, TOK, "Ан", n=60, max_len=5, seed=0)
    for g in out:
        check_well_formed(g, "Ан", 5)
    assert {g.finished for g in out} == {True, False}  # both ways of stopping occurred


def test_max_len_defaults_to_and_is_clamped_at_block_size():
    model = make_model()
    default, huge = (generate(model, TOK, n=20, seed=0, max_len=m) for m in (None, 10_000))
    assert [g.ids for g in default] == [g.ids for g in huge]
    for g in default:
        check_well_formed(g, "", BLOCK - 1)


def test_prefix_as_long_as_max_len_only_asks_whether_the_name_ends():
    (g,) = generate(make_model(), TOK, "Мария", n=1, max_len=5, seed=0)
    assert g.text == "Мария"


def test_seeded_sampling_is_reproducible_and_seeds_differ():
    model = make_model()

    def texts(seed):
        return [g.text for g in generate(model, TOK, n=20, temperature=1.0, seed=seed)]

    assert texts(1) == texts(1)
    assert texts(1) != texts(2)


def test_detail_gives_one_step_per_generated_token():
    model = make_model()
    for g in generate(model, TOK, "А", n=8, max_len=6, seed=3, detail=True):
        generated = g.ids[2:]  # after [B] and the prefix; includes the end token if finished
        assert [s.token_id for s in g.steps] == generated
        for s in g.steps:
            assert s.char == TOK.label(s.token_id)
            assert 0.0 <= s.prob <= 1.0
            probs = [p for _, p in s.top]
            assert len(s.top) == TOP_ALTERNATIVES and probs == sorted(probs, reverse=True)
            assert all(0.0 <= p <= 1.0 for p in probs) and s.prob <= probs[0] + 1e-6
    assert generate(model, TOK, n=1, seed=0)[0].steps is None


def test_generate_leaves_the_model_as_it_was():
    model = make_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    generate(model, TOK, "А", n=4, seed=0)
    speculative_decode(model, TOK, "А", temperature=1.0, seed=0)
    assert model.training  # the caller's mode comes back
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --- arguments ---------------------------------------------------------------------------------


def test_unknown_prefix_character_is_named():
    with pytest.raises(UnknownCharacterError, match="'x'") as err:
        generate(make_model(), TOK, "Аxн")
    assert err.value.chars == ["x"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0}, "n"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": math.nan}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_len": 0}, "max_len"),
        ({"max_len": -3}, "max_len"),
        ({"seed": "7"}, "seed"),
        ({"prefix": "Мария", "max_len": 3}, "prefix"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate(make_model(), TOK, **kwargs)


def test_speculative_arguments_are_checked():
    with pytest.raises(ValueError, match="temperature"):
        speculative_decode(make_model(), TOK, temperature=-1.0)
    with pytest.raises(ValueError, match="MTP"):
        speculative_decode(make_model(mtp_depth=0), TOK)
    with pytest.raises(UnknownCharacterError):
        speculative_decode(make_model(), TOK, "Q")


def test_tokenizer_must_fit_the_model():
    with pytest.raises(ValueError, match="tokenizer"):
        generate(make_model(), CharTokenizer(["a", "b"]))


# --- sample_next -------------------------------------------------------------------------------


def random_logits(b: int = 4, v: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, v, generator=torch.Generator().manual_seed(seed)) * 2


def test_greedy_settings_pick_argmax():
    logits = random_logits()
    argmax = logits.argmax(-1)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(sample_next(logits, temperature=0), argmax)
    for _ in range(20):
        assert torch.equal(sample_next(logits, temperature=1.0, top_k=1, generator=g), argmax)
        assert torch.equal(sample_next(logits, temperature=5.0, top_p=1e-6, generator=g), argmax)


def test_top_k_restricts_support():
    logits = random_logits(b=1)
    allowed = set(logits[0].topk(3).indices.tolist())
    many = logits.expand(5000, -1)
    drawn = set(sample_next(many, temperature=3.0, top_k=3, generator=torch.Generator().manual_seed(0)).tolist())
    assert drawn == allowed


def test_top_p_keeps_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = next_token_probs(probs.log(), temperature=1.0, top_p=0.75)
    torch.testing.assert_close(kept, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
    three = next_token_probs(probs.log(), temperature=1.0, top_p=0.9)  # 0.5 + 0.3 < 0.9 <= 0.95
    torch.testing.assert_close(three, torch.tensor([[0.5, 0.3, 0.15, 0.0]]) / 0.95)


# --- speculative decoding ----------------------------------------------------------------------


def check_timeline(result) -> None:
    assert result.drafts_proposed == len(result.timeline)
    assert result.drafts_accepted == sum(s.accepted for s in result.timeline)
    assert 0.0 <= result.acceptance_rate <= 1.0
    assert result.main_forward_passes <= result.generated_tokens + 1
    assert result.chars_per_forward == result.generated_tokens / result.main_forward_passes
    for step in result.timeline:
        assert result.ids[step.position] == step.chosen_id  # the kept token is the one in the name
        # a rejected draft is always replaced by another token: greedy takes argmax p != d, and
        # sampling draws from max(0, p - q), which is 0 at d whenever d was rejected
        assert step.accepted == (step.draft_id == step.chosen_id)


@pytest.mark.parametrize("absorb", [True, False])
@pytest.mark.parametrize("attn_type", ["mla", "mha"])
def test_speculative_greedy_equals_plain_greedy(attn_type, absorb):
    model = make_model(attn_type, seed=1)
    for prefix in PREFIXES:
        for max_len in (None, 4):
            spec = speculative_decode(model, TOK, prefix, max_len=max_len, absorb=absorb)
            (plain,) = generate(model, TOK, prefix, n=1, temperature=0, max_len=max_len, absorb=absorb)
            assert spec.ids == plain.ids and spec.text == plain.text and spec.finished == plain.finished
            check_timeline(spec)


def test_speculative_on_trained_model_saves_forward_passes(trained):
    for prefix in ["", "А", "Ве", "Н"]:
        spec = speculative_decode(trained, TOK, prefix)
        (plain,) = generate(trained, TOK, prefix, n=1, temperature=0)
        assert spec.ids == plain.ids
        check_timeline(spec)
        assert spec.drafts_accepted >= 1 and spec.chars_per_forward > 1.0


class CopyingMTP(DSMini):
    """A model whose 'MTP modules' are the main model itself: each rebuilds the sequence from what
    the modules are fed (t_{i+k} at depth k's position i; the drafts of a round reach the deeper
    modules so) and returns the main model's logits at t_{i+k}. Every draft is then the model's own
    choice, and a depth-1 pair fed twice or out of order shows in `seen`."""

    def mtp_step(self, depth, h_prev, next_idx, cache=None, absorb=False):
        start = cache.mtp_depths[depth - 1].length
        h, _ = super().mtp_step(depth, h_prev, next_idx, cache=cache, absorb=absorb)  # advances the module's cache
        if depth == 1:
            self.seen = torch.cat([self.seen[:, :start], next_idx], dim=1) if start else next_idx
        if self.sequence is None:
            self.sequence = torch.full_like(next_idx[:, :1], BOUNDARY_ID)
        self.sequence = torch.cat([self.sequence[:, : start + depth], next_idx], dim=1)  # [B] t_1 .. as last fed
        return h, self(self.sequence).logits[:, start + depth :]  # at t_{i+k}: the prediction of t_{i+k+1}


@pytest.mark.parametrize("attn_type,depth", [("mla", 1), ("mha", 1), ("mla", 2), ("mha", 3)])
def test_draft_that_copies_the_model_is_always_accepted(attn_type, depth):
    torch.manual_seed(2)
    cfg = preset("tiny", vocab_size=TOK.vocab_size, block_size=BLOCK, attn_type=attn_type, mtp_depth=depth)
    model = CopyingMTP(cfg).eval()
    proposed = 0
    for prefix in PREFIXES:
        model.seen = model.sequence = None
        spec = speculative_decode(model, TOK, prefix)
        assert spec.ids == generate(model, TOK, prefix, n=1, temperature=0)[0].ids
        check_timeline(spec)
        proposed += spec.drafts_proposed
        if spec.drafts_proposed:
            assert spec.acceptance_rate == 1.0
            assert model.seen[0].tolist() == spec.ids[1 : 1 + model.seen.size(1)]  # pairs fed once, in order
            # each pass after prefill yields `depth` checked drafts plus a bonus token (fewer where the name ends)
            assert spec.main_forward_passes <= 1 + math.ceil(spec.generated_tokens / (depth + 1))
            assert {step.depth for step in spec.timeline} <= set(range(1, depth + 1))
    assert proposed >= 5


def test_verify_draft_keeps_the_target_distribution():
    """Speculative sampling: draft d ~ q, accept with min(1, p(d)/q(d)), else resample from
    normalise(max(0, p - q)). The kept token is distributed as p, whatever q is."""
    g = torch.Generator().manual_seed(0)
    trials, v = 200_000, 5
    p_logits = torch.tensor([2.0, 0.5, -1.0, 1.0, 0.0]).expand(trials, v)
    q_logits = torch.tensor([0.0, 2.0, 0.5, -1.0, 1.0]).expand(trials, v)
    temperature = 0.8
    draft = sample_next(q_logits, temperature, generator=g)
    accepted, token = verify_draft(p_logits, q_logits, draft, temperature, generator=g)
    p, q = next_token_probs(p_logits[:1], temperature)[0], next_token_probs(q_logits[:1], temperature)[0]
    freq = torch.bincount(token, minlength=v).float() / trials
    torch.testing.assert_close(freq, p, atol=5e-3, rtol=0)
    expected_rate = torch.minimum(p, q).sum()  # acceptance = sum_x min(p(x), q(x))
    assert abs(accepted.float().mean() - expected_rate) < 5e-3
    assert torch.equal(token[accepted], draft[accepted])


def test_sampled_speculative_first_two_tokens_match_plain_sampling():
    """End to end on a 2-letter alphabet: the joint law of the first two generated tokens under
    speculative sampling equals the main model's, computed exactly from its logits."""
    tok = CharTokenizer(["a", "b"])
    model = make_model(tokenizer=tok, seed=3, ffn_type="dense", n_layers=1)
    with torch.no_grad():
        model.head.weight.mul_(10)  # spread-out p and q that differ (TV ~0.5), so a wrong rule shows
    temperature = 0.8  # p and q are both tempered; the exact law below is too
    with torch.inference_mode():
        first = model(torch.tensor([[BOUNDARY_ID]])).logits[0, -1].div(temperature).softmax(-1)
        expected = {(BOUNDARY_ID,): first[BOUNDARY_ID].item()}
        for a in (1, 2):
            second = model(torch.tensor([[BOUNDARY_ID, a]])).logits[0, -1].div(temperature).softmax(-1)
            expected.update({(a, b): (first[a] * second[b]).item() for b in range(3)})
    trials = 500
    counts = Counter()
    proposed = accepted = 0
    for seed in range(trials):
        spec = speculative_decode(model, tok, max_len=2, temperature=temperature, seed=seed)
        counts[tuple(spec.ids[1:3])] += 1
        check_timeline(spec)
        proposed, accepted = proposed + spec.drafts_proposed, accepted + spec.drafts_accepted
    total_variation = 0.5 * sum(abs(counts[k] / trials - p) for k, p in expected.items())
    assert sum(counts.values()) == trials and set(counts) <= set(expected)
    # 500 exact draws from this law stay under TV 0.09 with probability > 0.999 (simulated);
    # accepting every draft (x2 ~ q) gives ~0.29
    assert total_variation < 0.09, (total_variation, counts, expected)
    assert 0 < accepted < proposed  # both branches of the rule were taken
