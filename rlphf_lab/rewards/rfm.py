"""Reward Feature Models (Barreto et al. 2025): shared reward features, one weight vector per rater.

    r_h(x, y) = <phi_theta(x, y), w_h>
    P(y > y' | x, h) = sigmoid(<phi_theta(x, y) - phi_theta(x, y'), w_h>)

Train theta and every rater's w_h jointly with the Bradley-Terry loss (`train_rfm`). For a new
rater, freeze theta and fit only w by logistic regression on a few of their labelled pairs
(`fit_user_weights`), shrinking toward the population's mean weight; with no pairs at all the
new rater gets that mean. `choose_next_pair` asks the most informative pair next (active
adaptation, beyond the paper), and `adaptation_curve` measures held-out accuracy against k.

Inputs are precomputed embeddings of (prompt, response), shape (n, D), e.g. frozen SmolLM2
features. A non-adaptive reward model is the same thing with one rater: `train_pooled`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import trange

from ..config import set_seed
from .losses import bradley_terry_loss, fit_logistic, margin_accuracy


class RewardFeatureModel(nn.Module):
    """phi_theta: a small MLP from input embeddings (D) to d reward features; plus w_h for each rater."""

    def __init__(self, input_dim: int, n_raters: int, d: int = 8, hidden: int = 64):
        super().__init__()
        self.phi = nn.Sequential(
            nn.LayerNorm(input_dim),       # frozen LM features have large, uneven scales
            nn.Linear(input_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, d),
        )
        self.rater_weights = nn.Embedding(n_raters, d)  # row h is w_h, shape (d,)
        nn.init.normal_(self.rater_weights.weight, std=d ** -0.5)

    def features(self, emb: torch.Tensor) -> torch.Tensor:
        """phi_theta(x, y): (n, D) -> (n, d)."""
        return self.phi(emb)

    def forward(self, emb: torch.Tensor, rater_idx: torch.Tensor) -> torch.Tensor:
        """Reward of each item for its rater: (n, D), (n,) -> (n,)."""
        # r_h(x, y) = <phi_theta(x, y), w_h>
        return (self.features(emb) * self.rater_weights(rater_idx)).sum(dim=-1)

    def mean_rater_weight(self) -> torch.Tensor:
        """The population's mean weight vector (d,): the prior (and k=0 guess) for a new rater."""
        return self.rater_weights.weight.detach().mean(dim=0)


def _check_pairs(emb_chosen, emb_rejected, rater_idx, n_raters):
    emb_chosen, emb_rejected = torch.as_tensor(emb_chosen).float(), torch.as_tensor(emb_rejected).float()
    rater_idx = torch.as_tensor(rater_idx).long()
    if emb_chosen.dim() != 2 or emb_chosen.shape != emb_rejected.shape:
        raise ValueError(f"emb_chosen and emb_rejected must both be (n_pairs, D) with the same shape, got "
                         f"{tuple(emb_chosen.shape)} and {tuple(emb_rejected.shape)}.")
    if len(emb_chosen) == 0:
        raise ValueError("No pairs to train on: pass at least one (chosen, rejected) pair.")
    if rater_idx.shape != (len(emb_chosen),):
        raise ValueError(f"rater_idx must have shape ({len(emb_chosen)},), one rater per pair, "
                         f"got {tuple(rater_idx.shape)}.")
    if not (torch.isfinite(emb_chosen).all() and torch.isfinite(emb_rejected).all()):
        raise ValueError("Embeddings contain NaN or inf; recompute the features for those items.")
    if rater_idx.min() < 0 or rater_idx.max() >= n_raters:
        raise ValueError(f"rater_idx must lie in [0, {n_raters}) (n_raters={n_raters}); "
                         f"got values from {rater_idx.min().item()} to {rater_idx.max().item()}.")
    missing = sorted(set(range(n_raters)) - set(rater_idx.tolist()))
    if missing:
        raise ValueError(f"Raters {missing[:10]} have no labelled pairs; drop them and renumber rater_idx "
                         f"to 0..n_raters-1 (or lower n_raters).")
    return emb_chosen, emb_rejected, rater_idx


def train_rfm(emb_chosen, emb_rejected, rater_idx, n_raters: int, d: int = 8, hidden: int = 64,
              epochs: int = 100, lr: float = 3e-3, weight_decay: float = 1e-3, batch_size: int = 256,
              seed: int = 0, progress: bool = True):
    """Jointly train phi_theta and every rater's w_h on the Bradley-Terry loss.

    emb_chosen, emb_rejected: (n_pairs, D) embeddings of the chosen and rejected response of each pair;
    rater_idx: (n_pairs,) which rater (0..n_raters-1) labelled the pair.
    Returns (model, history) with history = {"loss": [...], "accuracy": [...]}, one value per epoch.
    """
    emb_chosen, emb_rejected, rater_idx = _check_pairs(emb_chosen, emb_rejected, rater_idx, n_raters)
    set_seed(seed)
    model = RewardFeatureModel(emb_chosen.shape[1], n_raters, d=d, hidden=hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = len(emb_chosen)
    history = {"loss": [], "accuracy": []}
    for _ in trange(epochs, desc="train RFM", disable=not progress):
        total_loss, correct = 0.0, 0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            h = rater_idx[idx]
            r_c = model(emb_chosen[idx], h)  # (b,)
            r_r = model(emb_rejected[idx], h)  # (b,)
            # L = -log sigmoid(r_h(x, y_c) - r_h(x, y_r))
            loss = bradley_terry_loss(r_c, r_r)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(idx)
            correct += (r_c > r_r).sum().item()
        history["loss"].append(total_loss / n)
        history["accuracy"].append(correct / n)
    model.eval()
    return model, history


def train_pooled(emb_chosen, emb_rejected, **kwargs):
    """Non-adaptive baseline: one reward model on everyone's pooled labels (train_rfm with one rater)."""
    rater_idx = torch.zeros(len(emb_chosen), dtype=torch.long)
    return train_rfm(emb_chosen, emb_rejected, rater_idx, n_raters=1, **kwargs)


@torch.no_grad()
def feature_diff(model: RewardFeatureModel, emb_a, emb_b) -> torch.Tensor:
    """phi(x, y_a) - phi(x, y_b) with theta frozen: (n, D), (n, D) -> (n, d)."""
    return model.features(torch.as_tensor(emb_a).float()) - model.features(torch.as_tensor(emb_b).float())


@torch.no_grad()
def preference_accuracy(model: RewardFeatureModel, emb_chosen, emb_rejected, rater_idx=None) -> float:
    """Fraction of pairs where the rater's reward ranks chosen above rejected (rater_idx=None: rater 0)."""
    emb_chosen = torch.as_tensor(emb_chosen).float()
    rater_idx = torch.zeros(len(emb_chosen), dtype=torch.long) if rater_idx is None else torch.as_tensor(rater_idx)
    margin = model(emb_chosen, rater_idx) - model(torch.as_tensor(emb_rejected).float(), rater_idx)
    return margin_accuracy(margin.float())


def _check_diffs(feat_diff, labels):
    x = torch.as_tensor(feat_diff).detach().float()
    if x.dim() != 2:
        raise ValueError(f"feat_diff must be 2-D (k, d): one feature difference per labelled pair, "
                         f"got shape {tuple(x.shape)}.")
    y = torch.ones(len(x)) if labels is None else torch.as_tensor(labels).float()
    if y.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), one per row of feat_diff, got {tuple(y.shape)}.")
    if not torch.isfinite(x).all():
        raise ValueError("feat_diff contains NaN or inf; recompute the features.")
    if not ((y == 0) | (y == 1)).all():
        raise ValueError("labels must hold only 0 and 1 (1 = the first response of the pair was preferred).")
    return x, y


def fit_user_weights(feat_diff, labels=None, l2: float = 1.0, prior=None) -> torch.Tensor:
    """Adapt to one rater: fit w (d,) on k labelled pairs with the features frozen.

    feat_diff: (k, d) rows phi(x, y_a) - phi(x, y_b); labels: (k,) 1 if the rater preferred y_a,
    0 if y_b (None: all ones, i.e. rows are chosen-minus-rejected). Regularised logistic regression,
    a Gaussian prior N(prior, I/l2) on w: with k=0 the answer is the prior itself (pass the
    population mean, `model.mean_rater_weight()`); prior=None means a zero prior.
    """
    x, y = _check_diffs(feat_diff, labels)
    if not l2 > 0:
        raise ValueError(f"l2 must be > 0 (got {l2}): it is the strength of the pull toward the prior.")
    if prior is not None:
        prior = torch.as_tensor(prior).detach().float()
        if prior.shape != (x.shape[1],):
            raise ValueError(f"prior must have shape ({x.shape[1]},), one weight per feature, "
                             f"got {tuple(prior.shape)}.")
    if len(x) == 0:
        if prior is None:
            raise ValueError("A rater with no labels and no prior: label at least one pair, or pass "
                             "prior=model.mean_rater_weight() to start from the population's weights.")
        return prior.clone()
    # w_h = argmin_w  sum_j -log sigmoid(+-<phi_a - phi_b, w>) + l2/2 ||w - w_prior||^2
    return fit_logistic(x, y, l2=l2, prior=prior)


def laplace_covariance(feat_diff, w, l2: float = 1.0) -> torch.Tensor:
    """Laplace approximation of the posterior covariance of w (d, d) after the pairs in feat_diff (k, d).

    Sigma = (sum_j p_j (1 - p_j) x_j x_j^T + l2 I)^-1 with p_j = sigmoid(<x_j, w>); k=0 gives I / l2.
    """
    x = torch.as_tensor(feat_diff).detach().double()
    w = torch.as_tensor(w).detach().double()
    p = torch.sigmoid(x @ w)  # (k,)
    # H = X^T diag(p (1 - p)) X + l2 I      (the Hessian of the negative log posterior at w)
    H = x.T @ (x * (p * (1 - p))[:, None]) + l2 * torch.eye(x.shape[1], dtype=torch.float64)
    return torch.linalg.inv(H).float()


def choose_next_pair(feat_diff_pool, w_mean, w_cov=None, asked: Sequence[int] = ()) -> int:
    """Index of the pool pair to ask the rater next: the one expected to teach us most about w.

    With the Laplace posterior N(w_mean, w_cov), the information gain of asking pair x is about
    1/2 log(1 + p (1 - p) x^T Sigma x), p = sigmoid(<x, w_mean>): large when the model is unsure of
    the answer (p near 1/2) AND the answer would move w (large posterior variance of the logit).
    With w_cov=None only the first factor is used (plain uncertainty sampling). `asked` are skipped.
    """
    x = torch.as_tensor(feat_diff_pool).detach().float()
    if x.dim() != 2 or len(x) == 0:
        raise ValueError(f"feat_diff_pool must be a non-empty (m, d) tensor, got shape {tuple(x.shape)}.")
    if len(set(asked)) >= len(x):
        raise ValueError(f"Every one of the {len(x)} pool pairs has been asked already; add pairs to the pool.")
    p = torch.sigmoid(x @ torch.as_tensor(w_mean).float())  # (m,)
    score = p * (1 - p)
    if w_cov is not None:
        # Var[<x, w>] = x^T Sigma x       (m,)
        score = score * ((x @ torch.as_tensor(w_cov).float()) * x).sum(dim=-1)
    score[list(asked)] = -float("inf")
    return int(score.argmax())


def _accuracy(feat_diff, labels, w) -> float:
    # the margin of the pair's winner: logit for label 1, -logit for label 0 (a zero prior ties: half right)
    logit = feat_diff @ w
    return margin_accuracy(torch.where(labels > 0.5, logit, -logit).float())


def adaptation_curve(feat_diff_pool, labels_pool, feat_diff_test, labels_test,
                     ks: Sequence[int] = (0, 5, 10, 20, 50), strategy: str = "random",
                     seeds: Sequence[int] = (0, 1, 2, 3, 4), l2: float = 1.0, prior=None) -> dict[int, float]:
    """Held-out accuracy of a new rater's fitted weights after k labelled pairs, for each k in ks.

    Works with any frozen feature map: RFM features (feature_diff) or raw backbone embeddings
    (the "linear head on frozen features" baseline). feat_diff_*: (m, d) rows phi(y_a) - phi(y_b);
    labels_*: (m,) 1 if this rater preferred y_a. strategy="random" asks a random prefix of the pool
    (one permutation per seed); "active" asks choose_next_pair's choice each step (it is
    deterministic, so the seeds change nothing there). prior=None is a zero prior (k=0 is chance).
    Returns {k: accuracy averaged over seeds}.
    """
    x_pool, y_pool = _check_diffs(feat_diff_pool, labels_pool)
    x_test, y_test = _check_diffs(feat_diff_test, labels_test)
    if x_pool.shape[1] != x_test.shape[1]:
        raise ValueError(f"Pool and test features differ in size ({x_pool.shape[1]} vs {x_test.shape[1]}); "
                         f"compute both with the same feature map.")
    if strategy not in ("random", "active"):
        raise ValueError(f"Unknown strategy {strategy!r}; use 'random' or 'active'.")
    if max(ks) > len(x_pool):
        raise ValueError(f"k={max(ks)} needs at least that many pool pairs, the pool has {len(x_pool)}; "
                         f"lower ks or add pairs.")
    prior = torch.zeros(x_pool.shape[1]) if prior is None else torch.as_tensor(prior).float()
    if strategy == "active":
        seeds = list(seeds)[:1]  # deterministic: one run is enough
    accs = {k: [] for k in ks}
    for seed in seeds:
        if strategy == "random":
            order = torch.randperm(len(x_pool), generator=torch.Generator().manual_seed(seed)).tolist()
        else:  # active: grow the asked list one most-informative pair at a time
            order, w = [], prior
            for _ in range(max(ks)):
                order.append(choose_next_pair(x_pool, w, laplace_covariance(x_pool[order], w, l2), asked=order))
                w = fit_user_weights(x_pool[order], y_pool[order], l2=l2, prior=prior)
        for k in ks:
            asked = order[:k]
            w = fit_user_weights(x_pool[asked], y_pool[asked], l2=l2, prior=prior)
            accs[k].append(_accuracy(x_test, y_test, w))
    return {k: sum(v) / len(v) for k, v in accs.items()}


__all__ = ["RewardFeatureModel", "train_rfm", "train_pooled", "feature_diff", "preference_accuracy",
           "fit_user_weights", "laplace_covariance", "choose_next_pair", "adaptation_curve"]
