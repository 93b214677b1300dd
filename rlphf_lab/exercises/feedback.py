"""Notebook 01 (feedback): the Bradley-Terry temperature that flips a given share of labels."""
from __future__ import annotations

import math

from ..feedback.annotators import sigmoid
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
