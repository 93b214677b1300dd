"""Solutions to the exercises of notebook 02 (reward models), one cell per check.

Each cell stands alone; run this file as a script or open it with jupytext. The checks live in
rlphf_lab/exercises/reward_models.py and compare with the library (rlphf_lab.rewards).
The last one loads the SmolLM2 model (a few seconds).
"""
import torch

from rlphf_lab import exercises

# %% check_worst_case
def my_worst_case(rewards, weights):
    return (rewards * weights).amin(dim=-1)      # per row: the weakest weighted objective

exercises.check_worst_case(my_worst_case)

# %% check_bradley_terry_loss
def my_bt_loss(r_chosen, r_rejected):
    # logsigmoid never forms sigmoid(-120) ~ 1e-52, which float32 rounds to 0 (and log(0) = -inf)
    return -torch.nn.functional.logsigmoid(r_chosen - r_rejected).mean()

exercises.check_bradley_terry_loss(my_bt_loss)

# %% check_margin_accuracy
# a: two right, one tie (half), one wrong -> 2.5 / 4; b: the same signs -> the same accuracy.
# Loss a: (2 * 0.644 + 0.693 + 0.744) / 4 = 0.68; loss b: (2 * 0.007 + 0.693 + 5.007) / 4 = 1.43.
my_answer = {"accuracy a": 0.625,
             "accuracy b": 0.625,
             "lower loss": "a"}

exercises.check_margin_accuracy(my_answer)

# %% check_reward_hack_ranking
# The reward models learned to rank a repeated answer and a non-answer low (hack pairs were in their
# training data), but the concise model scores the cut-off answer far above the whole one: it is short,
# and nothing in the features says clearly enough that it stopped mid-word. The annotator penalises it.
my_prediction = {"P2B: pasted_twice": "lower",
                 "P2A: dont_know": "lower",
                 "P2A: truncated": "higher"}

exercises.check_reward_hack_ranking(my_prediction)
