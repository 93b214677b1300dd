"""Notebook 05b (DPO): the implicit reward of an answer from its token log-probs, the DPO loss of a batch
of pairs, which way beta moves the loss (predicted, then measured), and what the shipped DPO run did to
the two implicit rewards (predicted, then read from its training log)."""
from __future__ import annotations

from .report import report


def choice_problem(prediction, choices: dict[str, tuple[str, ...]]) -> str | None:
    """What is wrong with the shape of a {key: one of choices[key]} prediction, or None (shared by the
    prediction checks of notebooks 05b, 06 and 07)."""
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


def _answer(prediction: dict, key: str) -> str:
    return str(prediction[key]).strip().lower()


def _as_tensor(value, what: str):
    """value as a float tensor, or (None, the message saying what came back)."""
    import torch

    try:
        return torch.as_tensor(value, dtype=torch.float32), None
    except (TypeError, ValueError, RuntimeError) as err:
        return None, f"your function returned {type(value).__name__}, not {what} ({err})."


# ---- the implicit reward, from per-token log-probs ---------------------------------------------------------

def check_implicit_reward(fn) -> bool:
    """Notebook 05b: fn(token_logps, ref_token_logps, mask, beta) -> (B,) implicit rewards
    r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x)), each log-prob SUMMED over the answer's real tokens
    (mask 1; padding is 0). Compared with `rl.dpo.implicit_reward` of the masked sums."""
    import torch

    from ..rl.dpo import implicit_reward

    g = torch.Generator().manual_seed(5)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.float32)
    logps = -4 * torch.rand(3, 6, generator=g)                       # log pi(y_t | x, y_<t), (B, T)
    ref = logps + 0.8 * torch.randn(3, 6, generator=g)               # log pi_ref(y_t | x, y_<t)
    # a padded position holds whatever the model computed there, not 0: it must be masked out
    logps = torch.where(mask.bool(), logps, -9 * torch.rand(3, 6, generator=g))
    ref = torch.where(mask.bool(), ref, -9 * torch.rand(3, 6, generator=g))
    beta = 0.1
    want = implicit_reward((logps * mask).sum(-1), (ref * mask).sum(-1), beta)
    try:
        out = fn(logps.clone(), ref.clone(), mask.clone(), beta)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    got, problem = _as_tensor(out, "a tensor of rewards")
    if problem:
        return report(False, problem)
    if got.shape != want.shape:
        return report(False, f"expected one reward per answer, shape {tuple(want.shape)}, got {tuple(got.shape)}: "
                              f"sum over the tokens (dim=-1).")
    show = lambda t: [round(x, 3) for x in t.tolist()]   # noqa: E731
    if torch.allclose(got, want, atol=1e-5):
        return report(True, f"r = beta * sum over the real tokens of (log pi - log pi_ref): {show(want)}. "
                            f"A long answer's reward adds up over its tokens, and padding adds nothing.")
    diff = logps - ref
    wrong = {"you took the mean over all T positions, padding included: keep the answer's real tokens "
             "(multiply by the mask) and SUM them: log pi(y|x) is the sum of the token log-probs":
             beta * diff.mean(-1),
             "you averaged over the answer's tokens: DPO uses the SUMMED log-prob log pi(y|x) = "
             "sum_t log pi(y_t | x, y_<t), not a per-token mean":
             beta * (diff * mask).sum(-1) / mask.sum(-1),
             "you divided by T: sum the masked token log-probs, do not average them":
             beta * (diff * mask).mean(-1),
             "the padding counts in yours: multiply by the mask before summing (padded positions hold junk, not 0)":
             beta * diff.sum(-1),
             "beta is missing: r = beta * (log pi - log pi_ref)":
             (diff * mask).sum(-1),
             "the sign is flipped: the policy's log-prob comes first, log pi - log pi_ref":
             -want}
    for hint, value in wrong.items():
        if torch.allclose(got, value, atol=1e-5):
            return report(False, f"got {show(got)}, expected {show(want)}: {hint}.")
    return report(False, f"got {show(got)}, expected {show(want)}. "
                          f"r = beta * ((token_logps * mask).sum(-1) - (ref_token_logps * mask).sum(-1)).")


# ---- the DPO loss -----------------------------------------------------------------------------------------

def check_dpo_loss(fn) -> bool:
    """Notebook 05b: fn(chosen_logp, rejected_logp, ref_chosen_logp, ref_rejected_logp, beta) must return
    the mean of -log sigmoid(beta * ((chosen - ref_chosen) - (rejected - ref_rejected))) over the batch."""
    import torch

    from ..rl.dpo import dpo_loss

    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-100 + 20 * torch.rand(5, generator=g) for _ in range(4))
    beta = 0.3
    want = dpo_loss(pc, pr, rc, rr, beta)
    try:
        out = fn(pc.clone(), pr.clone(), rc.clone(), rr.clone(), beta)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    got, problem = _as_tensor(out, "one number")
    if problem:
        return report(False, problem)
    if got.numel() != 1:
        return report(False, f"expected one number (the mean over the {len(pc)} pairs), got shape {tuple(got.shape)}; "
                              f"finish with .mean().")
    margin = (pc - rc) - (pr - rr)
    wrong = {"beta is missing: multiply the bracket by beta": -torch.nn.functional.logsigmoid(margin).mean(),
             "the sign is flipped: the chosen answer's log-ratio comes first": -torch.nn.functional.logsigmoid(-beta * margin).mean(),
             "the reference is missing: use log pi - log pi_ref for each answer": -torch.nn.functional.logsigmoid(beta * (pc - pr)).mean(),
             "sum over the batch instead of the mean": dpo_loss(pc, pr, rc, rr, beta) * len(pc)}
    for hint, value in wrong.items():
        if torch.allclose(got.reshape(()), value, atol=1e-5):
            return report(False, f"got {got.item():.4f}, expected {want.item():.4f}: {hint}.")
    if not torch.allclose(got.reshape(()), want, atol=1e-5):
        return report(False, f"got {got.item():.4f}, expected {want.item():.4f}. The loss is "
                              f"-logsigmoid(beta * ((chosen - ref_chosen) - (rejected - ref_rejected))).mean().")
    return report(True, "the Bradley-Terry loss of the two implicit rewards, averaged over the pairs.")


# ---- which way beta moves the loss (predicted, then measured with rl.dpo.dpo_loss) -------------------------

BETA_CASES = ("ranked right", "ranked wrong", "untrained")
DIRECTIONS = ("up", "down", "same")
BETA_FROM, BETA_TO = 0.1, 0.5


def beta_batches() -> dict:
    """Three batches of four pairs of summed log-probs (chosen, rejected, ref_chosen, ref_rejected):
    a policy that ranks every pair as the annotator did (margin > 0), one that ranks every pair the
    other way (margin < 0), and the untrained adapter (pi = pi_ref, margin 0)."""
    import torch

    g = torch.Generator().manual_seed(3)
    ref_c, ref_r = -120 + 40 * torch.rand(4, generator=g), -120 + 40 * torch.rand(4, generator=g)
    shift = 2 + 6 * torch.rand(4, generator=g)                     # how far the policy moved each answer
    return {"ranked right": (ref_c + shift, ref_r - shift, ref_c, ref_r),
            "ranked wrong": (ref_c - shift, ref_r + shift, ref_c, ref_r),
            "untrained": (ref_c.clone(), ref_r.clone(), ref_c, ref_r)}


def beta_effect(case: str) -> tuple[str, float, float]:
    """("up" | "down" | "same", loss at BETA_FROM, loss at BETA_TO) for one of BETA_CASES, by rl.dpo.dpo_loss."""
    from ..rl.dpo import dpo_loss

    batch = beta_batches()[case]
    before, after = dpo_loss(*batch, beta=BETA_FROM).item(), dpo_loss(*batch, beta=BETA_TO).item()
    return ("same" if abs(after - before) < 1e-6 else "down" if after < before else "up"), before, after


def check_beta_prediction(prediction: dict) -> bool:
    """Notebook 05b: predict whether raising beta from 0.1 to 0.5 makes the DPO loss go "up", "down" or stay
    the "same" for a policy that ranks its pairs right, one that ranks them wrong, and the untrained
    adapter (pi = pi_ref); the check computes the three losses with `rl.dpo.dpo_loss` and compares."""
    problem = choice_problem(prediction, {case: DIRECTIONS for case in BETA_CASES})
    if problem:
        return report(False, problem)
    lessons = {"ranked right": "beta multiplies a positive margin, and a more confident right ranking costs less",
               "ranked wrong": "beta multiplies a negative margin too: a more confident wrong ranking costs more",
               "untrained": "the margin is 0 whatever beta is, so the loss is log 2 = 0.693, a coin flip"}
    lines, wrong = [], []
    for case in BETA_CASES:
        effect, before, after = beta_effect(case)
        lines.append(f"{case}: {before:.3f} -> {after:.3f} ({effect})")
        if _answer(prediction, case) != effect:
            wrong.append(f"{case} went {effect}, not {_answer(prediction, case)}: {lessons[case]}")
    measured = "; ".join(lines)
    if wrong:
        text = "; ".join(wrong)
        return report(False, f"measured with dpo.dpo_loss at beta {BETA_FROM} -> {BETA_TO}: {measured}. "
                             f"{text[0].upper()}{text[1:]}.")
    return report(True, f"measured with dpo.dpo_loss at beta {BETA_FROM} -> {BETA_TO}: {measured}. Beta sharpens the "
                        f"loss without choosing a direction: that comes from the pairs. And at the start every "
                        f"beta gives log 2, so beta decides how far the policy may move, not where it starts.")


# ---- what the shipped DPO run did to the implicit rewards (predicted, then read from its metrics.csv) -------

RUN_KEYS = ("margin", "rejected")


def dpo_run_log(side: str = "P2A", root=None) -> tuple[dict, dict | None]:
    """(the last training row, the last held-out row or None) of the shipped DPO run of `side`
    (data/adapters/dpo-<side>/metrics.csv, TRL's logged metrics, read with rl.run_folder.read_metrics)."""
    from pathlib import Path

    from ..config import ADAPTERS_DIR
    from ..rl.run_folder import read_metrics

    rows = read_metrics(Path(root or ADAPTERS_DIR) / f"dpo-{side}")
    train = [r for r in rows if "loss" in r and "rewards/margins" in r]
    if not train:
        raise ValueError(f"no training rows with rewards/margins in the dpo-{side} log")
    held_out = [r for r in rows if "eval_rewards/margins" in r]
    return train[-1], (held_out[-1] if held_out else None)


def check_dpo_training_log(prediction: dict, side: str = "P2A") -> bool:
    """Notebook 05b: at the start of a DPO run (pi = pi_ref) every implicit reward is 0. Predict whether, by
    the end of the shipped run of `side`, the mean margin r(y_w) - r(y_l) and the rejected answers' mean
    implicit reward r(y_l) ended "up" (above 0) or "down" (below 0); the check reads TRL's log
    (data/adapters/dpo-<side>/metrics.csv: rewards/margins, rewards/rejected) and compares."""
    problem = choice_problem(prediction, {key: ("up", "down") for key in RUN_KEYS})
    if problem:
        return report(False, problem)
    try:
        last, held_out = dpo_run_log(side)
        values = {"margin": last["rewards/margins"], "rejected": last["rewards/rejected"]}
        chosen = last["rewards/chosen"]
    except (OSError, KeyError, ValueError) as err:
        return report(False, f"could not read the shipped DPO run of {side} ({type(err).__name__}: {err}); train it "
                             f"with `rlphf-lab train-dpo --preference {side} --out data/adapters/dpo-{side}`.")
    measured = {k: "up" if v > 0 else "down" for k, v in values.items()}
    line = (f"after {last['step']:.0f} steps of dpo-{side}: margin 0 -> {values['margin']:+.2f}, rejected answers "
            f"0 -> {values['rejected']:+.2f}, chosen answers 0 -> {chosen:+.2f}")
    lessons = {"margin": "the loss -log sigmoid(margin) falls only as the margin grows, and every step pushes it up",
               "rejected": "DPO pushes down the probability of what the annotator rejected"}
    names = {"margin": "margin", "rejected": "rejected answers' implicit reward"}
    wrong = [f"the {names[k]} went {measured[k]}, not {_answer(prediction, k)}: {lessons[k]}" for k in RUN_KEYS
             if _answer(prediction, k) != measured[k]]
    if wrong:
        text = "; ".join(wrong)
        return report(False, f"{line}. {text[0].upper()}{text[1:]}.")
    other = next(s for s in ("P1A", "P1B", "P2A", "P2B", "P3A", "P3B") if s != side)
    surprise = ("they fell too: DPO only asks that the gap grow, so even the chosen answers can become less likely "
                "(see 'What can go wrong')" if chosen < 0 else
                f"they rose in this run, but DPO does not promise that: it only asks that the gap grow (compare the "
                f"other sides' runs, side={other!r}, ...)")
    tail = (f" On held-out pairs: accuracy {held_out['eval_rewards/accuracies']:.2f}, margin "
            f"{held_out['eval_rewards/margins']:+.2f}." if held_out and "eval_rewards/accuracies" in held_out else "")
    return report(True, f"{line}. And the chosen answers? {surprise}.{tail}")
