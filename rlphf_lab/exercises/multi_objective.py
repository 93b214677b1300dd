"""Notebook 05 (multi-objective RL): a Prompted-MORL reward that reads the response."""
from __future__ import annotations

import torch

from .report import report


def check_prompted_morl_reward(fn) -> bool:
    """Notebook 05: fn(score_fn, codes, instructions, responses) -> (B,) the mean of the combination's side
    rewards for each (plain instruction, RESPONSE). Checked with the word-count toy reward."""
    from ..rl.multi import toy_length_score_fn

    codes = ["P1A", "P2A", "P3A"]
    instructions = ["Explain rain.", "Explain rain."]
    responses = ["Rain is water falling from clouds!", "When clouds hold more water than they can carry, drops "
                 "grow heavy and fall: that is rain, and you see it most where warm wet air rises and cools."]
    try:
        got = torch.as_tensor(fn(toy_length_score_fn, codes, instructions, responses), dtype=torch.float32)
    except Exception as err:
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want = toy_length_score_fn(codes, instructions, responses).mean(dim=1)
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} (one reward per response), got {tuple(got.shape)}.")
    if torch.isclose(got[0], got[1]):
        return report(False, "both responses got the same reward: your reward does not look at the response "
                              "(the reference Prompted-MORL code's bug). Pass the responses to score_fn.")
    if not torch.allclose(got, want, atol=1e-5):
        return report(False, f"expected {want.tolist()}, got {got.tolist()}: average the combination's columns "
                              f"(dim=1) of score_fn(codes, instructions, responses).")
    return report(True, "the mean of the combination's side rewards, and it changes when the response changes.")
