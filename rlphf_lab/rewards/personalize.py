"""Personalisation experiments (notebook 03): does a reward adapt to a new rater from k of their clicks?

The recipe of Reward Feature Models (Barreto et al. 2025), on a population of simulated raters:

1. split the raters: most train, some are held out as "new users" and a few as validation raters;
   each held-out rater's pairs are split again into an adaptation pool (the pairs we may ask them)
   and a test set;
2. train phi_theta and every training rater's w_h jointly (`rfm.train_rfm`), and choose how hard a
   new rater's w is pulled toward the population's mean weight on the validation raters (`choose_l2`);
3. for each held-out rater, freeze phi_theta and fit w from k pool pairs (`rfm.adaptation_curve`),
   starting from the population's mean weight; measure accuracy on their test pairs.

Two baselines on the same held-out raters and pairs: one reward model on everyone's pooled labels
(`rfm.train_pooled`, the same for every user, so flat in k), and a linear head fitted from the same
k pairs directly on the frozen backbone features (1729 numbers: it has to learn the user from
scratch, so it needs far more pairs). `rfm_experiment` runs all of it and returns accuracy against k.

"Adapt to you": `fit_my_weights` reads your own clicks from the FeedbackWidget's store and fits your
weights over the three preference dimensions, by the same logistic regression.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import CANDIDATES_FILE, FEEDBACK_DIR, FeedbackStore, load_pairs, read_jsonl
from ..feedback.annotators import DIMS, dimension_scores
from ..feedback.raters import MEAN_PREFERENCE, Rater, load_population, rater_utility
from .features import cached_features
from .losses import margin_accuracy
from .rfm import (adaptation_curve, feature_diff, fit_user_weights, preference_accuracy, train_pooled,
                  train_rfm)

# What a positive weight on each annotator dimension score means.
DIM_LABELS = {"P1": "expertise", "P2": "informativeness", "P3": "friendliness"}
CURVES = ("rfm", "rfm_active", "linear", "pooled")


# --------------------------------------------------------------------------------------------
# Data: a multi-rater pair set, its raters' true weights, and features of its responses
# --------------------------------------------------------------------------------------------

@dataclass
class RaterSet:
    name: str                 # "raters_low"
    pairs: list[dict]         # one record per (rater, pair): rater, chosen_id, rejected_id, texts
    raters: list[Rater]       # the simulated raters, with their true weights (the .raters.json sidecar)


def load_rater_set(name: str = "raters_low", n_prompts: int | None = None) -> RaterSet:
    """A shipped multi-rater set (`rlphf-lab label-raters`) and its raters' true weights.

    n_prompts keeps only the pairs of the first n prompts (sorted ids): fewer responses to compute
    features for, fewer pairs per rater (quick mode).
    """
    pairs = load_pairs(name)
    sidecar = FEEDBACK_DIR / f"{name}.raters.json"
    if not sidecar.exists():
        raise FileNotFoundError(f"{sidecar} (the raters' true weights) is missing; remake the set with "
                                f"`rlphf-lab label-raters --disagreement {name.removeprefix('raters_')}`.")
    if n_prompts is not None:
        keep = set(sorted({p["prompt_id"] for p in pairs})[:n_prompts])
        pairs = [p for p in pairs if p["prompt_id"] in keep]
    return RaterSet(name, pairs, load_population(sidecar))


def response_rows(*pair_sets: list[dict]) -> list[dict]:
    """The distinct responses of some pair sets as candidate rows {id, instruction, response}, by id."""
    rows = {}
    for pairs in pair_sets:
        for p in pairs:
            rows[p["chosen_id"]] = {"id": p["chosen_id"], "instruction": p["instruction"], "response": p["chosen"]}
            rows[p["rejected_id"]] = {"id": p["rejected_id"], "instruction": p["instruction"],
                                      "response": p["rejected"]}
    return [rows[k] for k in sorted(rows)]


def pair_features(model, tokenizer, *pair_sets: list[dict], candidates: list[dict] | None = None,
                  name: str = "candidates") -> dict[str, torch.Tensor]:
    """Frozen backbone features phi(x, y) of every response in the pair sets, cached on disk.

    Rows are taken from the candidate pool (default data/candidates.jsonl) in file order, so when the
    pair sets use every candidate the cache is the one `rlphf-lab train-rewards` already wrote.
    """
    needed = {i for pairs in pair_sets for p in pairs for i in (p["chosen_id"], p["rejected_id"])}
    rows = [c for c in (candidates if candidates is not None else read_jsonl(CANDIDATES_FILE)) if c["id"] in needed]
    missing = needed - {c["id"] for c in rows}
    if missing:
        raise ValueError(f"{len(missing)} responses of the pair sets (e.g. {sorted(missing)[0]}) are not in the "
                         f"candidate pool; load the pairs and the candidates from the same data folder.")
    return cached_features(model, tokenizer, rows, name=name)


# --------------------------------------------------------------------------------------------
# Splitting raters: training raters, and held-out raters with an adaptation pool and a test set
# --------------------------------------------------------------------------------------------

@dataclass
class RaterSplit:
    train_pairs: list[dict]           # every pair of the training raters
    pool: dict[str, list[dict]]       # held-out rater -> the pairs we may ask them (adaptation)
    test: dict[str, list[dict]]       # held-out rater -> the pairs we measure accuracy on
    val_pool: dict[str, list[dict]] = field(default_factory=dict)   # validation raters, split the same
    val_test: dict[str, list[dict]] = field(default_factory=dict)   # way: for choosing hyperparameters

    @property
    def train_raters(self) -> list[str]:
        return sorted({p["rater"] for p in self.train_pairs})

    @property
    def heldout_raters(self) -> list[str]:
        return list(self.pool)


def split_raters(pairs: list[dict], n_heldout: int, n_test: int, min_pool: int, seed: int = 0,
                 n_val: int = 0) -> RaterSplit:
    """Hold out `n_heldout` raters and `n_val` validation raters (seeded draw); the others train.

    Only raters with at least min_pool + n_test pairs can be held out. Each held-out (and validation)
    rater's pairs are shuffled (seeded): the last `n_test` are their test set, the rest their pool.
    """
    by_rater: dict[str, list[dict]] = {}
    for p in pairs:
        by_rater.setdefault(p["rater"], []).append(p)
    eligible = sorted(r for r, ps in by_rater.items() if len(ps) >= min_pool + n_test)
    n_out = n_heldout + n_val
    if n_heldout < 1 or n_val < 0 or n_out > len(eligible) or n_out >= len(by_rater):
        raise ValueError(f"Cannot hold out {n_heldout} + {n_val} raters: {len(eligible)} of {len(by_rater)} raters "
                         f"have the {min_pool} + {n_test} pairs a held-out rater needs (pool + test), and at least "
                         f"one rater must stay for training. Lower n_heldout, n_val, max(ks) or n_test, "
                         f"or use more prompts.")
    rng = np.random.default_rng(seed)
    drawn = rng.choice(eligible, size=n_out, replace=False).tolist()
    split = RaterSplit([], {}, {})
    for r in sorted(drawn[:n_heldout]) + sorted(drawn[n_heldout:]):
        shuffled = [by_rater[r][i] for i in rng.permutation(len(by_rater[r]))]
        pool, test = (split.pool, split.test) if r in drawn[:n_heldout] else (split.val_pool, split.val_test)
        pool[r], test[r] = shuffled[:-n_test], shuffled[-n_test:]
    split.train_pairs = [p for p in pairs if p["rater"] not in drawn]
    return split


def _oriented(pairs: list[dict], features: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each pair as (a, b) in a label-free order (sorted ids) and y = 1 if the rater chose a.

    Returns emb_a (n, D), emb_b (n, D), y (n,). Ordering by id, not by the answer, means an active
    learner that looks at the pool cannot peek at which side won.
    """
    a_ids, b_ids, y = [], [], []
    for p in pairs:
        a, b = sorted((p["chosen_id"], p["rejected_id"]))
        a_ids.append(a)
        b_ids.append(b)
        y.append(1.0 if a == p["chosen_id"] else 0.0)
    missing = sorted({i for i in a_ids + b_ids if i not in features})
    if missing:
        raise ValueError(f"{len(missing)} responses have no features (e.g. {missing[0]}); compute them with "
                         f"pair_features(model, tokenizer, pairs) on the same pair set.")
    return (torch.stack([features[i] for i in a_ids]), torch.stack([features[i] for i in b_ids]),
            torch.tensor(y))


def _standardiser(features: dict, ids) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (D,) of the backbone features over `ids` (the training raters' responses)."""
    stack = torch.stack([features[i] for i in sorted(set(ids))])
    return stack.mean(0), stack.std(0).clamp(min=1e-6)


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


# --------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------

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


def relabel(pairs: list[dict], rater: Rater, dims: dict[str, np.ndarray], seed: int = 0) -> list[dict]:
    """The same pairs answered by another (simulated) rater: Bradley-Terry on <w, d(a) - d(b)> / T."""
    rng = np.random.default_rng(seed)
    out = []
    for p in pairs:
        a, b = p["chosen_id"], p["rejected_id"]
        # P(rater prefers a) = sigmoid(<w, d(a) - d(b)> / T)
        p_a = 1.0 / (1.0 + np.exp(-np.dot(rater.weights, dims[a] - dims[b]) / rater.temperature))
        keep = rng.random() < p_a
        chosen, rejected = (a, b) if keep else (b, a)
        texts = (p["chosen"], p["rejected"]) if keep else (p["rejected"], p["chosen"])
        out.append({**p, "rater": rater.rater_id, "chosen_id": chosen, "rejected_id": rejected,
                    "chosen": texts[0], "rejected": texts[1]})
    return out


@one_thread()
def new_user_curves(results: dict, user: Rater, features: dict, dims: dict[str, np.ndarray],
                    seeds: Sequence[int] = (0, 1, 2, 3, 4), strategies: Sequence[str] = ("random",)) -> dict:
    """Accuracy against k for a made-up new `user`, with everything `results` trained.

    The user answers the held-out raters' pool and test pairs (`relabel`). Returns {"ks": ks, curve
    name: {k: accuracy}}, the format `plots.plot_adaptation_curves` reads; curve "oracle" is the
    accuracy of the user's own true weights on their noisy test labels, the best a model can do.
    """
    split = results["split"]
    pool = relabel([p for r in split.heldout_raters for p in split.pool[r]], user, dims, seed=0)
    test = relabel([p for r in split.heldout_raters for p in split.test[r]], user, dims, seed=1)
    res = evaluate_new_rater(results["trained"], pool, test, features, results["ks"], seeds, strategies)
    res.pop("w")
    # the best any model can do on these noisy labels: predict with the user's true weights
    margin = np.array([np.dot(user.weights, dims[p["chosen_id"]] - dims[p["rejected_id"]]) for p in test])
    res["oracle"] = dict.fromkeys(results["ks"], margin_accuracy(margin))
    return {"ks": results["ks"], **res}


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


# --------------------------------------------------------------------------------------------
# Reading the learned weights back in the three preference dimensions
# --------------------------------------------------------------------------------------------

def spread_table(results: dict, curve: str = "rfm") -> list[dict]:
    """How much one held-out rater's accuracy varies at each k: worst, median and best rater."""
    rows = []
    for k in results["ks"]:
        accs = [r[f"{curve} k={k}"] for r in results["per_rater"]]
        rows.append({"k": k, "worst rater": round(min(accs), 3), "median": round(float(np.median(accs)), 3),
                     "best rater": round(max(accs), 3)})
    return rows


def population_table(rater_sets: list[RaterSet], n_show: int = 3) -> list[dict]:
    """A few raters' true weights per population, and the share of raters whose sign on each dimension
    differs from the population's mean preference (that is what "disagreement" does)."""
    rows = []
    for rs in rater_sets:
        w = np.array([r.weights for r in rs.raters])                            # (n_raters, 3)
        flipped = (np.sign(w) != np.sign(np.asarray(MEAN_PREFERENCE))).mean(0)
        for r in rs.raters[:n_show]:
            rows.append({"population": rs.name, "rater": r.rater_id,
                         **{f"{d} {DIM_LABELS[d]}": round(v, 2) for d, v in zip(DIMS, r.weights)}})
        rows.append({"population": rs.name, "rater": f"share of all {len(w)} with the sign flipped",
                     **{f"{d} {DIM_LABELS[d]}": f"{f:.0%}" for d, f in zip(DIMS, flipped)}})
    return rows


def similarity_to_mean(raters: list[Rater], mean=MEAN_PREFERENCE) -> dict[str, float]:
    """Cosine similarity of each rater's true weights to the population's mean preference."""
    m = np.asarray(mean, dtype=float)
    return {r.rater_id: float(np.dot(r.weights, m) / (np.linalg.norm(r.weights) * np.linalg.norm(m) + 1e-12))
            for r in raters}


def response_dims(pairs: list[dict]) -> dict[str, np.ndarray]:
    """The annotators' dimension scores (d_P1, d_P2, d_P3) of every response in `pairs`: {id: (3,)}."""
    return {row["id"]: np.array([dimension_scores(row["response"])[d] for d in DIMS])
            for row in response_rows(pairs)}


@torch.no_grad()
def implied_dimension_weights(model, w, features: dict[str, torch.Tensor], dims: dict[str, np.ndarray]) -> np.ndarray:
    """What a rater's RFM reward r(y) = <phi_theta(y), w> cares about, in the three dimensions.

    Least squares of r(y) on (1, d_P1(y), d_P2(y), d_P3(y)) over the responses in `dims`; returns the
    three slopes (3,). Comparable with a rater's true weights up to scale.
    """
    ids = sorted(dims)
    reward = (model.features(torch.stack([features[i] for i in ids])) @ torch.as_tensor(w).float()).numpy()
    design = np.column_stack([np.ones(len(ids)), np.stack([dims[i] for i in ids])])   # (n, 4)
    coef, *_ = np.linalg.lstsq(design, reward, rcond=None)
    return coef[1:]


def recovered_vs_true(results: dict, rater_set: RaterSet, features: dict, dims: dict) -> tuple[np.ndarray, np.ndarray]:
    """(true, recovered), each (n_heldout, 3), unit length per row: held-out raters' true weights and
    the dimension weights implied by their adapted RFM weights (after max(ks) pairs)."""
    true = {r.rater_id: np.asarray(r.weights) for r in rater_set.raters}
    ids = list(results["adapted"])
    t = np.stack([true[r] for r in ids])
    model = results["trained"].model
    rec = np.stack([implied_dimension_weights(model, results["adapted"][r], features, dims) for r in ids])
    unit = lambda a: a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)  # noqa: E731
    return unit(t), unit(rec)


# --------------------------------------------------------------------------------------------
# "Adapt to you": pairs to label, a stand-in rater for headless runs, and your fitted weights
# --------------------------------------------------------------------------------------------

def pairs_for_you(pairs: list[dict], n: int = 20, seed: int = 0) -> list[dict]:
    """n pairs for you to judge (no preference prompt): distinct prompts, shown in a seeded order.

    They come from a multi-rater set, stripped of whichever rater labelled them.
    """
    by_prompt: dict[str, dict] = {}
    for p in pairs:
        by_prompt.setdefault(p["prompt_id"], p)
    prompts = sorted(by_prompt)
    if not prompts:
        raise ValueError("No pairs to choose from: load a multi-rater set first (load_rater_set('raters_low')).")
    rng = np.random.default_rng(seed)
    out = []
    for k, i in enumerate(rng.permutation(len(prompts))[:n]):
        p = by_prompt[prompts[i]]
        out.append({"pair_id": f"you-{p['prompt_id']}-{k:03d}", "prompt_id": p["prompt_id"], "split": p.get("split"),
                    "instruction": p["instruction"], "preference": None, "rater": None,
                    "chosen": p["chosen"], "rejected": p["rejected"],
                    "chosen_id": p["chosen_id"], "rejected_id": p["rejected_id"]})
    return out


def click_as(widget, rater: Rater, n: int) -> int:
    """Let a simulated `rater` press the widget's A / B buttons on the next n pairs (for headless
    runs, or to see what a known user's clicks give). Returns the number of clicks made."""
    from ..widgets import shown_responses

    clicks = 0
    for _ in range(n):
        if widget.current is None:
            break
        (_, text_a), (_, text_b) = shown_responses(widget.current, widget.seed)
        u_a, u_b = (rater_utility(rater, dimension_scores(t)) for t in (text_a, text_b))
        widget.buttons["A" if u_a >= u_b else "B"].click()
        clicks += 1
    return clicks


@dataclass
class UserWeights:
    weights: dict[str, float]   # {"P1": w, "P2": w, "P3": w}: + likes expert / informative / friendly answers
    n_pairs: int                # A/B answers used (ties and skips carry no choice)
    accuracy: float             # share of those answers that the fitted weights reproduce

    def __str__(self) -> str:
        parts = ", ".join(f"{DIM_LABELS[d]} {w:+.2f}" for d, w in self.weights.items())
        return f"your weights from {self.n_pairs} answers: {parts} (they reproduce {self.accuracy:.0%} of your answers)"


def dimension_differences(records: list[dict], dims: dict[str, np.ndarray] | None = None) -> torch.Tensor:
    """d(chosen) - d(rejected) for each A/B record: (k, 3), columns P1, P2, P3.

    dims: precomputed {response id: (3,)} (`response_dims`); otherwise scored from the texts.
    """
    rows = []
    for r in records:
        if dims is not None and r.get("chosen_id") in dims and r.get("rejected_id") in dims:
            rows.append(dims[r["chosen_id"]] - dims[r["rejected_id"]])
        else:
            c, j = dimension_scores(r["chosen"]), dimension_scores(r["rejected"])
            rows.append(np.array([c[d] - j[d] for d in DIMS]))
    return torch.tensor(np.array(rows), dtype=torch.float32).reshape(len(rows), len(DIMS))


def fit_my_weights(records_or_store, dims: dict[str, np.ndarray] | None = None, *, rater: str | None = None,
                   l2: float = 1.0) -> UserWeights:
    """Your weight vector over the three preference dimensions, from your clicks.

    records_or_store: a FeedbackStore, its path, or its records (the FeedbackWidget writes them);
    rater: keep only this rater's records. The model is the raters' own:
        P(you prefer a over b) = sigmoid(<w, d(a) - d(b)>),  d = (d_P1, d_P2, d_P3) annotator scores,
    fitted by l2-regularised logistic regression (`rfm.fit_user_weights`) on chosen-minus-rejected rows.
    """
    if isinstance(records_or_store, (str, Path)):
        records_or_store = FeedbackStore(records_or_store, must_exist=True)     # a mistyped path is an error
    records = records_or_store.records() if isinstance(records_or_store, FeedbackStore) else list(records_or_store)
    answered = [r for r in records if r.get("label") in ("A", "B") and r.get("chosen") and r.get("rejected")
                and (rater is None or r.get("rater") == rater)]
    if not answered:
        raise ValueError(f"No A/B answers{f' from rater {rater!r}' if rater else ''} in {len(records)} records: "
                         f"label some pairs in the widget above first (ties and skips carry no choice).")
    x = dimension_differences(answered, dims)                               # (k, 3)
    # w = argmin_w  sum_j -log sigmoid(<d(chosen_j) - d(rejected_j), w>) + l2/2 ||w||^2
    w = fit_user_weights(x, labels=None, l2=l2)
    accuracy = float(((x @ w) > 0).float().mean())
    return UserWeights({d: float(v) for d, v in zip(DIMS, w)}, len(answered), accuracy)


__all__ = ["DIM_LABELS", "CURVES", "RaterSet", "load_rater_set", "response_rows", "pair_features",
           "RaterSplit", "split_raters", "Trained", "evaluate_new_rater", "rfm_experiment", "relabel",
           "new_user_curves", "L2_GRID", "choose_l2", "curve_table", "spread_table", "population_table",
           "similarity_to_mean", "response_dims", "implied_dimension_weights", "recovered_vs_true",
           "pairs_for_you", "click_as", "UserWeights", "dimension_differences", "fit_my_weights"]
