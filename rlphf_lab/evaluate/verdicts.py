"""Judging: one criterion at a time, against the vanilla answer, order randomised, ties allowed.

    for every answer y of a method to prompt x, combination c and side s of c:
        verdict = "tie"  if |score_s(y, x) - score_s(y_vanilla, x)| <= tie_margin
                  "win"  if score_s(y, x) > score_s(y_vanilla, x),   "loss" otherwise

with the simulated annotators as score_s (`feedback.annotators.score_all`).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from ..config import DATA_DIR
from ..data import read_jsonl
from ..feedback import annotators
from ..feedback.pairs import TIE_MARGIN   # the annotators' tie margin, as for the shipped pair labels
from ..preferences import combinations, parse_combination
from .methods import BASELINE


def judge_responses(rows: list[dict], *, combos: Sequence[str] | None = None, tie_margin: float = TIE_MARGIN,
                    seed: int = 0) -> list[dict]:
    """Verdicts of the simulated annotators: for every (prompt, combination, method, side of the
    combination), the method's answer against the vanilla answer.

    The answers are shown in a random order (recorded in `order`); the annotators are symmetric, so
    the order cannot change their verdict, but the same records feed the AI judge, which is not.
    Returns rows {prompt_id, combination, method, side, order, score_method, score_vanilla, verdict}
    with verdict in {"win", "tie", "loss"} from the method's point of view.
    """
    combos = list(combos or combinations())
    vanilla = {r["prompt_id"]: r for r in rows if r["method"] == BASELINE}
    if not vanilla:
        raise ValueError("No vanilla answers in the rows: generate_responses always adds them; pass its output.")
    cache: dict[tuple[str, str], dict] = {}

    def scores(row: dict) -> dict:
        # the annotators read the instruction too (relevance, prompt echo)
        key = (row["instruction"], row["response"])
        if key not in cache:
            cache[key] = annotators.score_all(row["response"], row["instruction"])
        return cache[key]

    rng = random.Random(seed)
    out = []
    for r in rows:
        if r["method"] == BASELINE:
            continue
        base = vanilla[r["prompt_id"]]
        for combo in ([r["combination"]] if r["combination"] else combos):
            for p in parse_combination(combo):
                s_m, s_v = scores(r)[p.code], scores(base)[p.code]
                verdict = "tie" if abs(s_m - s_v) <= tie_margin else ("win" if s_m > s_v else "loss")
                out.append({"prompt_id": r["prompt_id"], "combination": combo, "method": r["method"], "side": p.code,
                            "order": "method-first" if rng.random() < 0.5 else "vanilla-first",
                            "score_method": round(s_m, 4), "score_vanilla": round(s_v, 4), "verdict": verdict})
    return out


def shipped_verdicts(folder: str | Path | None = None) -> list[dict]:
    """The verdicts of an evaluation folder (default data/evaluation): its verdicts.jsonl when
    `rlphf-lab evaluate` wrote one there, else judged again from its responses.jsonl with
    `judge_responses` (the same function and seed, so the same verdicts; verdicts.jsonl is not
    kept in git, 7 MB). About ten seconds the first time in a process; cached after that."""
    folder = Path(folder) if folder is not None else DATA_DIR / "evaluation"
    key = str(folder.resolve())
    if key not in _VERDICTS:
        file = folder / "verdicts.jsonl"
        _VERDICTS[key] = read_jsonl(file) if file.exists() else judge_responses(read_jsonl(folder / "responses.jsonl"))
    return [dict(v) for v in _VERDICTS[key]]


_VERDICTS: dict[str, list[dict]] = {}
