"""Solutions to the exercises of notebook 00 (the tour), one cell per check.

Each cell stands alone; run this file as a script or open it with jupytext. The checks live in
rlphf_lab/exercises/tour.py and compare with the library (rlphf_lab.preferences, rlphf_lab.tour).
"""
from rlphf_lab import exercises

# %% check_combination
my_combination = "P1A+P2A+P3B"   # elementary + concise + unfriendly (blunt)
exercises.check_combination(my_combination)

# %% check_all_combinations
import itertools


def my_combinations(style_sides=("P3A", "P3B")):
    return ["+".join(sides) for sides in itertools.product(["P1A", "P1B"], ["P2A", "P2B"], style_sides)]

exercises.check_all_combinations(my_combinations)

# %% check_length_prediction
# The concise prompt cuts answers by about 40%; the informative one cannot make them longer, because
# answers are cut at 128 new tokens and most answers without a preference prompt already reach the cut.
my_prediction = {"P2A": "shorter", "P2B": "same"}

exercises.check_length_prediction(my_prediction)
