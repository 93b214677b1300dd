"""All the tables of one evaluation from the answers, and the README-ready markdown of them.

    summary = evaluation_tables(rows)            verdicts, win_rates, soup_vs_others, win_rates_by_side, mean_scores
    text    = report_markdown(summary)           one markdown section per table (REPORT_SECTIONS)
"""
from __future__ import annotations

from ..tables import markdown_table
from .mean_scores import mean_annotator_scores
from .methods import METHODS
from .verdicts import judge_responses
from .win_rates import paired_difference, side_table, win_rate_table


def evaluation_tables(rows: list[dict], *, seed: int = 0, n_boot: int = 1000) -> dict:
    """All the tables of one evaluation from the answers (`generate_responses` rows):

        verdicts        judge_responses(rows)
        win_rates       win_rate_table over the judged METHODS, with bootstrap CIs
        soup_vs_others  paired_difference(soup, m) for every other judged method
        dpo_soup_vs_others  the same for the soup of DPO side adapters (rl/dpo.py)
        win_rates_by_side  side_table;  mean_scores: mean_annotator_scores (per side, and length)
    """
    verdicts = judge_responses(rows, seed=seed)
    judged = [m for m in METHODS if any(v["method"] == m for v in verdicts)]
    return {"verdicts": verdicts,
            "win_rates": win_rate_table(verdicts, methods=judged, n_boot=n_boot, seed=seed),
            "soup_vs_others": _versus(verdicts, "soup", judged, n_boot, seed),
            "dpo_soup_vs_others": _versus(verdicts, "dpo-soup", judged, n_boot, seed),
            "win_rates_by_side": side_table(verdicts),
            "mean_scores": mean_annotator_scores(rows)}


def _versus(verdicts: list[dict], method: str, judged: list[str], n_boot: int, seed: int) -> list[dict]:
    """paired_difference(method, m) for every other judged method ([] when `method` was not judged)."""
    if method not in judged:
        return []
    return [paired_difference(verdicts, method, m, n_boot=n_boot, seed=seed) for m in judged if m != method]


REPORT_SECTIONS = (
    ("win_rates", "Win rates against the vanilla model (simulated annotators; 95% bootstrap CI over prompts)"),
    ("soup_vs_others", "Soup minus each other method (paired bootstrap over prompts; clear = the interval excludes 0)"),
    ("dpo_soup_vs_others", "DPO soup minus each other method (paired bootstrap over prompts)"),
    ("win_rates_by_side", "Win rate per side"),
    ("mean_scores", "Mean annotator score per side, and length"),
    ("reward_scores", "Mean reward-model score per side (the rewards PPO optimised)"),
    ("ai_judge", "AI judge (the 135M model) on a sample of the same comparisons"),
)


def report_markdown(summary: dict) -> str:
    """The README-ready markdown of an `evaluation_tables` result (plus optional reward_scores / ai_judge)."""
    parts = []
    for key, title in REPORT_SECTIONS:
        if key in summary:
            table = summary[key] if isinstance(summary[key], list) else [summary[key]]
            parts += [f"## {title}", "", markdown_table(table) if table else "(nothing to compare)", ""]
    return "\n".join(parts)
