"""Solutions to the exercises of notebook 05 (multi-objective RL), one cell per check.

Each cell stands alone; run this file as a script or open it with jupytext. The checks live in
rlphf_lab/exercises/multi_objective.py and compare with the library (rlphf_lab.rl.multi,
rlphf_lab.rewards.scalarize); the last one reads the shipped data/evaluation/verdicts.jsonl (no model).
"""
from rlphf_lab import exercises

# %% check_prompted_morl_reward
def my_prompted_morl_reward(score_fn, codes, instructions, responses):
    return score_fn(codes, instructions, responses).mean(dim=1)     # the answer is scored, with the plain instruction

exercises.check_prompted_morl_reward(my_prompted_morl_reward)

# %% check_scalarizer_winner
# w = (1, 1, 1): the sum is 3.1 (A) against 2.0 (B); the worst case compares A's 0.4 with B's 0.5.
# w = (1, 1, 4): w * r = (1.5, 1.2, 1.6) for A and (0.5, 0.6, 3.6) for B. The sum is 4.3 against 4.7, but the
# worst case is 1.2 against 0.5: the large weight lifted friendliness out of A's minimum.
my_prediction = {"weighted_linear, w = (1, 1, 1)": "A",
                 "worst_case, w = (1, 1, 1)": "B",
                 "weighted_linear, w = (1, 1, 4)": "B",
                 "worst_case, w = (1, 1, 4)": "A"}

exercises.check_scalarizer_winner(my_prediction)

# %% check_policy_ranking
# Prompted-MORL's answers are the most concise, which the sum rewards although its simplicity lags; the
# soup's three sides are more even, which the worst case rewards. The P2A adapter wins concision and loses
# on both other sides, so its worst side is far below vanilla's.
my_prediction = {"weighted_linear: prompted-morl or soup": "prompted-morl",
                 "worst_case: prompted-morl or soup": "soup",
                 "P2A adapter against vanilla, worst_case": "worse"}

exercises.check_policy_ranking(my_prediction)
