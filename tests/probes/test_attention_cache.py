"""Attention maps and KV-cache probes and charts: causal probabilities, MLA's content + position
split, Table 1 == real cache tensors for every attention type, V2's numbers, absorbed == naive."""

import math

import pytest
import torch
from einops import einsum, rearrange

from dsmini.charts.attention import attention_grid_figure, score_split_figure
from dsmini.charts.cache import cache_growth_figure, cache_table, formula, scale_table
from dsmini.config import ATTN_TYPES, preset
from dsmini.data import BOUNDARY_ID, BOUNDARY_SYMBOL, CharTokenizer, UnknownCharacterError
from dsmini.model import (
    ATTN_ORDER,
    DEEPSEEK_V2,
    DEEPSEEK_V3,
    CacheDims,
    DSMini,
    cache_values_per_token,
    values_per_layer,
    values_per_token,
)
from dsmini.model.rope import apply_rope
from dsmini.probes.attention import sample_name, trace_attention
from dsmini.probes.cache import (
    attention_variants,
    cache_growth,
    greedy_through_cache,
    measure_caches,
    scale_rows,
    time_absorbed_decode,
)

NAMES = ["анна", "олег", "юлия", "john", "mary", "Annabelle"]
BLOCK = 12


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_names(NAMES)


def make(tok, **overrides) -> DSMini:
    torch.manual_seed(0)
    return DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=BLOCK, **overrides)).eval()


@pytest.fixture(scope="module")
def models(tok):
    return {attn_type: make(tok, attn_type=attn_type) for attn_type in ATTN_TYPES}


# attention probe ------------------------------------------------------------------------------


@pytest.mark.parametrize("attn_type", ATTN_TYPES)
def test_attention_probs_are_causal_rows_summing_to_one(models, tok, attn_type):
    trace = trace_attention(models[attn_type], tok, "анна")
    cfg = models[attn_type].cfg
    assert trace.labels == [BOUNDARY_SYMBOL, "а", "н", "н", "а"]
    assert (trace.n_layers, trace.n_heads) == (cfg.n_layers, cfg.n_heads)
    assert trace.has_split == cfg.latent_attention
    for layer in range(trace.n_layers):
        for head in trace.probs[layer] + [trace.head_average(layer)]:
            assert len(head) == len(trace.labels)
            for q, row in enumerate(head):
                assert math.isclose(sum(row), 1.0, rel_tol=1e-5)
                assert all(p == 0.0 for p in row[q + 1 :])  # no looking ahead
                assert all(p > 0.0 for p in row[: q + 1])
    assert trace.probs[0][0][0] == [1.0, 0.0, 0.0, 0.0, 0.0]  # the boundary can only see itself


def _layer0_scores(model: DSMini, ids: list[int]) -> torch.Tensor:
    """MLA layer 0's scaled pre-softmax scores (h, q, k), recomputed from the weights by hand."""
    attn, cfg = model.layers[0].attn, model.cfg
    with torch.no_grad():
        x = model.layers[0].attn_norm(model.embed(torch.tensor([ids])))  # (1, s, d)
        q = rearrange(attn.wq(x), "b s (h d) -> b h s d", h=cfg.n_heads)
        q_nope, q_rope = q.split([cfg.qk_nope_head_dim, cfg.qk_rope_head_dim], dim=-1)
        c_kv, k_rope = attn.wkv_a(x).split([cfg.kv_lora_rank, cfg.qk_rope_head_dim], dim=-1)
        kv = rearrange(attn.wkv_b(attn.kv_norm(c_kv)), "b t (h k) -> b h t k", h=cfg.n_heads)
        k_nope = kv[..., : cfg.qk_nope_head_dim]
        rotations = model.rope_rotations[: len(ids)]
        q_rope, k_rope = apply_rope(q_rope, rotations), apply_rope(k_rope, rotations)
        content = einsum(q_nope, k_nope, "b h s d, b h t d -> b h s t")
        position = einsum(q_rope, k_rope, "b h s r, b t r -> b h s t")
    return (content + position)[0] * cfg.qk_head_dim**-0.5


def test_mla_content_plus_position_is_the_total_score(models, tok):
    model = models["mla"]
    trace = trace_attention(model, tok, "Annabelle")
    ids = [BOUNDARY_ID, *tok.encode("Annabelle")]
    expected = _layer0_scores(model, ids)
    n = len(ids)
    for head in range(trace.n_heads):
        total = trace.scores(0, head)
        for q in range(n):
            for k in range(n):
                if k > q:  # masked: both parts are NaN
                    assert math.isnan(trace.scores_nope[0][head][q][k]) and math.isnan(trace.scores_rope[0][head][q][k])
                    assert math.isnan(total[q][k])
                else:
                    assert total[q][k] == pytest.approx(float(expected[head, q, k]), abs=1e-5)
    for layer in range(trace.n_layers):  # softmax of the total over the visible keys is the attention
        for head in range(trace.n_heads):
            total = torch.tensor(trace.scores(layer, head)).nan_to_num(nan=-math.inf)
            assert torch.allclose(total.softmax(-1), torch.tensor(trace.probs[layer][head]), atol=1e-5, rtol=1e-4)


def test_attention_probe_refuses_bad_names_and_never_changes_the_model(models, tok):
    model = models["mla"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UnknownCharacterError) as err:
        trace_attention(model, tok, "Жанна")
    assert err.value.chars == ["Ж"]
    with pytest.raises(ValueError, match="at most"):
        trace_attention(model, tok, "анна" * 3)
    trace_attention(model, tok, "олег")
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sample_name_fits_the_alphabet_and_block(tok):
    assert sample_name(CharTokenizer.from_names(["Красоткина", "Анна"]), 23) == "Красоткина"
    assert sample_name(tok, BLOCK) == "Annabelle"
    assert sample_name(tok, 6) == "Aabeh"  # Annabelle does not fit: the alphabet's first letters
    alien = CharTokenizer.from_names(["ωψ"])
    assert sample_name(alien, 23) == "ψω"


# attention charts -----------------------------------------------------------------------------


def test_attention_grid_figure_shape(models, tok):
    trace = trace_attention(models["mla"], tok, "олег")
    fig = attention_grid_figure(trace, "ru")
    heatmaps = [d for d in fig.data if d.type == "heatmap"]
    assert len(heatmaps) == trace.n_layers * (trace.n_heads + 1)  # every head + the mean per layer
    n = len(trace.labels)
    for h in heatmaps:
        assert len(h.z) == n and all(len(row) == n for row in h.z)
        assert all(h.z[q][k] is None for q in range(n) for k in range(q + 1, n))  # future left empty
        assert all(h.z[q][k] is not None for q in range(n) for k in range(q + 1))
    assert list(heatmaps[0].z[1]) == [round(p, 3) for p in trace.probs[0][0][1][:2]] + [None] * (n - 2)
    assert "олег" in fig.layout.title.text and fig.layout.height == 90 + 190 * trace.n_layers
    assert list(fig.layout.xaxis.ticktext) == ["|", "о", "л", "е", "г"]


def test_score_split_figure_sums_and_non_mla_message(models, tok):
    trace = trace_attention(models["mla"], tok, "mary")
    fig = score_split_figure(trace, layer=1, head=1, lang="en")
    total, content, position = (d.z for d in fig.data)
    n = len(trace.labels)
    for q in range(n):
        for k in range(n):
            if k > q:
                assert total[q][k] is None and content[q][k] is None and position[q][k] is None
            else:
                assert total[q][k] == pytest.approx(content[q][k] + position[q][k], abs=2e-3)  # rounded to 3
    assert fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax
    with pytest.raises(ValueError):
        score_split_figure(trace, layer=trace.n_layers, head=0)
    mha = trace_attention(models["mha"], tok, "mary")
    note = score_split_figure(mha, 0, 0, "ru")
    assert not note.data and "MHA" in note.layout.annotations[0].text
    with pytest.raises(ValueError, match="no content/position split"):
        mha.scores(0, 0)


# cache sizes ----------------------------------------------------------------------------------


def test_table1_formulas_at_deepseek_v2_and_v3():
    assert values_per_layer("mla", DEEPSEEK_V2) == 576  # d_c 512 + d_h^R 64
    assert values_per_layer("mha", DEEPSEEK_V2) == 32_768  # 2 x 128 heads x 128
    assert values_per_layer("gqa", DEEPSEEK_V2) == 2 * 8 * 128
    assert values_per_layer("mqa", DEEPSEEK_V2) == 256
    assert values_per_token("mla", DEEPSEEK_V3) == 576 * 61
    rows = {r.attn_type: r for r in scale_rows(DEEPSEEK_V2)}
    assert list(rows) == list(ATTN_ORDER)
    mla = rows["mla"]
    assert (mla.per_layer, mla.per_token, mla.bytes_per_token) == (576, 34_560, 69_120)  # bf16
    assert mla.gb_per_128k == pytest.approx(69_120 * 131_072 / 1e9)
    assert mla.times_mha == pytest.approx(576 / 32_768)
    assert rows["mha"].gb_per_1k == pytest.approx(2 * 32_768 * 60 * 1024 / 1e9)
    with pytest.raises(ValueError):
        values_per_layer("flash", DEEPSEEK_V2)


@pytest.mark.parametrize("loaded", ATTN_TYPES)
def test_analytic_equals_measured_cache_for_every_type(models, loaded):
    model = models[loaded]
    rng = torch.get_rng_state()
    variants, skipped = attention_variants(model)
    assert torch.equal(rng, torch.get_rng_state())  # twins are built under a forked RNG
    assert list(variants) == list(ATTN_ORDER) and not skipped and variants[loaded] is model
    rows = measure_caches(model, variants)
    # tiny preset: 2 layers, 2 heads, d_model 32 -> d_h 16, n_kv_heads 1, d_c 16, d_h^R 4; DSA's
    # indexer keys d^I 16 beside MLA's latent; MoBA and log-linear cache exactly MLA's
    expected = {"mha": 2 * 2 * 16 * 2, "gqa": 2 * 1 * 16 * 2, "mqa": 2 * 16 * 2, "mla": (16 + 4) * 2,
                "dsa": (16 + 4 + 16) * 2, "moba": (16 + 4) * 2, "loglinear": (16 + 4) * 2}
    for row in rows:
        assert row.analytic == row.measured == expected[row.attn_type]
        assert row.measured == cache_values_per_token(variants[row.attn_type].cfg)
        assert row.matches and row.loaded == (row.attn_type == loaded)
        assert (row.bytes_fp32, row.bytes_bf16) == (4 * row.measured, 2 * row.measured)
    assert len({row.positions_used for row in rows}) == 1  # every type cached the same name
    assert 2 <= rows[0].positions_used <= BLOCK


def test_twins_the_config_cannot_build_are_reported(tok):
    model = make(tok, d_model=48, n_heads=3, n_kv_heads=2)  # 2 groups cannot split 3 heads
    variants, skipped = attention_variants(model)
    assert list(variants) == ["mha", "mqa", "mla", "dsa", "moba", "loglinear"] and list(skipped) == ["gqa"]
    assert "n_kv_heads" in skipped["gqa"]
    assert all(r.matches for r in measure_caches(model, variants))


def test_cache_bytes_grow_linearly_with_length(models):
    variants, _ = attention_variants(models["mla"])
    series = cache_growth(variants, max_length=1024)
    assert [s.attn_type for s in series] == list(ATTN_ORDER)
    for s in series:
        assert s.measured_upto == BLOCK and s.lengths[:BLOCK] == list(range(1, BLOCK + 1))
        assert s.lengths[BLOCK:] == [16, 32, 64, 128, 256, 512, 1024]
        per_token = s.n_bytes[0]
        assert per_token == 4 * cache_values_per_token(variants[s.attn_type].cfg)
        assert all(b == n * per_token for n, b in zip(s.lengths, s.n_bytes))


def test_greedy_through_cache_follow_replays_the_same_sequence(models):
    model = models["gqa"]
    ids, logits = greedy_through_cache(model, [BOUNDARY_ID], model.new_cache(1))
    again, logits2 = greedy_through_cache(model, [BOUNDARY_ID], model.new_cache(1), follow=ids)
    assert again == ids and logits.shape == (len(ids) - 1, model.cfg.vocab_size)
    assert torch.equal(logits, logits2)
    assert ids[-1] == BOUNDARY_ID or len(ids) == BLOCK + 1


def test_naive_and_absorbed_decoding_give_the_same_logits(models, tok):
    model = models["mla"]
    ids, absorbed = greedy_through_cache(model, [BOUNDARY_ID, *tok.encode("ан")], model.new_cache(1), absorb=True)
    steps: list[float] = []
    _, naive = greedy_through_cache(model, ids[:3], model.new_cache(1), absorb=False, follow=ids, step_seconds=steps)
    assert torch.allclose(naive, absorbed, atol=1e-5, rtol=1e-4)
    assert len(steps) == len(ids) - 3 and all(s > 0 for s in steps)  # one forward per generated token
    timing = time_absorbed_decode(model, tok, prefixes=("", "а"), repeats=2, budget_s=0.2)
    assert timing.same_logits and timing.max_abs_diff < 1e-4
    assert timing.naive_ms_per_char > 0 and timing.absorbed_ms_per_char > 0 and timing.speedup > 0
    assert 1 <= timing.repeats <= 2 and timing.chars >= 2
    with pytest.raises(ValueError, match="MLA"):
        time_absorbed_decode(models["mha"], tok)


# cache tables and chart -----------------------------------------------------------------------


def test_cache_tables_and_growth_figure(models):
    model = models["mla"]
    variants, _ = attention_variants(model)
    dims = CacheDims.from_config(model.cfg)
    table = cache_table(measure_caches(model, variants), dims, "en")
    assert table.shape == (7, 8)
    assert list(table.iloc[:, 3]) == list(table.iloc[:, 4]) == [128, 64, 64, 40, 72, 40, 40]  # analytic == measured
    assert list(table.iloc[:, 0]) == ["MHA", "GQA", "MQA", "MLA (this model)", "DSA", "MOBA", "LOGLINEAR"]
    assert list(table.iloc[:, 2])[3:5] == ["c_kv 16 + k_rope 4", "c_kv 16 + k_rope 4 + k_index 16"]
    assert formula("mla", dims) == "(16+4)·2" and formula("gqa", dims) == "2·1·16·2"
    assert formula("dsa", dims) == "(16+4+16)·2"
    v2 = scale_table(scale_rows(DEEPSEEK_V2), DEEPSEEK_V2, "ru")
    assert v2.shape == (7, 8) and list(v2.iloc[:, 2]) == [32_768, 2048, 256, 576, 704, 576, 576]
    assert "формула" in v2.columns
    fig = cache_growth_figure(cache_growth(variants), "mla", "en")
    assert len(fig.data) == 2 * len(ATTN_ORDER)  # measured (solid) + extrapolated (dashed) per type
    solid, dashed = fig.data[-2], fig.data[-1]
    assert solid.x[-1] == dashed.x[0] == BLOCK and dashed.x[-1] == 1024 and dashed.line.dash == "dash"
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "log"
    assert fig.layout.shapes[0].x0 == BLOCK and fig.layout.annotations[0].x == pytest.approx(math.log10(BLOCK))


def test_written_out_attention_equals_sdpa_where_sdpa_has_no_fused_cpu_kernel():
    """MLA's query/key and value head sizes differ, so on a CPU `attend` writes the scores out
    (softmax_last) instead of taking SDPA's slow unfused fallback: the same numbers, with and without a
    cache (s < t), for one new query, and with the probabilities the explorer asks for."""
    from dsmini.model.attention import attend, causal_mask, softmax_last

    torch.manual_seed(0)
    scores = torch.randn(3, 5, 7)
    assert torch.allclose(softmax_last(scores), scores.softmax(dim=-1), atol=1e-6)
    for s, t in ((6, 6), (2, 6), (1, 6)):
        q, k, v = torch.randn(2, 4, s, 24), torch.randn(2, 4, t, 24), torch.randn(2, 4, t, 16)
        mask = causal_mask(s, t)
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
        out, probs = attend(q, k, v, 0.3, need_weights=False)
        assert probs is None and torch.allclose(out, expected, atol=1e-5)
        out, probs = attend(q, k, v, 0.3, need_weights=True)
        assert torch.allclose(out, expected, atol=1e-5)
        assert torch.allclose(probs.sum(-1), torch.ones(2, 4, s)) and (probs[..., ~mask] == 0).all()
