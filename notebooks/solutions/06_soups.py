"""Solutions to the exercises of notebooks/06_soups.ipynb (Personalized Soups): the exact soup's weight
delta, a user's soup weights from slider positions, and which adapter changes answer length most.

Each solved cell follows a line `# %% <check name>` and ends with the notebook cell's check call; a cell runs on
its own with `torch`, `np`, `exercises` and the check_* functions (tests/test_exercises.py runs every one).
Open it with jupytext, or read it as a script.
"""

# %% check_soup_delta
def my_soup_delta(factors, weights):
    # each adapter's own delta s_i B_i A_i, weighted by w_i, then added: no cross terms B_i A_j
    return sum(weights[n] * s * B @ A for n, (A, B, s) in factors.items())


exercises.check_soup_delta(my_soup_delta)

# %% check_slider_weights
def my_slider_weights(positions):
    """positions: {dimension: t}, t = 0 all side A, t = 1 all side B -> {side: weight}, adding up to 1."""
    sides = {}
    for dim, t in positions.items():
        sides[dim + "A"] = 1 - t          # t = 0: all side A
        sides[dim + "B"] = t              # t = 1: all side B
    total = sum(sides.values())           # = the number of sliders: each dimension gets 1/n of the soup
    return {side: w / total for side, w in sides.items()}


exercises.check_slider_weights(my_slider_weights)

# %% check_adapter_length
# Length is what the concise annotator scores, and the easiest thing for a small model to change; the soup
# gives that adapter a third of the weight, and only in the combinations that contain P2A (half of them).
my_prediction = {
    "adapter": "P2A",
    "direction": "shorter",
    "soup": "less",
}

exercises.check_adapter_length(my_prediction)
