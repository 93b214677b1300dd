"""Solutions to the exercises of notebook 03 (reward features), one cell per check.

Each cell stands alone; run this file as a script or open it with jupytext. The checks live in
rlphf_lab/exercises/reward_features.py and compare with the library (rlphf_lab.rewards.rfm,
rlphf_lab.rewards.personalize). The last one reads the shipped rater pairs (a few seconds, no model).
"""
import torch

from rlphf_lab import exercises

# %% check_preference_prob
def my_preference_prob(phi_a, phi_b, w):
    return torch.sigmoid((phi_a - phi_b) @ w)      # P(a beats b): the difference a - b, one dot product per row

exercises.check_preference_prob(my_preference_prob)

# %% check_fit_user_weights
import torch.nn.functional as F


def my_fit_user_weights(feat_diff, labels, l2, prior):
    """feat_diff (k, d): rows phi(a_j) - phi(b_j); labels (k,): 1 if the user chose a_j, 0 if b_j; prior (d,)."""
    w = prior.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w], line_search_fn="strong_wolfe", max_iter=200)

    def closure():
        opt.zero_grad()
        logits = feat_diff @ w                                             # <x_j, w>: log-odds that a_j wins
        # a label 0 means b_j won: log-odds -<x_j, w> (BCE takes the labels); the prior pulls towards prior, not 0
        loss = (F.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
                + l2 / 2 * ((w - prior) ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()

exercises.check_fit_user_weights(my_fit_user_weights)

# %% check_clicks_needed
# One click is one noisy bit about three weights: a little better than a coin flip. Ten clicks get most
# of the way; forty come close to the user's own true weights (about 0.88), which no fit can beat by much,
# because the user's choices are noisy.
my_prediction = {1: 0.6,
                 10: 0.8,
                 40: 0.85}

exercises.check_clicks_needed(my_prediction)
