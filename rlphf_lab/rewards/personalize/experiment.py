"""The experiment: does a reward adapt to a new rater from k of their clicks? (Reward Feature Models)

    1. train phi_theta and every training rater's w_h jointly (`rfm.train_rfm`), and the pooled
       reward model on everyone's labels (`rfm.train_pooled`);
    2. choose lambda, the pull of a new rater's w toward the mean w_h, on the validation raters (`choose_l2`):
           w = argmin_w  sum_j -log sigmoid(+-<x_j, w>) + lambda/2 ||w - mean_h w_h||^2
       with x_j = phi_theta(a_j) - phi_theta(b_j), + when the rater chose a_j (`rfm.fit_user_weights`);
    3. for each held-out rater, freeze phi_theta, fit w from k of their pool pairs (`rfm.adaptation_curve`)
       and measure accuracy on their test pairs; beside it the pooled model (flat in k) and a linear
       head on the standardised backbone features (D weights, zero prior).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..rfm import adaptation_curve, feature_diff, fit_user_weights, preference_accuracy, train_pooled, train_rfm
from .splits import _oriented, _standardiser, split_raters

CURVES = ("rfm", "rfm_active", "linear", "pooled")


@contextmanager
def one_thread():
    """Run torch on one thread inside the block. The models here are tiny (batches of 256 x 1729):
    one thread is as fast as two on a quiet machine, and many times faster on a busy one, where
    threads spin waiting for each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _mean_sem(per_rater: list[dict], ks) -> tuple[dict, dict]:
    mean = {k: float(np.mean([c[k] for c in per_rater])) for k in ks}
    sem = {k: float(np.std([c[k] for c in per_rater]) / np.sqrt(len(per_rater))) for k in ks}
    return mean, sem


@dataclass
class Trained:
    """What adaptation to a new rater starts from, all trained on the training raters only."""
    model: object               # RewardFeatureModel: phi_theta and the training raters' w_h
    pooled: object              # the non-adaptive reward model on everyone's pooled labels
    prior: torch.Tensor         # (d,) mean w_h: a new rater's starting point (k = 0)
    l2: float                   # pull of a new rater's w toward the prior
    mu: torch.Tensor            # (D,) backbone feature mean and std over the training responses,
    sd: torch.Tensor            # (D,) used to standardise features for the linear head
    l2_linear: float            # pull of the linear head's D weights toward 0


def evaluate_new_rater(trained: Trained, pool: list[dict], test: list[dict], features: dict, ks: Sequence[int],
                       seeds: Sequence[int], strategies: Sequence[str] = ("random", "active")) -> dict:
    """Accuracy against k on one new rater's `test` pairs after adapting on k of their `pool` pairs.

    Returns {curve name: {k: accuracy}} for "rfm" / "rfm_active" (per strategy), "linear" and
    "pooled", plus "w": the RFM weights after max(ks) random pool pairs (first seed).
    """
    pa, pb, py = _oriented(pool, features)
    ta, tb, ty = _oriented(test, features)
    out = {}
    # RFM: x = phi_theta(x, y_a) - phi_theta(x, y_b) with theta frozen                 (m, d)
    x_pool, x_test = feature_diff(trained.model, pa, pb), feature_diff(trained.model, ta, tb)
    for strategy, name in (("random", "rfm"), ("active", "rfm_active")):
        if strategy in strategies:
            out[name] = adaptation_curve(x_pool, py, x_test, ty, ks, strategy, seeds,
                                         l2=trained.l2, prior=trained.prior)
    order = torch.randperm(len(py), generator=torch.Generator().manual_seed(seeds[0]))[:max(ks)]
    out["w"] = fit_user_weights(x_pool[order], py[order], l2=trained.l2, prior=trained.prior)
    # Linear head on standardised backbone features: z = (phi - mu) / sigma, zero prior  (m, D)
    z_pool = (pa - trained.mu) / trained.sd - (pb - trained.mu) / trained.sd
    z_test = (ta - trained.mu) / trained.sd - (tb - trained.mu) / trained.sd
    out["linear"] = adaptation_curve(z_pool, py, z_test, ty, ks, "random", seeds, l2=trained.l2_linear)
    # Pooled: one reward for everybody, so the same at every k
    chosen, rejected = torch.where(ty[:, None] == 1, ta, tb), torch.where(ty[:, None] == 1, tb, ta)
    out["pooled"] = dict.fromkeys(ks, preference_accuracy(trained.pooled, chosen, rejected))
    return out


@one_thread()
def rfm_experiment(pairs: list[dict], features: dict[str, torch.Tensor], *, d: int = 8,
                   ks: Sequence[int] = (0, 5, 10, 20, 50), n_heldout: int = 20, n_val: int = 10, n_test: int = 40,
                   seeds: Sequence[int] = (0, 1, 2, 3, 4), strategies: Sequence[str] = ("random", "active"),
                   l2: float | str = "auto", l2_linear: float = 1000.0, epochs: int = 30,
                   train_kwargs: dict | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Held-out accuracy against k for the RFM and its two baselines on one multi-rater pair set.

    pairs: multi-rater records (rater, chosen_id, rejected_id); features: {response id: (D,) tensor}.
    ks: numbers of a held-out rater's pairs to adapt on; seeds: random orders of the pool per rater;
    strategies: "random" (curve "rfm") and/or "active" (curve "rfm_active", `rfm.choose_next_pair`);
    n_val: validation raters, for choosing l2; l2: pull of a new rater's w toward the population
    mean ("auto": the value in L2_GRID that adapts best to the validation raters, `choose_l2`);
    l2_linear: pull toward 0 of the linear head's D weights (strong: it sees only k pairs);
    epochs and train_kwargs: for train_rfm and train_pooled (hidden, lr, weight_decay, ...).
    Returns a dict with {k: mean accuracy over held-out raters} for each curve in CURVES that ran, plus "ks", "sem" (standard errors), "per_rater" (one row per held-out
    rater), "adapted" ({rater: RFM w after max(ks) random pairs}), "l2_scores" (validation accuracy
    per l2, when l2="auto"), "split", "trained", "history", "seconds".
    """
    ks = sorted(set(int(k) for k in ks))
    if not ks or ks[0] < 0:
        raise ValueError(f"ks={ks}: give the numbers of adaptation pairs to try, each >= 0, e.g. (0, 5, 10, 20, 50).")
    if not strategies or set(strategies) - {"random", "active"}:
        raise ValueError(f"strategies={tuple(strategies)}: use 'random' and/or 'active'.")
    start = time.perf_counter()
    train_kwargs = {"d": d, "epochs": epochs, "progress": False, "seed": seed, **(train_kwargs or {})}
    split = split_raters(pairs, n_heldout, n_test, min_pool=max(ks), seed=seed, n_val=n_val)
    index = {r: h for h, r in enumerate(split.train_raters)}

    # 1. phi_theta and every training rater's w_h, jointly; and the pooled reward model
    emb_c, emb_r = (torch.stack([features[p[k]] for p in split.train_pairs]) for k in ("chosen_id", "rejected_id"))
    h = torch.tensor([index[p["rater"]] for p in split.train_pairs])
    model, history = train_rfm(emb_c, emb_r, h, n_raters=len(index), **train_kwargs)
    pooled, _ = train_pooled(emb_c, emb_r, **train_kwargs)
    mu, sd = _standardiser(features, [p[k] for p in split.train_pairs for k in ("chosen_id", "rejected_id")])
    l2_scores = {}
    if l2 == "auto":
        l2, l2_scores = choose_l2(model, split.val_pool, split.val_test, features, ks, seeds)
    trained = Trained(model, pooled, model.mean_rater_weight(), float(l2), mu, sd, float(l2_linear))

    # 2. each held-out rater: adapt on k of their pool pairs, measure on their test pairs
    runs, per_rater, adapted = {}, [], {}
    for rater in tqdm(split.heldout_raters, desc="held-out raters", disable=not progress):
        res = evaluate_new_rater(trained, split.pool[rater], split.test[rater], features, ks, seeds, strategies)
        adapted[rater] = res.pop("w")
        for name, curve in res.items():
            runs.setdefault(name, []).append(curve)
        per_rater.append({"rater": rater, "pool": len(split.pool[rater]), "test": len(split.test[rater]),
                          **{f"{name} k={k}": curve[k] for name, curve in res.items() for k in ks},
                          "pooled": res["pooled"][ks[0]]})

    out = {"ks": ks, "sem": {}}
    for name in CURVES:
        if name in runs:
            out[name], out["sem"][name] = _mean_sem(runs[name], ks)
    out.update(per_rater=per_rater, adapted=adapted, l2_scores=l2_scores, split=split, trained=trained,
               history=history, seconds=time.perf_counter() - start)
    return out


L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)


def choose_l2(model, val_pool: dict, val_test: dict, features: dict, ks: Sequence[int], seeds: Sequence[int],
              grid: Sequence[float] = L2_GRID) -> tuple[float, dict]:
    """The prior strength lambda that adapts best to the validation raters (raters used neither for
    training nor for testing): mean accuracy over ks > 0, ties go to the stronger prior.

    Returns (lambda, {lambda: score}). Raters who all agree call for a strong pull toward the mean
    (a few noisy clicks should not move it); raters who disagree for a weak one.
    """
    if not val_pool:
        raise ValueError("Choosing l2 needs validation raters: pass n_val >= 1, or a number as l2 (e.g. l2=10.0).")
    prior, diffs = model.mean_rater_weight(), []
    for r in val_pool:
        (pa, pb, py), (ta, tb, ty) = _oriented(val_pool[r], features), _oriented(val_test[r], features)
        diffs.append((feature_diff(model, pa, pb), py, feature_diff(model, ta, tb), ty))
    scores = {}
    for l2 in grid:
        curves = [adaptation_curve(xp, yp, xt, yt, ks, "random", seeds, l2=l2, prior=prior) for xp, yp, xt, yt in diffs]
        scores[l2] = float(np.mean([c[k] for c in curves for k in ks if k > 0] or [0.0]))
    best = max(sorted(grid, reverse=True), key=lambda l2: scores[l2])   # max keeps the first of equals
    return best, scores


def curve_table(results: dict, name: str = "") -> list[dict]:
    """One row per curve with its accuracy at every k (rounded): for show_table."""
    rows = []
    for curve in (*CURVES, "oracle"):
        if curve in results:
            rows.append({"population": name, "method": curve,
                         **{f"k={k}": round(results[curve][k], 3) for k in results["ks"]}})
    return rows


def spread_table(results: dict, curve: str = "rfm") -> list[dict]:
    """How much one held-out rater's accuracy varies at each k: worst, median and best rater."""
    rows = []
    for k in results["ks"]:
        accs = [r[f"{curve} k={k}"] for r in results["per_rater"]]
        rows.append({"k": k, "worst rater": round(min(accs), 3), "median": round(float(np.median(accs)), 3),
                     "best rater": round(max(accs), 3)})
    return rows
