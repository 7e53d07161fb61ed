"""AppTest for the Attention and KV-cache pages: shipped MLA checkpoints in both languages, and a
random-init MHA checkpoint (no content/position split, no absorbed decoding)."""


import pytest
import torch
from streamlit.testing.v1 import AppTest

from dsmini.checkpoint import save_checkpoint
from dsmini.config import preset
from dsmini.data import CharTokenizer
from dsmini.i18n import parse_num, t
from dsmini.model import DSMini
from dsmini.probes.attention import sample_name
from pages import _ui as ui
from pages import _ui_models as ui_models
from tests.helpers import charts, no_errors


def open_page(at, page: str, lang: str, checkpoint: str) -> AppTest:
    at.session_state["lang"] = lang
    at.session_state["checkpoint"] = checkpoint
    at.run()
    return at.switch_page(page).run()


def heatmaps(fig: dict) -> list[dict]:
    return [trace for trace in fig["data"] if trace["type"] == "heatmap"]


@pytest.mark.parametrize(("lang", "checkpoint", "other_name"), [("en", "en-names", "Anna"), ("ru", "ru-names", "Анна")])
def test_attention_page_maps_every_head_and_splits_mla_scores(at, lang, checkpoint, other_name):
    open_page(at, "pages/attention.py", lang, checkpoint)
    no_errors(at)
    ckpt = ui.load_by_name(checkpoint)
    cfg = ckpt.model_config
    name = at.text_input(key=f"att_name_{checkpoint}").value
    assert name == sample_name(ckpt.tokenizer, cfg.block_size)
    grid, split = charts(at)
    assert len(heatmaps(grid)) == cfg.n_layers * (cfg.n_heads + 1)  # every head + the mean per layer
    for panel in heatmaps(grid):
        assert len(panel["z"]) == len(name) + 1 and all(len(row) == len(name) + 1 for row in panel["z"])
        assert panel["z"][0][1:] == [None] * len(name)  # the boundary sees no future
    assert len(heatmaps(split)) == 3  # total, content, position

    at.text_input(key=f"att_name_{checkpoint}").set_value(other_name)
    at.selectbox(key=f"att_layer_{checkpoint}").set_value(2)
    at.selectbox(key=f"att_head_{checkpoint}").set_value(1).run()
    no_errors(at)
    grid, split = charts(at)
    assert all(len(panel["z"]) == len(other_name) + 1 for panel in heatmaps(grid))
    assert split["layout"]["title"]["text"] == t("chart.attention.split_title", lang, layer=2, head=1)
    total, content, position = (panel["z"] for panel in heatmaps(split))
    for q, row in enumerate(total):
        for k, value in enumerate(row[: q + 1]):
            assert value == pytest.approx(content[q][k] + position[q][k], abs=2e-3)

    at.text_input(key=f"att_name_{checkpoint}").set_value("Ж" + other_name + "ω").run()
    assert not at.exception
    unknown = "'Ж', 'ω'" if lang == "en" else "'ω'"
    assert at.error[0].value == t("attention.oov", lang, chars=unknown)
    assert not at.get("plotly_chart")


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_kv_cache_page_measures_every_type_and_times_absorbed_decode(at, lang):
    open_page(at, "pages/kv_cache.py", lang, "en-names")
    no_errors(at)
    (growth,) = charts(at)
    assert len(growth["data"]) == 14  # measured + extrapolated line per attention type (7)
    assert growth["layout"]["xaxis"]["type"] == "log"
    (model_table,), (v2, v3) = (table.value for table in at.table), (df.value for df in at.dataframe)
    # shipped dims: 4 layers, 4 heads, d_model 64 -> d_h 16, 2 KV groups, d_c 32, d_h^R 8
    # then DSA (+ indexer keys d^I 16), MoBA and log-linear (MLA's own cache)
    assert list(model_table.iloc[:, 3]) == list(model_table.iloc[:, 4]) == [512, 256, 128, 160, 224, 160, 160]
    assert list(model_table.iloc[:, 6]) == [2048, 1024, 512, 640, 896, 640, 640]  # float32 bytes per token
    assert model_table.iloc[4, 2] == "c_kv 32 + k_rope 8 + k_index 16"  # what DSA caches per layer
    assert list(v2.iloc[:, 2]) == list(v3.iloc[:, 2]) == [32_768, 2048, 256, 576, 704, 576, 576]
    assert list(v2.iloc[:, 3]) == [n * 60 for n in (32_768, 2048, 256, 576, 704, 576, 576)]
    assert [m.label for m in at.metric] == [t(k, lang) for k in ("kv.naive", "kv.absorbed", "kv.speedup")]
    assert all(parse_num(m.value.rstrip("×"), lang) > 0 for m in at.metric)
    assert [s.value.split(":")[0] for s in at.success] == [
        t("kv.match_ok", lang, n=7).split(":")[0], t("kv.same_ok", lang, diff="#").split(":")[0],
    ]


@pytest.fixture
def mha_checkpoint(tmp_path, monkeypatch):
    """A random-init MHA checkpoint in a private checkpoints folder."""
    tokenizer = CharTokenizer.from_names(["Anna", "Annabelle", "Boris", "Mary"])
    torch.manual_seed(0)
    model = DSMini(preset("tiny", attn_type="mha", vocab_size=tokenizer.vocab_size, block_size=12)).eval()
    save_checkpoint(tmp_path, "mha-tiny", model, tokenizer)
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    return "mha-tiny"


def test_pages_explain_what_an_mha_checkpoint_lacks(at, mha_checkpoint):
    open_page(at, "pages/attention.py", "ru", mha_checkpoint)
    no_errors(at)
    (grid,) = charts(at)  # no split for MHA: a note instead
    assert len(heatmaps(grid)) == 2 * (2 + 1) and len(heatmaps(grid)[0]["z"]) == len("Annabelle") + 1
    assert at.info[0].value == t("attention.no_split", "ru", kind="MHA")

    at.switch_page("pages/kv_cache.py").run()
    no_errors(at)
    assert len(charts(at)) == 1
    model_table = at.table[0].value
    assert list(model_table.iloc[:, 3]) == list(model_table.iloc[:, 4]) == [128, 64, 64, 40, 72, 40, 40]
    assert model_table.iloc[0, 0] == t("chart.cache.this_model", "ru", kind="MHA")
    assert at.info[-1].value == t("kv.not_mla", "ru", kind="MHA")
    assert not at.metric
