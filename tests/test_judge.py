"""The AI judge: probabilities from the A/B log-probabilities, symmetric in the order of the pair."""
import pytest

from rlphf_lab.feedback import judge
from tiny_models import tiny_llama, tiny_tokenizer

INSTRUCTIONS = ["Why is the sky blue?", "What is rain?", "Name a fruit."]
GOOD = ["Sunlight scatters off air molecules; blue scatters most.", "Water falling from clouds.", "An apple!"]
BAD = ["Because.", "Hey pal, ugh, whatever, it just does, seriously.", "No."]


def _check(model, tok, side, batch_size):
    p = judge.judge_pairs(model, tok, side, INSTRUCTIONS, GOOD, BAD, batch_size=batch_size)
    q = judge.judge_pairs(model, tok, side, INSTRUCTIONS, BAD, GOOD, batch_size=batch_size)
    assert len(p) == 3 and all(0.0 <= x <= 1.0 for x in p)
    # both orders are always asked, so swapping a and b gives exactly 1 - p
    assert [x + y for x, y in zip(p, q)] == pytest.approx([1.0] * 3, abs=1e-6)
    labels = judge.judge_label(model, tok, side, INSTRUCTIONS, GOOD, BAD, batch_size=batch_size)
    assert labels == ["A" if x > 0.5 else "B" for x in p]
    return p


def test_judge_probabilities_and_order_symmetry_tiny_model():
    model, tok = tiny_llama(), tiny_tokenizer()
    p = _check(model, tok, "P2A", batch_size=4)
    # batching does not change the answer
    assert judge.judge_pairs(model, tok, "P2A", INSTRUCTIONS, GOOD, BAD, batch_size=2) == pytest.approx(p, abs=1e-5)


def test_judge_prompt_names_the_principle_and_rejects_bad_input():
    text = judge.judge_prompt("P3B", "Q?", "x", "y")
    assert "more unfriendly, regardless of other perspectives" in text and "Answer only A or B" in text
    with pytest.raises(ValueError, match="Valid codes"):
        judge.judge_prompt("P7", "Q?", "x", "y")
    with pytest.raises(ValueError, match="one of each"):
        judge.judge_pairs(tiny_llama(), tiny_tokenizer(), "P1A", INSTRUCTIONS, GOOD, BAD[:2])


@pytest.mark.model
def test_judge_on_the_real_model(policy):
    model, tok = policy
    _check(model, tok, "P2B", batch_size=8)
    result = judge.judge_agreement(model, tok, [
        {"preference": "P2B", "instruction": i, "chosen": g, "rejected": b} for i, g, b in zip(INSTRUCTIONS, GOOD, BAD)])
    assert result["n"] == 3 and 0.0 <= result["agreement"] <= 1.0 and set(result["per_side"]) == {"P2B"}


def test_agreement_on_decided_pairs_leaves_out_the_undecided_ones():
    from rlphf_lab.feedback.judge import decided_agreement

    assert decided_agreement([0.9, 0.5, 0.2, 0.5, 0.7]) == (2 / 3, 3)
    agreement, n = decided_agreement([0.5, 0.5])
    assert n == 0 and agreement != agreement          # NaN: nothing decided


def test_the_pointwise_judge_scores_each_response_alone_by_yes_minus_no():
    import torch

    from rlphf_lab.models import format_chat

    model, tok = tiny_llama(), tiny_tokenizer()
    scores = judge.judge_pointwise(model, tok, "P2A", INSTRUCTIONS, GOOD, batch_size=2)
    yes, no = (tok.encode(t, add_special_tokens=False)[0] for t in ("Yes", "No"))   # first tokens (tiny: characters)
    for i, g, s in zip(INSTRUCTIONS, GOOD, scores):       # one response at a time, no padding: the definition
        ids = tok(format_chat(tok, judge.pointwise_prompt("P2A", i, g)), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logits = model(**ids).logits[0, -1].float()
        assert s == pytest.approx((logits[yes] - logits[no]).item(), abs=1e-4)
    assert "Is this response concise and to the point" in judge.pointwise_prompt("P2A", "Q?", "x")
    with pytest.raises(ValueError, match="one of each"):
        judge.judge_pointwise(model, tok, "P2A", INSTRUCTIONS, GOOD[:2])


def test_pointwise_agreement_compares_the_two_scores_of_a_pair():
    model, tok = tiny_llama(), tiny_tokenizer()
    pairs = [{"preference": "P2A", "instruction": i, "chosen": g, "rejected": b} for i, g, b in zip(INSTRUCTIONS, GOOD, BAD)]
    result = judge.pointwise_agreement(model, tok, pairs, batch_size=4)
    good = judge.judge_pointwise(model, tok, "P2A", INSTRUCTIONS, GOOD)
    bad = judge.judge_pointwise(model, tok, "P2A", INSTRUCTIONS, BAD)
    assert result["margins"] == pytest.approx([g - b for g, b in zip(good, bad)], abs=1e-3)
    assert result["agreement"] == sum(g > b for g, b in zip(good, bad)) / 3
    swapped = judge.pointwise_agreement(model, tok, [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in pairs])
    assert swapped["agreement"] == pytest.approx(1 - result["agreement"])     # no position to favour
