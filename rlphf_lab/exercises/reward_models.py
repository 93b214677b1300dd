"""Notebook 02 (reward models): a worst-case scalarizer, the Bradley-Terry loss and margin accuracy by
hand, and how the shipped reward models rank hack answers (predicted, then measured)."""
from __future__ import annotations

from functools import lru_cache

from .report import report


def check_worst_case(fn) -> bool:
    """Notebook 02: your worst-case scalarizer must equal min_i w_i r_i per row, never across rows."""
    import torch

    from ..rewards.scalarize import worst_case

    rewards = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.2, -0.1], [4.0, 4.0, 4.0]])
    weights = torch.tensor([1.0, 0.5, 2.0])
    try:
        got = torch.as_tensor(fn(rewards.clone(), weights.clone()), dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want = worst_case(rewards, weights)
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} (one reward per row), got {tuple(got.shape)}. "
                              f"Reduce over dim=-1 (the objectives), not the whole tensor.")
    if not torch.allclose(got, want):
        return report(False, f"expected {want.tolist()}, got {got.tolist()}. Multiply by the weights first, then take the min over dim=-1.")
    return report(True, "min over the objective axis of w * r, row by row.")


def _scalar(fn, r_chosen, r_rejected):
    """fn's loss as a float64 0-d tensor, or None and why not."""
    import torch

    try:
        got = fn(r_chosen.clone(), r_rejected.clone())
        got = torch.as_tensor(got.detach() if isinstance(got, torch.Tensor) else got, dtype=torch.float64)
    except Exception as err:  # show the student's error, do not crash the notebook
        return None, f"your function raised {type(err).__name__}: {err}"
    if got.numel() != 1:
        return None, (f"expected one number (the mean over the {len(r_chosen)} pairs), got shape "
                      f"{tuple(got.shape)}: finish with .mean().")
    return got.reshape(()), None


def check_bradley_terry_loss(fn) -> bool:
    """Notebook 02: fn(r_chosen, r_rejected) -> the mean of -log sigmoid(r_chosen - r_rejected) over the pairs,
    also for a confidently wrong pair (margin -120), where log(sigmoid(...)) underflows to -inf in float32.
    Compared with `rewards.losses.bradley_terry_loss`."""
    import torch
    import torch.nn.functional as F

    from ..rewards.losses import bradley_terry_loss

    r_c, r_r = torch.tensor([2.0, 0.0, -1.0, 0.5]), torch.tensor([0.0, 0.0, 1.0, 1.5])
    got, problem = _scalar(fn, r_c, r_r)
    if problem:
        return report(False, problem)
    want = bradley_terry_loss(r_c.double(), r_r.double())
    if not torch.isclose(got, want, atol=1e-5):
        m = (r_c - r_r).double()
        wrong = {"you sum over the pairs: take the mean": -F.logsigmoid(m).sum(),
                 "the sign of the margin is flipped: it is r_chosen - r_rejected": -F.logsigmoid(-m).mean(),
                 "the minus sign is missing: the loss is -log sigmoid(margin), always >= 0": F.logsigmoid(m).mean(),
                 "the log is missing: the loss is -log sigmoid(margin), not the probability": -torch.sigmoid(m).mean(),
                 "that is the accuracy, not the loss": (m > 0).double().mean()}
        hint = next((h for h, v in wrong.items() if torch.isclose(got, v, atol=1e-5)),
                    "the loss is -log sigmoid(r_chosen - r_rejected), averaged over the pairs")
        return report(False, f"for margins {m.tolist()} the loss is {want.item():.4f}, you got {got.item():.4f}: {hint}.")
    r_c, r_r = torch.tensor([-60.0, 1.0]), torch.tensor([60.0, 0.0])
    got, problem = _scalar(fn, r_c, r_r)
    if problem:
        return report(False, problem)
    want = bradley_terry_loss(r_c, r_r).double()
    if not torch.isfinite(got):
        return report(False, f"right on ordinary margins, but a confidently wrong pair (margin -120) gives {got.item()}, "
                              f"not {want.item():.2f}: sigmoid(-120) is 1e-52, below the smallest float32, so it "
                              f"rounds to 0 and log(0) = -inf. Use torch.nn.functional.logsigmoid, which never forms "
                              f"the tiny probability.")
    if not torch.isclose(got, want, rtol=1e-4):
        return report(False, f"for margins [-120, 1] the loss is {want.item():.4f}, you got {got.item():.4f}: "
                              f"a confident mistake must cost about its margin (-log sigmoid(-120) = 120).")
    return report(True, f"-log sigmoid(r_c - r_r), averaged: {bradley_terry_loss(torch.tensor([2.0, 0.0, -1.0, 0.5]), torch.tensor([0.0, 0.0, 1.0, 1.5])).item():.4f} "
                        f"on the first pairs, and {want.item():.2f} (finite) with a confident mistake in the batch.")


# Two reward models score the same four pairs; each number is a margin r(chosen) - r(rejected).
MARGINS = {"a": [0.1, 0.1, 0.0, -0.1], "b": [5.0, 5.0, 0.0, -5.0]}


def check_margin_accuracy(answer: dict) -> bool:
    """Notebook 02: by hand, the pair accuracy of reward models a and b from their margins (MARGINS; a margin
    of exactly 0 is a tie and counts half) and which one has the lower Bradley-Terry loss. Compared with
    `rewards.losses.margin_accuracy` and `bradley_terry_loss`."""
    import torch

    from ..rewards.losses import bradley_terry_loss, margin_accuracy

    keys = ("accuracy a", "accuracy b", "lower loss")
    if not isinstance(answer, dict) or any(k not in answer for k in keys):
        return report(False, f"give a dict with the keys {list(keys)}, e.g. {{'accuracy a': 0.5, 'accuracy b': 0.5, "
                              f"'lower loss': 'a' or 'b'}}; got {answer!r}.")
    margins = {k: torch.tensor(v) for k, v in MARGINS.items()}
    accuracy = {k: margin_accuracy(m) for k, m in margins.items()}
    loss = {k: bradley_terry_loss(m, torch.zeros_like(m)).item() for k, m in margins.items()}
    for k in MARGINS:
        try:
            got = float(answer[f"accuracy {k}"])
        except (TypeError, ValueError):
            return report(False, f"'accuracy {k}' must be a number between 0 and 1, got {answer[f'accuracy {k}']!r}.")
        if abs(got - accuracy[k]) > 1e-3:
            m = MARGINS[k]
            right, ties = sum(x > 0 for x in m), sum(x == 0 for x in m)
            hint = (f"the pair with margin 0 is a tie and counts half, as a coin flip would" if ties and
                    abs(got - right / len(m)) < 1e-3 else
                    f"count the margins > 0 ({right} of {len(m)}), plus half a pair for each margin of exactly 0 ({ties})")
            return report(False, f"model {k} (margins {m}): accuracy {accuracy[k]:.3f}, not {got:.3f}: {hint}.")
    lower = min(loss, key=loss.get)
    if str(answer["lower loss"]).strip().lower() != lower:
        return report(False, f"the accuracies are right ({accuracy['a']:.3f} and {accuracy['b']:.3f}), but the loss is "
                              f"{loss['a']:.3f} for a and {loss['b']:.3f} for b, so {lower} has the lower loss: "
                              f"-log sigmoid(-5) = {-torch.nn.functional.logsigmoid(torch.tensor(-5.0)).item():.2f} "
                              f"for one confident mistake outweighs the small gains on the right pairs.")
    return report(True, f"the same accuracy ({accuracy['a']:.3f}) but losses {loss['a']:.3f} (a) and {loss['b']:.3f} (b): "
                        f"accuracy counts only the sign of a margin, the Bradley-Terry loss also its size, and a "
                        f"confident mistake costs about its margin.")


# How the shipped reward models rank hack answers built from the model's answer to feedback.HACK_INSTRUCTION
REWARD_CASES = {"P2B: pasted_twice": ("P2B", "pasted_twice"),   # informative: the answer pasted twice
                "P2A: dont_know": ("P2A", "dont_know"),         # concise: "I do not know that."
                "P2A: truncated": ("P2A", "truncated")}         # concise: the answer cut off early


@lru_cache(maxsize=1)
def hack_reward_scores() -> tuple[str, str, dict[str, str], dict[str, list[float]]]:
    """(instruction, normal answer, {kind: hack text}, {side: normalised rewards of [normal, *hacks]}) for
    REWARD_CASES: one feature pass of the frozen SmolLM2 model, then the shipped heads of those sides."""
    from ..models import load_policy
    from ..rewards.reward_model import load_reward_models
    from .feedback import hack_case

    instruction, normal, texts = hack_case()
    kinds = list(dict.fromkeys(kind for _, kind in REWARD_CASES.values()))
    sides = sorted({side for side, _ in REWARD_CASES.values()})
    models = load_reward_models(sides=sides)
    backbone, tokenizer = load_policy()
    answers = [normal] + [texts[k] for k in kinds]
    scores = {s: models[s].score(backbone, tokenizer, [instruction] * len(answers), answers).tolist() for s in sides}
    return instruction, normal, {k: texts[k] for k in kinds}, scores


def check_reward_hack_ranking(prediction: dict) -> bool:
    """Notebook 02: predict whether the shipped reward model of each side scores a hack "higher" or "lower" than
    the model's normal answer (REWARD_CASES); the check scores them (frozen SmolLM2 features + the shipped
    heads, `RewardModel.score`) and compares, with the annotator's verdict beside it."""
    from ..feedback import annotators
    from .feedback import prediction_problem

    problem = prediction_problem(prediction, REWARD_CASES)
    if problem:
        return report(False, problem)
    try:
        instruction, normal, texts, scores = hack_reward_scores()
    except (OSError, LookupError, ValueError, RuntimeError) as err:
        return report(False, f"could not score the hack answers with the shipped reward models: {err}")
    kinds = list(texts)
    lines, wrong, fooled = [], [], []
    for key, (side, kind) in REWARD_CASES.items():
        hack, base = scores[side][1 + kinds.index(kind)], scores[side][0]
        measured = "higher" if hack > base else "lower"
        annotator = ("higher" if annotators.score(side, texts[kind], instruction) > annotators.score(side, normal, instruction)
                     else "lower")
        lines.append(f"{key} {hack:+.2f} vs normal {base:+.2f} ({measured}; the annotator: {annotator})")
        if measured != annotator:
            fooled.append(key)
        if str(prediction[key]).strip().lower() != measured:
            wrong.append(key)
    measured_text = "; ".join(lines)
    if wrong:
        return report(False, f"wrong for {', '.join(wrong)}. Measured: {measured_text}. The reward model learned from "
                             f"the annotator's labels (hack pairs included), but only from what its features show.")
    lesson = (f" The reward model disagrees with its annotator on {', '.join(fooled)}: PPO would push the policy "
              f"towards that hack, so watch for it in notebook 04." if fooled else
              " The reward models agree with the annotators here.")
    return report(True, f"measured: {measured_text}.{lesson}")
