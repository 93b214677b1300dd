"""SoupWidget on a tiny random Llama with six random adapters: sliders -> answer and score traits,
debouncing, cancellation, the preference-prompting comparison."""
import time

import pytest
import torch

from rlphf_lab import models, soups
from rlphf_lab.preferences import SIDES
from rlphf_lab.widgets import SoupWidget, score_bars_html
from tiny_models import tiny_llama, tiny_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")
GEN = dict(max_new_tokens=12, temperature=0.7, top_p=0.9, seed=0)


@pytest.fixture(scope="module")
def soup_model(tmp_path_factory):
    dirs = soups.random_lora_adapters(tiny_llama(), SIDES, tmp_path_factory.mktemp("adapters"), std=0.3)
    return soups.load_adapters(tiny_llama(), dirs), tiny_tokenizer()


def fake_scores(sides, instructions, responses):        # the lab's scorer protocol (rlphf_lab.scoring)
    table = [{"P2A": -len(r) / 10, "P2B": len(r) / 10} for r in responses]
    return torch.tensor([[row.get(s, 0.0) for s in sides] for row in table])


def expected_answer(model, tok, prompt, weights, preference=None):
    """What the library alone writes for these weights: the widget must show exactly this."""
    soups.set_soup_weights(model, weights)
    return "".join(models.stream_generate(model, tok, prompt, preference, **GEN))


def make(soup_model, **kw):
    model, tok = soup_model
    kw = dict(scorer=fake_scores, autostart=False, **GEN) | kw
    return SoupWidget(model, tok, prompt="Name a fruit.", **kw)


def test_slider_changes_update_answer_and_scores(soup_model):
    model, tok = soup_model
    w = make(soup_model, sync=True)
    assert set(w.dimension_sliders) == {"P1", "P2", "P3"}
    w.dimension_sliders["P2"].value = 0.9
    w.dimension_sliders["P1"].value = 0.0
    sides = soups.dimension_weights_to_sides({"P1": 0.0, "P2": 0.9, "P3": 0.5})
    assert w.weights == pytest.approx({k: v / 3 for k, v in sides.items()})
    first = w.answer
    assert first == expected_answer(model, tok, "Name a fruit.", sides) and first
    assert w.scores == soups.score_answers(fake_scores, ["Name a fruit."], [first])[0]
    assert "P2B" in w.scores_view.value
    w.dimension_sliders["P3"].value = 1.0               # another move: a different soup, a new answer
    assert w.answer == expected_answer(model, tok, "Name a fruit.", {**sides, "P3A": 0.0, "P3B": 1.0})
    assert w.generations_started == w.generations_finished == 3


def test_the_widget_writes_what_generate_writes_for_the_same_seed(soup_model):
    """One sampler: the streamed answer is the batched one (models.generate) for the same weights and seed."""
    model, tok = soup_model
    w = make(soup_model, sync=True)
    w.dimension_sliders["P2"].value = 0.9
    assert w.answer.strip() == models.generate(model, tok, ["Name a fruit."], **GEN)[0]
    for seed in range(4):
        kw = {**GEN, "seed": seed}
        with model.disable_adapter():
            streamed = "".join(models.stream_generate(model, tok, "Name a fruit.", "P2A", **kw))
            assert streamed.strip() == models.generate(model, tok, ["Name a fruit."], "P2A", **kw)[0]


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_one_sampler_streamed_and_batched_answers_agree_greedy_and_sampled(soup_model, temperature):
    """For a seed, the streamed pieces joined are the batched answer: models.stream_generate, an uninterrupted
    soups.continue_answer (what the widget writes) and the widget itself, against models.generate."""
    model, tok = soup_model
    for seed in range(3):
        kw = {**GEN, "temperature": temperature, "seed": seed}
        soups.set_soup_weights(model, {"P2A": 1.0, "P3B": 1.0})
        batched = models.generate(model, tok, ["Name a fruit."], **kw)[0]
        assert "".join(models.stream_generate(model, tok, "Name a fruit.", **kw)).strip() == batched
        answer = soups.RemixAnswer("Name a fruit.")
        pieces = soups.continue_answer(model, tok, answer, {"P2A": 1.0, "P3B": 1.0}, **kw)
        assert "".join(pieces).strip() == batched and answer.finished and len(answer.segments) == 1
        assert answer.text(tok).strip() == batched
    w = make(soup_model, sync=True, temperature=temperature)
    w.dimension_sliders["P2"].value = 0.9
    assert w.answer.strip() == models.generate(model, tok, ["Name a fruit."], **{**GEN, "temperature": temperature})[0]


def test_continuing_an_answer_counts_its_tokens_and_refuses_a_finished_one(soup_model):
    model, tok = soup_model
    answer = soups.RemixAnswer("Name a fruit.")
    stop_after = iter(range(100))
    first = "".join(soups.continue_answer(model, tok, answer, {"P1A": 1.0}, **{**GEN, "max_new_tokens": 20},
                                          should_stop=lambda: next(stop_after) >= 6))
    assert not answer.finished and 1 <= len(answer.token_ids) <= 6
    rest = "".join(soups.continue_answer(model, tok, answer, {"P1B": 1.0}, **{**GEN, "max_new_tokens": 20}))
    assert answer.finished and len(answer.token_ids) <= 20
    assert [s.weights["P1A"] for s in answer.segments] == [1.0, 0.0] and first + rest == answer.text(tok)
    with pytest.raises(ValueError, match="finished"):
        soups.continue_answer(model, tok, answer, {"P1A": 1.0}, **GEN)
    with pytest.raises(ValueError, match="mix="):
        soups.continue_answer(model, tok, soups.RemixAnswer("x"), {"P1A": 1.0}, mix="prompt", **GEN)


def test_a_burst_of_slider_changes_starts_one_generation(soup_model):
    model, tok = soup_model
    w = make(soup_model, debounce_s=0.2)
    for step in range(21):                              # a drag: 21 value changes in a few ms
        w.dimension_sliders["P2"].value = step / 20
    w.dimension_sliders["P1"].value = 0.3
    w.wait()
    assert w.generations_started == 1 and w.generations_finished == 1
    final = soups.dimension_weights_to_sides({"P1": 0.3, "P2": 1.0, "P3": 0.5})
    assert w.weights == pytest.approx({k: v / 3 for k, v in final.items()})
    assert w.answer == expected_answer(model, tok, "Name a fruit.", final)


def slow(continue_fn=soups.continue_answer, delay=0.05):
    """A continue_fn that hands each piece over `delay` s late (a slow model), so a test can move a slider mid-answer."""
    def wrapped(*args, **kwargs):
        pieces = continue_fn(*args, **kwargs)          # the mix is applied now (bad weights raise here)

        def late():
            for piece in pieces:
                time.sleep(delay)
                yield piece
        return late()
    return wrapped


def move_mid_answer(w, slider="P2", value=1.0, min_chars=3):
    """Start an answer, wait until it has some text, move a slider while it is written; returns the text shown then."""
    w.dimension_sliders[slider].value = 0.0 if value else 1.0
    deadline = time.time() + 20
    while len(w.answer) < min_chars and time.time() < deadline:   # the first answer is being written
        time.sleep(0.01)
    before = w.answer
    assert before and w.generations_finished == 0
    w.dimension_sliders[slider].value = value
    w.wait()
    return before


def test_restart_on_move_starts_a_new_answer(soup_model):
    """The old behaviour, on request: a move while writing stops the answer and writes a new one from scratch."""
    model, tok = soup_model
    w = make(soup_model, debounce_s=0.01, continue_fn=slow(), max_new_tokens=40, restart_on_move=True)
    move_mid_answer(w)
    assert (w.generations_started, w.generations_cancelled, w.generations_finished) == (2, 1, 1)
    assert w.remixes == 0 and len(w.segments) == 1
    final = soups.dimension_weights_to_sides({"P1": 0.5, "P2": 1.0, "P3": 0.5})
    soups.set_soup_weights(model, final)
    assert w.answer == "".join(models.stream_generate(model, tok, "Name a fruit.", None, **{**GEN, "max_new_tokens": 40}))


def test_a_move_mid_answer_continues_the_same_answer_under_the_new_weights(soup_model):
    model, tok = soup_model
    w = make(soup_model, debounce_s=0.01, continue_fn=slow(), max_new_tokens=40)
    before = move_mid_answer(w)
    assert (w.generations_started, w.generations_cancelled, w.generations_finished) == (2, 1, 1)
    assert w.remixes == 1
    first, second = w.segments
    assert w.answer.startswith(before) and w.answer == first["text"] + second["text"]
    assert first["text"].startswith(before)             # the tokens written before the move were kept
    old = soups.dimension_weights_to_sides({"P1": 0.5, "P2": 0.0, "P3": 0.5})
    new = soups.dimension_weights_to_sides({"P1": 0.5, "P2": 1.0, "P3": 0.5})
    assert first["weights"] == pytest.approx({k: v / 3 for k, v in old.items() if v})
    assert second["weights"] == pytest.approx({k: v / 3 for k, v in new.items() if v})
    assert w.weights == pytest.approx({k: v / 3 for k, v in new.items()})
    assert first["tokens"] + second["tokens"] <= 40 and first["tokens"] >= 1
    # the second part is what the library writes after exactly that prefix under the new weights
    prefix = w.remix_answer.token_ids[:first["tokens"]]
    again = soups.RemixAnswer("Name a fruit.", segments=[soups.Segment(weights={}, mix="weights", token_ids=prefix)])
    rest = "".join(soups.continue_answer(model, tok, again, new, **{**GEN, "max_new_tokens": 40}))
    assert rest == second["text"] and again.finished
    # and it differs from what the old weights would have written after it (the move mattered)
    if second["tokens"] >= 5:
        same = soups.RemixAnswer("Name a fruit.", segments=[soups.Segment(weights={}, mix="weights", token_ids=prefix)])
        assert "".join(soups.continue_answer(model, tok, same, old, **{**GEN, "max_new_tokens": 40})) != rest
    # colours and legend: one span and one legend row per mix
    assert w.answer_view.value.count("class='rlphf-mix'") == 2
    assert "rlphf-mix-legend" in w.legend_view.value and w.legend_view.value.count("tokens</div>") == 2
    assert "2 mixes wrote this answer" in w.status


def test_a_finished_answer_is_not_continued(soup_model):
    """Continuing is for a move *while* writing: once an answer is done, a move writes a new one."""
    model, tok = soup_model
    w = make(soup_model, sync=True)
    w.dimension_sliders["P2"].value = 0.0
    w.dimension_sliders["P2"].value = 1.0
    assert w.remixes == 0 and len(w.segments) == 1
    assert w.answer == expected_answer(model, tok, "Name a fruit.",
                                       soups.dimension_weights_to_sides({"P1": 0.5, "P2": 1.0, "P3": 0.5}))


def test_the_legend_lists_the_mixes_that_wrote_the_answer():
    from rlphf_lab.widgets import legend_html, segments_html

    segs = [dict(label="P2A 0.50, P3A 0.50", text="Hello <b>", tokens=3),
            dict(label="P2B 1.00 (outputs)", text=" world", tokens=2)]
    legend = legend_html(segs)
    assert "P2A 0.50, P3A 0.50" in legend and "P2B 1.00 (outputs)" in legend and "3 tokens" in legend
    body = segments_html(segs)
    assert "Hello &lt;b&gt;" in body and body.count("<span class='rlphf-mix'") == 2 and "pre-wrap" in body
    assert legend_html([]) == ""


def test_mix_in_outputs_uses_output_mixing(soup_model):
    """The "mix in" toggle at "outputs": the answer is the output mixture's (MOD), not the weight soup's."""
    model, tok = soup_model
    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs["mix"])
        return soups.continue_answer(*args, **kwargs)

    w = make(soup_model, sync=True, continue_fn=recording)
    w.dimension_sliders["P2"].value = 1.0
    weights = soups.dimension_weights_to_sides({"P1": 0.5, "P2": 1.0, "P3": 0.5})
    soup_answer = w.answer
    w.mix_in.value = "outputs"                          # the toggle writes a new answer
    assert calls == ["weights", "outputs"] and w.generations_finished == 2
    mixed = "".join(soups.stream_mixed_outputs(model, tok, "Name a fruit.", weights, **GEN))
    assert w.answer == mixed and w.answer != soup_answer
    assert w.segments[-1]["mix"] == "outputs" and "(outputs)" in w.legend_view.value
    assert "mixed in outputs" in w.status
    assert w.weights == pytest.approx({k: v / 3 for k, v in weights.items()})


def test_a_move_mid_answer_in_outputs_mode_continues_with_output_mixing(soup_model):
    model, tok = soup_model
    w = make(soup_model, debounce_s=0.01, continue_fn=slow(), max_new_tokens=40, mix="outputs")
    before = move_mid_answer(w)
    assert w.remixes == 1 and [s["mix"] for s in w.segments] == ["outputs", "outputs"]
    assert w.answer.startswith(before)
    first, second = w.segments
    new = soups.dimension_weights_to_sides({"P1": 0.5, "P2": 1.0, "P3": 0.5})
    again = soups.RemixAnswer("Name a fruit.", segments=[
        soups.Segment(weights={}, mix="outputs", token_ids=w.remix_answer.token_ids[:first["tokens"]])])
    assert "".join(soups.continue_answer(model, tok, again, new, mix="outputs", **{**GEN, "max_new_tokens": 40})) \
        == second["text"]


def test_compare_with_preference_prompting_uses_the_base_model(soup_model):
    model, tok = soup_model
    calls = []

    def recording_stream(model_, tok_, instruction, preference, **kwargs):
        disabled = any(getattr(m, "disable_adapters", False) for m in model_.modules() if hasattr(m, "lora_A"))
        calls.append((preference, disabled))
        return models.stream_generate(model_, tok_, instruction, preference, **kwargs)

    w = make(soup_model, sync=True, stream_fn=recording_stream)
    w.dimension_sliders["P1"].value = 1.0
    w.dimension_sliders["P3"].value = 0.0
    w.compare.value = True
    assert w.compare_preference == "P1B+P2A+P3A"          # P2 at 0.5: a tie goes to side A
    assert calls[-1:] == [("P1B+P2A+P3A", True)]          # stream_fn writes the comparison only
    with model.disable_adapter():
        base = "".join(models.stream_generate(model, tok, "Name a fruit.", "P1B+P2A+P3A", **GEN))
    assert w.compare_answer == base and w.compare_scores == soups.score_answers(fake_scores, [""], [base])[0]
    assert w.compare_box.layout.display is None          # shown side by side
    w.compare.value = False
    assert w.compare_box.layout.display == "none"


def test_advanced_mode_and_all_zero_weights(soup_model):
    w = make(soup_model, sync=True)
    w.dimension_sliders["P2"].value = 0.8
    started = w.generations_started
    w.advanced.value = True                                # same weights: no new answer
    assert w.generations_started == started
    assert {k: s.value for k, s in w.adapter_sliders.items()} == pytest.approx(w.weights_from_dimensions())
    for slider in w.adapter_sliders.values():
        slider.value = 0.0
    assert "All weights are zero" in w.status
    w.adapter_sliders["P3B"].value = 0.5
    assert w.weights == {**{s: 0.0 for s in SIDES}, "P3B": 1.0}


def test_default_scores_come_from_the_simulated_annotators(soup_model):
    from rlphf_lab.feedback.annotators import score_all

    w = make(soup_model, sync=True, scorer=None)
    w.refresh()
    assert w.scores == score_all(w.answer)


def test_score_bars_name_the_sides():
    out = score_bars_html({"P2A": -1.2, "P2B": 1.2})
    assert "concise" in out and "informative" in out and "+1.20" in out and "-1.20" in out


def test_the_widget_shares_the_model_lock_with_library_calls(soup_model):
    model, _ = soup_model
    w = make(soup_model, sync=True)
    assert w._lock is soups.model_lock(model)


def test_feedback_and_soup_widgets_live_in_one_module():
    import importlib

    from rlphf_lab import widgets

    assert {"FeedbackWidget", "SoupWidget", "score_bars_html"} <= set(dir(widgets))
    with pytest.raises(ImportError):
        importlib.import_module("rlphf_lab.widgets_soup")


def test_fold_option_decodes_with_the_soup_folded_into_w(soup_model):
    """fold=True: the weight soup is written into W (soups.fold) for decoding; outputs mode unfolds first."""
    model, tok = soup_model
    w = make(soup_model, sync=True, fold=True)
    w.dimension_sliders["P2"].value = 1.0
    assert soups.is_folded(model) and w.answer
    assert soups.fold_state(model).weights == pytest.approx(w.weights)
    w.mix_in.value = "outputs"                          # output mixing needs the plain W: unfolded, no error
    assert not soups.is_folded(model) and w.segments[-1]["mix"] == "outputs" and w.generations_finished == 2
    soups.set_soup_weights(model, {"P1A": 1.0})


def test_the_widget_warns_about_adapters_that_barely_learned_their_side(soup_model):
    w = make(soup_model, learned={"P1A": 0.93, "P3B": 0.47})
    assert "P3B (0.47)" in w.learned_view.value and "P1A" not in w.learned_view.value
    assert w.learned_view in w.widget.children
    assert make(soup_model, learned={"P1A": 0.93}).learned_view.value == ""
    # by default the shipped evaluation is read; random stand-ins from a cache folder were never judged
    assert make(soup_model).learned == {}
