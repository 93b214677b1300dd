"""From two scores to a pair label: "A", "B" or "tie", with optional Bradley-Terry noise.

    |s_A - s_B| < tie_margin                  -> "tie"
    temperature T = 0                         -> the better response wins
    temperature T > 0                         -> "A" with P(A) = sigmoid((s_A - s_B) / T)

The labels depend on the responses, their instruction, and nothing random except that noise.
"""
from __future__ import annotations


import numpy as np

from .sides import score


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def label_from_scores(score_a: float, score_b: float, *, tie_margin: float = 0.1, temperature: float = 0.0,
                      rng: np.random.Generator | None = None) -> str:
    """"A", "B" or "tie" from two scores (see `label_pair`)."""
    if tie_margin < 0 or temperature < 0:
        raise ValueError(f"tie_margin ({tie_margin}) and temperature ({temperature}) must be >= 0.")
    diff = score_a - score_b
    if abs(diff) < tie_margin:
        return "tie"
    if temperature == 0:
        return "A" if diff > 0 else "B"
    if rng is None:
        raise ValueError("label noise (temperature > 0) needs a random generator: pass rng=np.random.default_rng(seed).")
    # Bradley-Terry: P(A preferred) = sigmoid((s_A - s_B) / T)
    p_a = float(sigmoid(diff / temperature))
    return "A" if rng.random() < p_a else "B"


def label_pair(side: str, response_a: str, response_b: str, *, tie_margin: float = 0.1, temperature: float = 0.0,
               rng: np.random.Generator | None = None, instruction: str | None = None) -> str:
    """Label one pair for one side: "A", "B" or "tie".

    |s_A - s_B| < tie_margin gives "tie". Otherwise the better response wins when temperature is 0;
    with temperature T > 0 the label is drawn from Bradley-Terry, P(A) = sigmoid((s_A - s_B) / T).
    """
    return label_from_scores(score(side, response_a, instruction), score(side, response_b, instruction),
                             tie_margin=tie_margin, temperature=temperature, rng=rng)
