"""The data of a personalisation experiment: a multi-rater pair set with its raters' true weights,
the distinct responses of its pairs, their frozen backbone features phi(x, y) and their annotator
dimension scores d(y) = (d_P1, d_P2, d_P3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...data import CANDIDATES_FILE, FEEDBACK_DIR, load_pairs, read_jsonl
from ...feedback.annotators import DIMS, dimension_scores
from ...feedback.raters import Rater, load_population
from ..features import cached_features


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


def response_dims(pairs: list[dict]) -> dict[str, np.ndarray]:
    """The annotators' dimension scores (d_P1, d_P2, d_P3) of every response in `pairs`: {id: (3,)}."""
    return {row["id"]: np.array([dimension_scores(row["response"])[d] for d in DIMS])
            for row in response_rows(pairs)}
