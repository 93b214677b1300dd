import math

import pytest
import torch

from rlphf_lab.rewards import (adaptation_curve, bradley_terry_loss, choose_next_pair, feature_diff,
                               fit_user_weights, laplace_covariance, preference_accuracy, train_pooled,
                               train_rfm)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny models: one thread is faster than fighting over a busy machine's cores
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_bradley_terry_loss_hand_made_case():
    # equal rewards: -log sigmoid(0) = log 2
    assert bradley_terry_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))
    # margins 1 and -1: mean of log(1 + e^-1) and log(1 + e^1)
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx((math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 2)
    with pytest.raises(ValueError, match="same shape"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(2))


# Synthetic raters with high disagreement: true features phi*(y) (3-d), even raters weigh
# feature 0 by +2, odd raters by -2 (plus noise): pooled labels are close to coin flips.
D, N_ITEMS, N_RATERS = 16, 300, 6


def _population():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(N_ITEMS, D, generator=g)
    true_phi = torch.tanh(emb @ torch.randn(D, 3, generator=g) * 2 / D ** 0.5)  # (n_items, 3)
    sign = torch.tensor([1.0 if h % 2 == 0 else -1.0 for h in range(N_RATERS)])
    w = sign[:, None] * torch.tensor([2.0, 0.0, 0.0]) + 0.5 * torch.randn(N_RATERS, 3, generator=g)
    return emb, true_phi, w


def _pairs(emb, true_phi, w, per_rater, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(N_ITEMS, (N_RATERS * per_rater,), generator=g)
    b = torch.randint(N_ITEMS, (N_RATERS * per_rater,), generator=g)
    h = torch.arange(N_RATERS).repeat_interleave(per_rater)
    a_wins = (true_phi[a] * w[h]).sum(-1) >= (true_phi[b] * w[h]).sum(-1)
    return emb[torch.where(a_wins, a, b)], emb[torch.where(a_wins, b, a)], h


@pytest.fixture(scope="module")
def trained():
    emb, true_phi, w = _population()
    chosen, rejected, h = _pairs(emb, true_phi, w, per_rater=150, seed=1)
    test = _pairs(emb, true_phi, w, per_rater=100, seed=2)
    kw = dict(d=4, hidden=32, epochs=40, batch_size=512, progress=False)
    model, history = train_rfm(chosen, rejected, h, N_RATERS, **kw)
    pooled, _ = train_pooled(chosen, rejected, **kw)
    return model, history, pooled, test


def test_rfm_separates_disagreeing_raters(trained):
    model, history, pooled, (tc, tr, th) = trained
    assert len(history["loss"]) == 40 and history["loss"][-1] < history["loss"][0]
    rfm_acc = preference_accuracy(model, tc, tr, th)
    pooled_acc = preference_accuracy(pooled, tc, tr)
    assert rfm_acc > 0.7
    assert rfm_acc > pooled_acc + 0.2


def test_rfm_training_is_seeded():
    emb, true_phi, w = _population()
    chosen, rejected, h = _pairs(emb, true_phi, w, per_rater=20, seed=3)
    kw = dict(d=2, hidden=8, epochs=2, progress=False)
    m1, h1 = train_rfm(chosen, rejected, h, N_RATERS, seed=5, **kw)
    m2, h2 = train_rfm(chosen, rejected, h, N_RATERS, seed=5, **kw)
    assert h1 == h2
    torch.testing.assert_close(m1.rater_weights.weight, m2.rater_weights.weight)


def test_k0_returns_the_population_prior(trained):
    model = trained[0]
    prior = model.mean_rater_weight()
    assert prior.shape == (4,)
    torch.testing.assert_close(fit_user_weights(torch.zeros(0, 4), prior=prior), prior)
    # RFM features feed straight into adaptation
    tc, tr, _ = trained[3]
    diffs = feature_diff(model, tc[:10], tr[:10])
    assert diffs.shape == (10, 4) and fit_user_weights(diffs, prior=prior).shape == (4,)


def _planted(n, seed, w_true, noisy=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(w_true), generator=g)
    y = torch.bernoulli(torch.sigmoid(x @ w_true), generator=g) if noisy else (x @ w_true > 0).float()
    return x, y


W_TRUE = torch.tensor([3.0, -2.0, 1.0, 0.0, 1.5])


def test_adaptation_recovers_planted_rater_weights():
    x, y = _planted(200, 0, W_TRUE)
    w = fit_user_weights(x, y, l2=1.0)
    assert torch.cosine_similarity(w, W_TRUE, dim=0) > 0.9
    # labels=None means rows are chosen-minus-rejected: flip the losing rows and get the same fit
    chosen_minus_rejected = torch.where(y[:, None] == 1, x, -x)
    torch.testing.assert_close(fit_user_weights(chosen_minus_rejected), w, atol=1e-4, rtol=1e-4)


def test_few_pairs_stay_near_the_prior():
    x, y = _planted(3, 0, W_TRUE)
    prior = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    near = fit_user_weights(x, y, l2=1000.0, prior=prior)
    assert (near - prior).norm() < 0.05


def test_adaptation_bad_input():
    with pytest.raises(ValueError, match="no labels and no prior"):
        fit_user_weights(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="one per row of feat_diff"):
        fit_user_weights(torch.zeros(4, 3), torch.ones(3))
    with pytest.raises(ValueError, match="only 0 and 1"):
        fit_user_weights(torch.zeros(2, 3), torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"prior must have shape \(3,\)"):
        fit_user_weights(torch.zeros(2, 3), prior=torch.zeros(4))
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_user_weights(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="have no labelled pairs"):
        train_rfm(torch.zeros(2, 4), torch.zeros(2, 4), torch.tensor([0, 2]), n_raters=3, progress=False)
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        train_rfm(torch.zeros(2, 4), torch.zeros(2, 4), torch.tensor([0, 2]), n_raters=2, progress=False)


def test_choose_next_pair_prefers_uncertain_and_skips_asked():
    pool = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    w = torch.tensor([1.0, 0.0])
    # scores p (1 - p) x^T Sigma x with Sigma = I: pair 0 is nearly certain, p = sigmoid(5),
    # 0.0066 * 25 = 0.17; pairs 1 and 2 have p = 1/2: 0.25 * 1 and 0.25 * 9
    assert choose_next_pair(pool, w, laplace_covariance(torch.zeros(0, 2), w)) == 2
    assert choose_next_pair(pool, w, torch.eye(2), asked=[2]) == 1
    # without a covariance only p (1 - p) counts: the certain pair is never picked
    assert choose_next_pair(pool, w, asked=[1, 2]) == 0 and choose_next_pair(pool, w) != 0
    with pytest.raises(ValueError, match="has been asked already"):
        choose_next_pair(pool, w, asked=[0, 1, 2])


def test_active_is_not_worse_than_random():
    x_pool, y_pool = _planted(300, 1, W_TRUE)
    x_test, y_test = _planted(1000, 2, W_TRUE, noisy=False)
    ks = (0, 5, 20)
    rand = adaptation_curve(x_pool, y_pool, x_test, y_test, ks=ks, strategy="random", seeds=range(5))
    active = adaptation_curve(x_pool, y_pool, x_test, y_test, ks=ks, strategy="active")
    assert rand[0] == active[0] == 0.5          # zero prior: a coin flip
    assert rand[20] > 0.75                        # adaptation learns from 20 pairs
    assert active[20] >= rand[20] - 0.03
