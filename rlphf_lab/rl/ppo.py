"""PPO for language models, one equation at a time (RLHF-style, as in Ziegler et al. 2019 and
Stiennon et al. 2020; layout after CleanRL's ppo.py).

A response is an episode: the state s_t is the prompt plus the first t response tokens, the
action a_t is token t. Shapes below use B = batch, T = response length, V = vocabulary.

    logprobs_from_logits   log pi(a_t | s_t) at temperature tau                 (B, T)
    response_mask          1 up to and including the first EOS, 0 after       (B, T)
    compute_rewards        per-token reward: -beta KL_t, plus the score at the end
    compute_gae            advantages A_t and returns R_t (gamma, lambda)
    policy_loss            the clipped surrogate objective
    value_loss             the clipped value regression
    AdaptiveKLController   beta follows a KL target (Ziegler et al. 2019)
    horizon_for_run        the controller's horizon for a run of a given length

Everything here is plain tensor maths on small inputs: tests/test_ppo_math.py checks each
function against numbers worked out by hand. The training loop lives in rl/trainer.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# --------------------------------------------------------------------------------------------
# Log-probabilities and entropy of the sampled tokens
# --------------------------------------------------------------------------------------------


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log pi(a_t | s_t) of the chosen tokens under the *sampling* distribution, in fp32.

    logits: (B, T, V) for the positions that predict `tokens` (B, T). Sampling divided the
    logits by the temperature, so the log-probs must too, or the PPO ratio compares two
    different distributions.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 for PPO (got {temperature}); greedy decoding has no log-probs to ratio.")
    # log pi(a | s) = z_a / tau - log sum_v exp(z_v / tau)      (fp32: bf16 log-softmax is too coarse for ratios)
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)    # (B, T, V)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)           # (B, T)


def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy of the sampling distribution at each position, in nats: (B, T, V) -> (B, T)."""
    z = logits.float() / temperature
    p = torch.softmax(z, dim=-1)
    # H = -sum_v p_v log p_v = logsumexp(z) - sum_v p_v z_v
    return torch.logsumexp(z, dim=-1) - (p * z).sum(dim=-1)


def response_mask(response: torch.Tensor, eos_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which response tokens are real: (mask (B, T) float, has_eos (B,) bool).

    A token is real up to and including the first EOS; everything after it is padding that
    `generate` filled in. A response that never produced EOS was cut off at max_new_tokens:
    all its tokens are real, and has_eos is False (it gets the missing-EOS penalty).
    """
    is_eos = response == eos_token_id                                   # (B, T)
    has_eos = is_eos.any(dim=1)                                         # (B,)
    T = response.shape[1]
    # index of the first EOS, or T - 1 when there is none
    last = torch.where(has_eos, is_eos.float().argmax(dim=1), torch.full_like(has_eos, T - 1, dtype=torch.long))
    positions = torch.arange(T, device=response.device)                 # (T,)
    mask = (positions[None, :] <= last[:, None]).float()                # (B, T)
    return mask, has_eos


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token in each row of a (B, T) mask whose real tokens come first."""
    return (mask.sum(dim=1).long() - 1).clamp(min=0)                    # (B,)


# --------------------------------------------------------------------------------------------
# Masked statistics: padding must never count
# --------------------------------------------------------------------------------------------


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of x over the positions where mask is 1 (over all of them, or along `dim`)."""
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim=dim) / mask.sum(dim=dim).clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of x over the masked positions (Bessel-corrected by default)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    if unbiased and n > 1:
        var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Standardise x using only the masked positions; padded positions come back as 0.

    shift_mean=False adds the mean back, (x - mu) / sigma + mu (TRL's whiten): the spread becomes 1 and
    the mean stays, so rewards keep their sign on average.
    """
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    # x_hat = (x - mu) / sqrt(var + eps)
    whitened = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


# --------------------------------------------------------------------------------------------
# Rewards: a KL penalty on every token, the reward model's score on the last one
# --------------------------------------------------------------------------------------------


def apply_missing_eos_penalty(scores: torch.Tensor, has_eos: torch.Tensor, penalty: float | None) -> torch.Tensor:
    """Subtract a fixed penalty from the score of every response that never produced EOS.

    A cut-off response keeps its own score, so it still tells the policy how good its content
    was, and pays `penalty` for not finishing (TRL's RLOO/GRPO `missing_eos_penalty`). The older
    recipe *replaced* such scores by a constant: when most answers are cut off, most rollouts
    then carry the same reward and nothing but "stop earlier" can be learned.
    """
    if penalty is None:
        return scores
    if not math.isfinite(penalty) or penalty < 0:
        raise ValueError(f"missing_eos_penalty must be a finite number >= 0 (got {penalty}); it is subtracted "
                         f"from the score of answers cut off before EOS.")
    # score_i = score_i - penalty   if response i has no EOS
    return scores - penalty * (~has_eos).to(scores.dtype)


def compute_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor,
                    mask: torch.Tensor, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards r_t (B, T) and the per-token KL estimate (B, T).

    scores: (B,) one scalar per response. logprobs, ref_logprobs, mask: (B, T).
    """
    # KL_t = log pi(a_t|s_t) - log pi_ref(a_t|s_t)     (the k1 estimator; its mean is KL(pi || pi_ref))
    kl = (logprobs - ref_logprobs) * mask                               # (B, T)
    # r_t = -beta * KL_t                                                 on every real token
    rewards = -kl_coef * kl                                             # (B, T)
    # r_T += score                                                       on the last real token only
    last = last_token_index(mask)                                       # (B,)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl


# --------------------------------------------------------------------------------------------
# Generalized advantage estimation
# --------------------------------------------------------------------------------------------


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                gamma: float = 1.0, lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages A_t and returns R_t = A_t + V(s_t), both (B, T), zero on padding.

    rewards, values, mask: (B, T), real tokens first then padding. After the last real token
    the episode is over: V = 0 there, so nothing leaks back from padded positions.
    """
    rewards, values = rewards * mask, values * mask
    B, T = rewards.shape
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(last_gae)
        # delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        # A_t = delta_t + gamma * lambda * A_{t+1}
        last_gae = (delta + gamma * lam * last_gae) * mask[:, t]
        advantages[:, t] = last_gae
    # R_t = A_t + V(s_t)                                                 (the value target)
    returns = (advantages + values) * mask
    return advantages, returns


# --------------------------------------------------------------------------------------------
# The two losses
# --------------------------------------------------------------------------------------------


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, cliprange: float = 0.2) -> tuple[torch.Tensor, dict]:
    """The clipped surrogate loss (Schulman et al. 2017), averaged over real tokens.

    All inputs (B, T). Returns (loss, stats) with clipfrac and approx_kl (CleanRL's k3 estimate
    of KL(pi_old || pi)), both as detached scalars.
    """
    # log rho_t = log pi(a_t|s_t) - log pi_old(a_t|s_t)                 (fp32)
    log_ratio = logprobs.float() - old_logprobs.float()
    # rho_t = pi / pi_old
    ratio = torch.exp(log_ratio)
    # L_t = max(-A_t rho_t, -A_t clip(rho_t, 1 - eps, 1 + eps))        (the pessimistic of the two)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).float(), mask)
        # KL(pi_old || pi) ~= E[(rho - 1) - log rho]                    (k3: unbiased, never negative)
        approx_kl = masked_mean((ratio - 1) - log_ratio, mask)
    return loss, {"clipfrac": clipfrac, "approx_kl": approx_kl}


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               cliprange_value: float = 0.2) -> tuple[torch.Tensor, dict]:
    """The clipped value loss: the value may move at most cliprange_value from its rollout value.

    All inputs (B, T). Returns (loss, stats) with vf_clipfrac.
    """
    # V_clip = V_old + clip(V - V_old, -eps_v, eps_v)
    values_clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    # L_V = 1/2 max((V - R)^2, (V_clip - R)^2)
    unclipped = (values - returns) ** 2
    clipped = (values_clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        vf_clipfrac = masked_mean((clipped > unclipped).float(), mask)
    return loss, {"vf_clipfrac": vf_clipfrac}



def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How much of the returns' variance the value head predicts, over real tokens (CleanRL's explained_var).

    All inputs (B, T). 1: V(s_t) predicts R_t; 0: no better than the mean return; < 0: worse.
    NaN when the returns do not vary.
    """
    with torch.no_grad():
        returns, values = returns.float(), values.float()
        # EV = 1 - Var[R - V] / Var[R]          (population variances, as np.var in CleanRL)
        var_returns = masked_var(returns, mask, unbiased=False)
        if var_returns == 0:
            return torch.tensor(float("nan"))
        return 1.0 - masked_var(returns - values, mask, unbiased=False) / var_returns


# --------------------------------------------------------------------------------------------
# The KL coefficient beta, and running reward statistics
# --------------------------------------------------------------------------------------------


@dataclass
class FixedKLController:
    """beta stays where it starts."""
    value: float = 0.2

    def update(self, current_kl: float, n_steps: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])


@dataclass
class AdaptiveKLController:
    """beta grows when the policy drifts past the KL target and shrinks when it stays below it
    (Ziegler et al. 2019, section 2.2). `current_kl` is the mean KL per response, in nats.

    The horizon K_beta (in samples) sets how fast beta can move: at most a factor
    exp(0.2 * N / K_beta) over a run of N samples. Ziegler et al.'s 10,000 suits runs of
    hundreds of thousands of samples; for a run of a few thousand use `horizon_for_run`.
    """
    value: float = 0.2        # beta_0
    target: float = 6.0       # KL_target
    horizon: int = 10000      # K_beta, in samples

    def update(self, current_kl: float, n_steps: int) -> None:
        # e_t = clip(KL / KL_target - 1, -0.2, 0.2)
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        # beta <- beta * (1 + K_beta^-1 * e_t * n_steps)
        self.value *= 1.0 + error * n_steps / self.horizon

    def state_dict(self) -> dict:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.target, self.horizon = float(state["value"]), float(state["target"]), int(state["horizon"])


def horizon_for_run(total_samples: int, max_log_change: float = 2.0) -> int:
    """A K_beta that lets beta move by up to a factor exp(max_log_change) within the run.

    Over N samples at the largest error (0.2) log beta changes by about 0.2 N / K_beta, so
    K_beta = 0.2 N / max_log_change: with the default, beta can grow or shrink about 7x.
    """
    if total_samples < 1 or max_log_change <= 0:
        raise ValueError(f"total_samples ({total_samples}) must be >= 1 and max_log_change ({max_log_change}) > 0.")
    return max(1, round(0.2 * total_samples / max_log_change))


@dataclass
class RunningMoments:
    """Running mean and standard deviation of a stream of numbers (Chan et al.'s parallel update)."""
    mean: float = 0.0
    var: float = 1.0
    count: float = 0.0

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double().flatten()
        n, batch_mean = x.numel(), x.mean().item()
        batch_var = x.var(correction=0).item() if n > 1 else 0.0
        total = self.count + n
        delta = batch_mean - self.mean
        # mu <- mu + delta * n / (N + n)
        new_mean = self.mean + delta * n / total
        # M2 <- M2_old + M2_batch + delta^2 N n / (N + n)
        m2 = self.var * self.count + batch_var * n + delta ** 2 * self.count * n / total
        self.mean, self.var, self.count = new_mean, m2 / total, total

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 0.0))

    def normalize(self, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        # x_hat = (x - mu) / (sigma + eps)
        return (x - self.mean) / (self.std + eps)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), float(state["count"])
