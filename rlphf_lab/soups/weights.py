"""From preferences to soup weights: a combination, slider positions per dimension, and back.

    combination_weights("P1A+P2B+P3A")            -> {"P1A": 1, "P2B": 1, "P3A": 1}   (1/3 each once normalised)
    dimension_weights_to_sides({"P2": 0.8})       -> {"P2A": 0.2, "P2B": 0.8}          (a slider)
    nearest_combination({"P2A": .3, "P2B": .7})   -> "P2B"
    user_soup_weights({"P1": -2, "P2": 3, "P3": 2})  -> a user's fitted weights (notebook 03) as soup weights
"""
from __future__ import annotations

import numpy as np

from ..preferences import DIMENSIONS, get_preference, parse_combination


def combination_weights(spec) -> dict[str, float]:
    """One weight per side of a combination: "P1A+P2B+P3A" -> {"P1A": 1, "P2B": 1, "P3A": 1}.

    Unnormalised; `set_soup_weights` (normalize=True) turns it into 1/3 each, the paper's soup.
    """
    return {p.code: 1.0 for p in parse_combination(spec)}


def dimension_weights_to_sides(positions: dict[str, float]) -> dict[str, float]:
    """Slider positions per dimension -> weights per side.

    Each dimension ("P2": informativeness) is a slider from side A (0.0, concise) to side B
    (1.0, informative); position t gives side A weight 1 - t and side B weight t:
        {"P1": 0.2, "P2": 0.9} -> {"P1A": 0.8, "P1B": 0.2, "P2A": 0.1, "P2B": 0.9}
    Every dimension adds up to 1, so after normalisation each dimension counts equally and the
    corners (0 or 1 everywhere) are the paper's combination soups.
    """
    out = {}
    for dim, t in positions.items():
        if dim not in DIMENSIONS:
            raise ValueError(f"Unknown dimension {dim!r}; use one of {list(DIMENSIONS)} ({DIMENSIONS}).")
        t = float(t)
        if not (0.0 <= t <= 1.0):   # also false for NaN
            raise ValueError(f"Position {t} for {dim} is outside [0, 1]; 0 = side {dim}A, 1 = side {dim}B.")
        out[f"{dim}A"] = 1.0 - t
        out[f"{dim}B"] = t
    return out


def nearest_combination(weights: dict[str, float]) -> str:
    """The combination closest to a soup: per dimension, the side with the larger weight
    (side A on a tie; a dimension with no weight is left out). {"P2A": .3, "P2B": .7} -> "P2B"."""
    best: dict[str, tuple[float, str]] = {}
    for code, w in weights.items():
        p = get_preference(code)
        if w > 0 and (p.dimension not in best or w > best[p.dimension][0]):
            best[p.dimension] = (w, p.code)
    if not best:
        raise ValueError(f"No positive weight in {weights}: no combination is near this soup.")
    return "+".join(code for _, code in sorted((d, c) for d, (_, c) in best.items()))


def as_weights(spec) -> dict[str, float]:
    """A weight dict as floats, or the weights of an adapter ("P2A") or combination ("P1A+P2B")."""
    if isinstance(spec, dict):
        return {k: float(v) for k, v in spec.items()}
    return combination_weights(spec)          # "P2A" or "P1A+P2B"


def user_soup_weights(dimension_weights: dict[str, float], sharpness: float = 1.0) -> dict[str, float]:
    """A user's weights over the dimensions (notebook 03's fit_my_weights: + = expert, informative,
    friendly) -> soup weights per side, through one slider position per dimension:

        t_dim = sigmoid(sharpness * sign_dim * w_dim),  sign = +1 for P1 (->P1B) and P2 (->P2B), -1 for P3 (->P3B)
        weights = dimension_weights_to_sides(t)       (side A gets 1 - t, side B gets t)
    """
    sign = {"P1": 1.0, "P2": 1.0, "P3": -1.0}
    unknown = [d for d in dimension_weights if d not in sign]
    if unknown:
        raise ValueError(f"Unknown dimensions {unknown}; expected weights for P1, P2, P3 (fit_my_weights(...).weights).")
    positions = {d: float(1.0 / (1.0 + np.exp(-sharpness * sign[d] * w))) for d, w in dimension_weights.items()}
    return dimension_weights_to_sides(positions)
