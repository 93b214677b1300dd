"""Mixing in outputs (MOD) on a tiny random Llama: log p_mix = log_softmax(sum_i w_i log p_i), per token."""
import threading

import pytest
import torch

from rlphf_lab import models, soups
from rlphf_lab.soups import outputs
from tiny_models import BAD_SOUP_WEIGHTS, three_soup_adapters, tiny_llama, tiny_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")

CODES = ["P1A", "P1B", "P2A"]
IDS = torch.tensor([[5, 17, 99, 3, 250, 42]])
PROMPTS = ["Hi", "Why is the sky so blue on a clear day?"]      # different lengths: left padding in a batch


@pytest.fixture(scope="module")
def adapter_dirs(tmp_path_factory):
    return three_soup_adapters(tmp_path_factory.mktemp("adapters"))


@pytest.fixture
def soup(adapter_dirs, one_thread):
    return soups.load_adapters(tiny_llama(), adapter_dirs)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def alone_logprobs(model, code, ids=IDS):
    """The adapter on its own (a weight soup with weight 1 on it), next-token log-probs (B, V)."""
    soups.use_adapter(model, code)
    with torch.no_grad():
        return model(input_ids=ids).logits[:, -1].float().log_softmax(-1)


def lora_calls(model):
    """{adapter: number of calls of its lora_A modules}, counted by forward hooks (remove with .handles)."""
    counts = {code: 0 for code in soups.adapter_names(model)}
    handles = []
    for layer, name, _ in soups.soup_state(model).layers:
        def hook(module, args, output, name=name):
            counts[name] += 1
        handles.append(layer.lora_A[name].register_forward_hook(hook))
    return counts, handles


# ---- the mixture's distribution ------------------------------------------------------------------

@pytest.mark.parametrize("code", CODES)
def test_one_hot_weight_gives_that_adapters_distribution(soup, code):
    mixed = soups.mixed_next_token_logprobs(soup, IDS, {code: 1.0})
    assert mixed.shape == (1, 259)
    # exact up to the one renormalisation of log-probs that already sum to 1 (fp32 rounding)
    torch.testing.assert_close(mixed, alone_logprobs(soup, code), atol=1e-6, rtol=0)
    other = next(c for c in CODES if c != code)
    assert (mixed - alone_logprobs(soup, other)).abs().max() > 1e-2      # the adapters really differ


@pytest.mark.parametrize("weights, expected", [({"P1A": 1, "P2A": 1}, {"P1A": 0.5, "P2A": 0.5}),
                                               ({"P1A": 1, "P1B": 3, "P2A": 0}, {"P1A": 0.25, "P1B": 0.75})])
def test_mix_is_the_renormalised_weighted_log_prob_sum(soup, weights, expected):
    by_hand = sum(w * alone_logprobs(soup, code) for code, w in expected.items())     # sum_i w_i log p_i
    mixed = soups.mixed_next_token_logprobs(soup, IDS, weights)
    torch.testing.assert_close(mixed, by_hand.log_softmax(-1), atol=1e-6, rtol=0)
    assert torch.exp(mixed).sum().item() == pytest.approx(1.0, abs=1e-5)
    # not the average of the probabilities (the linear mix), nor either adapter
    linear = torch.log(sum(w * alone_logprobs(soup, c).exp() for c, w in expected.items()))
    assert (mixed - linear).abs().max() > 1e-3


def test_normalize_false_uses_the_weights_as_given(soup):
    mixed = soups.mixed_next_token_logprobs(soup, IDS, {"P1A": 2.0}, normalize=False)
    torch.testing.assert_close(mixed, (2 * alone_logprobs(soup, "P1A")).log_softmax(-1), atol=1e-6, rtol=0)
    assert (mixed - alone_logprobs(soup, "P1A")).abs().max() > 1e-2       # sharper than the adapter itself


def test_padded_batch_rows_match_each_prompt_alone(soup, tok):
    enc = tok([models.format_chat(tok, p) for p in PROMPTS], return_tensors="pt", padding=True,
              add_special_tokens=False)
    batch = soups.mixed_next_token_logprobs(soup, enc["input_ids"], {"P1A": 1, "P2A": 1},
                                            attention_mask=enc["attention_mask"])
    for row, prompt in enumerate(PROMPTS):
        ids = tok([models.format_chat(tok, prompt)], return_tensors="pt", add_special_tokens=False)["input_ids"]
        alone = soups.mixed_next_token_logprobs(soup, ids, {"P1A": 1, "P2A": 1})
        torch.testing.assert_close(batch[row:row + 1], alone, atol=1e-5, rtol=0)


def test_mix_logprobs_shapes_and_by_hand():
    logprobs = torch.randn(3, 2, 7).log_softmax(-1)                 # (k, B, V)
    mixed = soups.mix_logprobs(logprobs, [0.2, 0.3, 0.5])
    assert mixed.shape == (2, 7)
    by_hand = (0.2 * logprobs[0] + 0.3 * logprobs[1] + 0.5 * logprobs[2]).log_softmax(-1)
    torch.testing.assert_close(mixed, by_hand)


# ---- generation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0, 0.8])
def test_one_hot_generation_is_the_adapter_alone(soup, tok, temperature):
    """Greedy: the same argmax each step. Sampled: the same seeded draws as models.generate."""
    kw = dict(max_new_tokens=12, temperature=temperature, seed=5)
    mixed = soups.generate_mixed_outputs(soup, tok, PROMPTS, {"P1B": 1}, **kw)
    soups.use_adapter(soup, "P1B")
    assert mixed == models.generate(soup, tok, PROMPTS, **kw)
    soups.use_adapter(soup, "P2A")
    assert mixed != models.generate(soup, tok, PROMPTS, **kw)


def test_a_mix_answers_differently_and_is_reproducible(soup, tok):
    kw = dict(max_new_tokens=12, temperature=0.8, seed=1)
    first = soups.generate_mixed_outputs(soup, tok, PROMPTS, {"P1A": 1, "P2A": 1}, **kw)
    assert first == soups.generate_mixed_outputs(soup, tok, PROMPTS, {"P1A": 1, "P2A": 1}, **kw)
    assert first != soups.generate_mixed_outputs(soup, tok, PROMPTS, {"P1A": 1}, **kw)
    assert first != soups.generate_mixed_outputs(soup, tok, PROMPTS, {"P1A": 1, "P2A": 1}, **{**kw, "seed": 2})


def test_stops_at_eos(soup, tok, monkeypatch):
    """Once a row has produced EOS it gets only padding, and decoding ends when every row has."""
    steps = []
    real = outputs.pick_next_tokens

    def eos_at_step_3(logprobs, **kw):
        steps.append(1)
        tokens = real(logprobs, **kw)
        return torch.full_like(tokens, tok.eos_token_id) if len(steps) == 3 else tokens

    monkeypatch.setattr(outputs, "pick_next_tokens", eos_at_step_3)
    rows = list(outputs.mixed_token_steps(soup, tok, ["a", "bb"], {"P1A": 1, "P1B": 1}, max_new_tokens=10,
                                          temperature=0, top_p=1.0, seed=0))
    assert len(rows) == 3 and (rows[-1] == tok.eos_token_id).all()


def test_stream_joins_to_the_generated_answer(soup, tok):
    kw = dict(max_new_tokens=16, temperature=0.7, seed=3)
    weights = {"P1A": 0.3, "P2A": 0.7}
    pieces = list(soups.stream_mixed_outputs(soup, tok, PROMPTS[1], weights, **kw))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == soups.generate_mixed_outputs(soup, tok, PROMPTS[1:], weights, **kw)[0]


def test_stream_stops_when_asked(soup, tok):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 3                     # three tokens, then stop

    counts, handles = lora_calls(soup)
    pieces = list(soups.stream_mixed_outputs(soup, tok, "Hi", {"P1A": 1}, max_new_tokens=50, temperature=0,
                                             should_stop=should_stop))
    for h in handles:
        h.remove()
    assert len(calls) == 4 and counts["P1A"] == 3 * 4            # 3 forwards x 4 LoRA layers
    assert len("".join(pieces)) <= 3 * 2                          # at most 2 characters per byte token here


# ---- what runs, what is left as it was -------------------------------------------------------------

def test_adapters_with_weight_zero_are_never_run(soup, tok):
    counts, handles = lora_calls(soup)
    try:
        soups.generate_mixed_outputs(soup, tok, PROMPTS, {"P1A": 0.4, "P1B": 0.0, "P2A": 0.6}, max_new_tokens=5)
        assert counts["P1B"] == 0 and counts["P1A"] > 0 and counts["P2A"] > 0
        assert counts["P1A"] == counts["P2A"] == 5 * 4           # one forward per token, each through 4 LoRA layers
        counts.update({c: 0 for c in counts})
        soups.mixed_next_token_logprobs(soup, IDS, {"P2A": 1})
        assert counts == {"P1A": 0, "P1B": 0, "P2A": 4}
    finally:
        for h in handles:
            h.remove()


def _lora_state(model):
    layers = soups.soup_state(model).layers
    return ([layer.scaling[name] for layer, name, _ in layers], list(model.active_adapters),
            soups.soup_weights(model))


def test_the_weight_soup_is_restored_afterwards(soup, tok):
    soups.set_soup_weights(soup, {"P1A": 0.2, "P1B": 0.8})       # a soup with P2A switched off
    before = _lora_state(soup)
    with torch.no_grad():
        logits_before = soup(input_ids=IDS).logits
    soups.generate_mixed_outputs(soup, tok, PROMPTS, {"P2A": 1, "P1A": 1}, max_new_tokens=4)
    stream = soups.stream_mixed_outputs(soup, tok, "Hi", {"P2A": 1}, max_new_tokens=20, temperature=0)
    next(stream)
    stream.close()                                                # a caller that stops reading half way
    assert _lora_state(soup) == before
    assert before[1] == ["P1A", "P1B"]
    with torch.no_grad():
        assert torch.equal(soup(input_ids=IDS).logits, logits_before)


def test_the_state_is_restored_after_an_error_in_the_forward(soup, tok, monkeypatch):
    soups.set_soup_weights(soup, {"P1A": 0.5, "P2A": 0.5})
    before = _lora_state(soup)
    monkeypatch.setattr(type(soup), "forward", lambda self, *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        soups.generate_mixed_outputs(soup, tok, ["Hi"], {"P1B": 1}, max_new_tokens=3)
    assert _lora_state(soup) == before


def test_every_forward_holds_the_model_lock(soup, tok):
    lock, seen = soups.model_lock(soup), []

    def check(module, args):
        free = []
        probe = threading.Thread(target=lambda: free.append(lock.acquire(blocking=False)) or (free[0] and lock.release()))
        probe.start()
        probe.join()
        seen.append(free[0])

    handle = soup.get_base_model().register_forward_pre_hook(check)
    try:
        list(soups.stream_mixed_outputs(soup, tok, "Hi", {"P1A": 1, "P2A": 1}, max_new_tokens=3, temperature=0))
    finally:
        handle.remove()
    assert seen == [False, False, False]                          # another thread could not take it


# ---- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("weights, message", BAD_SOUP_WEIGHTS)
def test_bad_weights_raise(soup, tok, weights, message):
    with pytest.raises(ValueError, match=message):
        soups.generate_mixed_outputs(soup, tok, ["Hi"], weights, max_new_tokens=2)
    with pytest.raises(ValueError, match=message):
        soups.mixed_next_token_logprobs(soup, IDS, weights)
    with pytest.raises(ValueError, match=message):
        next(soups.stream_mixed_outputs(soup, tok, "Hi", weights, max_new_tokens=2))


def test_a_folded_or_merged_soup_is_refused(soup, tok):
    soups.set_soup_weights(soup, {"P1A": 0.5, "P2A": 0.5})
    soup.merge_adapter()                          # the soup's delta written into W, the branches skipped
    try:
        with pytest.raises(ValueError, match="folded"):
            soups.generate_mixed_outputs(soup, tok, ["Hi"], {"P1A": 1}, max_new_tokens=2)
    finally:
        soup.unmerge_adapter()
    assert soups.generate_mixed_outputs(soup, tok, ["Hi"], {"P1A": 1}, max_new_tokens=2)
    soups.fold_soup_weights(soup, {"P1A": 0.5, "P2A": 0.5})          # the lab's own fold (soups.fold)
    with pytest.raises(ValueError, match="unfold_soup"):
        soups.mixed_next_token_logprobs(soup, IDS, {"P1A": 1})
    assert soups.is_folded(soup)                                      # refused, not changed


def test_bad_sampling_settings_and_a_model_without_adapters_raise(soup, tok):
    with pytest.raises(ValueError, match="temperature"):
        soups.generate_mixed_outputs(soup, tok, ["Hi"], {"P1A": 1}, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        soups.generate_mixed_outputs(soup, tok, ["Hi"], {"P1A": 1}, top_p=0)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        soups.mixed_next_token_logprobs(tiny_llama(), IDS, {"P1A": 1})


# ---- the fronts' mix= choice -----------------------------------------------------------------------

def _length_scores(sides, instructions, responses):
    table = [{"P1A": -len(r) / 10, "P1B": len(r) / 10, "P2A": 1.0} for r in responses]
    return torch.tensor([[row.get(s, 0.0) for s in sides] for row in table])


def test_fronts_refuse_an_unknown_mix(soup, tok):
    for call in (lambda: soups.score_soup_answers(soup, tok, ["Hi"], weights={"P1A": 1}, mix="bogus"),
                 lambda: soups.sweep_weights(soup, tok, ["Hi"], "P1A", "P1B", steps=2, mix="bogus"),
                 lambda: soups.pareto_front(soup, tok, ["Hi"], "P1A", "P1B", steps=2, mix="bogus")):
        with pytest.raises(ValueError, match=r"mix='bogus'.*'weights', 'outputs'"):
            call()


def test_fronts_mix_outputs_sweeps_with_output_mixing(soup, tok, monkeypatch):
    kw = dict(steps=3, scorer=_length_scores, max_new_tokens=6, temperature=0)
    by_weights = soups.sweep_weights(soup, tok, PROMPTS, "P1A", "P1B", **kw)
    assert by_weights == soups.sweep_weights(soup, tok, PROMPTS, "P1A", "P1B", mix="weights", **kw)
    by_outputs = soups.sweep_weights(soup, tok, PROMPTS, "P1A", "P1B", mix="outputs", **kw)
    ends = lambda rows: [r["response"] for r in rows if r["t"] in (0, 1)]    # noqa: E731
    assert ends(by_outputs) == ends(by_weights)            # one adapter at weight 1: the same greedy answers
    middle = [r["response"] for r in by_outputs if r["t"] == 0.5]
    assert middle == soups.generate_mixed_outputs(soup, tok, PROMPTS, {"P1A": 0.5, "P1B": 0.5}, max_new_tokens=6,
                                                  temperature=0)
    # and the weight path never calls the output mixer
    monkeypatch.setattr(outputs, "generate_mixed_outputs", lambda *a, **k: pytest.fail("output mixing was used"))
    assert soups.sweep_weights(soup, tok, PROMPTS, "P1A", "P1B", **kw) == by_weights
