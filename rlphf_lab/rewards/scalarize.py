"""MORLAIF scalarization (Williams 2024): turn K per-objective rewards into one PPO reward.

Every function takes rewards of shape (batch, K) and weights of shape (K,), first forms
r~_i = w_i r_i, then reduces over the objective axis only (dim=-1), returning (batch,).
Rows never mix: the reference code reduced over the batch axis too, so one sample's reward
depended on the others in its batch (tests/test_scalarize.py checks that ours does not).

    >>> scalarize("worst_case", torch.tensor([[1.0, -2.0, 3.0]]), weights=[1, 1, 0.5])
    tensor([-2.])

The weights themselves come from `fit_objective_weights`: a logistic regression of an overall
preference on the per-objective score differences, as MORLAIF does.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .losses import fit_logistic

Weights = torch.Tensor | Sequence[float] | None


def _weighted(rewards, weights: Weights) -> torch.Tensor:
    """Check the inputs and return r~ = w * r, shape (batch, K)."""
    r = torch.as_tensor(rewards)
    if not r.is_floating_point():
        r = r.to(torch.get_default_dtype())
    if r.dim() != 2:
        raise ValueError(f"rewards must be 2-D (batch, K), got shape {tuple(r.shape)}; "
                         f"for a single sample use rewards[None, :], for one objective rewards[:, None].")
    K = r.shape[1]
    if K == 0:
        raise ValueError("rewards has K=0 objectives (shape (batch, 0)); pass at least one reward column.")
    if not torch.isfinite(r).all():
        raise ValueError("rewards contain NaN or inf; check the reward models' outputs (or drop those rows) first.")
    if weights is None:
        return r
    w = torch.as_tensor(weights, dtype=r.dtype, device=r.device)
    if w.shape != (K,):
        raise ValueError(f"weights must have shape ({K},), one per objective (reward column), "
                         f"got shape {tuple(w.shape)}; pass K weights or weights=None for all ones.")
    if not torch.isfinite(w).all():
        raise ValueError("weights contain NaN or inf; refit them (fit_objective_weights) or pass finite numbers.")
    # r~_i = w_i r_i ; (batch, K) * (K,) broadcasts over the batch
    return r * w


def weighted_linear(rewards, weights: Weights = None) -> torch.Tensor:
    """Weighted sum: sum_i w_i r_i. Trades objectives off freely; one large reward can hide a bad one."""
    rw = _weighted(rewards, weights)
    # R = sum_i r~_i
    return rw.sum(dim=-1)


def worst_case(rewards, weights: Weights = None) -> torch.Tensor:
    """Max-min: min_i w_i r_i. Only the weakest objective counts; the policy must lift it."""
    rw = _weighted(rewards, weights)
    # R = min_i r~_i
    return rw.amin(dim=-1)


def soft_max_min(rewards, weights: Weights = None, tau: float = 1.0) -> torch.Tensor:
    """Soft max-min: the softmin-weighted average of r~. tau -> 0 gives the minimum, tau -> inf the mean."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0 (got {tau}); small tau approaches worst_case, large tau the mean.")
    rw = _weighted(rewards, weights)
    # softmin_i(r~ / tau) = exp(-r~_i / tau) / sum_j exp(-r~_j / tau)     (batch, K)
    p = torch.softmax(-rw / tau, dim=-1)
    # R = sum_i softmin_i(r~ / tau) r~_i
    return (p * rw).sum(dim=-1)


def uncertainty_weighted(rewards, weights: Weights = None, lam: float = 0.5) -> torch.Tensor:
    """Mean minus lam times the *population* variance (divide by K, so K=1 gives variance 0) of r~.

    Penalises disagreement between objectives: a response good on all beats one great on some.
    """
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0 (got {lam}); 0 gives the plain mean, larger values "
                         f"penalise disagreement between objectives more.")
    rw = _weighted(rewards, weights)
    # R = mean_i(r~_i) - lam * (1/K) sum_i (r~_i - mean(r~))^2
    return rw.mean(dim=-1) - lam * rw.var(dim=-1, correction=0)


def lower_quantile(rewards, weights: Weights = None) -> torch.Tensor:
    """Mean of the lowest floor(K/3) values of r~, and of the single lowest value when K < 3."""
    rw = _weighted(rewards, weights)
    q = max(1, rw.shape[-1] // 3)
    # R = mean of the q smallest r~_i, q = max(1, floor(K/3))
    lowest = rw.sort(dim=-1).values[:, :q]  # (batch, q)
    return lowest.mean(dim=-1)


def max_median(rewards, weights: Weights = None) -> torch.Tensor:
    """Median of r~ over objectives; for even K the mean of the two middle values."""
    rw = _weighted(rewards, weights)
    s = rw.sort(dim=-1).values  # (batch, K), ascending
    K = s.shape[-1]
    # R = median_i r~_i = (s_{(K-1)//2} + s_{K//2}) / 2   (the same index twice when K is odd)
    return 0.5 * (s[:, (K - 1) // 2] + s[:, K // 2])


def bernoulli_nash(rewards, weights: Weights = None, transform: str = "sigmoid",
                   shift: float | None = None) -> torch.Tensor:
    """Nash product of positive-transformed rewards: prod_i g(r~_i).

    transform="sigmoid" (default): g = sigmoid, the probability of beating a zero-reward answer.
    transform="shift": g(r) = r + shift; every r~_i + shift must be > 0 or a ValueError is raised.
    Never multiplies raw rewards: two negative rewards would multiply to a large positive one
    (the reference code's defect).
    """
    rw = _weighted(rewards, weights)
    if transform == "sigmoid":
        # g(r~_i) = sigmoid(r~_i) in (0, 1)
        g = torch.sigmoid(rw)
    elif transform == "shift":
        if shift is None:
            raise ValueError("transform='shift' needs shift=c with every weighted reward + c > 0, e.g. shift=5.0.")
        # g(r~_i) = r~_i + c
        g = rw + shift
        if not (g > 0).all():
            raise ValueError(f"shift={shift} leaves a weighted reward <= 0 (smallest is {rw.min().item():.4g}); "
                             f"use a shift above {-rw.min().item():.4g}, or transform='sigmoid'.")
    else:
        raise ValueError(f"Unknown transform {transform!r}; use 'sigmoid' or 'shift'.")
    # R = prod_i g(r~_i)
    return g.prod(dim=-1)


SCALARIZERS = {
    "weighted_linear": weighted_linear,
    "worst_case": worst_case,
    "soft_max_min": soft_max_min,
    "uncertainty_weighted": uncertainty_weighted,
    "lower_quantile": lower_quantile,
    "max_median": max_median,
    "bernoulli_nash": bernoulli_nash,
}


def scalarize(name: str, rewards, weights: Weights = None, **params) -> torch.Tensor:
    """Apply the scalarizer called `name` (a key of SCALARIZERS): (batch, K) -> (batch,)."""
    if name not in SCALARIZERS:
        raise ValueError(f"Unknown scalarizer {name!r}; choose one of {', '.join(SCALARIZERS)}.")
    return SCALARIZERS[name](rewards, weights, **params)


def fit_objective_weights(score_diffs, overall_pref, l2: float = 1.0) -> torch.Tensor:
    """MORLAIF's objective weights: logistic regression of the overall preference on score differences.

    score_diffs: (n, K), row j holds r_i(x_j, y_a) - r_i(x_j, y_b) for each objective i.
    overall_pref: (n,), 1 if the overall judge preferred y_a, 0 if y_b.
    Fits P(y_a > y_b) = sigmoid(sum_i w_i (r_i(y_a) - r_i(y_b))), no intercept, with an L2
    penalty l2/2 ||w||^2 on the summed log-loss (l2=1 matches sklearn's default C=1). Returns w (K,).
    """
    x = torch.as_tensor(score_diffs, dtype=torch.float64)
    y = torch.as_tensor(overall_pref, dtype=torch.float64)
    if x.dim() != 2 or x.shape[1] == 0:
        raise ValueError(f"score_diffs must be 2-D (n, K) with K >= 1, got shape {tuple(x.shape)}.")
    if y.shape != (x.shape[0],):
        raise ValueError(f"overall_pref must have shape ({x.shape[0]},), one label per row of score_diffs, "
                         f"got {tuple(y.shape)}.")
    if x.shape[0] == 0:
        raise ValueError("No labelled pairs: fit_objective_weights needs at least one row of score_diffs.")
    if not torch.isfinite(x).all():
        raise ValueError("score_diffs contain NaN or inf; check the reward models' scores first.")
    if not ((y == 0) | (y == 1)).all():
        raise ValueError("overall_pref must hold only 0 and 1 (1 = the first response of the pair won).")
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0 (got {l2}); 0 means no penalty (weights can diverge on separable data).")
    # P(y_a > y_b) = sigmoid(<r(y_a) - r(y_b), w>)
    return fit_logistic(x, y, l2=l2)


def contour_grid(name: str, weights: Weights = None, lim: float = 3.0, n: int = 101, **params):
    """Evaluate a scalarizer on an n x n grid of two objectives' rewards in [-lim, lim]^2.

    Returns numpy arrays (X, Y, Z), each (n, n), ready for `plt.contour(X, Y, Z)`.
    """
    axis = torch.linspace(-lim, lim, n)
    X, Y = torch.meshgrid(axis, axis, indexing="xy")  # (n, n) each
    grid = torch.stack([X.reshape(-1), Y.reshape(-1)], dim=-1)  # (n*n, 2): one row per grid point
    if weights is not None and len(weights) != 2:
        raise ValueError(f"contour_grid plots two objectives: pass 2 weights, got {len(weights)}.")
    Z = scalarize(name, grid, weights, **params).reshape(n, n)
    return X.numpy(), Y.numpy(), Z.numpy()


__all__ = ["SCALARIZERS", "scalarize", "weighted_linear", "worst_case", "soft_max_min",
           "uncertainty_weighted", "lower_quantile", "max_median", "bernoulli_nash",
           "fit_objective_weights", "contour_grid"]
