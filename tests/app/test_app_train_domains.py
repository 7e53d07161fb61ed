"""AppTest for the Train page's live I(domain; expert) curve: a short run on the mixed corpus ru-en-names."""


import pytest

from dsmini.i18n import t
from dsmini.jobs.slots import set_max_concurrent_jobs
from tests.helpers import charts, no_errors, opened, run_until

N_MOE_LAYERS = 2  # the tiny preset with 3 layers: block 0 dense, blocks 1 and 2 MoE (and an MTP block)


def chart_titled(app, title: str) -> dict | None:
    return next((s for s in charts(app) if s["layout"].get("title", {}).get("text") == title), None)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_train_page_shows_the_domain_split_of_a_mixed_corpus(at, lang):
    set_max_concurrent_jobs(1)
    opened(at, "train", lang)
    corpus = at.selectbox(key="train_corpus")
    assert t("train.corpus_mixed", lang, name="ru-en-names", domains="en / ru") in corpus.options
    corpus.set_value("ru-en-names").run()
    at.selectbox(key="train_preset").set_value("tiny")
    at.number_input(key="train_layers").set_value(3)
    at.number_input(key="train_steps").set_value(100)  # the page evaluates every 50 steps: two points
    at.button(key="train_start").click().run()
    no_errors(at)
    run_until(at, lambda app: bool(app.get("download_button")), 90)  # finished actions: the run is over
    no_errors(at)
    assert t("train.state_completed", lang, step=100, total=100) == at.get("progress")[0].proto.text

    spec = chart_titled(at, t("chart.domain_mi.title", lang))
    assert spec is not None, "no I(domain; expert) chart"
    *layers, untrained = spec["data"]
    assert len(layers) == N_MOE_LAYERS and [line["x"] for line in layers] == [[50, 100]] * N_MOE_LAYERS
    assert untrained["line"]["dash"] == "dash" and untrained["name"] == t("chart.domain_mi.initial", lang)
    assert all(0 <= bits <= 1 for line in spec["data"] for bits in line["y"])  # H(ru / en) <= 1 bit
    prefix = t("train.m_domain_ratio", lang, layer="#").split("#")[0]
    ratio = next(m for m in at.metric if m.label.startswith(prefix))
    assert ratio.value == "∞" or float(ratio.value.rstrip("×").replace(",", ".")) > 0  # ru: a decimal comma
    assert any(t("domain.ru", lang) in c.value for c in at.caption)  # the caption names the domains
