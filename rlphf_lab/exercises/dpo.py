"""Notebook 05b (DPO): the DPO loss of a batch of pairs, from summed log-probs."""
from __future__ import annotations

from .report import report


def check_dpo_loss(fn) -> bool:
    """Notebook 05b: fn(chosen_logp, rejected_logp, ref_chosen_logp, ref_rejected_logp, beta) must return
    the mean of -log sigmoid(beta * ((chosen - ref_chosen) - (rejected - ref_rejected))) over the batch."""
    import torch

    from ..rl.dpo import dpo_loss

    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-100 + 20 * torch.rand(5, generator=g) for _ in range(4))
    beta = 0.3
    want = dpo_loss(pc, pr, rc, rr, beta)
    try:
        got = torch.as_tensor(fn(pc, pr, rc, rr, beta), dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    if got.numel() != 1:
        return report(False, f"expected one number (the mean over the {len(pc)} pairs), got shape {tuple(got.shape)}; "
                              f"finish with .mean().")
    margin = (pc - rc) - (pr - rr)
    wrong = {"beta is missing: multiply the bracket by beta": -torch.nn.functional.logsigmoid(margin).mean(),
             "the sign is flipped: the chosen answer's log-ratio comes first": -torch.nn.functional.logsigmoid(-beta * margin).mean(),
             "the reference is missing: use log pi - log pi_ref for each answer": -torch.nn.functional.logsigmoid(beta * (pc - pr)).mean(),
             "sum over the batch instead of the mean": dpo_loss(pc, pr, rc, rr, beta) * len(pc)}
    for hint, value in wrong.items():
        if torch.allclose(got.reshape(()), value, atol=1e-5):
            return report(False, f"got {got.item():.4f}, expected {want.item():.4f}: {hint}.")
    if not torch.allclose(got.reshape(()), want, atol=1e-5):
        return report(False, f"got {got.item():.4f}, expected {want.item():.4f}. The loss is "
                              f"-logsigmoid(beta * ((chosen - ref_chosen) - (rejected - ref_rejected))).mean().")
    return report(True, "the Bradley-Terry loss of the two implicit rewards, averaged over the pairs.")
