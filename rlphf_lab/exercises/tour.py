"""Notebook 00 (the tour): write a combination code, list all eight, and predict what a preference
prompt does to an answer's length (measured on the shipped candidates)."""
from __future__ import annotations

from functools import lru_cache

from ..preferences import DIMENSIONS, combination_code, combinations, parse_combination
from .report import report

LENGTH_WORDS = ("shorter", "same", "longer")
SAME_WITHIN = 0.10          # "same": the mean length moves by less than 10%
LENGTH_SIDES = ("P2A", "P2B")


def check_combination(answer: str) -> bool:
    """Notebook 00: the combination for a user who wants an answer a child understands, short, and blunt."""
    try:
        parse_combination(answer)
    except ValueError as err:
        return report(False, str(err))
    code = combination_code(answer)
    wanted = "P1A+P2A+P3B"
    if code == wanted:
        return report(True, "P1A (elementary) + P2A (concise) + P3B (unfriendly): one side per dimension.")
    sides = set(code.split("+"))
    missing = sorted(set(wanted.split("+")) - sides)
    return report(False, f"{code} is a valid combination, but this user needs {', '.join(missing)} "
                          f"(elementary = P1A, concise = P2A, blunt/unfriendly = P3B).")


def _codes(fn, style_sides: list[str]) -> tuple[list[str] | None, str | None]:
    """The canonical codes fn(style_sides) returns, or None and what is wrong with them."""
    try:
        got = fn(list(style_sides))
    except Exception as err:  # show the student's error, do not crash the notebook
        return None, f"my_combinations({style_sides}) raised {type(err).__name__}: {err}"
    if isinstance(got, str) or not hasattr(got, "__iter__"):
        return None, f"my_combinations({style_sides}) returned {got!r}: return a list of codes like 'P1A+P2B+P3A'."
    codes = []
    for item in got:
        try:
            prefs = parse_combination(item)
        except ValueError as err:
            return None, f"{item!r} is not a combination: {err}"
        dims = {p.dimension for p in prefs}
        if len(dims) < len(DIMENSIONS):
            lacking = ", ".join(f"{d} ({DIMENSIONS[d]})" for d in sorted(set(DIMENSIONS) - dims))
            return None, (f"{combination_code(prefs)} picks no side of {lacking}: a full combination has one side "
                          f"of each of the {len(DIMENSIONS)} dimensions, so loop over every dimension.")
        codes.append(combination_code(prefs))
    return codes, None


def check_all_combinations(fn) -> bool:
    """Notebook 00: fn(style_sides) lists every combination code, one side per dimension, with the style
    (P3) sides given: 2 x 2 x 2 = 8 for ["P3A", "P3B"], 2 x 2 x 4 = 16 with the extra sides P3C and P3D.
    Compared with `preferences.combinations()`."""
    for extended, style in [(False, ["P3A", "P3B"]), (True, ["P3A", "P3B", "P3C", "P3D"])]:
        codes, problem = _codes(fn, style)
        if problem:
            return report(False, problem)
        want = combinations(extended=extended)
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            return report(False, f"with style sides {style} you list {', '.join(twice)} more than once "
                                  f"({len(codes)} codes, {len(set(codes))} different).")
        missing, extra = sorted(set(want) - set(codes)), sorted(set(codes) - set(want))
        if extra:
            return report(False, f"with style sides {style} you list {', '.join(extra[:3])}, which uses a style "
                                  f"side that was not given: take the P3 side from style_sides.")
        if missing:
            return report(False, f"with style sides {style} you list {len(codes)} combinations, not "
                                  f"2 x 2 x {len(style)} = {len(want)}: missing {', '.join(missing[:4])}"
                                  f"{f' and {len(missing) - 4} more' if len(missing) > 4 else ''}. Every side of one dimension goes with "
                                  f"every side of the others (itertools.product).")
    return report(True, "2 x 2 x 2 = 8 combinations, and 2 x 2 x 4 = 16 with the sassy and sarcastic styles: "
                        "the same list as preferences.combinations().")


@lru_cache(maxsize=1)
def measured_lengths() -> dict[str, float]:
    """Mean words per answer in the shipped candidate pool, by the preference prompt it was sampled under
    ("none" = no preference prompt), counted as notebook 00 counts them (`tour.mean_words_by_side`)."""
    from ..data import CANDIDATES_FILE, read_jsonl
    from ..feedback.hacks import is_hack
    from ..tour import mean_words_by_side

    rows = [{"combination": c["style"], "words": len(c["response"].split())}
            for c in read_jsonl(CANDIDATES_FILE) if not is_hack(c)]
    return mean_words_by_side(rows)


def length_effect(side: str) -> tuple[str, float]:
    """("shorter" | "same" | "longer", relative change) of the mean length under `side`'s prompt vs none."""
    words = measured_lengths()
    change = words[side] / words["none"] - 1
    return ("same" if abs(change) < SAME_WITHIN else "shorter" if change < 0 else "longer"), change


def check_length_prediction(prediction: dict) -> bool:
    """Notebook 00: predict, for the concise (P2A) and informative (P2B) prompts, whether the model's answers
    get "shorter", stay the "same" (within 10%) or get "longer" than with no preference prompt; the check
    measures it on the shipped candidates (data/candidates.jsonl: 264 prompts, one answer per prompt each)."""
    if not isinstance(prediction, dict):
        return report(False, f"give a dict like {{'P2A': 'shorter', 'P2B': 'same'}}, got {type(prediction).__name__}.")
    for side in LENGTH_SIDES:
        value = str(prediction.get(side, "")).strip().lower()
        if value not in LENGTH_WORDS:
            return report(False, f"predict {side} with one of {', '.join(map(repr, LENGTH_WORDS))}; "
                                  f"got {prediction.get(side)!r}.")
    try:
        words = measured_lengths()
        effects = {side: length_effect(side) for side in LENGTH_SIDES}
    except (OSError, KeyError, ValueError) as err:
        return report(False, f"could not measure the shipped candidates (data/candidates.jsonl): {err}")
    lines = "; ".join(f"{side} {words[side]:.0f} words vs {words['none']:.0f} with no prompt ({change:+.0%}, {effect})"
                      for side, (effect, change) in effects.items())
    guess = {side: str(prediction[side]).strip().lower() for side in LENGTH_SIDES}
    wrong = [side for side, (effect, _) in effects.items() if guess[side] != effect]
    if not wrong:
        why = (" The concise prompt works; the informative one cannot make answers longer, because they are cut at "
               "128 new tokens (about 100 words) and most answers without a preference prompt already run into that cut."
               if guess == {"P2A": "shorter", "P2B": "same"} else "")
        return report(True, f"measured: {lines}: your prediction matches.{why}")

    def hint(side: str) -> str:
        effect = effects[side][0]
        if effect == "same" and guess[side] == "longer":
            return (f"{side} is the same, not longer: answers are cut at 128 new tokens (about 100 words), and the "
                    f"answers without a preference prompt already run into that cut")
        if effect == "shorter":
            return f"{side} is shorter, not {guess[side]}: this preference prompt does reach the 135M model"
        return f"{side} is {effect}, not {guess[side]}"

    return report(False, f"measured: {lines}. " + "; ".join(hint(s) for s in wrong) + ".")
