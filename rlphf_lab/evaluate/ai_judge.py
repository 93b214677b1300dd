"""The AI judge (the 135M model, MORLAIF's principle prompt) on a sample of the same comparisons,
asked in both orders; "tie" when the two orders disagree. `agreement` compares it with the
simulated annotators' verdicts.
"""
from __future__ import annotations

import random

import numpy as np

from .methods import BASELINE, SIDE_ADAPTERS
from .win_rates import win_rate


def ai_judge_verdicts(model, tokenizer, rows: list[dict], verdicts: list[dict], *, n: int = 200, seed: int = 0,
                      batch_size: int = 16) -> list[dict]:
    """The 135M model as judge (MORLAIF's principle prompt, both orders) on n sampled comparisons.

    Each sampled verdict gets `ai_verdict` (win / tie / loss for the method; "tie" when the two
    orders disagree) so `agreement` can compare it with the simulated annotator.
    """
    from ..feedback.judge import judge_orders

    answer = {(r["prompt_id"], r["method"], r["combination"]): r["response"] for r in rows}
    instruction = {r["prompt_id"]: r["instruction"] for r in rows}
    rng = random.Random(seed)
    sample = rng.sample(verdicts, min(n, len(verdicts)))
    out = []
    for side in SIDE_ADAPTERS:
        mine = [v for v in sample if v["side"] == side]
        if not mine:
            continue
        ins = [instruction[v["prompt_id"]] for v in mine]
        ours = [answer.get((v["prompt_id"], v["method"], v["combination"]), answer.get((v["prompt_id"], v["method"], "")))
                for v in mine]
        base = [answer[(v["prompt_id"], BASELINE, "")] for v in mine]
        # shown in the recorded order; judge_orders also asks the swapped order
        first = [o if v["order"] == "method-first" else b for v, o, b in zip(mine, ours, base)]
        second = [b if v["order"] == "method-first" else o for v, o, b in zip(mine, ours, base)]
        p_ab, p_ba = judge_orders(model, tokenizer, side, ins, first, second, batch_size=batch_size)
        for v, pab, pba in zip(mine, p_ab, p_ba):
            # pab = P("A") shown as (first, second): first better; pba = P("A") shown as (second, first)
            first_wins = [pab > 0.5, pba < 0.5]
            if first_wins[0] != first_wins[1]:
                ai = "tie"
            else:
                method_wins = first_wins[0] == (v["order"] == "method-first")
                ai = "win" if method_wins else "loss"
            out.append({**v, "ai_verdict": ai})
    return out


def agreement(ai_rows: list[dict]) -> dict:
    """How often the AI judge's verdict equals the annotator's, over all and over decisive pairs."""
    if not ai_rows:
        return {"n": 0, "agreement": float("nan"), "decisive": 0, "decisive_agreement": float("nan")}
    same = [r["ai_verdict"] == r["verdict"] for r in ai_rows]
    decisive = [r for r in ai_rows if r["ai_verdict"] != "tie" and r["verdict"] != "tie"]
    return {"n": len(ai_rows), "agreement": float(np.mean(same)),
            "ai_tie_rate": float(np.mean([r["ai_verdict"] == "tie" for r in ai_rows])),
            "decisive": len(decisive),
            "decisive_agreement": float(np.mean([r["ai_verdict"] == r["verdict"] for r in decisive])) if decisive else float("nan"),
            "ai_win_rate": win_rate([{**r, "verdict": r["ai_verdict"]} for r in ai_rows]),
            "annotator_win_rate": win_rate(ai_rows)}
