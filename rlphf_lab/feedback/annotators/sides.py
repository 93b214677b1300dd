"""The simulated annotators themselves: one per preference side, and the "generally better" one.

The two sides of a dimension are the same score with opposite signs, minus the shared penalty:

    score("P1B", y) = +d_P1(y) - penalty(y)   (knowledgeable)   score("P1A", y) = -d_P1(y) - penalty(y)   (elementary)
    score("P2B", y) = +d_P2(y) - penalty(y)   (informative)     score("P2A", y) = -d_P2(y) - penalty(y)   (concise)
    score("P3A", y) = +d_P3(y) - penalty(y)   (friendly)        score("P3B", y) = -d_P3(y) - penalty(y)   (unfriendly)
    score("general", y) = 0.5 d_P2(y) + 0.5 d_P3(y) - penalty(y)                 (the RLHF baseline's rater)

d_dim comes from `dimensions`, the penalty from `penalty`; `score(side, y, x)` also checks the answer
against its instruction x when one is given.
"""
from __future__ import annotations

from ...preferences import SIDES, get_preference
from .checks import check_signals
from .dimensions import _dims_from_signals, dimension_signals
from .penalty import degeneracy_penalty

# The "generally better" rater behind the RLHF baseline. The paper asked GPT-4 which answer is better
# with no stated preference; such judges are known to favour longer and warmer answers, so ours is
# half informativeness, half friendliness (and indifferent to expertise):
#     score("general", y) = 0.5 d_P2(y) + 0.5 d_P3(y) - penalty(y)
GENERAL = "general"
GENERAL_WEIGHTS = {"P2": 0.5, "P3": 0.5}
SIGN = {"P1A": -1.0, "P1B": +1.0, "P2A": -1.0, "P2B": +1.0, "P3A": +1.0, "P3B": -1.0}


def raw_signals(response: str, instruction: str | None = None) -> dict[str, float]:
    """Every measured signal of one response, before standardisation (see SIGNAL_NORMS), and the
    signals of the degeneracy checks (`penalty_parts`; those against the instruction are None without one)."""
    return {**dimension_signals(response), **check_signals(response, instruction)}


def _check_side(side: str) -> str:
    if side == GENERAL:
        return side
    code = get_preference(side).code          # ValueError for unknown codes
    if code not in SIGN:
        raise ValueError(f"No simulated annotator for {code} ({get_preference(code).name}): sassiness and sarcasm "
                         f"have no simple measurable signal. Use one of {', '.join(SIDES)}, or the AI judge "
                         f"(rlphf_lab.feedback.judge), which takes any side.")
    return code


def score(side: str, response: str, instruction: str | None = None) -> float:
    """The simulated annotator of one side (or of GENERAL): higher is better for that side.

    score(side, y) = sign(side) * d_dim(y) - penalty(y). The dimension scores judge the response
    alone; the penalty also checks it against `instruction` (off-topic, prompt echo, restating the
    question) when one is given, and skips those checks when it is None.
    """
    side = _check_side(side)
    signals = raw_signals(response, instruction)
    return side_scores(_dims_from_signals(signals), degeneracy_penalty(signals))[side]


def side_scores(dims: dict[str, float], penalty: float) -> dict[str, float]:
    """Every annotator's score from the dimension scores and the penalty: the six sides and GENERAL.

        score(side)    = sign(side) * d_dim - penalty
        score(general) = sum_dim GENERAL_WEIGHTS[dim] * d_dim - penalty
    """
    out = {side: SIGN[side] * dims[side[:2]] - penalty for side in SIDES}
    out[GENERAL] = sum(w * dims[d] for d, w in GENERAL_WEIGHTS.items()) - penalty
    return out


def score_all(response: str, instruction: str | None = None) -> dict[str, float]:
    """All six sides' scores for one response (one pass over the text); `instruction` as in `score`."""
    signals = raw_signals(response, instruction)
    dims, penalty = _dims_from_signals(signals), degeneracy_penalty(signals)
    return {side: SIGN[side] * dims[side[:2]] - penalty for side in SIDES}


def scorer(sides, instructions, responses):
    """The simulated annotators in the lab's scorer protocol (rlphf_lab.scoring): a float64 tensor
    (batch, len(sides)), row b = every requested side's score of (instructions[b], responses[b]),
    the same numbers as `score` (one pass over each text for all sides). GENERAL may be asked for."""
    import torch

    codes = [_check_side(s) for s in sides]
    if len(instructions) != len(responses):
        raise ValueError(f"{len(instructions)} instructions but {len(responses)} responses; give one instruction per response.")
    rows = []
    for instruction, response in zip(instructions, responses):
        signals = raw_signals(response, instruction)
        scores = side_scores(_dims_from_signals(signals), degeneracy_penalty(signals))
        rows.append([scores[code] for code in codes])
    return torch.tensor(rows, dtype=torch.float64).reshape(len(responses), len(codes))
