"""SoupWidget on a tiny random Llama with six random adapters: sliders -> answer and score traits,
debouncing, cancellation, the preference-prompting comparison."""
import time

import pytest

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


def fake_scores(instruction, response):
    return {"P2A": -len(response) / 10, "P2B": len(response) / 10}


def expected_answer(model, tok, prompt, weights, preference=None):
    """What the library alone writes for these weights: the widget must show exactly this."""
    soups.set_soup_weights(model, weights)
    return "".join(models.stream_generate(model, tok, prompt, preference, **GEN))


def make(soup_model, **kw):
    model, tok = soup_model
    kw = dict(score_fn=fake_scores, autostart=False, **GEN) | kw
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
    assert w.scores == fake_scores("Name a fruit.", first)
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


def test_moving_a_slider_cancels_the_running_generation(soup_model):
    model, tok = soup_model

    def slow_stream(*args, **kwargs):
        for piece in models.stream_generate(*args, **kwargs):
            time.sleep(0.05)
            yield piece

    w = make(soup_model, debounce_s=0.01, stream_fn=slow_stream, max_new_tokens=40)
    w.dimension_sliders["P2"].value = 0.0
    deadline = time.time() + 20
    while not w.answer and time.time() < deadline:      # the first answer is being written
        time.sleep(0.01)
    assert w.answer and w.generations_finished == 0
    w.dimension_sliders["P2"].value = 1.0
    w.wait()
    assert (w.generations_started, w.generations_cancelled, w.generations_finished) == (2, 1, 1)
    final = soups.dimension_weights_to_sides({"P1": 0.5, "P2": 1.0, "P3": 0.5})
    soups.set_soup_weights(model, final)
    assert w.answer == "".join(models.stream_generate(model, tok, "Name a fruit.", None, **{**GEN, "max_new_tokens": 40}))


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
    assert calls[-2:] == [(None, False), ("P1B+P2A+P3A", True)]
    with model.disable_adapter():
        base = "".join(models.stream_generate(model, tok, "Name a fruit.", "P1B+P2A+P3A", **GEN))
    assert w.compare_answer == base and w.compare_scores == fake_scores("", base)
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

    w = make(soup_model, sync=True, score_fn=None)
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
