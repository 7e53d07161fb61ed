"""Step-through decoding: `step_once` on tiny random models (the invariants need no training), its
chart and table, and the Generate page's Next / Reset buttons on the shipped ru-names checkpoint."""

import dataclasses
import math

import plotly.graph_objects as go
import pytest
import torch
from torch import nn

from dsmini.charts.common import ACTUAL_COLOR
from dsmini.charts.routing import expert_choice, step_candidates_figure, step_table
from dsmini.config import preset
from dsmini.data import BOUNDARY_ID, BOUNDARY_SYMBOL, CharTokenizer, UnknownCharacterError
from dsmini.decoding.generate import next_token_probs
from dsmini.i18n import fmt_num, t
from dsmini.model import DSMini
from dsmini.probes import trace_name
from dsmini.probes.routing import STEP_CANDIDATES, step_once
from tests.helpers import app_test, no_errors, tiny_model

NAMES = ["анна", "олег", "юлия", "john", "mary", "александра"]


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_names(NAMES)


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, n_layers=3)  # MoE layers 1, 2


def _biased(tok, boundary_logit: float) -> DSMini:
    """A model whose head ignores the input: the boundary gets `boundary_logit`, every character 0.
    +20 ends every name at once, -20 never ends one."""
    torch.manual_seed(0)
    model = DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=12)).eval()
    model.head = nn.Linear(model.cfg.d_model, tok.vocab_size, bias=True)
    nn.init.zeros_(model.head.weight)
    with torch.no_grad():
        model.head.bias.zero_()[BOUNDARY_ID] = boundary_logit
    return model


def _full_probs(model, tok, text) -> torch.Tensor:
    """(V,) the model's temperature-1 distribution after `[B] + text`, computed here independently."""
    with torch.inference_mode():
        logits = model(torch.tensor([[BOUNDARY_ID, *tok.encode(text)]])).logits[:, -1]  # (1, V)
    return next_token_probs(logits, 1.0)[0]


@pytest.mark.parametrize("greedy", [True, False])
def test_candidates_are_sorted_probabilities(model, tok, greedy):
    step = step_once(model, tok, "ан", 1.0, 3, greedy)
    probs = [p for _, p in step.candidates]
    assert len(step.candidates) == min(STEP_CANDIDATES, tok.vocab_size) == 8
    assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
    assert sum(probs) <= 1 + 1e-6
    assert len({c for c, _ in step.candidates}) == len(step.candidates)
    full = _full_probs(model, tok, "ан")
    assert math.isclose(step.prob, float(full[step.token_id]), rel_tol=1e-5)
    assert math.isclose(probs[0], float(full.max()), rel_tol=1e-5)


@pytest.mark.parametrize("text", ["", "а", "юли", "алекс"])
def test_greedy_is_the_argmax_of_the_full_distribution(model, tok, text):
    step = step_once(model, tok, text, 0.8, 0, greedy=True)
    full = _full_probs(model, tok, text)
    assert step.token_id == int(full.argmax())
    assert step.candidates[0] == (step.char, pytest.approx(step.prob))
    assert step.read == text and step.text == text + step.char and not step.ended
    assert step.fed == (text[-1] if text else BOUNDARY_SYMBOL)


def test_experts_per_layer_for_the_last_character(model, tok):
    cfg = model.cfg
    step = step_once(model, tok, "олег", 1.0, 0, greedy=False)
    main_moe = [i for i in cfg.moe_block_ids if i < cfg.n_layers]
    assert step.layers == main_moe == [1, 2]
    trace = trace_name(model, tok, "олег")
    for layer in step.layers:
        experts, weights = step.experts[layer], step.gate_weights[layer]
        assert len(set(experts)) == len(experts) == cfg.top_k
        assert all(0 <= e < cfg.n_routed_experts for e in experts)
        assert weights == sorted(weights, reverse=True) and math.isclose(sum(weights), 1.0, rel_tol=1e-5)
        # the same model read the same text: the last position of the whole-name trace
        assert experts == trace.experts[layer][-1]
        assert weights == pytest.approx(trace.gate_weights[layer][-1])


def test_dense_model_has_no_experts(tok):
    dense = DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=12, ffn_type="dense")).eval()
    step = step_once(dense, tok, "ma", 1.0, 0, greedy=True)
    assert step.layers == [] and step.experts == {} and step.gate_weights == {}
    assert step_table([step]).columns.tolist() == ["Step", "Read", "Added", "Probability", "Name so far"]


def test_same_text_seed_and_step_give_the_same_choice(model, tok):
    first = step_once(model, tok, "ан", 1.5, 7, greedy=False)
    assert step_once(model, tok, "ан", 1.5, 7, greedy=False) == first
    # a walk replays exactly
    walks = []
    for _ in range(2):
        text = ""
        for _ in range(6):
            text = step_once(model, tok, text, 1.5, 7, greedy=False).text
        walks.append(text)
    assert walks[0] == walks[1]
    # the seed matters: a near-uniform random model picks differently under different seeds
    assert len({step_once(model, tok, "ан", 1.5, seed, greedy=False).char for seed in range(12)}) > 1


def test_sampling_honours_top_k_and_leaves_the_global_rng(model, tok):
    greedy = step_once(model, tok, "юл", 1.0, 0, greedy=True)
    rng = torch.random.get_rng_state()
    for seed in range(6):
        assert step_once(model, tok, "юл", 1.0, seed, greedy=False, top_k=1).token_id == greedy.token_id
        top2 = {c for c, _ in step_once(model, tok, "юл", 1.0, seed, greedy=False).candidates[:2]}
        assert step_once(model, tok, "юл", 2.0, seed, greedy=False, top_k=2).char in top2
    assert torch.equal(rng, torch.random.get_rng_state())


def test_end_token_finishes_the_name(tok):
    ending = _biased(tok, 20.0)
    for greedy in (True, False):
        step = step_once(ending, tok, "ан", 1.0, 0, greedy)
        assert step.ended and step.finished and step.token_id == BOUNDARY_ID
        assert step.char == BOUNDARY_SYMBOL and step.text == step.read == "ан"
        assert step.prob > 0.99


def test_max_length_stops_the_walk(tok):
    endless = _biased(tok, -20.0)
    text, steps = "а", []
    while not (steps and steps[-1].finished):
        steps.append(step_once(endless, tok, text, 1.0, 0, greedy=False, max_len=4))
        text = steps[-1].text
    assert len(steps) == 3 and len(text) == 4 and not any(s.ended for s in steps)
    assert [s.finished for s in steps] == [False, False, True]
    with pytest.raises(ValueError, match="at most 4"):
        step_once(endless, tok, text, 1.0, 0, greedy=False, max_len=4)
    # max_len defaults to (and is capped at) block_size - 1
    full = step_once(endless, tok, "а" * 10, 1.0, 0, greedy=True, max_len=50)
    assert full.finished and len(full.text) == 11
    with pytest.raises(ValueError, match="at most 11"):
        step_once(endless, tok, "а" * 11, 1.0, 0, greedy=True)


def test_bad_input_is_refused(model, tok):
    with pytest.raises(UnknownCharacterError) as err:
        step_once(model, tok, "анz", 1.0, 0, greedy=True)
    assert err.value.chars == ["z"]
    with pytest.raises(ValueError, match="temperature"):
        step_once(model, tok, "ан", -1.0, 0, greedy=False)
    with pytest.raises(ValueError, match="top_p"):
        step_once(model, tok, "ан", 1.0, 0, greedy=False, top_p=0.0)


def test_step_leaves_model_untouched(tok):
    torch.manual_seed(1)
    model = DSMini(preset("tiny", vocab_size=tok.vocab_size, block_size=12, router="noisy_topk"))
    model.train()  # e.g. the trainer's model mid-run: stepping must give train mode back
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = step_once(model, tok, "mar", 1.0, 0, greedy=False)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert step_once(model, tok, "mar", 1.0, 0, greedy=False) == first  # eval mode inside: no router noise


# ---------------------------------------------------------------------------------------------
# Chart and table


def test_candidates_figure_marks_the_pick(model, tok):
    step = step_once(model, tok, "ан", 1.0, 0, greedy=True)
    fig = step_candidates_figure(step, "ru")
    assert isinstance(fig, go.Figure)
    bar = fig.data[0]
    assert len(bar.x) == len(step.candidates)
    assert [c for c in bar.marker.color].count(ACTUAL_COLOR) == 1 and bar.marker.color[0] == ACTUAL_COLOR
    assert fig.layout.title.text.startswith("После «|ан»") and f"«{step.char}»" in fig.layout.title.text


def test_candidates_figure_appends_a_pick_outside_the_top(model, tok):
    step = step_once(model, tok, "ан", 1.0, 0, greedy=True)
    outsider = next(i for i in range(tok.vocab_size) if tok.label(i) not in dict(step.candidates))
    drawn = dataclasses.replace(step, token_id=outsider, char=tok.label(outsider), prob=0.001)
    bar = step_candidates_figure(drawn).data[0]
    assert len(bar.x) == len(step.candidates) + 1 and bar.marker.color[-1] == ACTUAL_COLOR


def test_step_table_rows_and_headers(model, tok):
    steps, text = [], "ю"
    for _ in range(3):
        steps.append(step_once(model, tok, text, 1.0, 0, greedy=True))
        text = steps[-1].text
    for lang in ("en", "ru"):
        table = step_table(steps, lang)
        assert len(table) == 3
        assert table[t("gen.step.col_step", lang)].tolist() == [1, 2, 3]
        assert table[t("gen.step.col_name", lang)].tolist() == [s.text for s in steps]
        assert table[t("gen.step.col_read", lang)].tolist() == ["ю", steps[0].char, steps[1].char]
        for layer in steps[0].layers:
            column = table[t("gen.step.col_experts", lang, layer=layer)].tolist()
            assert column == [expert_choice(s, layer, lang) for s in steps]
    first = expert_choice(steps[0], 1, "ru")
    e0, e1 = steps[0].experts[1]
    assert first.startswith(f"эксперт {e0} (0,") and f" · эксперт {e1} (0," in first  # decimal comma


# ---------------------------------------------------------------------------------------------
# The Generate page


def _open(at, lang="en", checkpoint="ru-names"):
    at.session_state["lang"] = lang
    at.session_state["checkpoint"] = checkpoint
    at.run()
    at.switch_page("pages/generate.py").run()
    no_errors(at)


def _press(at, key):
    at.button(key=key).click().run()
    no_errors(at)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_next_three_times_then_reset(at, lang):
    _open(at, lang)
    assert t("gen.step.title", lang) in [s.value for s in at.subheader]
    assert at.button(key="gen_step_next").label == t("gen.step.next", lang)
    assert at.button(key="gen_step_reset").disabled  # nothing to reset yet
    at.text_input(key="gen_step_prefix").set_value("Крас").run()
    for _ in range(3):
        _press(at, "gen_step_next")
    steps = at.session_state["gen_steps"]
    text = steps[-1].text
    assert text.startswith("Крас") and (len(text) == 7 or steps[-1].ended)
    assert len(steps) == 3 and [s.read for s in steps] == ["Крас", steps[0].text, steps[1].text]
    assert [s.char for s in steps] == [s.text[-1] for s in steps]
    history = at.dataframe[0].value
    assert len(history) == 3 and history[t("gen.step.col_name", lang)].tolist()[-1] == text
    assert at.get("plotly_chart")  # the last step's candidates
    shown = " ".join(m.value for m in at.markdown)
    p = fmt_num(steps[-1].prob, 3, lang)  # 0,358 in Russian
    assert t("gen.step.last", lang, step=3, fed=steps[-1].fed, char=steps[-1].char, p=p) in shown
    assert t("gen.step.layer_experts", lang, layer=1, experts="").strip() in shown
    _press(at, "gen_step_reset")
    assert at.session_state["gen_steps"] == []
    assert not at.button(key="gen_step_next").disabled
    assert t("gen.step.text", lang, text="|Крас") in [m.value for m in at.markdown]
    assert not at.dataframe


def test_russian_ui_speaks_russian(at):
    _open(at, "ru")
    at.text_input(key="gen_step_prefix").set_value("Крас").run()
    _press(at, "gen_step_next")
    assert at.button(key="gen_step_next").label == "Следующий символ"
    assert at.button(key="gen_step_reset").label == "Сбросить"
    assert "Генерация по шагам" in [s.value for s in at.subheader]
    assert any(m.value.startswith("Шаг 1: прочитан «с», добавлен") for m in at.markdown)
    assert "Шаг" in at.dataframe[0].value.columns


def test_greedy_walk_finishes_and_disables_next(at):
    _open(at)
    at.text_input(key="gen_step_prefix").set_value("Крас").run()
    max_len = at.number_input(key="gen_max_len").value
    for _ in range(max_len):  # at most max_len - 4 presses are needed
        if at.button(key="gen_step_next").disabled:
            break
        _press(at, "gen_step_next")
    steps = at.session_state["gen_steps"]
    assert steps[-1].finished and at.button(key="gen_step_next").disabled
    if steps[-1].ended:
        assert steps[-1].char == "|" and t("gen.step.ended", "en", text=steps[-1].text) in [s.value for s in at.success]
    else:
        assert len(steps[-1].text) == max_len and at.info


def test_sampled_walk_replays_and_switching_checkpoint_clears_it():
    texts = []
    for _ in range(2):
        app = app_test()
        _open(app)
        app.segmented_control(key="gen_step_mode").set_value("sample").run()
        for _ in range(3):
            _press(app, "gen_step_next")
        texts.append([s.text for s in app.session_state["gen_steps"]])
    assert texts[0] == texts[1]  # same start, seed and steps: the same characters
    app.session_state["checkpoint"] = "en-names"  # AppTest drops the sidebar after switch_page: set the picker's key
    app.run()
    no_errors(app)
    assert app.session_state["gen_steps"] == [] and app.session_state["gen_step_for"][0] == "en-names"
    assert not app.dataframe


def test_bad_start_is_a_translated_message(at):
    _open(at, "ru")
    at.text_input(key="gen_step_prefix").set_value("Kras").run()
    assert not at.exception
    assert at.error and at.error[0].value.startswith("В начале имени есть символы, которых модель не знает")
    assert "'K'" in at.error[0].value
    assert not [b for b in at.button if b.key == "gen_step_next"]
