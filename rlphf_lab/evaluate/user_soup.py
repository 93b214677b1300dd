"""A user's soup: the dimension weights fitted from their clicks (notebook 03's fit_my_weights) ->
soup weights per side, through one slider position per dimension:

    t_dim = sigmoid(sharpness * sign_dim * w_dim),   side A gets 1 - t_dim, side B gets t_dim
"""
from __future__ import annotations

import numpy as np


def user_soup_weights(dimension_weights: dict[str, float], sharpness: float = 1.0) -> dict[str, float]:
    """A user's weights over the dimensions (notebook 03's fit_my_weights: + = expert, informative,
    friendly) -> soup weights per side, through one slider position per dimension:

        t_dim = sigmoid(sharpness * sign_dim * w_dim),  sign = +1 for P1 (->P1B) and P2 (->P2B), -1 for P3 (->P3B)
        weights = dimension_weights_to_sides(t)       (side A gets 1 - t, side B gets t)
    """
    from ..soups import dimension_weights_to_sides

    sign = {"P1": 1.0, "P2": 1.0, "P3": -1.0}
    unknown = [d for d in dimension_weights if d not in sign]
    if unknown:
        raise ValueError(f"Unknown dimensions {unknown}; expected weights for P1, P2, P3 (fit_my_weights(...).weights).")
    positions = {d: float(1.0 / (1.0 + np.exp(-sharpness * sign[d] * w))) for d, w in dimension_weights.items()}
    return dimension_weights_to_sides(positions)
