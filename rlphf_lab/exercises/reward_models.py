"""Notebook 02 (reward models): a worst-case scalarizer."""
from __future__ import annotations

from .report import report


def check_worst_case(fn) -> bool:
    """Notebook 02: your worst-case scalarizer must equal min_i w_i r_i per row, never across rows."""
    import torch

    from ..rewards.scalarize import worst_case

    rewards = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.2, -0.1], [4.0, 4.0, 4.0]])
    weights = torch.tensor([1.0, 0.5, 2.0])
    try:
        got = torch.as_tensor(fn(rewards, weights), dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want = worst_case(rewards, weights)
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} (one reward per row), got {tuple(got.shape)}. "
                              f"Reduce over dim=-1 (the objectives), not the whole tensor.")
    if not torch.allclose(got, want):
        return report(False, f"expected {want.tolist()}, got {got.tolist()}. Multiply by the weights first, then take the min over dim=-1.")
    return report(True, "min over the objective axis of w * r, row by row.")
