"""Answers from a soup, scored, and the Pareto fronts they make as the weights move.

    rows  = score_soup_answers(model, tok, prompts, weights={"P2A": 1})   # one soup's answers and scores
    rows  = sweep_weights(model, tok, prompts, "P2A", "P2B", steps=5)     # the soup walked from one end to the other
    front = pareto_front(model, tok, prompts, "P2A", "P3A")               # + prompting and base-model references

Scores come from a scorer in the lab's protocol (rlphf_lab.scoring: scorer(sides, instructions,
responses) -> (batch, sides)), by default the simulated annotators, on the six sides; every point
uses the same prompts and seed, so answers differ only by the weights.
mix="weights" (default) decodes with the exact weight soup; mix="outputs" mixes the adapters'
next-token log-probabilities instead (MOD, outputs.py), with the same weights.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..preferences import SIDES, parse_combination
from ..scoring import Scorer, score_rows
from .mix import model_lock, set_soup_weights
from .weights import as_weights

MIX_CHOICES = ("weights", "outputs")     # where a soup mixes its adapters: weight soup (mix.py) or outputs (outputs.py)


def check_mix(mix) -> str:
    """`mix` itself when it is one of MIX_CHOICES, else a ValueError naming them."""
    if mix not in MIX_CHOICES:
        raise ValueError(f"mix={mix!r}: choose one of {', '.join(repr(m) for m in MIX_CHOICES)} ('weights' mixes the "
                         f"adapters' weights into one model, 'outputs' mixes their next-token log-probabilities).")
    return mix


def score_answers(scorer: Scorer | None, instructions: Sequence[str], answers: Sequence[str]) -> list[dict]:
    """{side: score} for the six sides per answer, from `scorer` (None: the simulated annotators)."""
    from ..feedback.annotators import scorer as annotators_scorer

    return score_rows(scorer or annotators_scorer, SIDES, instructions, answers)


def _instructions(prompts) -> list[str]:
    return [p["instruction"] if isinstance(p, dict) else str(p) for p in prompts]


def score_soup_answers(model, tokenizer, prompts, *, weights: dict[str, float] | None = None, preference=None,
                       label: str = "", scorer: Scorer | None = None, max_new_tokens: int = 96,
                       temperature: float = 0.7,
                       seed: int | None = 0, batch_size: int = 8, normalize: bool = True,
                       mix: str = "weights") -> list[dict]:
    """Answer every prompt with one policy and score the answers; one row per prompt.

    weights given: the exact soup with those weights (divided by their sum unless normalize=False,
    which lets {"P2A": 3.0} triple an adapter's delta); with mix="outputs" the adapters are mixed
    at decoding time instead, sum_i w_i log p_i per token (`generate_mixed_outputs`). weights None:
    the base model (adapters off), with `preference` appended as a prompt -- the
    preference-prompting baseline (`mix` changes nothing there).
    Rows: {label, instruction, response, <side>: score, ...}.
    """
    from ..models import generate
    from .outputs import generate_mixed_outputs

    check_mix(mix)
    instructions = _instructions(prompts)
    kw = dict(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, batch_size=batch_size)
    with model_lock(model):                 # a widget thread must not re-mix the model meanwhile
        if weights is not None and mix == "outputs":
            answers = generate_mixed_outputs(model, tokenizer, instructions, weights, preference, normalize=normalize,
                                             **kw)
        elif weights is not None:
            set_soup_weights(model, weights, normalize)
            answers = generate(model, tokenizer, instructions, preference, **kw)
        else:
            with model.disable_adapter():
                answers = generate(model, tokenizer, instructions, preference, **kw)
    return [{"label": label, "instruction": ins, "response": ans, **scores}
            for ins, ans, scores in zip(instructions, answers, score_answers(scorer, instructions, answers))]


def sweep_weights(model, tokenizer, prompts, start, end, steps: int = 5, scorer: Scorer | None = None, mix: str = "weights",
                  **generate_kw) -> list[dict]:
    """Walk the soup from `start` to `end` and score the answers at each point.

    start, end: an adapter ("P2A"), a combination ("P1A+P2A") or a weight dict. At t in
    linspace(0, 1, steps) the weights are (1 - t) start + t end (then normalised):
        two opposite adapters:  sweep_weights(model, tok, prompts, "P2A", "P2B")
        two dimensions:         sweep_weights(model, tok, prompts, "P1B", "P2B")   (expertise vs detail)
    The same seed is used at every t, so the answers differ only because the weights do.
    mix: "weights" (the exact weight soup, default) or "outputs" (decoding-time mixing, MOD).
    Returns one row per (t, prompt): {t, label, weights, instruction, response, <side>: score}.
    """
    check_mix(mix)
    if steps < 2:
        raise ValueError(f"steps={steps}: a sweep needs at least 2 points (the two ends).")
    a, b = as_weights(start), as_weights(end)
    rows = []
    for t in torch.linspace(0, 1, steps).tolist():
        weights = {k: (1 - t) * a.get(k, 0.0) + t * b.get(k, 0.0) for k in {**a, **b}}
        weights = {k: v for k, v in weights.items() if v > 0}
        for row in score_soup_answers(model, tokenizer, prompts, weights=weights, label=f"t={t:.2f}",
                                      scorer=scorer, mix=mix, **generate_kw):
            rows.append({"t": round(t, 4), "weights": weights, **row})
    return rows


def group_means(rows: list[dict], by: str = "label") -> list[dict]:
    """Average the numeric score columns of `rows` per value of `by` (in first-seen order)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    out = []
    for key, members in groups.items():
        numeric = [k for k, v in members[0].items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != by]
        out.append({by: key, "n": len(members), **{k: sum(m[k] for m in members) / len(members) for k in numeric}})
    return out


def pareto_optimal(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (x, y) point, True when no other point is at least as good on both and better on one
    (both objectives are maximised): the points that lie on the Pareto front."""
    pts = [tuple(map(float, p)) for p in points]
    return [not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in pts) for p in pts]


def _single_side(spec) -> str | None:
    """The side code when `spec` names exactly one side ("P2A" or {"P2A": 1}), else None."""
    if isinstance(spec, dict):
        named = [k for k, v in spec.items() if v]
        return named[0] if len(named) == 1 else None
    parsed = parse_combination(spec)
    return parsed[0].code if len(parsed) == 1 else None


def pareto_front(model, tokenizer, prompts, start, end, *, x: str | None = None, y: str | None = None,
                 steps: int = 5, baselines: bool = True, scorer: Scorer | None = None, mix: str = "weights", **generate_kw) -> dict:
    """A Pareto front of the soup between `start` and `end`, with reference points to judge it by.

    The soup sweep is `sweep_weights(start -> end)`; the objectives are the annotators' scores of
    sides x and y (by default the sides `start` and `end` name):
        two opposite adapters:  pareto_front(model, tok, prompts, "P2A", "P2B")   x = P2A, y = P2B
        two dimensions:         pareto_front(model, tok, prompts, "P2A", "P3A")   concise vs friendly
    Reference points, same prompts and seed:
        adapter <side>          the sweep's two ends (a single adapter at weight 1), no extra generation
        prompting <combo>       the base model (adapters off) with the preference prompt of the start
                                side, the end side, and both together when they form a combination
        base model              the base model with no preference prompt
    Returns {"x", "y", "sweep": rows, "reference": rows, "points": [{label, x, y, t, pareto}]}:
    `points` holds the mean scores per sweep step and per reference, and whether each is on the
    Pareto front of all of them (`pareto_optimal`).
    mix: "weights" (default: the exact weight soup) or "outputs" (the sweep and its adapter ends
    mix next-token log-probabilities, MOD); the prompting and base-model references are the same.
    """
    check_mix(mix)
    x = x or _single_side(start)
    y = y or _single_side(end)
    if not x or not y:
        raise ValueError(f"Say which two scores to plot: x=..., y=... (side codes); {start!r} -> {end!r} "
                         f"does not name one side at each end.")
    sweep = sweep_weights(model, tokenizer, prompts, start, end, steps=steps, scorer=scorer, mix=mix,
                          **generate_kw)
    reference = []
    for t, spec in ((0.0, start), (1.0, end)):
        side = _single_side(spec)
        if side:
            reference += [{**r, "label": f"adapter {side}"} for r in sweep if r["t"] == t]
    if baselines:
        combos = [spec for spec in (start, end) if not isinstance(spec, dict)]
        if len(combos) == 2:
            try:
                combos.append("+".join(p.code for p in parse_combination(f"{combos[0]}+{combos[1]}")))
            except ValueError:               # two sides of one dimension: no joint prompt
                pass
        for combo in combos:
            reference += score_soup_answers(model, tokenizer, prompts, preference=combo, label=f"prompting {combo}",
                                            scorer=scorer, **generate_kw)
        reference += score_soup_answers(model, tokenizer, prompts, label="base model", scorer=scorer,
                                        **generate_kw)
    points = []
    for m in group_means(sweep):
        points.append({"label": m["label"], "x": m[x], "y": m[y], "t": m["t"], "kind": "soup"})
    for m in group_means(reference):
        points.append({"label": m["label"], "x": m[x], "y": m[y], "t": None, "kind": "reference"})
    for point, ok in zip(points, pareto_optimal([(p["x"], p["y"]) for p in points])):
        point["pareto"] = ok
    return {"x": x, "y": y, "start": start, "end": end, "sweep": sweep, "reference": reference, "points": points}
