"""DSA, MoBA and log-linear attention (dsmini/sparse_attention.py): cached decoding == full forward,
causality, the selection really limits what a query sees, config checks, the KV cache, and every
page's view on a briefly trained model of each type."""

import json

import pytest
import torch

from dsmini.bench.responsiveness import inputs as page_inputs
from dsmini.checkpoint import corpus_reference, load_checkpoint, save_checkpoint
from dsmini.checkpoint.schema import meta_problem
from dsmini.config import SPARSE_ATTN_TYPES, ModelConfig, TrainConfig, preset
from dsmini.data import load_corpus, prepare_corpus
from dsmini.decoding import generate
from dsmini.i18n import t
from dsmini.model import DSMini, ForwardOptions
from dsmini.model.attention import LatentCache
from dsmini.model.attention_types import build_attention
from dsmini.model.cache import cache_values_per_token, check_cache, new_layer_cache
from dsmini.model.limits import count_params
from dsmini.model.rope import rope_angles
from dsmini.model.sparse_attention import IndexedLatentCache, fenwick_levels, indexer_kl
from dsmini.page_views import PAGES
from dsmini.probes.attention import trace_attention
from dsmini.training import Trainer
from pages import _ui_models as ui_models
from tests.helpers import SHIPPED, app_test

T = 24  # positions: several MoBA blocks, Fenwick levels 0..5, more than DSA's top-k
SMALL = dict(dsa_top_k=5, moba_block_size=4, moba_top_blocks=1, loglinear_fine_levels=2)


def config(attn_type: str, **overrides) -> ModelConfig:
    return preset("tiny", attn_type=attn_type, vocab_size=20, block_size=T, **{**SMALL, **overrides})


def model_of(attn_type: str, seed: int = 0, **overrides) -> DSMini:
    torch.manual_seed(seed)
    return DSMini(config(attn_type, **overrides)).eval()


def tokens(seed: int = 1, b: int = 2) -> torch.Tensor:
    return torch.randint(0, 20, (b, T), generator=torch.Generator().manual_seed(seed))


def traced(attn_type: str):
    """A random-init model of the type and its forward with every layer's AttnTrace."""
    model = model_of(attn_type)
    with torch.no_grad():
        return model, model(tokens(), need_weights=True)


def decode_stepwise(model: DSMini, idx: torch.Tensor, absorb: bool, prefill: int = 7) -> torch.Tensor:
    cache = model.new_cache(idx.size(0))
    steps = [model(idx[:, :prefill], cache=cache, absorb=absorb).logits]
    steps += [model(idx[:, i : i + 1], cache=cache, absorb=absorb).logits for i in range(prefill, idx.size(1))]
    return torch.cat(steps, dim=1)


# decoding, causality, paths ---------------------------------------------------------------------


@pytest.mark.parametrize("attn_type", SPARSE_ATTN_TYPES)
@pytest.mark.parametrize("absorb", [False, True])
@pytest.mark.parametrize("q_lora_rank", [0, 8])
def test_cached_decoding_equals_the_full_forward(attn_type, absorb, q_lora_rank):
    model, idx = model_of(attn_type, q_lora_rank=q_lora_rank), tokens()
    with torch.no_grad():
        full = model(idx, absorb=absorb).logits
        cached = decode_stepwise(model, idx, absorb)
    assert (cached - full).abs().max() < 1e-5


@pytest.mark.parametrize("attn_type", SPARSE_ATTN_TYPES)
def test_absorbed_equals_naive(attn_type):
    model, idx = model_of(attn_type), tokens()
    with torch.no_grad():
        naive, absorbed = model(idx, need_weights=True), model(idx, absorb=True, need_weights=True)
    assert (naive.logits - absorbed.logits).abs().max() < 1e-5
    for a, b in zip(naive.attn, absorbed.attn):
        assert torch.equal(a.allowed, b.allowed)  # both paths pick the same positions


@pytest.mark.parametrize("attn_type", SPARSE_ATTN_TYPES)
def test_a_later_token_changes_no_earlier_logit(attn_type):
    model, idx = model_of(attn_type), tokens()
    changed = idx.clone()
    changed[:, 15:] = (changed[:, 15:] + 3) % 20
    with torch.no_grad():
        a, b = model(idx).logits, model(changed).logits
    assert (a[:, :15] - b[:, :15]).abs().max() < 1e-6
    assert (a[:, 15:] - b[:, 15:]).abs().max() > 1e-4  # the change is seen from where it happens


@pytest.mark.parametrize(("attn_type", "dense_overrides"), [
    ("dsa", dict(dsa_top_k=T)),  # k >= positions: every earlier position picked
    ("moba", dict(moba_top_blocks=T)),  # every earlier block picked
    ("loglinear", dict(loglinear_fine_levels=6)),  # nothing pooled (and log λ = 0 below)
])
def test_with_nothing_left_out_each_type_is_mla(attn_type, dense_overrides):
    mla = model_of("mla")
    sparse = DSMini(config(attn_type, **dense_overrides)).eval()
    missing, unexpected = sparse.load_state_dict(mla.state_dict(), strict=False)
    assert not unexpected and all(".indexer." in k or ".level_weights." in k for k in missing)
    for layer in [*sparse.layers, *(m.block for m in sparse.mtp)]:
        if attn_type == "loglinear":
            torch.nn.init.zeros_(layer.attn.level_weights.weight)
    idx = tokens()
    with torch.no_grad():
        assert (sparse(idx).logits - mla(idx).logits).abs().max() < 1e-5


# the selection limits what a query sees ---------------------------------------------------------


@pytest.mark.parametrize("attn_type", SPARSE_ATTN_TYPES)
def test_probabilities_are_exactly_zero_outside_the_selection(attn_type):
    model, out = traced(attn_type)
    causal = torch.ones(T, T).tril().bool()
    for trace in out.attn:
        allowed = trace.allowed.expand_as(trace.probs)
        assert not (allowed & ~causal).any()  # never a later position
        assert (trace.probs[~allowed] == 0).all()
        assert torch.allclose(trace.probs.sum(-1), torch.ones(()))
        assert trace.scores_nope[~allowed].isnan().all() and not trace.scores_nope[allowed].isnan().any()


def test_dsa_picks_the_top_k_positions_shared_by_every_head():
    model, out = traced("dsa")
    k = model.cfg.dsa_top_k
    for trace in out.attn:
        assert trace.allowed.size(1) == 1  # one pick per query for all heads (MLA's MQA mode)
        counts = trace.allowed[:, 0].sum(-1)  # (b, s)
        assert counts.tolist() == [[min(k, q + 1) for q in range(T)]] * 2
    assert out.attn[0].allowed[:, 0, k:].sum(-1).eq(k).all()  # sparse from position k on


def test_moba_sees_its_own_block_and_whole_chosen_blocks():
    model = model_of("moba")
    size, top = model.cfg.moba_block_size, model.cfg.moba_top_blocks
    with torch.no_grad():
        out = model(tokens(), need_weights=True)
    for trace in out.attn:
        allowed = trace.allowed  # (b, h, s, t), per head
        for q in range(T):
            own = q // size
            assert allowed[..., q, own * size : q + 1].all()  # the own block, causally
            earlier = allowed[..., q, : own * size].unflatten(-1, (own, size))  # (b, h, blocks, size)
            whole = earlier.all(-1)
            assert torch.equal(whole, earlier.any(-1))  # a block is taken whole or not at all
            assert (whole.sum(-1) == min(top, own)).all()


def _decode_last(attn, x, rope, cache, start: int):
    """Output of the last position's query through `cache` filled with positions < start."""
    cache.length = start
    y, trace = attn(x[:, start:], rope[start:], cache, ForwardOptions(need_weights=True))
    return y, trace


@pytest.mark.parametrize("attn_type", SPARSE_ATTN_TYPES)
def test_changing_what_a_query_cannot_see_leaves_its_output_unchanged(attn_type):
    """Perturb the cached latent of positions the last query may not see (DSA: outside its top-k;
    MoBA: an unchosen block, mean kept so the gate is unchanged; log-linear: inside a pooled
    bucket, mean kept): its output is unchanged. The same change where it can see changes it."""
    cfg = config(attn_type)
    torch.manual_seed(3)
    attn = build_attention(cfg).eval()
    rope = rope_angles(cfg.qk_rope_head_dim, T)
    x = torch.randn(1, T, cfg.d_model)
    cache = new_layer_cache(cfg, 1, T)
    last = T - 1
    with torch.no_grad():
        attn(x[:, :last], rope[:last], cache)
        y, trace = _decode_last(attn, x, rope, cache, last)
        hidden, seen = _hidden_and_seen_pair(attn_type, trace, cfg, last)
        for positions, same in ((hidden, True), (seen, False)):
            saved = cache.c_kv.clone()
            delta = torch.randn(cfg.kv_lora_rank)
            cache.c_kv[0, positions[0]] += delta
            cache.c_kv[0, positions[1]] -= delta  # the pair's mean latent is kept
            y2, trace2 = _decode_last(attn, x, rope, cache, last)
            assert torch.equal(trace2.allowed, trace.allowed)
            assert torch.allclose(y2, y, atol=1e-6) == same
            cache.c_kv.copy_(saved)


def _hidden_and_seen_pair(attn_type, trace, cfg, q):
    """Two positions the query cannot resolve, and two it sees one by one."""
    allowed = trace.allowed[0, :, 0].all(0)  # (t,) seen by every head
    if attn_type == "loglinear":
        levels = trace.levels[0]
        pooled = [p for p in range(q) if levels[p] >= cfg.loglinear_fine_levels]
        bucket = [p for p in pooled if levels[p] == levels[pooled[0]]]
        fine = [p for p in range(q + 1) if levels[p] < cfg.loglinear_fine_levels]
        return bucket[:2], fine[:2]
    if attn_type == "moba":
        allowed_any = trace.allowed[0, :, 0].any(0)
        block = next(b for b in range(q // cfg.moba_block_size) if not allowed_any[b * cfg.moba_block_size])
        start = block * cfg.moba_block_size
        seen = allowed.nonzero().flatten().tolist()
        return [start, start + 1], seen[-2:]
    excluded = (~allowed[: q + 1]).nonzero().flatten().tolist()
    return excluded[:2], allowed.nonzero().flatten().tolist()[:2]


def test_loglinear_gives_every_position_of_a_pooled_bucket_the_same_weight():
    model, out = traced("loglinear")
    fine = model.cfg.loglinear_fine_levels
    for trace in out.attn:
        for q in range(T):
            levels = trace.levels[q]
            for level in range(fine, model.cfg.loglinear_levels):
                members = (levels == level).nonzero().flatten()
                if len(members) > 1:
                    weights = trace.probs[..., q, members]
                    assert (weights == weights[..., :1]).all()  # exactly equal across the bucket


def test_fenwick_levels_are_the_buckets_of_the_prefix():
    q_pos, k_pos = torch.arange(T), torch.arange(T)
    levels = fenwick_levels(q_pos, k_pos, 6)
    for q in range(T):
        for k in range(T):
            assert levels[q, k] == (-1 if k > q else (q ^ k).bit_length())
        sizes = [int((levels[q] == lvl).sum()) for lvl in range(1, 6)]
        assert all(size in (0, 2 ** (lvl - 1)) for lvl, size in zip(range(1, 6), sizes))  # 1, 2, 4, ...
        assert sum(sizes) == q  # the buckets split the whole past
    assert levels[8, :8].eq(4).all() and levels[5].tolist()[:6] == [3, 3, 3, 3, 1, 0]


# the indexer ------------------------------------------------------------------------------------


def test_the_indexer_learns_only_from_its_own_loss():
    """Its inputs are detached: with k >= positions DSA's main-model gradients equal MLA's exactly,
    while the indexer's own weights get gradients from the KL loss."""
    mla = model_of("mla").train()
    dsa = DSMini(config("dsa", dsa_top_k=T)).train()
    dsa.load_state_dict(mla.state_dict(), strict=False)
    idx = tokens()
    mla(idx, idx).loss.backward()
    dsa(idx, idx).loss.backward()
    grads = dict(mla.named_parameters())
    for name, p in dsa.named_parameters():
        if ".indexer." in name:
            assert p.grad is not None and p.grad.abs().sum() > 0
        else:
            assert torch.allclose(p.grad, grads[name].grad, atol=1e-7), name


def test_indexer_kl_is_zero_when_the_indexer_matches_attention():
    scores = torch.randn(1, 2, 5, 5)
    causal = torch.ones(5, 5).tril().bool()
    same = torch.log(torch.softmax(scores.masked_fill(~causal, float("-inf")), -1).mean(1))  # log p
    assert indexer_kl(scores, same.nan_to_num(neginf=0.0), causal).abs() < 1e-5
    assert indexer_kl(scores, torch.zeros(1, 5, 5), causal) > 0.01


# configuration, cache, checkpoint ---------------------------------------------------------------


@pytest.mark.parametrize(("attn_type", "field", "value"), [
    ("dsa", "dsa_index_heads", 0),
    ("dsa", "dsa_index_dim", 6),  # not a multiple of 4
    ("dsa", "dsa_top_k", 0),
    ("dsa", "dsa_top_k", T + 1),
    ("moba", "moba_block_size", 0),
    ("moba", "moba_block_size", T + 1),
    ("moba", "moba_top_blocks", 0),
    ("loglinear", "loglinear_fine_levels", 0),
    ("dsa", "kv_lora_rank", 0),  # MLA's own checks hold for the types built on it
])
def test_bad_sizes_are_refused_naming_the_field(attn_type, field, value):
    with pytest.raises(ValueError, match=f"ModelConfig.{field}: "):
        config(attn_type, **{field: value})
    config("mla", **{field: value} if field.startswith(("dsa", "moba", "loglinear")) else {})  # other types ignore them


def test_the_attention_type_list_names_the_new_types():
    with pytest.raises(ValueError, match="dsa.*moba.*loglinear"):
        config("nsa")


@pytest.mark.parametrize("attn_type", SPARSE_ATTN_TYPES)
def test_cache_holds_what_the_formula_says(attn_type):
    cfg = config(attn_type)
    model = DSMini(cfg)
    cache = model.new_cache(batch=3)
    expected_type = IndexedLatentCache if attn_type == "dsa" else LatentCache
    assert all(type(layer) is expected_type for layer in cache.layers)
    extra = cfg.dsa_index_dim if attn_type == "dsa" else 0
    assert cache_values_per_token(cfg) == cfg.n_layers * (cfg.kv_lora_rank + cfg.qk_rope_head_dim + extra)
    assert check_cache(cache, cfg).equal
    assert count_params(cfg)["total"] == model.param_counts()["all"]["total"]


def test_old_configs_without_the_new_fields_still_load():
    old = {k: v for k, v in ModelConfig().to_dict().items() if not k.startswith(("dsa_", "moba_", "loglinear_"))}
    assert ModelConfig.from_dict(old) == ModelConfig()
    shipped = load_checkpoint(SHIPPED / "en-names")  # saved before these fields existed
    assert shipped.model_config.attn_type == "mla"


# a trained model of each type on every page -----------------------------------------------------


@pytest.fixture(scope="module", params=SPARSE_ATTN_TYPES)
def trained(request, tmp_path_factory):
    corpus = load_corpus("en-names")
    data = prepare_corpus(corpus.names, 12, seed=0, corpus_name=corpus.name, builtin=True)
    cfg = preset("tiny", attn_type=request.param, vocab_size=data.tokenizer.vocab_size, block_size=12)
    train_cfg = TrainConfig(steps=4, batch_size=16, eval_every=2, eval_batches=1, sample_every=0, device="cpu")
    trainer = Trainer(cfg, train_cfg, data)
    history = list(trainer.run())
    assert len(history) == 4 and all(m.loss == m.loss for m in history)  # finite, not NaN
    root = tmp_path_factory.mktemp(request.param)
    save_checkpoint(root, request.param, trainer.model, data.tokenizer, train_config=train_cfg,
                    corpus=corpus_reference(data), history=history, step=4)
    return load_checkpoint(root / request.param)


def test_a_trained_sparse_model_generates_and_reloads(trained):
    assert meta_problem(json_meta(trained)) is None
    names = generate(trained.model, trained.tokenizer, n=4, seed=0)
    assert len(names) == 4
    trace = trace_attention(trained.model, trained.tokenizer, "Anna")
    assert trace.attn_type == trained.model_config.attn_type and trace.allowed is not None
    assert (trace.levels is not None) == (trace.attn_type == "loglinear")


def json_meta(ckpt):
    return json.loads((ckpt.path / "checkpoint.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_every_page_view_and_chart_runs_on_a_sparse_model(trained):
    shipped = {"en-names": load_checkpoint(SHIPPED / "en-names")}
    for stem, work in PAGES.items():
        if work.model is not None:  # the Lesson always shows its own shipped model
            continue
        args = page_inputs(work, trained, shipped, load_corpus)
        result = work.view(*args) if work.settings is None else work.view(*args, work.settings)
        for fn, fn_args in work.charts(trained, result, work.settings) if work.charts else ():
            fn(*fn_args)
        for probe, default in work.on_demand:
            probe(*args, default)
        assert result is not None, stem


# the Attention page shows what each query was allowed to see -----------------------------------

PAGE_LANG = {"dsa": "en", "moba": "ru", "loglinear": "en"}


def _expected_kind(cfg: ModelConfig, q: int, k: int) -> int:
    if cfg.attn_type == "loglinear":
        return (q ^ k).bit_length()
    return int(q // cfg.moba_block_size == k // cfg.moba_block_size) if cfg.attn_type == "moba" else 0


def test_attention_page_shows_each_querys_selection(trained, monkeypatch):


    cfg, lang = trained.model_config, PAGE_LANG[trained.model_config.attn_type]
    monkeypatch.setattr(ui_models, "CHECKPOINTS", trained.path.parent)
    at = app_test()
    at.session_state["lang"], at.session_state["checkpoint"] = lang, trained.name
    at.run()
    at.switch_page("pages/attention.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    at.selectbox(key=f"att_layer_{trained.name}").set_value(1)
    at.selectbox(key=f"att_head_{trained.name}").set_value(1).run()
    assert not at.exception
    caption = t(f"attention.selection_caption.{cfg.attn_type}", lang, k=cfg.dsa_top_k,
                   size=cfg.moba_block_size, top=cfg.moba_top_blocks, fine=cfg.loglinear_fine_levels)
    assert caption in [c.value for c in at.caption]
    figure = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert figure["layout"]["title"]["text"] == t(
        "chart.selection.title", lang, layer=1, head=1, kind=cfg.attn_type.upper())
    weights, grey, _, kinds = figure["data"]
    name = at.text_input(key=f"att_name_{trained.name}").value
    n = len(name) + 1
    with torch.no_grad():
        ids = torch.tensor([trained.tokenizer.frame_for(cfg, name)])
        allowed = trained.model(ids, need_weights=True).attn[1].allowed[0].expand(cfg.n_heads, n, n)[1]
    for q in range(n):
        for k in range(n):
            seen = bool(allowed[q, k])
            assert (kinds["z"][q][k] is not None) == seen == (weights["z"][q][k] is not None)
            assert grey["z"][q][k] == (1 if k <= q and not seen else None)  # grey: earlier but left out
            if seen:
                assert kinds["z"][q][k] == _expected_kind(cfg, q, k)
    if cfg.attn_type == "dsa":
        assert [int(allowed[q].sum()) for q in range(n)] == [min(cfg.dsa_top_k, q + 1) for q in range(n)]
    outlined = {(s["y0"] + 0.5, s["x0"] + 0.5, s["x1"] - 0.5) for s in figure["layout"]["shapes"]}
    for q, first, last in outlined:  # every box holds seen cells of one kind only
        row = kinds["z"][int(q)][int(first): int(last) + 1]
        assert None not in row and len(set(row)) == 1
    assert sum(last - first + 1 for _, first, last in outlined) == int(allowed.sum())
