"""Notebook 05 (multi-objective RL): a Prompted-MORL reward that reads the response, which answer a
scalarization prefers (predicted, then computed), and which shipped policy serves our user under each
scalarization (predicted, then read from the shipped evaluation)."""
from __future__ import annotations

from functools import lru_cache

import torch

from .report import report


def check_prompted_morl_reward(fn) -> bool:
    """Notebook 05: fn(score_fn, codes, instructions, responses) -> (B,) the mean of the combination's side
    rewards for each (plain instruction, RESPONSE). Checked with the word-count toy reward."""
    from ..rl.multi import toy_length_score_fn

    codes = ["P1A", "P2A", "P3A"]
    instructions = ["Explain rain.", "Explain rain."]
    responses = ["Rain is water falling from clouds!", "When clouds hold more water than they can carry, drops "
                 "grow heavy and fall: that is rain, and you see it most where warm wet air rises and cools."]
    try:
        got = torch.as_tensor(fn(toy_length_score_fn, codes, instructions, responses), dtype=torch.float32)
    except Exception as err:
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want = toy_length_score_fn(codes, instructions, responses).mean(dim=1)
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} (one reward per response), got {tuple(got.shape)}.")
    if torch.isclose(got[0], got[1]):
        return report(False, "both responses got the same reward: your reward does not look at the response "
                              "(the reference Prompted-MORL code's bug). Pass the responses to score_fn.")
    if not torch.allclose(got, want, atol=1e-5):
        return report(False, f"expected {want.tolist()}, got {got.tolist()}: average the combination's columns "
                              f"(dim=1) of score_fn(codes, instructions, responses).")
    return report(True, "the mean of the combination's side rewards, and it changes when the response changes.")


def _choice_problem(prediction, choices: dict[str, tuple[str, ...]]) -> str | None:
    """What is wrong with the shape of a {key: one of choices[key]} prediction, or None."""
    if not isinstance(prediction, dict):
        return f"give a dict with the keys {list(choices)}; got {type(prediction).__name__}."
    missing = [k for k in choices if k not in prediction]
    if missing:
        return f"no prediction for {missing}: predict every one of {list(choices)}."
    bad = [k for k, allowed in choices.items() if str(prediction[k]).strip().lower() not in
           tuple(a.lower() for a in allowed)]
    if bad:
        return "replace " + "; ".join(f"{k!r}: {prediction[k]!r} by one of {', '.join(map(repr, choices[k]))}"
                                      for k in bad) + " (your prediction, before you look)."
    return None


# ---- which answer does a scalarization prefer? (predicted, then computed with rewards.scalarize) -----------

# our user's three reward models (P1A simple, P2A concise, P3A friendly) on two answers
SCALARIZER_ANSWERS = {"A": (1.5, 1.2, 0.4), "B": (0.5, 0.6, 0.9)}
SCALARIZER_CASES = {"weighted_linear, w = (1, 1, 1)": ("weighted_linear", (1.0, 1.0, 1.0)),
                    "worst_case, w = (1, 1, 1)": ("worst_case", (1.0, 1.0, 1.0)),
                    "weighted_linear, w = (1, 1, 4)": ("weighted_linear", (1.0, 1.0, 4.0)),
                    "worst_case, w = (1, 1, 4)": ("worst_case", (1.0, 1.0, 4.0))}


def check_scalarizer_winner(prediction: dict) -> bool:
    """Notebook 05: predict which of the answers SCALARIZER_ANSWERS ("A" or "B") each scalarization of
    SCALARIZER_CASES ranks first; computed with `rewards.scalarize.scalarize`."""
    from ..rewards.scalarize import scalarize

    problem = _choice_problem(prediction, {case: tuple(SCALARIZER_ANSWERS) for case in SCALARIZER_CASES})
    if problem:
        return report(False, problem)
    rewards = torch.tensor(list(SCALARIZER_ANSWERS.values()))         # (2 answers, 3 objectives)
    names = list(SCALARIZER_ANSWERS)
    wrong, lines = [], []
    for case, (name, w) in SCALARIZER_CASES.items():
        values = scalarize(name, rewards, weights=w)                  # (2,)
        winner = names[int(values.argmax())]
        weighted = {n: [round(v, 2) for v in (rewards[i] * torch.tensor(w)).tolist()] for i, n in enumerate(names)}
        lines.append(f"{case}: " + ", ".join(f"{n} {values[i].item():.2f}" for i, n in enumerate(names)))
        guess = str(prediction[case]).strip().upper()
        if guess != winner:
            if name == "worst_case" and w[2] > 1:
                why = (f"w * r is {weighted['A']} for A and {weighted['B']} for B: multiplying friendliness by 4 "
                       f"takes it out of A's minimum, and B's worst is now its simplicity (0.5). With positive "
                       f"rewards a LARGER worst-case weight makes that objective matter LESS")
            elif name == "worst_case":
                why = (f"only each answer's weakest reward counts: A's {min(SCALARIZER_ANSWERS['A'])} against B's "
                       f"{min(SCALARIZER_ANSWERS['B'])}; A's strong simplicity and concision cannot pay for it")
            else:
                why = (f"the weighted sums are {values[0].item():.2f} (A) and {values[1].item():.2f} (B): "
                       f"one large reward can pay for a small one")
            wrong.append(f"with {case} the winner is {winner}, not {guess}: {why}")
    if wrong:
        text = "; ".join(wrong)
        return report(False, f"{text[0].upper()}{text[1:]}.")
    return report(True, "; ".join(lines) + ". Raising friendliness' weight makes the linear sum pick the friendlier "
                                           "answer and the worst case the less friendly one: worst-case weights are "
                                           "exchange rates for the minimum, not importances.")


# ---- which shipped policy serves our user? (predicted, then read from the shipped evaluation) --------------

RANKING_USER = "P1A+P2A+P3A"
RANKING_CHOICES = {"weighted_linear: prompted-morl or soup": ("prompted-morl", "soup"),
                   "worst_case: prompted-morl or soup": ("prompted-morl", "soup"),
                   "P2A adapter against vanilla, worst_case": ("better", "worse")}


@lru_cache(maxsize=1)
def user_scores(combination: str = RANKING_USER) -> dict[str, torch.Tensor]:
    """{method: (answers, 3) annotator scores of its answers on the combination's three sides}, from the
    shipped data/evaluation/verdicts.jsonl (`rlphf-lab evaluate`: every eval prompt, every method, and the
    vanilla answer each is judged against)."""
    from ..evaluate import shipped_verdicts
    from ..preferences import parse_combination

    sides = [p.code for p in parse_combination(combination)]
    by_answer: dict[tuple[str, str], dict[str, float]] = {}
    for r in shipped_verdicts():
        if r["combination"] == combination:
            by_answer.setdefault((r["method"], r["prompt_id"]), {})[r["side"]] = r["score_method"]
            by_answer.setdefault(("vanilla", r["prompt_id"]), {})[r["side"]] = r["score_vanilla"]
    rows: dict[str, list[list[float]]] = {}
    for (method, _), scores in sorted(by_answer.items()):
        if all(s in scores for s in sides):
            rows.setdefault(method, []).append([scores[s] for s in sides])
    return {m: torch.tensor(v) for m, v in rows.items()}


def check_policy_ranking(prediction: dict) -> bool:
    """Notebook 05: predict, for the user P1A+P2A+P3A, which of Prompted-MORL and the Personalized Soup has the
    higher mean weighted_linear and the higher mean worst_case score, and whether the P2A adapter alone beats the
    vanilla model on worst_case. The check scalarizes every answer's three annotator scores from the shipped
    evaluation (`user_scores`) with `rewards.scalarize` and averages over the answers."""
    from ..rewards.scalarize import worst_case, weighted_linear

    problem = _choice_problem(prediction, RANKING_CHOICES)
    if problem:
        return report(False, problem)
    try:
        scores = user_scores()
        means = {m: {"weighted_linear": weighted_linear(scores[m]).mean().item(),
                     "worst_case": worst_case(scores[m]).mean().item(), "sides": scores[m].mean(dim=0).tolist()}
                 for m in ("prompted-morl", "soup", "P2A", "vanilla")}
    except (OSError, KeyError, ValueError) as err:
        return report(False, f"could not read the shipped evaluation ({err}); `rlphf-lab evaluate` writes it.")
    measured = {}
    for f in ("weighted_linear", "worst_case"):
        measured[f"{f}: prompted-morl or soup"] = max(("prompted-morl", "soup"), key=lambda m: means[m][f])
    measured["P2A adapter against vanilla, worst_case"] = ("better" if means["P2A"]["worst_case"] >
                                                           means["vanilla"]["worst_case"] else "worse")
    n = len(scores["soup"])
    table = "; ".join(f"{m}: linear {v['weighted_linear']:.2f}, worst {v['worst_case']:.2f} "
                      f"(P1A, P2A, P3A means {', '.join(f'{x:.2f}' for x in v['sides'])})" for m, v in means.items())
    line = f"mean annotator scores of {n} answers per method for {RANKING_USER}: {table}"
    guess = {k: str(prediction[k]).strip().lower() for k in RANKING_CHOICES}
    wrong = []
    for key in list(RANKING_CHOICES)[:2]:
        if guess[key] != measured[key]:
            f, winner = key.split(":")[0], measured[key]
            loser = "soup" if winner == "prompted-morl" else "prompted-morl"
            wrong.append(f"under {f} {winner} wins ({means[winner][f]:.2f} against {means[loser][f]:.2f}): " + (
                "the sum lets an answer's strong side pay for its weak ones"
                if f == "weighted_linear" else
                "the worst case counts only each answer's weakest side, so the policy whose sides are more even wins"))
    key = "P2A adapter against vanilla, worst_case"
    if guess[key] != measured[key]:
        p2a, van = means["P2A"]["sides"], means["vanilla"]["sides"]
        wrong.append(f"the P2A adapter is {measured[key]} than vanilla on worst_case: concision "
                     f"{p2a[1]:.2f} against {van[1]:.2f}, simplicity and friendliness {p2a[0]:.2f} and {p2a[2]:.2f} "
                     f"against {van[0]:.2f} and {van[2]:.2f}" + (
                         ": it bought concision with the two sides it was never rewarded for"
                         if measured[key] == "worse" else ": it gained concision without giving up the other sides"))
    if wrong:
        text = "; ".join(wrong)
        return report(False, f"{line}. {text[0].upper()}{text[1:]}.")
    beaten = [m for m in ("prompted-morl", "soup") if means[m]["worst_case"] < means["vanilla"]["worst_case"]]
    note = (f" Note that the untrained vanilla model beats {' and '.join(beaten)} on worst_case too: a policy "
            f"trained towards some sides pays on the others." if beaten else "")
    return report(True, f"{line}. The scalarizer decides which policy serves a user best: the choice of f is part "
                        f"of the user's preference, not a detail of training.{note}")
