"""Notebook 03 (reward features): the Bradley-Terry preference probability of a linear reward, a new user's
weights fitted by hand (MAP logistic regression), and how many clicks a new user needs (predicted, then measured)."""
from __future__ import annotations

from functools import lru_cache

from .report import report


def check_preference_prob(fn) -> bool:
    """Notebook 03: P(y_a > y_b | x, h) = sigmoid(<phi(x, y_a) - phi(x, y_b), w_h>), for a batch of pairs."""
    import torch

    phi_a = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]])
    phi_b = torch.tensor([[0.0, 1.0, 2.0], [0.5, -1.0, 0.0]])
    w = torch.tensor([2.0, 1.0, -3.0])
    try:
        got = torch.as_tensor(fn(phi_a, phi_b, w), dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want = torch.sigmoid(((phi_a - phi_b) * w).sum(-1))       # [sigmoid(1), sigmoid(0)]
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} (one probability per pair), got {tuple(got.shape)}. "
                              f"Take the dot product over the feature axis (dim=-1) only.")
    if torch.allclose(got, 1 - want, atol=1e-5):
        return report(False, "you have P(b beats a): the difference is phi(a) - phi(b), not the other way round.")
    if torch.allclose(got, ((phi_a - phi_b) * w).sum(-1), atol=1e-5):
        return report(False, "that is the reward difference (a logit); squash it with torch.sigmoid.")
    if not torch.allclose(got, want, atol=1e-5):
        return report(False, f"expected {[round(v, 4) for v in want.tolist()]}, got {[round(v, 4) for v in got.tolist()]}. "
                              f"Compute sigmoid(<phi_a - phi_b, w>) row by row.")
    return report(True, f"{[round(v, 3) for v in want.tolist()]}: the second pair has identical features, "
                         f"so the rater is indifferent (0.5) whatever w is.")


# ---- adapting to a new user: the MAP logistic regression of fit_user_weights, by hand ---------------------

# six labelled pairs of a user, d = 3 features, a population prior and its strength
FIT_CASE = {"feat_diff": [[1.0, 0.5, -0.2], [0.3, -1.0, 0.8], [-0.6, 0.2, 1.1],
                          [1.2, -0.4, 0.0], [0.1, 0.9, -0.7], [-0.8, -0.3, 0.4]],
            "labels": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0],
            "l2": 2.0,
            "prior": [0.5, -0.5, 1.0]}


def check_fit_user_weights(fn) -> bool:
    """Notebook 03: fn(feat_diff (k, d), labels (k,), l2, prior (d,)) -> w (d,), the minimiser of
        sum_j -log sigmoid(+-<x_j, w>) + l2/2 ||w - prior||^2     (+ for label 1, - for label 0),
    compared with `rewards.rfm.fit_user_weights`; the usual mistakes are recognised by refitting with them."""
    import torch

    from ..rewards.rfm import fit_user_weights

    x, y = torch.tensor(FIT_CASE["feat_diff"]), torch.tensor(FIT_CASE["labels"])
    l2, prior = FIT_CASE["l2"], torch.tensor(FIT_CASE["prior"])
    try:
        got = torch.as_tensor(fn(x.clone(), y.clone(), l2, prior.clone()), dtype=torch.float32).detach()
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want = fit_user_weights(x, y, l2=l2, prior=prior)
    if got.shape != want.shape:
        return report(False, f"expected one weight per feature, shape {tuple(want.shape)}, got {tuple(got.shape)}.")
    if not torch.isfinite(got).all():
        return report(False, f"your weights {got.tolist()} are not finite: the loss or the optimiser diverged.")
    if torch.allclose(got, want, atol=2e-3):
        flipped = int((torch.where(y > 0.5, x @ want, -(x @ want)) < 0).sum())
        agree = (f"on {flipped} of the {len(x)} pairs w still predicts the other answer: the prior holds it back"
                 if flipped else f"w agrees with all {len(x)} answers")
        return report(True, f"w = {[round(v, 3) for v in want.tolist()]}, between the prior {FIT_CASE['prior']} and "
                            f"what the answers say ({agree}). More pairs would pull harder, because the data term "
                            f"is a sum.")
    ones = torch.ones_like(y)
    mistakes = [
        ((x, ones, l2, prior), "the labels are ignored: every row is scored as if the user chose a, but a label 0 "
                               "means they chose b, so that pair's log-odds are -<x_j, w>. Use "
                               "F.binary_cross_entropy_with_logits(logits, labels, reduction='sum')"),
        ((x, y, l2, None), "the penalty pulls w towards 0, not towards the prior: it is l2/2 ||w - prior||^2, so "
                           "that with no clicks the answer is the population's weights"),
        ((x, ones, l2, None), "two mistakes: the labels are ignored (a label 0 means the user chose b: log-odds "
                              "-<x_j, w>; F.binary_cross_entropy_with_logits takes the labels) and the penalty pulls "
                              "towards 0 instead of the prior (l2/2 ||w - prior||^2)"),
        ((x, y, l2 * len(x), prior), "the data term is averaged over the pairs: it is a sum, so that every new "
                                     "click pulls as hard against the prior as the first one did (reduction='sum')"),
        ((x, 1 - y, l2, prior), "the labels are the wrong way round: label 1 means the user chose a, i.e. "
                                "P(label 1) = sigmoid(<x_j, w>)"),
    ]
    for (xx, yy, ll, pp), why in mistakes:
        if torch.allclose(got, fit_user_weights(xx, yy, l2=ll, prior=pp), atol=2e-3):
            return report(False, f"you got w = {[round(v, 3) for v in got.tolist()]}, expected "
                                  f"{[round(v, 3) for v in want.tolist()]}: {why}.")
    return report(False, f"expected w = {[round(v, 3) for v in want.tolist()]}, got {[round(v, 3) for v in got.tolist()]}. "
                          f"Minimise sum_j BCE(<x_j, w>, label_j) + l2/2 ||w - prior||^2 and let the optimiser "
                          f"converge (LBFGS with line_search_fn='strong_wolfe').")


# ---- how many clicks does a new user need? (predicted, then measured on the shipped pairs) ----------------

CLICK_USER = ((1.0, -1.0, 0.5), 0.3)   # the notebook's stand-in user: expert, concise, friendly; temperature
CLICK_KS = (1, 10, 40)                 # clicks: the first 40 pairs are the pool, the rest the test
CLICK_PAIRS, CLICK_ORDERS, CLICK_TOLERANCE = 160, 5, 0.06


@lru_cache(maxsize=1)
def click_curve() -> tuple[dict[int, float], float, int]:
    """({k: held-out accuracy after k clicks, averaged over CLICK_ORDERS random orders}, the accuracy of the user's
    true weights on the same test pairs, the number of test pairs), for CLICK_USER answering pairs of the shipped
    high-disagreement set (one per prompt); the weights are fitted by `rfm.adaptation_curve` (zero prior, l2=1)."""
    import numpy as np
    import torch

    from ..feedback.raters import Rater
    from ..rewards import personalize as P
    from ..rewards.losses import margin_accuracy
    from ..rewards.rfm import adaptation_curve

    pairs = P.pairs_for_you(P.load_rater_set("raters_high").pairs, n=CLICK_PAIRS, seed=0)
    dims = P.response_dims(pairs)
    user = Rater("stand-in", *CLICK_USER)
    n_pool = max(CLICK_KS)
    pool = P.relabel(pairs[:n_pool], user, dims, seed=0)      # the user's answers: chosen first
    test = P.relabel(pairs[n_pool:], user, dims, seed=1)

    def diffs(ps):
        # d(chosen) - d(rejected), (n, 3)
        return torch.tensor(np.array([dims[p["chosen_id"]] - dims[p["rejected_id"]] for p in ps]), dtype=torch.float32)

    x_pool, x_test = diffs(pool), diffs(test)
    curve = adaptation_curve(x_pool, torch.ones(len(pool)), x_test, torch.ones(len(test)), ks=CLICK_KS,
                             seeds=range(CLICK_ORDERS))
    best = margin_accuracy(x_test @ torch.tensor(CLICK_USER[0]))
    return curve, best, len(test)


def check_clicks_needed(prediction: dict) -> bool:
    """Notebook 03: predict the held-out accuracy of a new user's fitted weights after 1, 10 and 40 clicks
    ({1: acc, 10: acc, 40: acc}); the check measures them on the shipped high-disagreement pairs (click_curve)
    and accepts each prediction within CLICK_TOLERANCE."""
    if not isinstance(prediction, dict) or any(k not in prediction for k in CLICK_KS):
        return report(False, f"give a dict with the keys {list(CLICK_KS)} (numbers of clicks), each your predicted "
                              f"accuracy between 0 and 1; got {prediction!r}.")
    guess = {}
    for k in CLICK_KS:
        try:
            guess[k] = float(prediction[k])
        except (TypeError, ValueError):
            return report(False, f"replace {k}: {prediction[k]!r} by your predicted accuracy after {k} click"
                                  f"{'s' if k > 1 else ''}, a number between 0 and 1 (before you look).")
        if not 0 <= guess[k] <= 1:
            return report(False, f"an accuracy lies between 0 and 1; {k}: {guess[k]} does not.")
    try:
        curve, best, n_test = click_curve()
    except (OSError, KeyError, ValueError) as err:
        return report(False, f"could not measure on the shipped rater pairs ({err}); "
                              f"`rlphf-lab label-raters --disagreement high` writes them.")
    measured = ", ".join(f"{k} click{'s' if k > 1 else ''} {curve[k]:.2f}" for k in CLICK_KS)
    line = (f"measured on {n_test} held-out pairs (mean of {CLICK_ORDERS} click orders): {measured}; "
            f"the user's own true weights get {best:.2f}")
    wrong = [k for k in CLICK_KS if abs(guess[k] - curve[k]) > CLICK_TOLERANCE]
    if wrong:
        hints = []
        for k in wrong:
            low = guess[k] < curve[k]
            if k == min(CLICK_KS):
                hints.append("one click already beats a coin flip: its pair tells the sign of the weights along the "
                             "direction where the two answers differ most" if low else
                             "one click is one noisy bit about three weights: it cannot do much better than a coin flip")
            elif k == max(CLICK_KS):
                hints.append(f"with {k} clicks, about {k // 3} per weight, the fit gets close to the best any model can do "
                             f"on this user's noisy choices ({best:.2f})" if low else
                             f"no fit beats the user's own weights by much ({best:.2f}): their choices are noisy "
                             f"(temperature {CLICK_USER[1]})")
            else:
                hints.append(f"{k} clicks, about {k // 3} per weight, already get most of the way" if low else
                             f"{k} clicks still leave each of the three weights poorly pinned down")
        text = "; ".join(f"after {k}: you said {guess[k]:.2f} ({h})" for k, h in zip(wrong, hints))
        return report(False, f"{line}. Off by more than {CLICK_TOLERANCE}: {text}.")
    mid, last = sorted(CLICK_KS)[1], max(CLICK_KS)
    share = (curve[mid] - 0.5) / (curve[last] - 0.5) if curve[last] > 0.5 else float("nan")
    return report(True, f"{line}. Diminishing returns: the first {mid} clicks give {share:.0%} of the gain over a coin "
                        f"flip that {last} give, and the last gap to {best:.2f} closes slowly: each click is one noisy "
                        f"bit, and the error of the fitted weights shrinks only like 1 / sqrt(clicks).")
