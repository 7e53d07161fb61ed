"""The attention types are registered once (dsmini.config.ATTENTION_KINDS, the config's half, and
dsmini.model.attention_types.ATTENTION, the model's): both halves name the same types, a lookup of
an unknown one names them all, every registered type keeps the `Attention` contract (cached decoding
== the full forward, Table 1 == the real cache, closed-form parameters == the built model's, QK-clip
scales each head's logits exactly), and no other module lists the types."""

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

from dsmini.config import ATTENTION_KINDS, ATTN_TYPES, SPARSE_ATTN_TYPES, ModelConfig, preset
from dsmini.i18n import LANGUAGES, load_catalogue
from dsmini.model import ATTENTION, ATTN_ORDER, Attention, DSMini, attention_spec, check_cache
from dsmini.model.attention_types import build_attention
from dsmini.model.limits import count_params
from dsmini.model.rope import rope_angles
from tests.helpers import ROOT

T = 12
# sizes at which each type leaves something out (DSA's top-k, MoBA's blocks, log-linear's pooled buckets)
SMALL = dict(dsa_top_k=4, moba_block_size=3, moba_top_blocks=1, loglinear_fine_levels=2)


def config(attn_type: str, **overrides) -> ModelConfig:
    return preset("tiny", attn_type=attn_type, vocab_size=20, block_size=T, **{**SMALL, **overrides})


def test_both_halves_register_the_same_types_in_the_same_order():
    assert tuple(ATTENTION) == tuple(ATTENTION_KINDS) == ATTN_ORDER
    assert sorted(ATTN_TYPES) == sorted(ATTN_ORDER) and ATTN_TYPES[0] == ModelConfig().attn_type
    assert SPARSE_ATTN_TYPES == tuple(t for t in ATTN_ORDER if ATTENTION_KINDS[t].sparse)
    assert all(ATTENTION_KINDS[t].latent for t in SPARSE_ATTN_TYPES)  # the sparse types are built on MLA


def test_a_lookup_finds_each_type_and_an_unknown_one_names_them_all():
    assert attention_spec("dsa") is ATTENTION["dsa"]
    with pytest.raises(ValueError, match="must be one of .*'mha'.*'loglinear'.*got 'nsa'"):
        attention_spec("nsa")
    with pytest.raises(ValueError, match="ModelConfig.attn_type: must be one of"):
        config("nsa")


def test_a_registered_type_is_one_entry_in_each_half(monkeypatch):
    """Registering a type is enough for the config to accept it and the model to build and cache it."""
    kinds = {**ATTENTION_KINDS, "mla2": dataclasses.replace(ATTENTION_KINDS["mla"], name="mla2")}
    specs = {**ATTENTION, "mla2": ATTENTION["mla"]}
    monkeypatch.setattr("dsmini.config.ATTENTION_KINDS", kinds)
    monkeypatch.setattr("dsmini.model.attention_types.ATTENTION", specs)
    cfg = config("mla2")
    torch.manual_seed(0)
    model = DSMini(cfg).eval()
    assert cfg.latent_attention and check_cache(model.new_cache(2), cfg).equal


@pytest.mark.parametrize("attn_type", ATTN_ORDER)
def test_each_type_builds_its_module_and_its_cache(attn_type):
    cfg, spec = config(attn_type), ATTENTION[attn_type]
    torch.manual_seed(0)
    model = DSMini(cfg)
    assert all(type(block.attn) is spec.module and isinstance(block.attn, Attention) for block in model.layers)
    cache = model.new_cache(batch=3, with_mtp=True)
    assert all(type(layer) is spec.cache for layer in [*cache.layers, *cache.mtp.blocks])
    assert check_cache(cache, cfg).equal  # the allocated tensors are what Table 1 says
    assert count_params(cfg)["total"] == model.param_counts()["all"]["total"]


@pytest.mark.parametrize("attn_type", ATTN_ORDER)
@pytest.mark.parametrize("absorb", [False, True])
def test_each_type_decodes_through_its_cache_as_the_full_forward(attn_type, absorb):
    torch.manual_seed(0)
    model = DSMini(config(attn_type, q_lora_rank=8)).eval()
    idx = torch.randint(0, 20, (2, T), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(idx, absorb=absorb)
        cache = model.new_cache(2)
        steps = [model(idx[:, :5], cache=cache, absorb=absorb).logits]
        steps += [model(idx[:, i : i + 1], cache=cache, absorb=absorb).logits for i in range(5, T)]
        traced = model(idx, need_weights=True)
    assert (torch.cat(steps, dim=1) - full.logits).abs().max() < 1e-5
    assert [trace.probs.shape for trace in traced.attn] == [(2, model.cfg.n_heads, T, T)] * model.cfg.n_layers


@pytest.mark.parametrize("attn_type", ATTN_ORDER)
def test_scale_logits_multiplies_each_heads_logits_by_its_factor(attn_type):
    """What QK-clip relies on (Kimi K2 §2.1): the largest logit of head h becomes gamma_h times itself."""
    cfg = config(attn_type, q_lora_rank=8)
    torch.manual_seed(0)
    attn = build_attention(cfg).train()
    x = torch.randn(2, T, cfg.d_model)
    rope = rope_angles(cfg.qk_rope_head_dim if cfg.latent_attention else cfg.mha_head_dim, T)

    def max_logit() -> torch.Tensor:
        attn.track_max_logit, attn.max_logit = True, None
        with torch.no_grad():
            attn(x, rope)
        return attn.max_logit

    before = max_logit()
    gamma = torch.linspace(0.3, 0.9, cfg.n_heads)
    attn.scale_logits(gamma)
    assert torch.allclose(max_logit(), gamma * before, rtol=1e-4)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_type_has_its_texts_in_every_language(lang):
    catalogue = load_catalogue(lang)
    assert [t for t in ATTN_ORDER if f"chart.arch.attn_{t}" not in catalogue] == []
    assert [t for t in SPARSE_ATTN_TYPES if f"attention.selection_caption.{t}" not in catalogue] == []


REGISTRY = "dsmini/model/attention_types.py"  # the model's half; the config's names each type in its entry
# Tables of attention types kept by a chart or a benchmark section for their own presentation (colours,
# labels, the subset a benchmark runs); issue 27 leaves them to their owners.
PRESENTATION = {"dsmini/charts/cache.py", "dsmini/bench/attention.py", "dsmini/bench/report_attention.py"}


def listings(path: Path) -> list[int]:
    """Lines of `path` where a literal tuple, list, set or dict names two or more attention types."""
    names = set(ATTN_ORDER)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Dict):
            items = node.keys
        else:
            items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
        named = {item.value for item in items if isinstance(item, ast.Constant) and item.value in names}
        if len(named) >= 2:
            found.append(node.lineno)
    return found


def test_listings_find_a_list_of_types(tmp_path):
    (tmp_path / "m.py").write_text('KINDS = ("mha", "mla")\nif k in {"dsa": 1, "moba": 2}:\n    pass\nONE = ("mla",)\n')
    assert listings(tmp_path / "m.py") == [1, 2]


def test_nothing_outside_the_registry_lists_the_attention_types():
    files = [*sorted((ROOT / "dsmini").rglob("*.py")), *sorted((ROOT / "pages").rglob("*.py")), ROOT / "app.py"]
    found = {str(p.relative_to(ROOT)): lines for p in files if (lines := listings(p))}
    assert {path: lines for path, lines in found.items() if path not in {REGISTRY, *PRESENTATION}} == {}
