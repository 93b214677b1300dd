"""Splitting raters: training raters, and held-out (and validation) raters, each with an adaptation
pool (the pairs we may ask them) and a test set (the pairs we measure accuracy on); and each pair as
a label-free (a, b, y) for the learners.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


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
