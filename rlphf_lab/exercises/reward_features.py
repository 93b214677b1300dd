"""Notebook 03 (reward features): the Bradley-Terry preference probability of a linear reward."""
from __future__ import annotations

from .report import report


def check_preference_prob(fn) -> bool:
    """Notebook 03: P(y_a > y_b | x, h) = sigmoid(<phi(x, y_a) - phi(x, y_b), w_h>), for a batch of pairs."""
    import torch

    phi_a = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]])
    phi_b = torch.tensor([[0.0, 1.0, 2.0], [0.5, -1.0, 0.0]])
    w = torch.tensor([2.0, 1.0, -3.0])
    try:
        got = torch.as_tensor(fn(phi_a, phi_b, w), dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want = torch.sigmoid(((phi_a - phi_b) * w).sum(-1))       # [sigmoid(1), sigmoid(0)]
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} (one probability per pair), got {tuple(got.shape)}. "
                              f"Take the dot product over the feature axis (dim=-1) only.")
    if torch.allclose(got, 1 - want, atol=1e-5):
        return report(False, "you have P(b beats a): the difference is phi(a) - phi(b), not the other way round.")
    if torch.allclose(got, ((phi_a - phi_b) * w).sum(-1), atol=1e-5):
        return report(False, "that is the reward difference (a logit); squash it with torch.sigmoid.")
    if not torch.allclose(got, want, atol=1e-5):
        return report(False, f"expected {[round(v, 4) for v in want.tolist()]}, got {[round(v, 4) for v in got.tolist()]}. "
                              f"Compute sigmoid(<phi_a - phi_b, w>) row by row.")
    return report(True, f"{[round(v, 3) for v in want.tolist()]}: the second pair has identical features, "
                         f"so the rater is indifferent (0.5) whatever w is.")
