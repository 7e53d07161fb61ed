"""transformers is the oracle: an exported folder computes what dsmini computes.

Every shipped checkpoint transformers can express, and random-weight models that cover the rest of the
mapping (query compression, two shared experts, no dense layer, the V2 router, GQA, MQA, MLA with a dense
FFN), exported with `dsmini.export`, loaded with `AutoModelForCausalLM` / `AutoTokenizer` (no custom code):
logits within 1e-4 in float32, greedy `generate()` == dsmini's greedy, the tokenizer == dsmini's framing,
and the MTP module == transformers' own MTP layer fed the same hidden states. What it cannot express
is refused with a line that names the feature, and nothing is written.
"""

from __future__ import annotations

import dataclasses
import io
import json
import unicodedata
import zipfile
from pathlib import Path

import pytest
import torch

from dsmini.checkpoint import load_checkpoint, save_checkpoint
from dsmini.cli.main import main
from dsmini.config import ModelConfig, preset
from dsmini.data import CharTokenizer
from dsmini.decoding import generate
from dsmini.export.transformers import ExportRefused, export_checkpoint, export_zip_bytes, unsupported
from dsmini.model import DSMini
from tests.helpers import SHIPPED

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()  # the main model lists the MTP layers as unused on load: expected
transformers.utils.logging.disable_progress_bar()

TOL = 1e-4
CHARS = list("abcdefghijklmnopqrstuvwxyz -")
NAMES = ["anna", "mary-jo", "van der berg", "q"]


def hf_pair(folder: Path):
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    return model, transformers.AutoTokenizer.from_pretrained(folder)


def check_against_transformers(ckpt, folder: Path, names: list[str], prefixes: list[str]) -> float:
    """Tokenizer, logits, greedy names and the MTP module against transformers; the largest logit difference."""
    hf, tok = hf_pair(folder)
    worst = 0.0
    for name in names:
        ids = ckpt.tokenizer.frame(name)
        assert tok(name)["input_ids"] == ids == tok(unicodedata.normalize("NFD", name))["input_ids"]  # NFC, as dsmini
        assert tok.decode(ids, skip_special_tokens=True) == name
        x = torch.tensor([ids])
        with torch.no_grad():
            ours, theirs = ckpt.model(x), hf(x).logits
        worst = max(worst, (ours.logits - theirs).abs().max().item())
        if (ckpt.model_config.mtp_depth and ckpt.model_config.ffn_type == "moe"
                and hf.config.model_type == "deepseek_v3"):
            worst = max(worst, mtp_difference(ckpt, hf, folder, x, ours.hidden))
    assert worst < TOL
    for prefix in prefixes:
        ours = generate(ckpt.model, ckpt.tokenizer, prefix=prefix, n=1, temperature=0)[0]
        with torch.no_grad():
            out = hf.generate(**tok(prefix, return_tensors="pt"), do_sample=False)
        assert tok.decode(out[0], skip_special_tokens=True) == ours.text
        assert out[0, -1].item() == 0 or not ours.finished  # stopped at the boundary, where dsmini stops
    return worst


def mtp_difference(ckpt, hf, folder: Path, x: torch.Tensor, hidden: torch.Tensor) -> float:
    """transformers' MTP layer, loaded from the exported layers after the last, against dsmini's depth 1.
    Its loader looks for DeepSeek-V3's own layer number (61): pointed at ours instead. It builds MoE blocks
    only, so a dense model's (dense) MTP block is not compared."""
    from transformers.modeling_layers import MtpModel

    n_layers = hf.config.num_hidden_layers
    hf._keys_to_ignore_on_load_unexpected = [rf"model\.layers\.{n_layers + k}\..*"
                                             for k in range(hf.config.num_mtp_layers)]
    hf.config.name_or_path = str(folder)
    mtp = MtpModel.from_pretrained(hf).eval()
    s = x.size(1)
    with torch.no_grad():
        ours = ckpt.model.mtp_draft(hidden[:, :-1], x[:, 1:])
        h = mtp.forward_layer(0, hidden[:, :-1], torch.arange(s - 1)[None], None, input_ids=x[:, 1:])
        return (mtp._project_to_logits(h) - ours).abs().max().item()


# ---------------------------------------------------------------------------------------------
# shipped checkpoints


@pytest.mark.parametrize("name", ["en-names", "ru-names", "ru-en-names"])
def test_shipped_checkpoint_equals_transformers_deepseek_v3(name, tmp_path):
    folder, arch = export_checkpoint(SHIPPED / name, tmp_path / "hf")
    assert arch == "DeepseekV3ForCausalLM"
    assert {p.name for p in folder.iterdir()} >= {
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
        "README.md",
    }
    ckpt = load_checkpoint(SHIPPED / name)
    val = list(ckpt.corpus.val_names or [])[:3] or (["Mary", "Jo"] if name == "en-names" else ["Анна", "Иванов"])
    names = [n for n in ["Mary", "Анна", "Андрей", "Иванов", *val] if not ckpt.tokenizer.unknown_chars(n)]
    worst = check_against_transformers(ckpt, folder, names, ["", names[0][:2]])
    print(f"{name}: max |logit difference| {worst:.2e}")


@pytest.mark.parametrize("name, feature", [
    ("ru-full-names", "attn_type=moba: moba sparse attention"),
    ("ru-en-softmax", "router=softmax_topk, norm_topk_prob=true: a softmax router renormalised"),
    ("ru-en-noisy", "router=noisy_topk"),
])
def test_shipped_checkpoints_transformers_cannot_express_are_refused(name, feature, tmp_path):
    with pytest.raises(ExportRefused, match=feature):
        export_checkpoint(SHIPPED / name, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


# ---------------------------------------------------------------------------------------------
# random weights over the rest of the mapping

SMALL = dict(vocab_size=len(CHARS) + 1, block_size=16, d_model=32, n_layers=3, n_heads=4, d_ff=48,
             kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
             n_routed_experts=4, top_k=2, moe_inter_dim=16)


def random_checkpoint(root: Path, **overrides) -> Path:
    """A saved model whose weights are far from init (norms, router bias and all), so every tensor shows."""
    torch.manual_seed(0)
    model = DSMini(ModelConfig(**{**SMALL, **overrides})).eval()
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            scale = 0.1 if key.endswith("bias") else 0.3
            tensor.copy_(torch.randn_like(tensor) * scale + (1.0 if "norm" in key else 0.0))
    return save_checkpoint(root, "random", model, CharTokenizer(CHARS))


@pytest.mark.parametrize("overrides, arch", [
    (dict(q_lora_rank=12, n_shared_experts=2, n_dense_layers=0), "DeepseekV3ForCausalLM"),
    (dict(n_dense_layers=1, mtp_depth=2, norm_topk_prob=False), "DeepseekV3ForCausalLM"),
    (dict(router="softmax_topk", n_dense_layers=1, n_shared_experts=2), "DeepseekV2ForCausalLM"),
    (dict(ffn_type="dense", q_lora_rank=8), "DeepseekV3ForCausalLM"),
    (dict(attn_type="gqa", n_kv_heads=2, ffn_type="dense"), "LlamaForCausalLM"),
    (dict(attn_type="mqa", ffn_type="dense", head_dim=6), "LlamaForCausalLM"),
    (dict(attn_type="mha", ffn_type="dense", norm_eps=1e-5), "LlamaForCausalLM"),
], ids=["v3-q-lora-2-shared-no-dense", "v3-raw-sigmoid-mtp2", "v2-softmax", "v3-dense-ffn", "llama-gqa", "llama-mqa",
        "llama-mha"])
def test_random_config_equals_transformers(overrides, arch, tmp_path):
    folder, got = export_checkpoint(random_checkpoint(tmp_path, **overrides), tmp_path / "hf")
    assert got == arch
    assert json.loads((folder / "config.json").read_text())["architectures"] == [arch]
    ckpt = load_checkpoint(tmp_path / "random")
    worst = check_against_transformers(ckpt, folder, NAMES, ["", "ma"])
    print(f"{'/'.join(f'{k}={v}' for k, v in overrides.items())}: max |logit difference| {worst:.2e}")


def test_mtp_modules_sit_after_the_last_layer_with_nothing_left_out(tmp_path):
    from safetensors import safe_open

    folder, _ = export_checkpoint(random_checkpoint(tmp_path, mtp_depth=2), tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    assert config["num_nextn_predict_layers"] == 2 and config["num_hidden_layers"] == 3
    with safe_open(folder / "model.safetensors", "pt") as f:
        keys = set(f.keys())
        copies = {k for k in keys if k.startswith("model.layers.")
                  and k.endswith((".embed_tokens.weight", ".shared_head.head.weight"))}
        exported = sum(f.get_tensor(k).numel() for k in keys - copies)
    for layer in (3, 4):
        assert {f"model.layers.{layer}.{n}.weight" for n in ("enorm", "hnorm", "eh_proj", "shared_head.norm")} <= keys
    assert not any(k.startswith("model.layers.5.") for k in keys)
    assert len(copies) == 4  # V3 keeps the shared embedding and head in each MTP layer too
    assert exported == sum(t.numel() for t in load_checkpoint(tmp_path / "random").model.state_dict().values())


# ---------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize("overrides, setting, why", [
    (dict(attn_type="dsa"), "attn_type=dsa", "sparse attention"),
    (dict(attn_type="loglinear"), "attn_type=loglinear", "sparse attention"),
    (dict(moe_every=2, n_dense_layers=0), "moe_every=2", "every layer"),
    (dict(capacity_factor=1.25), "capacity_factor=1.25", "token dropping"),
    (dict(router="softmax_topk", norm_topk_prob=True), "router=softmax_topk, norm_topk_prob=true", "renormalised"),
    (dict(router="noisy_topk"), "router=noisy_topk", "renormalised"),
    (dict(mtp_layers=2), "mtp_layers=2", "MTP modules of 2 blocks"),
    (dict(attn_type="gqa", n_kv_heads=2), "ffn_type=moe, attn_type=gqa", "MoE with GQA"),
    (dict(norm_eps=1e-5), "norm_eps=1e-05", "eps 1e-6"),
    (dict(router="softmax_topk", d_model=30, d_ff=30), "d_model=30, n_heads=4", "divisible"),
])
def test_what_transformers_cannot_express_is_named(overrides, setting, why):
    problem = unsupported(ModelConfig(**{**SMALL, **overrides}))
    assert problem.setting == setting and why in problem.why


def test_cli_export_writes_once_and_refuses_in_one_line(tmp_path, capsys):
    out = tmp_path / "hf"
    assert main(["export", "--checkpoint", str(SHIPPED / "ru-full-names"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot express attn_type=moba" in err and not out.exists()
    assert main(["export", "--checkpoint", str(SHIPPED / "en-names"), "--out", str(out)]) == 0
    assert "DeepseekV3ForCausalLM" in capsys.readouterr().out
    marker = out / "config.json"
    before = marker.read_bytes()
    marker.write_text("{}")
    assert main(["export", "--checkpoint", str(SHIPPED / "en-names"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and marker.read_text() == "{}"
    assert main(["export", "--checkpoint", str(SHIPPED / "en-names"), "--out", str(out), "--overwrite"]) == 0
    assert marker.read_bytes() == before
    shipped_meta = (SHIPPED / "en-names" / "checkpoint.json").read_bytes()
    assert main(["export", "--checkpoint", str(SHIPPED / "en-names"), "--out", str(SHIPPED / "en-names"),
                 "--overwrite"]) == 2
    assert "is a dsmini checkpoint" in capsys.readouterr().err
    assert (SHIPPED / "en-names" / "checkpoint.json").read_bytes() == shipped_meta
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_zip_download_holds_the_folder():
    ckpt = load_checkpoint(SHIPPED / "en-names")
    with zipfile.ZipFile(io.BytesIO(export_zip_bytes(ckpt))) as zf:
        names = zf.namelist()
        assert "en-names-transformers/config.json" in names
        card = zf.read("en-names-transformers/README.md").decode()
    assert "en-names" in card and "dsmini" in card and "val" in card


# ---------------------------------------------------------------------------------------------
# the deviations, settled


def test_norm_eps_reaches_every_rms_norm_and_old_checkpoints_keep_torch_default():
    model = DSMini(preset("tiny", q_lora_rank=8, vocab_size=10))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.RMSNorm)]
    # 3 blocks (2 main, 1 MTP) x (2 + MLA's q/kv latent); MTP enorm/hnorm/norm; final
    assert len(norms) == 4 * 3 + 3 + 1
    assert {m.eps for m in norms} == {1e-6}
    old = {k: v for k, v in ModelConfig().to_dict().items() if k not in ("norm_eps", "norm_topk_prob")}
    assert ModelConfig.from_dict(old).norm_eps is None
    shipped = load_checkpoint(SHIPPED / "en-names")
    assert {m.eps for m in shipped.model.modules() if isinstance(m, torch.nn.RMSNorm)} == {None}


def test_norm_topk_prob_follows_each_routers_paper_and_old_checkpoints_keep_renormalising():
    assert ModelConfig(router="sigmoid_bias").normalises_topk  # DeepSeek-V3
    assert not ModelConfig(router="softmax_topk").normalises_topk  # DeepSeek-V2: raw scores
    assert ModelConfig(router="noisy_topk").normalises_topk  # Shazeer: softmax over the kept k
    with pytest.raises(ValueError, match="noisy_topk always normalises"):
        ModelConfig(router="noisy_topk", norm_topk_prob=False)
    old = {k: v for k, v in ModelConfig(router="softmax_topk").to_dict().items() if k != "norm_topk_prob"}
    assert ModelConfig.from_dict(old).normalises_topk
    assert load_checkpoint(SHIPPED / "ru-en-softmax").model_config.normalises_topk
    x = torch.randn(5, 64)
    for norm, sums_to_one in ((None, False), (True, True)):
        model = DSMini(ModelConfig(router="softmax_topk", norm_topk_prob=norm, vocab_size=10))
        weights, _, _ = model.layers[1].ffn.gate(x)
        assert torch.allclose(weights.sum(-1), torch.ones(5)) == sums_to_one


def test_train_flags_set_both_options():
    from dsmini.cli.main import build_parser

    args = build_parser().parse_args(["train", "--corpus", "en-names", "--no-norm-topk-prob", "--norm-eps", "1e-5"])
    assert args.norm_topk_prob is False and args.norm_eps == 1e-5
    assert build_parser().parse_args(["train", "--corpus", "en-names"]).norm_topk_prob is None
    assert dataclasses.replace(ModelConfig(), norm_topk_prob=True).normalises_topk


def test_checkpoints_keep_both_options_and_refuse_bad_values(tmp_path):
    cfg = ModelConfig(vocab_size=len(CHARS) + 1, router="softmax_topk", norm_topk_prob=False, norm_eps=None)
    path = save_checkpoint(tmp_path, "opts", DSMini(cfg), CharTokenizer(CHARS))
    assert load_checkpoint(path).model_config == cfg
    meta = json.loads((path / "checkpoint.json").read_text())
    meta["model_config"]["norm_topk_prob"] = "yes"
    (path / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="norm_topk_prob"):
        load_checkpoint(path)
    for bad in (dict(norm_topk_prob=1), dict(norm_eps=0.0), dict(norm_eps=float("nan"))):
        with pytest.raises(ValueError, match="norm_"):
            ModelConfig(**bad)
