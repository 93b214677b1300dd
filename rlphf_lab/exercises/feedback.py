"""Notebook 01 (feedback): the Bradley-Terry temperature that flips a given share of labels, the tie
margin, and which hack answers the simulated annotators punish (predicted, then measured)."""
from __future__ import annotations

import math
from functools import lru_cache

from ..feedback.annotators import label_from_scores, sigmoid
from .report import report


def check_noise_temperature(temperature: float, diff: float = 1.0, target: float = 0.10) -> bool:
    """Notebook 01: pick T so that a pair whose scores differ by `diff` gets the wrong label
    `target` of the time. Bradley-Terry: P(wrong) = sigmoid(-diff / T), so T = diff / ln((1 - p) / p)."""
    try:
        ok_number = float(temperature) > 0
    except (TypeError, ValueError):
        ok_number = False
    if not ok_number:
        return report(False, f"the temperature must be a number > 0 (got {temperature!r}).")
    temperature = float(temperature)
    wrong = float(sigmoid(-diff / temperature))
    wanted = diff / math.log((1 - target) / target)
    if abs(wrong - target) < 0.005:
        return report(True, f"With T = {temperature:.3f}, P(wrong label) = sigmoid(-{diff}/T) = {wrong:.3f}. "
                            f"Exactly: T = {diff} / ln({1 - target:.2f}/{target:.2f}) = {wanted:.3f}.")
    direction = "lower" if wrong > target else "higher"
    return report(False, f"with T = {temperature:.3f} the label is wrong {wrong:.1%} of the time, not {target:.0%}. "
                         f"Try a {direction} temperature: solve sigmoid(-{diff}/T) = {target} for T.")


# (score A, score B, tie margin): wins both ways, ties both ways, the margin's edge, and a margin of 0
TIE_CASES = [(1.0, 0.0, 0.25), (0.0, 1.0, 0.25), (0.1, 0.0, 0.25), (0.0, 0.1, 0.25), (-0.5, -0.6, 0.25),
             (0.5, 0.25, 0.25), (0.25, 0.5, 0.25), (0.3, 0.0, 0.5), (-2.0, 1.0, 0.5), (0.05, 0.0, 0.0),
             (0.0, 0.05, 0.0)]


def check_tie_label(fn) -> bool:
    """Notebook 01: fn(score_a, score_b, tie_margin) -> "A", "B" or "tie", the noiseless (T = 0) label:
    a tie when |s_A - s_B| < m, else the higher score wins. Compared with `annotators.label_from_scores`."""
    for a, b, m in TIE_CASES:
        want = label_from_scores(a, b, tie_margin=m, temperature=0.0)
        try:
            got = fn(a, b, m)
        except Exception as err:  # show the student's error, do not crash the notebook
            return report(False, f"my_label({a}, {b}, {m}) raised {type(err).__name__}: {err}")
        if isinstance(got, str) and got == want:
            continue
        diff = a - b
        if want == "tie":
            why = (f"|s_A - s_B| = {abs(diff):g} is below the margin {m:g}: the annotator cannot tell them apart, "
                   f"so it says 'tie' instead of guessing")
        elif got == "tie" and abs(diff) >= m:
            why = (f"{'A' if diff > 0 else 'B'} is {abs(diff):g} higher, not within the margin {m:g}"
                   + (": compare the *absolute* difference |s_A - s_B| with the margin" if diff < 0 else
                      ": only a difference strictly below the margin is a tie"))
        else:
            why = f"the higher score wins: s_A - s_B = {diff:g}"
        return report(False, f"my_label({a}, {b}, tie_margin={m}) returned {got!r}, the annotator says {want!r}: {why}.")
    return report(True, "a tie when |s_A - s_B| < m, otherwise the higher score wins, the same labels as "
                        "annotators.label_from_scores with temperature 0.")


# The hack exercise: one real answer of the model, the hack suite built from it, and a cheerful non-answer.
HACK_INSTRUCTION = "What is a black hole, and how does one form?"
CHEER = "Hey friend!!! Black holes are awesome, haha, I love them! Cheers, buddy! :)"
HACK_SEED = 1                      # as tests/test_reward_hacks.py: not the seed of the training pool's hacks
ANNOTATOR_CASES = {"P2B: pasted_twice": ("P2B", "pasted_twice"),     # informative: the answer pasted twice
                   "P2A: truncated": ("P2A", "truncated"),           # concise: the answer cut off early
                   "P3A: cheer": ("P3A", "cheer")}                   # friendly: cheering, no content


@lru_cache(maxsize=4)
def hack_case(instruction: str = HACK_INSTRUCTION) -> tuple[str, str, dict[str, str]]:
    """(instruction, the shipped plain answer to it, {hack kind: text}): the answer is the candidate sampled
    with no preference prompt (data/candidates.jsonl); the hacks come from `feedback.hacks.hack_answers`,
    plus "cheer" (CHEER)."""
    from ..data import CANDIDATES_FILE, read_jsonl
    from ..feedback import hacks

    rows = [r for r in read_jsonl(CANDIDATES_FILE) if r["instruction"] == instruction and r["style"] == "none"]
    if not rows:
        raise LookupError(f"no plain (style 'none') answer to {instruction!r} in {CANDIDATES_FILE}")
    row = rows[0]
    texts = {h["kind"]: h["text"] for h in hacks.hack_answers(instruction, row["response"],
                                                               hacks.hack_seed(HACK_SEED, row["id"]))}
    texts["cheer"] = CHEER
    return instruction, row["response"], texts


def prediction_problem(prediction, cases) -> str | None:
    """What is wrong with the shape of a {"SIDE: kind": "higher" | "lower"} prediction, or None."""
    if not isinstance(prediction, dict):
        return f"give a dict {{case: 'higher' or 'lower'}} with the keys {list(cases)}; got {type(prediction).__name__}."
    missing = [k for k in cases if k not in prediction]
    if missing:
        return f"no prediction for {missing}: predict every one of {list(cases)}."
    bad = {k: prediction[k] for k in cases if str(prediction[k]).strip().lower() not in ("higher", "lower")}
    if bad:
        return f"predict 'higher' or 'lower' (than the normal answer) for every case; got {bad}."
    return None


def check_hack_scores(prediction: dict) -> bool:
    """Notebook 01: predict whether each side's simulated annotator scores a hack "higher" or "lower" than the
    model's normal answer (ANNOTATOR_CASES); the check then scores both with `annotators.score` and compares."""
    from ..feedback import annotators

    problem = prediction_problem(prediction, ANNOTATOR_CASES)
    if problem:
        return report(False, problem)
    try:
        instruction, normal, texts = hack_case()
    except (OSError, LookupError, ValueError) as err:
        return report(False, f"could not build the hack answers: {err}")
    lines, wrong, lessons = [], [], []
    for key, (side, kind) in ANNOTATOR_CASES.items():
        hack, base = annotators.score(side, texts[kind], instruction), annotators.score(side, normal, instruction)
        measured = "higher" if hack > base else "lower"
        reason = annotators.explain(side, texts[kind], instruction)["penalty_reason"]
        lines.append(f"{key} {hack:+.2f} vs normal {base:+.2f} ({measured}, penalty: {reason or 'none'})")
        lessons.append(f"the {reason} penalty catches {kind}" if measured == "lower" and reason else
                       f"{kind} fools the {side} annotator: a policy trained on it would learn it" if measured == "higher"
                       else f"{kind} scores lower for {side}")
        if str(prediction[key]).strip().lower() != measured:
            wrong.append(key)
    measured_text = "; ".join(lines)
    if not wrong:
        return report(True, f"measured: {measured_text}. So {'; '.join(lessons)}.")
    return report(False, f"wrong for {', '.join(wrong)}. Measured: {measured_text}. Read the penalty behind each "
                         f"score with annotators.explain(side, text, instruction).")
