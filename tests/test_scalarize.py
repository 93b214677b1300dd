import math

import pytest
import torch

from rlphf_lab.rewards import SCALARIZERS, contour_grid, fit_objective_weights, scalarize
from rlphf_lab.rewards.scalarize import bernoulli_nash, lower_quantile, max_median

# rewards [[1, -2, 3]] with weights [1, 1, 0.5] give r~ = [1, -2, 1.5]
R = torch.tensor([[1.0, -2.0, 3.0]])
W = [1.0, 1.0, 0.5]


@pytest.mark.parametrize("name, expected", [
    ("weighted_linear", 0.5),                    # 1 - 2 + 1.5
    ("worst_case", -2.0),                        # min
    # softmin weights e^{-1}, e^{2}, e^{-1.5} (normalised) on [1, -2, 1.5]
    ("soft_max_min", (math.exp(-1) - 2 * math.exp(2) + 1.5 * math.exp(-1.5))
                     / (math.exp(-1) + math.exp(2) + math.exp(-1.5))),   # = -1.76384
    # mean 1/6, population variance ((5/6)^2 + (13/6)^2 + (8/6)^2) / 3 = 43/18 -> 1/6 - 43/36
    ("uncertainty_weighted", -37 / 36),
    ("lower_quantile", -2.0),                    # K=3: floor(3/3) = 1 lowest value
    ("max_median", 1.0),                         # middle of [-2, 1, 1.5]
    # sigmoid(1) * sigmoid(-2) * sigmoid(1.5) = 0.731059 * 0.119203 * 0.817574
    ("bernoulli_nash", 0.0712470),
])
def test_formula_on_hand_computed_input(name, expected):
    out = scalarize(name, R, W)
    assert out.shape == (1,)
    assert out.item() == pytest.approx(expected, rel=1e-5)


def test_soft_max_min_literal_and_its_limits():
    assert scalarize("soft_max_min", R, W).item() == pytest.approx(-1.763837, abs=1e-5)
    # tau -> 0 approaches the minimum, tau -> inf the mean
    assert scalarize("soft_max_min", R, W, tau=1e-3).item() == pytest.approx(-2.0, abs=1e-4)
    assert scalarize("soft_max_min", R, W, tau=1e4).item() == pytest.approx(0.5 / 3, abs=1e-3)


def test_uncertainty_weighted_lambda_and_single_objective():
    # lam = 0 is the plain mean; one objective has population variance 0
    assert scalarize("uncertainty_weighted", R, W, lam=0.0).item() == pytest.approx(1 / 6)
    assert scalarize("uncertainty_weighted", torch.tensor([[4.0]])).item() == 4.0


def test_lower_quantile_uses_floor_k_over_3_and_at_least_one():
    # K=6: floor(6/3) = 2 lowest values, -3 and -1
    assert lower_quantile(torch.tensor([[4.0, -1.0, 2.0, 0.0, 5.0, -3.0]])).item() == -2.0
    # K=2 (and K=1): floor(K/3) = 0, so the single lowest value
    assert lower_quantile(torch.tensor([[4.0, -1.0]])).item() == -1.0
    assert lower_quantile(torch.tensor([[7.0]])).item() == 7.0


def test_max_median_even_k_averages_the_two_middle_values():
    # sorted [-2, 1, 3, 10]: (1 + 3) / 2
    assert max_median(torch.tensor([[3.0, 1.0, -2.0, 10.0]])).item() == 2.0


def test_bernoulli_nash_shift_and_never_raw_product_of_negatives():
    # shift 3: (1+3)(-2+3)(1.5+3) = 4 * 1 * 4.5
    assert bernoulli_nash(R, W, transform="shift", shift=3.0).item() == pytest.approx(18.0)
    # raw product would rank [-1, -1] (product 1) above [-1, 0] (product 0); ours is increasing
    both_bad, one_fixed = bernoulli_nash(torch.tensor([[-1.0, -1.0], [-1.0, 0.0]]))
    assert both_bad < one_fixed
    assert both_bad.item() == pytest.approx(torch.sigmoid(torch.tensor(-1.0)).item() ** 2)
    with pytest.raises(ValueError, match="shift=1.0 leaves a weighted reward <= 0"):
        bernoulli_nash(R, W, transform="shift", shift=1.0)
    with pytest.raises(ValueError, match="needs shift"):
        bernoulli_nash(R, W, transform="shift")
    with pytest.raises(ValueError, match="Unknown transform 'log'"):
        bernoulli_nash(R, W, transform="log")


def test_weights_none_means_all_ones():
    for name in SCALARIZERS:
        torch.testing.assert_close(scalarize(name, R), scalarize(name, R, [1.0, 1.0, 1.0]))


@pytest.mark.parametrize("name", list(SCALARIZERS))
def test_rows_never_mix(name):
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(6, 4, generator=g)
    weights = torch.tensor([1.0, 0.5, 2.0, 1.5])
    out = scalarize(name, rewards, weights)
    assert out.shape == (6,)
    # permuting the batch permutes the output
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    torch.testing.assert_close(scalarize(name, rewards[perm], weights), out[perm])
    # each row alone gives the same value as in the batch
    for i in range(6):
        torch.testing.assert_close(scalarize(name, rewards[i:i + 1], weights), out[i:i + 1])
    # changing one row changes that row's output only
    changed = rewards.clone()
    changed[2] = torch.tensor([5.0, -4.0, 3.0, -2.0])
    out2 = scalarize(name, changed, weights)
    keep = [0, 1, 3, 4, 5]
    torch.testing.assert_close(out2[keep], out[keep])
    assert out2[2] != out[2]


@pytest.mark.parametrize("rewards, weights, message", [
    (torch.tensor([1.0, 2.0]), None, "rewards must be 2-D"),
    (torch.zeros(2, 3, 1), None, "rewards must be 2-D"),
    (torch.zeros(2, 0), None, "K=0 objectives"),
    (torch.tensor([[1.0, float("nan")]]), None, "NaN or inf"),
    (torch.tensor([[1.0, float("inf")]]), None, "NaN or inf"),
    (torch.zeros(2, 3), [1.0, 1.0], r"weights must have shape \(3,\)"),
    (torch.zeros(2, 3), [[1.0, 1.0, 1.0]], r"weights must have shape \(3,\)"),
    (torch.zeros(2, 3), [1.0, float("nan"), 1.0], "weights contain NaN"),
])
@pytest.mark.parametrize("name", list(SCALARIZERS))
def test_bad_input_errors_name_the_problem(name, rewards, weights, message):
    with pytest.raises(ValueError, match=message):
        scalarize(name, rewards, weights)


def test_unknown_name_and_bad_tau():
    with pytest.raises(ValueError, match="Unknown scalarizer 'mean'.*weighted_linear"):
        scalarize("mean", R)
    with pytest.raises(ValueError, match="tau must be > 0"):
        scalarize("soft_max_min", R, tau=0.0)


def test_fit_objective_weights_recovers_planted_direction():
    g = torch.Generator().manual_seed(0)
    w_true = torch.tensor([2.0, -1.0, 0.5])
    diffs = torch.randn(2000, 3, generator=g)
    pref = torch.bernoulli(torch.sigmoid(diffs @ w_true), generator=g)
    w = fit_objective_weights(diffs, pref)
    assert w.shape == (3,)
    assert torch.cosine_similarity(w, w_true, dim=0) > 0.98
    # stronger regularisation shrinks the weights toward zero
    assert fit_objective_weights(diffs, pref, l2=1000.0).norm() < w.norm()


def test_fit_objective_weights_bad_input():
    with pytest.raises(ValueError, match="one label per row"):
        fit_objective_weights(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="only 0 and 1"):
        fit_objective_weights(torch.zeros(2, 2), torch.tensor([0.0, 2.0]))
    with pytest.raises(ValueError, match="at least one row"):
        fit_objective_weights(torch.zeros(0, 2), torch.zeros(0))


def test_contour_grid_shapes_and_values():
    X, Y, Z = contour_grid("weighted_linear", weights=[1.0, 2.0], lim=2, n=5)
    assert X.shape == Y.shape == Z.shape == (5, 5)
    assert X[0].tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]  # x varies along columns
    torch.testing.assert_close(torch.as_tensor(Z), torch.as_tensor(X + 2 * Y))
    _, _, Zs = contour_grid("soft_max_min", n=3, tau=0.5)
    assert Zs.shape == (3, 3)
    with pytest.raises(ValueError, match="pass 2 weights"):
        contour_grid("worst_case", weights=[1.0, 1.0, 1.0])


def test_plot_scalarizer_contours_one_panel_per_scalarizer():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlphf_lab.plots import plot_scalarizer_contours

    fig = plot_scalarizer_contours(weights=[1.0, 0.5], params={"soft_max_min": {"tau": 0.5}}, n=11)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert titles == [name.replace("_", " ") for name in SCALARIZERS]
    plt.close(fig)
