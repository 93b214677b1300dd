"""Solutions to the exercises of notebooks/07_evaluation.ipynb (evaluation): a win rate with ties counting
half, a bootstrap interval over prompts, a paired difference, and whether the soup beats preference prompting.

Each solved cell follows a line `# %% <check name>` and ends with the notebook cell's check call; a cell runs on
its own with `torch`, `np`, `exercises` and the check_* functions (tests/test_exercises.py runs every one).
Open it with jupytext, or read it as a script.
"""

# %% check_win_rate
def my_win_rate(verdicts):
    """verdicts: [{"prompt_id": ..., "side": ..., "verdict": "win" | "tie" | "loss"}, ...] -> the win rate."""
    points = {"win": 1.0, "tie": 0.5, "loss": 0.0}   # a tie: as good as vanilla on that side
    return sum(points[v["verdict"]] for v in verdicts) / len(verdicts)


check_win_rate(my_win_rate)

# %% check_bootstrap_ci
def my_bootstrap_ci(verdicts, n_boot=1000, seed=0):
    rng = np.random.default_rng(seed)
    by_prompt = {}                                                # prompt id -> the points of its verdicts
    for v in verdicts:
        by_prompt.setdefault(v["prompt_id"], []).append({"win": 1.0, "tie": 0.5, "loss": 0.0}[v["verdict"]])
    sums = np.array([sum(p) for p in by_prompt.values()])
    counts = np.array([len(p) for p in by_prompt.values()])
    rates = []
    for _ in range(n_boot):
        sample = rng.integers(len(sums), size=len(sums))          # prompts, with replacement
        rates.append(sums[sample].sum() / counts[sample].sum())   # each with all its verdicts
    return float(np.quantile(rates, 0.025)), float(np.quantile(rates, 0.975))


check_bootstrap_ci(my_bootstrap_ci)

# %% check_paired_difference
def my_paired_difference(verdicts, method, other):
    points = {"win": 1.0, "tie": 0.5, "loss": 0.0}
    per_prompt = {method: {}, other: {}}                     # method -> prompt id -> points of its verdicts
    for v in verdicts:
        if v["method"] in per_prompt:
            per_prompt[v["method"]].setdefault(v["prompt_id"], []).append(points[v["verdict"]])
    both = sorted(set(per_prompt[method]) & set(per_prompt[other]))     # the prompts judged for both
    return float(np.mean([np.mean(per_prompt[method][x]) - np.mean(per_prompt[other][x]) for x in both]))


check_paired_difference(my_paired_difference)

# %% check_soup_vs_prompting
# Prompting is lopsided (short, simple, warm whatever was asked), so it loses the B sides; the soup follows
# the combination it is given.
my_prediction = "soup"

check_soup_vs_prompting(my_prediction)
