"""Reading weights in the three preference dimensions: the raters' true weights per population, and
what an adapted RFM reward r(y) = <phi_theta(y), w> cares about, by least squares

    r(y) ~ c_0 + c_P1 d_P1(y) + c_P2 d_P2(y) + c_P3 d_P3(y)       -> implied weights (c_P1, c_P2, c_P3)

compared with the rater's true weights up to scale (`recovered_vs_true`).
"""
from __future__ import annotations

import numpy as np
import torch

from ...feedback.annotators import DIMS
from ...feedback.raters import MEAN_PREFERENCE, Rater
from ...preferences import DIMENSIONS
from .rater_sets import RaterSet

# What a positive weight on each annotator dimension score means.
DIM_LABELS = DIMENSIONS        # the dimensions' names: one definition, in rlphf_lab.preferences


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
