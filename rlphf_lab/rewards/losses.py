"""The Bradley-Terry loss, and the logistic regression it becomes when the reward is linear.

Bradley-Terry: P(y_c > y_r | x) = sigmoid(r(x, y_c) - r(x, y_r)). Training a reward model maximises
that likelihood over labelled pairs. With a linear reward r = <z, w> on fixed features z, the
difference r_c - r_r = <z_c - z_r, w> and the same likelihood is plain logistic regression on
feature differences: `fit_logistic` below, used to fit MORLAIF's objective weights and a new
rater's RFM weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Mean Bradley-Terry loss over pairs: -log sigmoid(r_chosen - r_rejected). Inputs (n,), output scalar."""
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"r_chosen has shape {tuple(r_chosen.shape)} but r_rejected has "
                         f"{tuple(r_rejected.shape)}; pass one reward per pair in each, same shape.")
    if r_chosen.numel() == 0:
        raise ValueError("No pairs: bradley_terry_loss needs at least one (chosen, rejected) pair.")
    # L = -E[ log sigmoid(r(x, y_c) - r(x, y_r)) ]   (logsigmoid is the numerically stable form)
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def margin_accuracy(margin) -> float:
    """Fraction of pairs ranked right from the margins r(chosen) - r(rejected), (n,): a margin > 0 is right,
    a tie (margin exactly 0) counts half, as a coin flip would. Computed in the margins' own float dtype."""
    m = torch.as_tensor(margin)
    m = m if m.is_floating_point() else m.float()
    return ((m > 0).to(m.dtype) + 0.5 * (m == 0).to(m.dtype)).mean().item()


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1.0, prior: torch.Tensor | None = None,
                 max_iter: int = 200) -> torch.Tensor:
    """MAP logistic regression without intercept, fitted with L-BFGS (convex, so the optimum is unique).

    x: (n, d) feature differences, y: (n,) labels in {0, 1} (1 = the first item of the pair won).
    Minimises   sum_j BCE(sigmoid(<x_j, w>), y_j) + l2/2 ||w - prior||^2,
    i.e. a Gaussian prior N(prior, I/l2) on w. The data term is a sum, so more pairs pull harder
    against the prior. Returns w (d,) in float32. Inputs are assumed checked by the caller.
    """
    x, y = x.detach().double(), y.detach().double()
    prior = torch.zeros(x.shape[1], dtype=torch.float64) if prior is None else prior.detach().double()
    if len(x) == 0:  # no data: the posterior is the prior
        return prior.float()
    w = prior.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        # -log p(y | x, w) - log p(w) = sum_j BCE(<x_j, w>, y_j) + l2/2 ||w - w_0||^2
        loss = F.binary_cross_entropy_with_logits(x @ w, y, reduction="sum") + 0.5 * l2 * (w - prior).pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().float()
