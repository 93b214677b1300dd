"""PPO maths on tiny tensors, each checked against numbers worked out by hand (rl/ppo.py)."""
import math

import pytest
import torch

from rlphf_lab.rl import ppo
from rlphf_lab.rl.rollout import scalarize_rows
from rlphf_lab.rewards.scalarize import weighted_linear
from rlphf_lab.rewards import worst_case


# --------------------------------------------------------------------------------------------
# GAE
# --------------------------------------------------------------------------------------------

def test_gae_matches_hand_computation_and_ignores_padding():
    # row 0: three real tokens.   gamma = 1, lambda = 0.95
    #   t=2: delta = 1 + 0   - 0.7 = 0.3                    A_2 = 0.3
    #   t=1: delta = 0 + 0.7 - 0.6 = 0.1                    A_1 = 0.1 + 0.95 * 0.3   = 0.385
    #   t=0: delta = 0 + 0.6 - 0.5 = 0.1                    A_0 = 0.1 + 0.95 * 0.385 = 0.46575
    #   R_t = A_t + V_t = [0.96575, 0.985, 1.0]
    # row 1: two real tokens, then padding holding garbage (reward 9, value 5) that must not leak
    #   t=1: delta = 1 + 0 (episode over) - 0.6 = 0.4       A_1 = 0.4
    #   t=0: delta = 0 + 0.6 - 0.5 = 0.1                    A_0 = 0.1 + 0.95 * 0.4 = 0.48
    #   R = [0.98, 1.0, 0]
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 9.0]])
    values = torch.tensor([[0.5, 0.6, 0.7], [0.5, 0.6, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = ppo.compute_gae(rewards, values, mask, gamma=1.0, lam=0.95)
    torch.testing.assert_close(adv, torch.tensor([[0.46575, 0.385, 0.3], [0.48, 0.4, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[0.96575, 0.985, 1.0], [0.98, 1.0, 0.0]]))


def test_gae_with_lambda_one_is_monte_carlo_return_minus_value():
    # lambda = 1, gamma = 0.9: A_t = sum_k gamma^k r_{t+k} - V_t
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.3, -0.2, 0.1]])
    adv, _ = ppo.compute_gae(rewards, values, torch.ones(1, 3), gamma=0.9, lam=1.0)
    expected = torch.tensor([[1 + 0.9 * 2 + 0.81 * 3 - 0.3, 2 + 0.9 * 3 + 0.2, 3 - 0.1]])
    torch.testing.assert_close(adv, expected)


# --------------------------------------------------------------------------------------------
# Clipped losses
# --------------------------------------------------------------------------------------------

def _policy(ratio: float, advantage: float, cliprange: float = 0.2):
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    loss, stats = ppo.policy_loss(logp, torch.zeros(1, 1), torch.tensor([[advantage]]), torch.ones(1, 1), cliprange)
    loss.backward()
    return loss.item(), stats["clipfrac"].item(), logp.grad.item()


def test_policy_loss_inside_the_clip_is_the_plain_surrogate():
    # rho = 1.1 within [0.8, 1.2]: L = -A rho, dL/dlogp = -A rho
    loss, clipfrac, grad = _policy(1.1, advantage=1.0)
    assert loss == pytest.approx(-1.1) and clipfrac == 0.0 and grad == pytest.approx(-1.1)


def test_policy_loss_beyond_the_clip_has_no_gradient_when_it_would_help():
    # rho = 1.5, A = +1: max(-1.5, -1.2) = -1.2, clipped, no gradient pushes rho further up
    loss, clipfrac, grad = _policy(1.5, advantage=1.0)
    assert loss == pytest.approx(-1.2) and clipfrac == 1.0 and grad == 0.0
    # rho = 0.5, A = -1: max(0.5, 0.8) = 0.8, clipped, no gradient pushes rho further down
    loss, clipfrac, grad = _policy(0.5, advantage=-1.0)
    assert loss == pytest.approx(0.8) and clipfrac == 1.0 and grad == 0.0


def test_policy_loss_keeps_the_pessimistic_unclipped_term():
    # rho = 1.5, A = -1: max(1.5, 1.2) = 1.5 -- a step that made things worse is not clipped away
    loss, clipfrac, grad = _policy(1.5, advantage=-1.0)
    assert loss == pytest.approx(1.5) and clipfrac == 0.0 and grad == pytest.approx(1.5)
    # rho = 0.5, A = +1: max(-0.5, -0.8) = -0.5
    loss, clipfrac, grad = _policy(0.5, advantage=1.0)
    assert loss == pytest.approx(-0.5) and clipfrac == 0.0 and grad == pytest.approx(-0.5)


def test_policy_loss_ignores_padding_and_reports_approx_kl():
    logp = torch.tensor([[math.log(1.1), 50.0]])          # a padded position with an absurd value
    adv = torch.tensor([[1.0, 1e6]])
    loss, stats = ppo.policy_loss(logp, torch.zeros(1, 2), adv, torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(-1.1)
    # k3: (rho - 1) - log rho = 0.1 - log 1.1
    assert stats["approx_kl"].item() == pytest.approx(0.1 - math.log(1.1), rel=1e-5)


def test_value_loss_clipped_at_and_beyond_the_clip():
    old, mask = torch.tensor([[0.5]]), torch.ones(1, 1)
    # V = 1.0 moved 0.5 > 0.2: V_clip = 0.7; R = 2: max((1-2)^2, (0.7-2)^2) = 1.69 -> 0.845
    loss, stats = ppo.value_loss(torch.tensor([[1.0]]), old, torch.tensor([[2.0]]), mask, 0.2)
    assert loss.item() == pytest.approx(0.845) and stats["vf_clipfrac"].item() == 1.0
    # V = 0.6 within the clip: 0.5 * (0.6 - 2)^2 = 0.98
    loss, stats = ppo.value_loss(torch.tensor([[0.6]]), old, torch.tensor([[2.0]]), mask, 0.2)
    assert loss.item() == pytest.approx(0.98) and stats["vf_clipfrac"].item() == 0.0
    # V = 1.0, R = 0.8: unclipped (0.2)^2 = 0.04 beats clipped (0.7-0.8)^2 = 0.01 -> 0.02
    loss, _ = ppo.value_loss(torch.tensor([[1.0]]), old, torch.tensor([[0.8]]), mask, 0.2)
    assert loss.item() == pytest.approx(0.02)


# --------------------------------------------------------------------------------------------
# Rewards: KL on every token, score on the last real one; EOS penalty; masks
# --------------------------------------------------------------------------------------------

def test_kl_penalty_everywhere_and_score_at_the_last_real_token():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-1.5, -2.0, -2.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards, kl = ppo.compute_rewards(torch.tensor([10.0, 20.0]), logprobs, ref, mask, kl_coef=0.1)
    # KL_t = logp - logp_ref = [0.5, 0, -1], and 0 on padding
    torch.testing.assert_close(kl, torch.tensor([[0.5, 0.0, -1.0], [0.5, 0.0, 0.0]]))
    # r = -0.1 KL, plus the score on the last real token (index 2 in row 0, index 1 in row 1)
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, 0.0, 0.1 + 10.0], [-0.05, 20.0, 0.0]]))


def test_response_mask_stops_after_the_first_eos():
    eos = 2
    response = torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8], [2, 0, 0, 0], [5, 2, 6, 2]])
    mask, has_eos = ppo.response_mask(response, eos)
    torch.testing.assert_close(mask, torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]]))
    assert has_eos.tolist() == [True, False, True, True]
    assert ppo.last_token_index(mask).tolist() == [1, 3, 0, 1]


def test_missing_eos_penalty_is_subtracted_so_a_cut_off_answer_keeps_its_content_signal():
    scores, has_eos = torch.tensor([3.0, 4.0, 5.0]), torch.tensor([True, False, True])
    assert ppo.apply_missing_eos_penalty(scores, has_eos, 1.0).tolist() == [3.0, 3.0, 5.0]
    assert ppo.apply_missing_eos_penalty(scores, has_eos, None).tolist() == [3.0, 4.0, 5.0]
    # two cut-off answers with different content still get different rewards (the old recipe gave both -1)
    cut = torch.tensor([False, False])
    better, worse = ppo.apply_missing_eos_penalty(torch.tensor([2.0, -0.5]), cut, 1.0).tolist()
    assert better - worse == pytest.approx(2.5)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="missing_eos_penalty"):
            ppo.apply_missing_eos_penalty(scores, has_eos, bad)


def test_masked_mean_and_whiten_ignore_padding():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert ppo.masked_mean(x, mask).item() == 2.5
    torch.testing.assert_close(ppo.masked_mean(x, mask, dim=1), torch.tensor([1.5, 3.5]))
    w = ppo.masked_whiten(x, mask)
    # real entries 1..4: mean 2.5, unbiased var 5/3
    expected = (torch.tensor([1.0, 2.0, 3.0, 4.0]) - 2.5) / math.sqrt(5 / 3)
    torch.testing.assert_close(w[mask.bool()], expected, rtol=1e-5, atol=1e-6)
    assert w[:, 2].tolist() == [0.0, 0.0]
    # changing padded values changes nothing
    x2 = x.clone()
    x2[:, 2] = torch.tensor([7.0, 8.0])
    torch.testing.assert_close(ppo.masked_whiten(x2, mask), w)
    # shift_mean=False keeps the mean
    assert ppo.masked_mean(ppo.masked_whiten(x, mask, shift_mean=False), mask).item() == pytest.approx(2.5)


# --------------------------------------------------------------------------------------------
# Log-probs at the sampling temperature, entropy
# --------------------------------------------------------------------------------------------

def test_logprobs_divide_logits_by_the_temperature_in_fp32():
    logits = torch.tensor([[[0.0, 1.0]]], dtype=torch.bfloat16)
    token = torch.tensor([[1]])
    # tau = 0.5: z / tau = [0, 2]: log p(1) = 2 - log(1 + e^2)
    lp = ppo.logprobs_from_logits(logits, token, temperature=0.5)
    assert lp.dtype == torch.float32
    assert lp.item() == pytest.approx(2 - math.log(1 + math.e ** 2), rel=1e-6)
    # tau = 1: log p(1) = 1 - log(1 + e)
    assert ppo.logprobs_from_logits(logits, token).item() == pytest.approx(1 - math.log(1 + math.e), rel=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        ppo.logprobs_from_logits(logits, token, temperature=0.0)


def test_entropy_of_uniform_and_of_sharpened_distribution():
    assert ppo.entropy_from_logits(torch.zeros(1, 1, 8)).item() == pytest.approx(math.log(8))
    logits = torch.tensor([[[0.0, 1.0]]])
    p = torch.softmax(logits / 0.5, -1)[0, 0]
    assert ppo.entropy_from_logits(logits, 0.5).item() == pytest.approx(-(p * p.log()).sum().item(), rel=1e-6)


# --------------------------------------------------------------------------------------------
# KL controllers and running reward statistics
# --------------------------------------------------------------------------------------------

def test_adaptive_kl_moves_beta_towards_the_target():
    up = ppo.AdaptiveKLController(0.2, target=6.0, horizon=10000)
    up.update(current_kl=12.0, n_steps=100)         # KL above target: error clipped to +0.2
    assert up.value == pytest.approx(0.2 * (1 + 0.2 * 100 / 10000))
    down = ppo.AdaptiveKLController(0.2, target=6.0, horizon=10000)
    down.update(current_kl=5.4, n_steps=100)        # error = 5.4 / 6 - 1 = -0.1
    assert down.value == pytest.approx(0.2 * (1 - 0.1 * 100 / 10000))
    fixed = ppo.FixedKLController(0.2)
    fixed.update(100.0, 100)
    assert fixed.value == 0.2
    restored = ppo.AdaptiveKLController()
    restored.load_state_dict(up.state_dict())
    assert restored == up


def test_horizon_for_run_lets_beta_move_measurably_within_the_run():
    iterations, batch = 125, 8                              # a 1,000-rollout run
    horizon = ppo.horizon_for_run(iterations * batch)
    assert horizon == 100                                   # 0.2 * 1000 / 2
    up, old = ppo.AdaptiveKLController(0.05, target=6.0, horizon=horizon), ppo.AdaptiveKLController(0.05, 6.0, 10000)
    for _ in range(iterations):                             # the policy stays far above its KL target
        up.update(current_kl=30.0, n_steps=batch)
        old.update(current_kl=30.0, n_steps=batch)
    assert up.value / 0.05 > 5.0                            # beta grew about e^2 = 7.4x
    assert old.value / 0.05 < 1.25                          # the fixed 10,000 horizon: barely moved
    down = ppo.AdaptiveKLController(0.05, target=6.0, horizon=horizon)
    for _ in range(iterations):
        down.update(current_kl=0.0, n_steps=batch)
    assert down.value / 0.05 < 0.2
    with pytest.raises(ValueError):
        ppo.horizon_for_run(0)


def test_running_moments_equal_the_statistics_of_everything_seen():
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, -4.0])
    m = ppo.RunningMoments()
    m.update(a)
    m.update(b)
    both = torch.cat([a, b]).double()
    assert m.mean == pytest.approx(both.mean().item())
    assert m.std == pytest.approx(both.std(correction=0).item())
    assert m.normalize(torch.tensor([m.mean])).item() == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------------------------
# Scalarizing rows with per-query weights
# --------------------------------------------------------------------------------------------

def test_scalarize_rows_groups_by_weights_and_drops_zero_weight_columns():
    rewards = torch.tensor([[1.0, -5.0, 3.0], [2.0, 4.0, -1.0], [0.5, 0.5, 0.5]])
    weights = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    # worst case over the non-zero-weight columns only: row 0 ignores its -5
    torch.testing.assert_close(scalarize_rows(rewards, weights, worst_case), torch.tensor([1.0, -1.0, 0.5]))
    torch.testing.assert_close(scalarize_rows(rewards, weights, weighted_linear), torch.tensor([4.0, 5.0, 1.0]))


def test_explained_variance_is_one_for_a_perfect_value_head_and_zero_for_the_mean():
    returns = torch.tensor([[1.0, 2.0, 3.0, 99.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])              # the padded 99 must not count
    assert ppo.explained_variance(returns, returns, mask).item() == pytest.approx(1.0)
    assert ppo.explained_variance(torch.full_like(returns, 2.0), returns, mask).item() == pytest.approx(0.0)
    # a constant offset is fully predicted: Var[R - V] = 0
    assert ppo.explained_variance(returns - 5.0, returns, mask).item() == pytest.approx(1.0)
    assert ppo.explained_variance(-returns, returns, mask).item() == pytest.approx(1 - 4.0)   # Var[2R] = 4 Var[R]
    assert torch.isnan(ppo.explained_variance(returns, torch.ones_like(returns), mask))


def test_legacy_metric_names_read_back_namespaced(tmp_path):
    from rlphf_lab.rl.run_folder import _truncate_metrics, read_metrics

    path = tmp_path / "metrics.csv"
    path.write_text("iteration,reward/score,kl,kl_coef,response_length\n1,0.5,0.1,0.2,40\n2,0.6,0.3,0.2,38\n")
    assert read_metrics(path)[1] == {"iteration": 2.0, "reward/score": 0.6, "kl/response": 0.3, "kl/coef": 0.2,
                                     "response/length": 38.0}
    _truncate_metrics(path, 2)          # a resumed legacy run: the file itself is renamed, no row lost
    assert path.read_text().splitlines()[0] == "iteration,reward/score,kl/response,kl/coef,response/length"
    assert len(read_metrics(path)) == 2
