"""Mean score per method and side, with the annotators or with the reward models PPO optimised as
judges, and mean length in words. For side s, a method's answers count for the combinations that
contain s (all its answers when it ignores the combination):

    mean_s(method) = mean over those answers y of score_s(y)
"""
from __future__ import annotations

import numpy as np
import torch

from ..feedback import annotators
from .methods import SIDE_ADAPTERS


def _side_means(rows: list[dict], scores: list[dict]) -> list[dict]:
    """Per method: mean of scores[i][side] over its answers for combinations containing the side (or
    all its answers when it ignores the combination), plus mean length in words."""
    out = []
    for m in dict.fromkeys(r["method"] for r in rows):
        mine = [(r, sc) for r, sc in zip(rows, scores) if r["method"] == m]
        row = {"method": m, "words": float(np.mean([len(r["response"].split()) for r, _ in mine]))}
        for s in SIDE_ADAPTERS:
            vals = [sc[s] for r, sc in mine if not r["combination"] or s in r["combination"].split("+")]
            row[s] = float(np.mean(vals)) if vals else float("nan")
        out.append(row)
    return out


def mean_annotator_scores(rows: list[dict]) -> list[dict]:
    """Mean annotator score of every method on every side (its answers for combinations containing the
    side, or all its answers when it ignores the combination), plus mean length in words."""
    return _side_means(rows, [annotators.score_all(r["response"], r["instruction"]) for r in rows])


def mean_reward_scores(rows: list[dict], scorer, batch_size: int = 16) -> list[dict]:
    """The same table with the reward models PPO optimised (`rewards.load_reward_scorer()`) as judges.

    Read next to `mean_annotator_scores`: reward up and annotator flat is reward hacking; both flat means the
    policy did not move (too little training), whatever the noisy per-batch rewards of metrics.csv say.
    scorer(sides, instructions, responses) -> (batch, 6) standardised rewards.
    """
    scores = []
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            batch = rows[i:i + batch_size]
            r = scorer(list(SIDE_ADAPTERS), [x["instruction"] for x in batch], [x["response"] for x in batch])
            scores += [dict(zip(SIDE_ADAPTERS, v)) for v in r.float().tolist()]       # (batch, 6) -> dicts
    return _side_means(rows, scores)
