"""Notebook 04 (PPO): per-token rewards, the KL penalty on every real token and the score on the last."""
from __future__ import annotations

import torch

from ..rl import ppo
from .report import report


def check_token_rewards(fn) -> bool:
    """Notebook 04: fn(scores (B,), logprobs, ref_logprobs, mask (B, T), kl_coef) -> rewards (B, T) with
    r_t = -beta (log pi - log pi_ref) on real tokens, the score added at the LAST REAL token, 0 on padding."""
    scores = torch.tensor([1.0, -2.0, 0.5])
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -1.0], [-0.3, -0.2, -0.1, -0.4], [-2.0, -1.0, -1.5, -0.7]])
    ref = torch.tensor([[-1.5, -2.0, -1.0, -1.0], [-0.3, -0.4, -0.3, -0.4], [-1.0, -1.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    try:
        got = fn(scores.clone(), logprobs.clone(), ref.clone(), mask.clone(), 0.1)
        got = torch.as_tensor(got[0] if isinstance(got, tuple) else got, dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want, _ = ppo.compute_rewards(scores, logprobs, ref, mask, 0.1)
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} (one reward per token), got {tuple(got.shape)}.")
    if torch.allclose(got, want, atol=1e-6):
        return report(True, "a KL penalty on every real token, the score on the last real one, zeros on padding.")
    if (got * (1 - mask)).abs().sum() > 0:
        return report(False, "padding tokens (mask 0) got a reward: multiply by the mask, and put the score on "
                              "the last token where mask is 1, not at position T-1.")
    if not torch.allclose(got[0], want[0], atol=1e-6):
        return report(False, f"row 0 (no padding): expected {want[0].tolist()}, got {got[0].tolist()}. "
                              f"r_t = -kl_coef * (logprobs - ref_logprobs), plus the score at the end.")
    return report(False, f"rows with padding are wrong: expected {want[1:].tolist()}, got {got[1:].tolist()}. "
                          f"The last real token of row i is mask[i].sum() - 1.")
