"""Solutions to the exercises of notebook 01 (feedback), one cell per check.

Each cell stands alone; run this file as a script or open it with jupytext. The checks live in
rlphf_lab/exercises/feedback.py and compare with the library (rlphf_lab.feedback.annotators, .hacks).
"""
from rlphf_lab.exercises import check_hack_scores, check_noise_temperature, check_tie_label

# %% check_noise_temperature
import math

# sigmoid(-1 / T) = 0.1  <=>  e^(1/T) = 9  <=>  T = 1 / ln 9
my_temperature = 1 / math.log(9)
check_noise_temperature(my_temperature)

# %% check_tie_label
def my_label(score_a, score_b, tie_margin=0.25):
    diff = score_a - score_b
    if abs(diff) < tie_margin:     # closer than the margin, either way: the annotator cannot tell
        return "tie"
    return "A" if diff > 0 else "B"

check_tie_label(my_label)

# %% check_hack_scores
# Pasted twice: the repetition penalty. Cut off early: the "unfinished" penalty. The cheer is short,
# on topic, finished and not repeated, so no penalty fires, and its friendly markers win.
my_prediction = {"P2B: pasted_twice": "lower",
                 "P2A: truncated": "lower",
                 "P3A: cheer": "higher"}

check_hack_scores(my_prediction)
