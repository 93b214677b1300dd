"""Win rates against the vanilla model, with bootstrap confidence intervals over prompts.

    win rate of a method on c = mean over prompts and c's three sides of 1 (win), 1/2 (tie), 0 (loss)

The interval resamples prompts (not verdicts): a prompt's verdicts stay together.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..preferences import combinations
from .methods import SIDE_ADAPTERS

POINTS = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def win_rate(verdicts: list[dict]) -> float:
    """Mean of 1 (win), 1/2 (tie), 0 (loss)."""
    return float(np.mean([POINTS[v["verdict"]] for v in verdicts])) if verdicts else float("nan")


def bootstrap_ci(verdicts: list[dict], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap over prompts: resample prompt ids with replacement, recompute the win rate."""
    by_prompt: dict[str, list[float]] = {}
    for v in verdicts:
        by_prompt.setdefault(v["prompt_id"], []).append(POINTS[v["verdict"]])
    if not by_prompt:
        return float("nan"), float("nan")
    sums = np.array([sum(x) for x in by_prompt.values()])
    counts = np.array([len(x) for x in by_prompt.values()])
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(sums), size=(n_boot, len(sums)))
    rates = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return float(np.quantile(rates, alpha / 2)), float(np.quantile(rates, 1 - alpha / 2))


def paired_difference(verdicts: list[dict], method: str, other: str, n_boot: int = 1000, alpha: float = 0.05,
                      seed: int = 0) -> dict:
    """Does `method` beat `other`? Their win-rate difference with a paired bootstrap over prompts.

    Both methods were judged on the same prompts, so resampling a prompt keeps its two scores together:

        diff = mean_x [ w_method(x) - w_other(x) ],   w_m(x) = mean of 1 / 1/2 / 0 over x's verdicts of m

    The difference is "clear" when the interval excludes 0.
    """
    per_prompt = {m: {} for m in (method, other)}
    for v in verdicts:
        if v["method"] in per_prompt:
            per_prompt[v["method"]].setdefault(v["prompt_id"], []).append(POINTS[v["verdict"]])
    ids = sorted(set(per_prompt[method]) & set(per_prompt[other]))
    if not ids:
        raise ValueError(f"No prompt has verdicts for both {method!r} and {other!r}; judge both methods first.")
    # d: (prompts,) per-prompt difference of win rates
    d = np.array([np.mean(per_prompt[method][i]) - np.mean(per_prompt[other][i]) for i in ids])
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(len(d), size=(n_boot, len(d)))].mean(axis=1)
    low, high = float(np.quantile(boots, alpha / 2)), float(np.quantile(boots, 1 - alpha / 2))
    return {"method": method, "other": other, "prompts": len(ids), "difference": float(d.mean()),
            "ci_low": low, "ci_high": high, "clear": bool(low > 0 or high < 0)}


def win_rate_table(verdicts: list[dict], methods: Sequence[str] | None = None, combos: Sequence[str] | None = None,
                   n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per method: win rate per combination and on average, with a bootstrap CI for the average.

    Also the win rate per dimension side (how often the method beats vanilla on 'concise', ...)."""
    combos = list(combos or combinations())
    methods = list(methods or dict.fromkeys(v["method"] for v in verdicts))
    table = []
    for m in methods:
        mine = [v for v in verdicts if v["method"] == m]
        if not mine:
            continue
        row = {"method": m}
        for c in combos:
            row[c] = win_rate([v for v in mine if v["combination"] == c])
        row["average"] = win_rate(mine)
        row["ci_low"], row["ci_high"] = bootstrap_ci(mine, n_boot=n_boot, seed=seed)
        row["wins"] = sum(v["verdict"] == "win" for v in mine)
        row["ties"] = sum(v["verdict"] == "tie" for v in mine)
        row["losses"] = sum(v["verdict"] == "loss" for v in mine)
        table.append(row)
    return table


def side_table(verdicts: list[dict], methods: Sequence[str] | None = None) -> list[dict]:
    """Win rate per method and side (averaged over the combinations that contain the side)."""
    methods = list(methods or dict.fromkeys(v["method"] for v in verdicts))
    rows = []
    for m in methods:
        row = {"method": m}
        for s in SIDE_ADAPTERS:
            row[s] = win_rate([v for v in verdicts if v["method"] == m and v["side"] == s])
        rows.append(row)
    return rows
