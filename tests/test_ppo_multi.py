"""The four training objectives (rl/multi.py) with a toy scorer defined here: no model needed."""
import pytest
import torch

from rlphf_lab import rewards
from rlphf_lab.cli import main
from rlphf_lab.preferences import SIDES, combinations, preference_prompt
from rlphf_lab.rl import (GENERAL, load_score_fn, morlaif, personalized_soups, prompted_morl, rlhf, scalarize_rows,
                          toy_length_score_fn)

CALLS = []


def count_score_fn(codes, instructions, responses):
    """Toy scorer: side k's reward is (k + 1) * the number of words of the response (sign by side A/B)."""
    CALLS.append((list(codes), list(instructions), list(responses)))
    words = torch.tensor([len(r.split()) for r in responses], dtype=torch.float32)
    sign = torch.tensor([1.0 if c.endswith("A") else -1.0 for c in codes])
    scale = torch.arange(1, len(codes) + 1, dtype=torch.float32)
    return words[:, None] * sign * scale                     # (batch, len(codes))


def _score(obj, queries, responses):
    raw = obj.reward_fn([q.instruction for q in queries], responses)
    weights = torch.tensor([q.weights for q in queries])
    return scalarize_rows(raw, weights, obj.scalarizer)


def test_personalized_soups_uses_one_side_only():
    obj = personalized_soups("p2a", count_score_fn)
    assert obj.name == "P2A" and obj.reward_names == ["P2A"] and obj.query_fn is None
    out = obj.reward_fn(["Why?"], ["one two three"])
    assert out.tolist() == [[3.0]] and CALLS[-1][0] == ["P2A"]
    with pytest.raises(ValueError, match="Unknown preference"):
        personalized_soups("P9Z", count_score_fn)


def test_prompted_morl_prompt_carries_the_combination_reward_scores_the_plain_instruction():
    obj = prompted_morl(count_score_fn)
    g = torch.Generator().manual_seed(0)
    query = obj.query_fn("Why is the sky blue?", g)
    combo = query.tag
    assert combo in combinations()
    assert query.prompt == f"Why is the sky blue? {preference_prompt(combo)}"
    assert query.instruction == "Why is the sky blue?"
    # weights: 1/3 on the combination's three sides, 0 on the other three
    expected = [1 / 3 if s in combo.split("+") else 0.0 for s in SIDES]
    assert query.weights == pytest.approx(expected)

    scores = _score(obj, [query, query], ["Blue.", "Because of Rayleigh scattering of sunlight in air."])
    instructions = CALLS[-1][1]
    assert instructions == ["Why is the sky blue?"] * 2          # plain: never the preference prompt
    assert scores[0] != scores[1]                                 # the response changes the reward
    # and the score is the mean of the combination's three side rewards
    raw = count_score_fn(SIDES, instructions, ["Blue.", "Because of Rayleigh scattering of sunlight in air."])
    cols = [SIDES.index(c) for c in combo.split("+")]
    torch.testing.assert_close(scores, raw[:, cols].mean(dim=1))


def test_prompted_morl_draws_every_combination_and_repeats_with_the_seed():
    obj = prompted_morl(count_score_fn)
    draw = lambda seed: [obj.query_fn("x", g).tag for g in [torch.Generator().manual_seed(seed)] for _ in range(200)]
    assert set(draw(0)) == set(combinations())
    assert draw(0) == draw(0) and draw(0) != draw(1)


def test_prompted_morl_with_worst_case_scores_the_weakest_of_its_sides():
    obj = prompted_morl(count_score_fn, combos=["P1A+P2B+P3A"], scalarizer="worst_case")
    query = obj.query_fn("x", torch.Generator().manual_seed(0))
    # 2 words: P1A = 2*1, P2B = -2*4, P3A = 2*5, each weighted 1/3; the minimum is -8/3
    assert _score(obj, [query], ["two words"]).item() == pytest.approx(-8 / 3)


def test_morlaif_scalarizes_several_columns():
    obj = morlaif("P1A,P2A", count_score_fn, scalarizer="worst_case", weights=[1.0, 0.5])
    assert obj.reward_names == ["P1A", "P2A"] and obj.reward_weights == [1.0, 0.5]
    raw = obj.reward_fn(["q"], ["a b c"])                          # [[3, 6]]
    assert obj.scalarizer(raw, torch.tensor(obj.reward_weights)).item() == 3.0
    with pytest.raises(ValueError, match="two or more"):
        morlaif("P1A", count_score_fn)
    with pytest.raises(ValueError, match="one weight per reward"):
        morlaif("P1A,P2A", count_score_fn, weights=[1.0])
    with pytest.raises(ValueError, match="Unknown scalarizer"):
        morlaif("P1A,P2A", count_score_fn, scalarizer="best_case")


def test_rlhf_uses_the_general_reward():
    obj = rlhf(toy_length_score_fn)
    assert obj.reward_names == [GENERAL]
    # 40 words is the toy optimum: reward 0; 20 words: -|20 - 40| / 40 = -0.5
    out = obj.reward_fn(["q", "q"], [" ".join(["w"] * 40), " ".join(["w"] * 20)])
    assert out[:, 0].tolist() == [0.0, -0.5]


def test_toy_length_score_fn_by_hand():
    out = toy_length_score_fn(["P2A", "P2B", "P1B", "P3A"], ["q"], ["Hello you friend!"])
    # 3 words, mean length (5 + 3 + 6) / 3 = 14/3; friendly = (1 "!" + 1 "you") * 10 / max(3, 10) = 2
    torch.testing.assert_close(out, torch.tensor([[-3 / 50, 3 / 50, 14 / 3 - 5, 2.0]]))
    with pytest.raises(ValueError, match="no reward for"):
        toy_length_score_fn(["P9"], ["q"], ["a"])


@pytest.mark.skipif(hasattr(rewards, "load_reward_scorer"), reason="reward models are wired in")
def test_reward_models_not_ready_is_a_clear_error(capsys):
    with pytest.raises(NotImplementedError, match="rlphf-lab train-rewards"):
        load_score_fn("rm")
    assert main(["train-policy", "--preference", "P2A"]) == 2
    assert "reward models not trained yet" in capsys.readouterr().err
