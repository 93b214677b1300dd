"""Everything behind one annotator's score, for a student to check by hand: `explain(side, y, x)`.

    score = sign * d_dim - penalty,   d_dim from the standardised signals, penalty = PENALTY * max part
"""
from __future__ import annotations

from ...preferences import get_preference
from .checks import PENALTY_SIGNALS
from .dimensions import DIM_SIGNALS, _dims_from_signals, _standardise
from .penalty import PENALTY, penalty_parts
from .sides import GENERAL, GENERAL_WEIGHTS, SIGN, _check_side, raw_signals, side_scores


def explain(side: str, response: str, instruction: str | None = None) -> dict:
    """Everything behind score(side, response, instruction): raw and standardised signals, every
    degeneracy check (its signal, its part of the penalty), the penalty and the score."""
    side = _check_side(side)
    signals = raw_signals(response, instruction)
    z = _standardise(signals)
    dims = _dims_from_signals(signals)
    parts = penalty_parts(signals)
    penalty = PENALTY * max(parts.values())
    if side == GENERAL:
        own = [k for d in GENERAL_WEIGHTS for k in DIM_SIGNALS[d]]
        dim, sign, dim_score = "+".join(GENERAL_WEIGHTS), 1.0, side_scores(dims, 0.0)[GENERAL]
        weights = {k: round(w * DIM_SIGNALS[d][k], 3) for d, w in GENERAL_WEIGHTS.items() for k in DIM_SIGNALS[d]}
        name = "generally better (RLHF baseline)"
    else:
        dim = side[:2]
        own, sign, dim_score = list(DIM_SIGNALS[dim]), SIGN[side], dims[dim]
        weights = {k: round(w, 3) for k, w in DIM_SIGNALS[dim].items()}
        name = get_preference(side).name
    rounded = lambda v: None if v is None else round(v, 4)      # noqa: E731
    return {
        "side": side,
        "name": name,
        "dimension": dim,
        "signals": {k: round(signals[k], 4) for k in own},
        "weights": weights,
        "standardised": {k: round(z[k], 3) for k in own},
        "dimension_score": dim_score,
        "sign": sign,
        "n_words": int(signals["n_words"]),
        "distinct_trigram_frac": round(signals["distinct_trigram_frac"], 3),
        "penalty_signals": {k: rounded(signals[k]) for k in PENALTY_SIGNALS},
        "penalty_parts": {k: round(v, 3) for k, v in parts.items()},
        "penalty_reason": max(parts, key=parts.get) if penalty > 0 else None,
        "instruction_checks": instruction is not None and bool(instruction.strip()),
        "penalty": penalty,
        "score": sign * dim_score - penalty,
    }
