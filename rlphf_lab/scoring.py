"""One protocol for every scorer in the lab:

    scorer(sides, instructions, responses) -> scores, a tensor (batch, len(sides))

row b scores responses[b] as an answer to instructions[b] (the plain instruction, never the
preference prompt), column k for side sides[k]. The simulated annotators
(`feedback.annotators.scorer`), the trained reward models (`rewards.RewardScorer`, from
`load_reward_scorer()`) and the toy reward (`rl.toy_length_score_fn`) all speak it, so PPO's
objectives, the held-out judge, the evaluation, the Pareto fronts, the merge comparison and the
SoupWidget call any of them the same way.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

Scorer = Callable[[Sequence[str], list[str], list[str]], torch.Tensor]


def score_rows(scorer: Scorer, sides: Sequence[str], instructions: Sequence[str],
               responses: Sequence[str]) -> list[dict[str, float]]:
    """Each response's scores as {side: score}: the form tables and widgets show."""
    sides, responses = list(sides), list(responses)
    scores = torch.as_tensor(scorer(sides, list(instructions), responses))
    if tuple(scores.shape) != (len(responses), len(sides)):
        raise ValueError(f"The scorer returned shape {tuple(scores.shape)} for {len(responses)} responses and "
                         f"{len(sides)} sides; a scorer returns (batch, len(sides)) (rlphf_lab.scoring).")
    return [dict(zip(sides, row)) for row in scores.tolist()]
