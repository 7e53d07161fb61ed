"""AppTest for the Experts page: both shipped checkpoints, both languages, its widgets, and the
checkpoints it cannot analyse fully (dense FFN, MHA attention, a corpus that is not stored)."""

import pytest
import torch

from dsmini.checkpoint import CorpusRef, save_checkpoint
from dsmini.config import preset
from dsmini.i18n import parse_num, t
from dsmini.model import DSMini
from dsmini.probes.experts import LETTER_GROUPS, letter_group
from pages import _ui as ui
from pages import _ui_models as ui_models
from tests.helpers import charts, no_errors, opened, traces

N_LETTER_CHARTS = 5  # letters, positions, load, specialisation, one expert's profile


def open_page(app, checkpoint: str, lang: str):
    return opened(app, "experts", lang, checkpoint=checkpoint)


def show(app, section: str):
    app.segmented_control(key="experts_section").set_value(section).run()
    no_errors(app)
    return app


@pytest.mark.parametrize(("checkpoint", "lang"), [("en-names", "en"), ("ru-names", "ru")])
def test_experts_page_letter_charts(at, checkpoint, lang):
    open_page(at, checkpoint, lang)
    assert at.segmented_control(key="experts_section").value == "letters"  # no domains: letters first
    cfg = ui.load_by_name(checkpoint).model_config
    n_moe, n_exp = cfg.n_layers - cfg.n_dense_layers, cfg.n_routed_experts
    assert at.title[0].value == t("experts.title", lang)
    figures = charts(at)
    assert len(figures) == N_LETTER_CHARTS
    letters, positions, load, mi, profile = figures
    maps = traces(letters, "heatmap")
    assert len(maps) == n_moe
    ticks = letters["layout"]["yaxis"]["ticktext"]
    assert ticks[0] == "|" and len(ticks) > 26
    groups = [letter_group(c) for c in ticks]
    assert groups == sorted(groups, key=LETTER_GROUPS.index)  # grouped by script and case
    for heatmap in maps:
        assert len(heatmap["z"]) == len(ticks) and all(len(row) == n_exp for row in heatmap["z"])
        assert all(abs(sum(row) - 1) < 0.01 for row in heatmap["z"])
    assert [len(h["z"]) for h in traces(positions, "heatmap")] == [4] * n_moe
    assert [len(bar["y"]) for bar in traces(load, "bar")] == [n_exp] * n_moe
    trained, initial = traces(mi, "bar")
    assert len(trained["y"]) == len(initial["y"]) == n_moe
    assert all(0 < bits <= 2 for bits in trained["y"] + initial["y"])  # ceiling log2(8 / 2) = 2 bits
    assert len(traces(profile, "bar")) == 2
    show(at, "domains")
    assert not charts(at) and at.info[-1].value == t("experts.no_domains", lang)
    show(at, "routers")
    same_corpus = [i.name for i in ui.checkpoints() if i.corpus == checkpoint]
    if len(same_corpus) < 2:  # en-names: the only model of its corpus
        assert not charts(at) and at.info[-1].value == t("experts.routers_none", lang, corpus=checkpoint)
    else:  # ru-names and ru-names-mtp2 (MTP depth 2) side by side
        assert sorted(bar["name"].split(":")[0] for bar in traces(charts(at)[0], "bar")) == sorted(same_corpus)


def test_experts_page_letter_widgets(at):
    """Pick another expert, the top-1 view and the last layer."""
    open_page(at, "en-names", "en")
    ckpt = ui.load_by_name("en-names")
    last = ckpt.model_config.n_layers - 1
    at.pills(key="experts_expert").set_value(5).run()
    at.segmented_control(key="experts_view").set_value("top1").run()
    at.selectbox(key="experts_layer").set_value(last).run()
    no_errors(at)
    figures = charts(at)
    assert len(figures) == N_LETTER_CHARTS
    assert figures[0]["layout"]["title"]["text"] == t("chart.experts.letters_title_top1", "en", k=2)
    n_val = ckpt.corpus.n_val  # 516 < MAX_NAMES: all of them
    sample = t("experts.sample", "en", n=n_val, corpus="en-names", tokens="#").split("#")[0]
    assert any(c.value.startswith(sample) for c in at.caption)
    assert figures[0]["layout"]["coloraxis"]["cmax"] == 1.0  # top-1: a letter can go wholly to one expert
    picked = f"Expert 5 of {t('chart.layer', 'en', layer=last)}"
    assert figures[4]["layout"]["title"]["text"].startswith(picked)  # the profile


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_experts_page_ablation_kinds(at, lang):
    """Reroute one expert, drop two, mask each token's favourite, the shared expert off: each reruns the names."""
    open_page(at, "en-names", lang)
    show(at, "ablation")
    assert at.info[-1].value == t("experts.pick_something", lang)  # nothing picked yet
    at.selectbox(key="experts_ablation_layer").set_value(2).run()
    at.segmented_control(key="experts_kind").set_value("reroute").run()
    at.pills(key="experts_off_2").set_value([3]).run()
    no_errors(at)
    loss_on = next(m for m in at.metric if m.label == t("experts.m_loss_on", lang)).value
    bars = traces(charts(at)[0], "bar")[0]["y"]
    assert bars == sorted(bars, reverse=True)
    title = charts(at)[0]["layout"]["title"]["text"]
    assert title.startswith(t("chart.ablation.what_reroute", lang, experts="3", layer=t("chart.layer", lang, layer=2)))
    at.segmented_control(key="experts_kind").set_value("drop").run()
    at.pills(key="experts_off_2").set_value([3, 5]).run()
    no_errors(at)
    assert t("chart.ablation.what_drop", lang, experts="3, 5", layer=t("chart.layer", lang, layer=2)) in \
        charts(at)[0]["layout"]["title"]["text"]
    dropped = next(m for m in at.metric if m.label == t("experts.m_loss_off", lang))
    assert parse_num(dropped.value, lang) > parse_num(loss_on, lang)  # dropping two experts' output hurts
    at.segmented_control(key="experts_kind").set_value("mask_top").run()
    at.checkbox(key="experts_shared_off").check().run()
    no_errors(at)
    title = charts(at)[0]["layout"]["title"]["text"]
    assert t("chart.ablation.what_mask_top", lang, r=1, layers=t("chart.layer", lang, layer=2)) in title
    assert t("chart.ablation.what_shared", lang, layers=t("chart.layer", lang, layer=2)) in title
    names = [m.value for m in at.markdown if m.value.startswith(f"**{t('experts.names_on', lang)}**")]
    assert len(names) == 1 and names[0].count("·") == 7  # 8 names


def _save(root, name, corpus, **overrides):
    tokenizer = ui.load_by_name("en-names").tokenizer
    torch.manual_seed(0)
    model = DSMini(preset("tiny", vocab_size=tokenizer.vocab_size, block_size=12, **overrides))
    save_checkpoint(root, name, model, tokenizer, corpus=CorpusRef.from_json(corpus))


def test_experts_page_dense_mha_and_missing_corpus(at, tmp_path, monkeypatch):
    en = {"name": "en-names", "split_seed": 42, "block_size": 12}
    _save(tmp_path, "dense", en, ffn_type="dense")
    _save(tmp_path, "mha", en, attn_type="mha")
    _save(tmp_path, "upload", {"name": "my-names.txt", "split_seed": 42, "block_size": 12})
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    open_page(at, "dense", "ru")
    assert not charts(at) and at.info[0].value == t("chart.no_moe", "ru")
    at.session_state["checkpoint"] = "mha"  # AppTest drops the sidebar after switch_page: set the picker's key
    at.run()
    no_errors(at)
    assert len(charts(at)) == N_LETTER_CHARTS
    at.session_state["checkpoint"] = "upload"
    at.run()
    assert not at.exception and not charts(at)
    assert "my-names.txt" in at.error[0].value and "cannot be rebuilt" in at.error[0].value


def test_experts_and_mtp_pages_on_an_uploaded_corpus_with_domains(at, tmp_path, monkeypatch):
    """A class's own labelled file: the checkpoint stores its validation names and domains, so the
    domain view, the ablation by domain and the MTP page all work without the original file."""
    val = ["Anna", "Maria", "Olga", "Irina", "John", "Peter", "Mark", "Paul"]
    corpus = {"name": "class.txt", "split_seed": 42, "block_size": 12, "domains": ["boys", "girls"],
              "val_names": val, "val_domains": ["girls"] * 4 + ["boys"] * 4}
    _save(tmp_path, "class", corpus)
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    open_page(at, "class", "en")
    assert at.segmented_control(key="experts_section").value == "domains"
    domain_map = next(f for f in charts(at) if f["data"][0]["type"] == "heatmap")
    assert domain_map["data"][0]["y"] == ["boys", "girls"]  # a user's own labels, shown as written
    assert any(c.value.startswith(t("experts.sample", "en", n=8, corpus="class.txt", tokens="#").split("#")[0])
               for c in at.caption)
    show(at, "ablation")
    at.button(key="experts_top_girls").click().run()
    no_errors(at)
    damage = next(f for f in charts(at) if f["layout"]["title"]["text"] == t("chart.domains.damage_title", "en"))
    assert sorted(damage["layout"]["xaxis"]["ticktext"]) == ["boys", "girls"]
    at.switch_page("pages/mtp.py").run()
    no_errors(at)
    source = t("mtp.source_val", "en", corpus="class.txt", examples="#").split("#")[0]
    assert any(c.value.startswith(source) for c in at.caption)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_experts_page_domains_on_the_shipped_mixed_model(at, lang):
    """ru-en-names opens on its domains: I(domain; expert) trained far above untrained, a 2-row map."""
    open_page(at, "ru-en-names", lang)
    assert at.segmented_control(key="experts_section").value == "domains"
    mi, domain_map = charts(at)
    trained, initial = traces(mi, "bar")
    assert max(trained["y"]) > 5 * max(initial["y"])  # the split is learned, not a hash
    maps = traces(domain_map, "heatmap")
    assert len(maps) == 3 and all(len(m["z"]) == 2 and len(m["z"][0]) == 8 for m in maps)
    assert maps[0]["y"] == [t("domain.en", lang), t("domain.ru", lang)]
    assert any(max(row) > 1.5 for m in maps for row in m["z"])  # some expert favours a domain
    at.toggle(key="experts_domain_untrained").set_value(True).run()
    no_errors(at)
    untrained = traces(charts(at)[1], "heatmap")
    assert charts(at)[1]["layout"]["title"]["text"] == t("chart.domains.title_initial", lang)

    def gap(m):  # how differently the two domains use the experts
        return sum(abs(a - b) for a, b in zip(*m["z"]))

    assert all(gap(before) < gap(after) for before, after in zip(untrained, maps))


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_experts_page_drop_a_domains_top_experts_and_the_router_shootout(at, lang):
    open_page(at, "ru-en-names", lang)
    show(at, "ablation")
    at.button(key="experts_top_ru").click().run()
    no_errors(at)
    assert at.segmented_control(key="experts_kind").value == "drop"
    damage = next(f for f in charts(at) if f["layout"]["title"]["text"] == t("chart.domains.damage_title", lang))
    bars = dict(zip(damage["layout"]["xaxis"]["ticktext"], traces(damage, "bar")[0]["y"]))
    assert bars[t("domain.ru", lang)] > 5 * max(bars[t("domain.en", lang)], 0.001)  # Russian names hurt most
    assert any(m.value.startswith(t("experts.damage_ratio", lang, domain=t("domain.ru", lang), delta="#", others="",
                                    ratio="").split("#")[0]) for m in at.markdown)
    show(at, "routers")
    table = at.dataframe[0].value
    assert list(table[t("chart.shootout.col_checkpoint", lang)]) == ["ru-en-names", "ru-en-noisy", "ru-en-softmax"]
    mi, maps, imbalance = charts(at)
    assert len(traces(mi, "bar")) == 3 and len(traces(maps, "heatmap")) == 3 and len(traces(imbalance, "bar")) == 3


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_single_corpus_model_points_to_the_mixed_one(at, lang):
    open_page(at, "en-names", lang)
    assert at.info[0].value == t("experts.try_mixed", lang, model="ru-en-names")
    at.button(key="experts_open_mixed").click().run()
    no_errors(at)
    assert at.session_state["checkpoint"] == "ru-en-names"
    assert at.segmented_control(key="experts_section").value == "domains"
    assert len(charts(at)) == 2
    assert not any(i.value == t("experts.try_mixed", lang, model="ru-en-names") for i in at.info)
