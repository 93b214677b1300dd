"""A made-up new user: the held-out raters' pairs answered again by a simulated rater with chosen
weights w, and the accuracy against k of every method on their labels:

    P(user prefers a over b) = sigmoid(<w, d(a) - d(b)> / T)        d = annotator dimension scores
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...feedback.raters import Rater
from ..losses import margin_accuracy
from .experiment import evaluate_new_rater, one_thread


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
