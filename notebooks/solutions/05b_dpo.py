"""Solutions to the exercises of notebooks/05b_dpo.ipynb (DPO): the implicit reward from token log-probs,
the DPO loss of a batch, which way beta moves the loss, and what the shipped DPO run did to the two implicit
rewards.

Each solved cell follows a line `# %% <check name>` and ends with the notebook cell's check call; a cell runs on
its own with `torch`, `np`, `exercises` and the check_* functions (tests/test_exercises.py runs every one).
Open it with jupytext, or read it as a script.
"""

# %% check_implicit_reward
def my_implicit_reward(token_logps, ref_token_logps, mask, beta):
    policy_logp = (token_logps * mask).sum(dim=-1)       # log pi(y|x): the answer's real tokens, summed
    ref_logp = (ref_token_logps * mask).sum(dim=-1)      # log pi_ref(y|x), the same tokens
    return beta * (policy_logp - ref_logp)


check_implicit_reward(my_implicit_reward)

# %% check_dpo_loss
def my_dpo_loss(chosen_logp, rejected_logp, ref_chosen_logp, ref_rejected_logp, beta):
    # the two implicit rewards' difference: each answer's log-ratio against the reference
    margin = beta * ((chosen_logp - ref_chosen_logp) - (rejected_logp - ref_rejected_logp))
    return -torch.nn.functional.logsigmoid(margin).mean()


check_dpo_loss(my_dpo_loss)

# %% check_beta_prediction
# beta multiplies every margin: sharper for a confident right ranking (lower loss) and a confident
# wrong one (higher loss); a margin of 0 stays 0, and the loss log 2, whatever beta is.
my_prediction = {
    "ranked right": "down",
    "ranked wrong": "up",
    "untrained": "same",
}

check_beta_prediction(my_prediction)

# %% check_dpo_training_log
# The loss -log sigmoid(margin) falls only if the margin grows, and DPO gets there mostly by making the
# rejected answers less likely than the reference model found them.
my_prediction = {
    "margin": "up",
    "rejected": "down",
}

check_dpo_training_log(my_prediction, side="P2A")
