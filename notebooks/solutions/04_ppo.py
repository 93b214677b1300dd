"""Solutions to the exercises of notebook 04 (PPO), one cell per check.

Each cell stands alone; run this file as a script or open it with jupytext. The checks live in
rlphf_lab/exercises/ppo.py and compare with the library (rlphf_lab.rl.ppo); the last one reads the
shipped P2A run's data/adapters/P2A/metrics.csv (no model).
"""
import torch

from rlphf_lab import exercises

# %% check_token_rewards
def my_token_rewards(scores, logprobs, ref_logprobs, mask, kl_coef):
    rewards = -kl_coef * (logprobs - ref_logprobs) * mask       # the KL penalty on real tokens, 0 on padding
    last = mask.sum(dim=1).long() - 1                            # the last REAL token of each row (its EOS)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards

exercises.check_token_rewards(my_token_rewards)

# %% check_gae
def my_gae(rewards, values, mask, gamma, lam):
    rewards, values = rewards * mask, values * mask             # V = 0 after the last real token
    B, T = rewards.shape
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros(B)
    for t in reversed(range(T)):                                 # A_t needs A_{t+1}: walk back from the end
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros(B)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last_gae = (delta + gamma * lam * last_gae) * mask[:, t]
        advantages[:, t] = last_gae
    return advantages, advantages + values                       # (A_t, R_t = A_t + V(s_t)), 0 on padding

exercises.check_gae(my_gae)

# %% check_clip_gradient
# L_t = max(-A rho, -A clip(rho, 0.8, 1.2)). The gradient vanishes only where the clipped term wins the max:
# a good token (A > 0) pushed above 1.2, a bad token (A < 0) pushed below 0.8. A token that moved the wrong
# way (token 1: good but less likely; token 6: bad but more likely) keeps its full gradient.
my_prediction = ["nonzero", "nonzero", "zero",
                 "zero", "nonzero", "nonzero"]

exercises.check_clip_gradient(my_prediction)

# %% check_kl_controller
# The KL starts at 0 and reaches 7.3 nats in the last iteration, above the target of 6; but it was below
# the target in the nine iterations before, so every update had e < 0. With K = 10000 and 8 answers an
# iteration, one update changes beta by at most 0.016%: over the run it moved by 0.13%. With
# horizon_for_run(80) = 8 the same KLs would have cut beta by 20% an iteration: it falls by about 84%.
my_prediction = {"KL in the last iteration": "above the target",
                 "beta over the run": "stayed within 1%",
                 "beta with horizon_for_run": "fell"}

exercises.check_kl_controller(my_prediction)
