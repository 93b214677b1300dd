"""Notebook 04 (PPO): per-token rewards (the KL penalty on every real token, the score on the last), GAE by
hand, where the clipped surrogate has no gradient, and what the adaptive KL controller did in the shipped P2A run."""
from __future__ import annotations

import math

import torch

from ..rl import ppo
from .report import report


def check_token_rewards(fn) -> bool:
    """Notebook 04: fn(scores (B,), logprobs, ref_logprobs, mask (B, T), kl_coef) -> rewards (B, T) with
    r_t = -beta (log pi - log pi_ref) on real tokens, the score added at the LAST REAL token, 0 on padding."""
    scores = torch.tensor([1.0, -2.0, 0.5])
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -1.0], [-0.3, -0.2, -0.1, -0.4], [-2.0, -1.0, -1.5, -0.7]])
    ref = torch.tensor([[-1.5, -2.0, -1.0, -1.0], [-0.3, -0.4, -0.3, -0.4], [-1.0, -1.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    try:
        got = fn(scores.clone(), logprobs.clone(), ref.clone(), mask.clone(), 0.1)
        got = torch.as_tensor(got[0] if isinstance(got, tuple) else got, dtype=torch.float32)
    except Exception as err:  # show the student's error, do not crash the notebook
        return report(False, f"your function raised {type(err).__name__}: {err}")
    want, _ = ppo.compute_rewards(scores, logprobs, ref, mask, 0.1)
    if got.shape != want.shape:
        return report(False, f"expected shape {tuple(want.shape)} (one reward per token), got {tuple(got.shape)}.")
    if torch.allclose(got, want, atol=1e-6):
        return report(True, "a KL penalty on every real token, the score on the last real one, zeros on padding.")
    if (got * (1 - mask)).abs().sum() > 0:
        return report(False, "padding tokens (mask 0) got a reward: multiply by the mask, and put the score on "
                              "the last token where mask is 1, not at position T-1.")
    if not torch.allclose(got[0], want[0], atol=1e-6):
        return report(False, f"row 0 (no padding): expected {want[0].tolist()}, got {got[0].tolist()}. "
                              f"r_t = -kl_coef * (logprobs - ref_logprobs), plus the score at the end.")
    return report(False, f"rows with padding are wrong: expected {want[1:].tolist()}, got {got[1:].tolist()}. "
                          f"The last real token of row i is mask[i].sum() - 1.")


# ---- GAE by hand: a reversed loop, V = 0 after the last real token ------------------------------------------

# two answers: the first 4 real tokens, the second 2 real tokens then padding where the value head still
# outputs numbers (it always does; they must not leak into the last real token's delta)
GAE_CASE = {"rewards": [[0.0, -0.1, 0.0, 1.0], [0.2, -0.5, 0.0, 0.0]],
            "values": [[0.3, 0.5, 0.4, 0.8], [0.1, -0.2, 0.9, 0.9]],
            "mask": [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]}
GAE_SETTINGS = ((1.0, 0.95), (0.9, 0.5))      # (gamma, lam): RLHF's, then others to see the arguments are used


def _forward_gae(rewards, values, mask, gamma, lam):
    """The classic wrong loop, forward in time (A_{t+1} is not known yet when A_t is computed)."""
    rewards, values = rewards * mask, values * mask
    B, T = rewards.shape
    adv, last = torch.zeros_like(rewards), torch.zeros(B)
    for t in range(T):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros(B)
        last = (rewards[:, t] + gamma * next_value - values[:, t] + gamma * lam * last) * mask[:, t]
        adv[:, t] = last
    return adv


def _rounded(t) -> list:
    return [[round(v, 4) for v in row] for row in t.tolist()]


def check_gae(fn) -> bool:
    """Notebook 04: fn(rewards, values, mask, gamma, lam) -> advantages (B, T), or (advantages, returns), with
        delta_t = r_t + gamma V(s_{t+1}) - V(s_t),   A_t = delta_t + gamma lam A_{t+1},   V = 0 after the last real token,
    zero on padding; compared with `rl.ppo.compute_gae` for two (gamma, lam) settings."""
    rewards, values, mask = (torch.tensor(GAE_CASE[k]) for k in ("rewards", "values", "mask"))
    for n, (gamma, lam) in enumerate(GAE_SETTINGS):
        try:
            out = fn(rewards.clone(), values.clone(), mask.clone(), gamma, lam)
            got = torch.as_tensor(out[0] if isinstance(out, tuple) else out, dtype=torch.float32)
            got_returns = torch.as_tensor(out[1], dtype=torch.float32) if isinstance(out, tuple) else None
        except Exception as err:  # show the student's error, do not crash the notebook
            return report(False, f"your function raised {type(err).__name__}: {err}")
        want, want_returns = ppo.compute_gae(rewards, values, mask, gamma, lam)
        if got.shape != want.shape:
            return report(False, f"expected one advantage per token, shape {tuple(want.shape)}, got {tuple(got.shape)}.")
        if torch.allclose(got, want, atol=1e-5):
            if got_returns is not None and not (got_returns.shape == want_returns.shape
                                                and torch.allclose(got_returns, want_returns, atol=1e-5)):
                return report(False, f"the advantages are right, the returns are not: expected {_rounded(want_returns)}, "
                                      f"got {_rounded(got_returns)}. R_t = A_t + V(s_t) on real tokens, 0 on padding.")
            continue
        if n > 0:
            return report(False, f"right for gamma = {GAE_SETTINGS[0][0]}, lam = {GAE_SETTINGS[0][1]}, but not for "
                                  f"gamma = {gamma}, lam = {lam}: expected {_rounded(want)}, got {_rounded(got)}. "
                                  f"Use the gamma and lam your function is given, in delta_t and in A_t.")
        if not torch.allclose(got[0], want[0], atol=1e-5):
            if torch.allclose(got[0], _forward_gae(rewards, values, mask, gamma, lam)[0], atol=1e-5):
                why = ("your loop runs forward in time, so when it computes A_t it does not know A_{t+1} yet: the "
                       "final score never reaches the early tokens. Loop t from T-1 down to 0 "
                       "(for t in reversed(range(T))), carrying A_{t+1} back")
            else:
                why = "delta_t = r_t + gamma V(s_{t+1}) - V(s_t) (V = 0 after the last token), A_t = delta_t + gamma lam A_{t+1}"
            return report(False, f"row 0 (no padding): expected {_rounded(want[:1])[0]}, got {_rounded(got[:1])[0]}: {why}.")
        if (got * (1 - mask)).abs().sum() > 1e-6:
            return report(False, f"row 1 has advantages on its padding: expected {_rounded(want[1:])[0]}, got "
                                  f"{_rounded(got[1:])[0]}. Multiply A_t by mask[:, t]: padded tokens were never sampled.")
        return report(False, f"row 1 (2 real tokens, then padding): expected {_rounded(want[1:])[0]}, got "
                              f"{_rounded(got[1:])[0]}. The episode ends at the last real token, so V(s_{{t+1}}) = 0 "
                              f"there; the value head's {values[1, 2].item():g} on the padding leaked in. Multiply the "
                              f"values by the mask first.")
    a, _ = ppo.compute_gae(rewards, values, mask, *GAE_SETTINGS[0])
    return report(True, f"the same as ppo.compute_gae: the final score of row 0 reaches its first token as "
                        f"A_0 = {a[0, 0].item():.3f}, and row 1 stops at its last real token.")


# ---- where the clipped surrogate has no gradient -----------------------------------------------------------

CLIP_TOKENS = ((0.5, 1.0), (1.0, 1.0), (1.5, 1.0), (0.5, -1.0), (1.0, -1.0), (1.5, -1.0))   # (ratio, advantage)
CLIP_RANGE = 0.2


def clip_gradients() -> torch.Tensor:
    """d L_clip / d log pi(a_t | s_t) of each CLIP_TOKENS token, measured through `rl.ppo.policy_loss`."""
    ratio, adv = (torch.tensor([[t[i] for t in CLIP_TOKENS]]) for i in (0, 1))
    logprobs = torch.log(ratio).requires_grad_(True)
    loss, _ = ppo.policy_loss(logprobs, torch.zeros_like(ratio), adv, torch.ones_like(ratio), cliprange=CLIP_RANGE)
    loss.backward()
    return logprobs.grad[0]


def check_clip_gradient(prediction) -> bool:
    """Notebook 04: predict, for each (ratio, advantage) of CLIP_TOKENS, whether the clipped surrogate's gradient
    is "zero" or "nonzero"; the check measures it with autograd through `rl.ppo.policy_loss`."""
    choices = ("zero", "nonzero")
    if not isinstance(prediction, (list, tuple)) or len(prediction) != len(CLIP_TOKENS):
        return report(False, f"give a list of {len(CLIP_TOKENS)} words, one per token of the table, each 'zero' or "
                              f"'nonzero'; got {prediction!r}.")
    guess = [str(p).strip().lower() for p in prediction]
    bad = [i + 1 for i, g in enumerate(guess) if g not in choices]
    if bad:
        return report(False, f"token(s) {bad}: write 'zero' or 'nonzero' (your prediction, before you look).")
    grads = clip_gradients()
    measured = ["zero" if abs(g) < 1e-9 else "nonzero" for g in grads.tolist()]
    lo, hi = 1 - CLIP_RANGE, 1 + CLIP_RANGE
    wrong = []
    for i, ((rho, a), g, m) in enumerate(zip(CLIP_TOKENS, guess, measured)):
        if g == m:
            continue
        unclipped, clipped = -a * rho, -a * min(max(rho, lo), hi)
        side = "good" if a > 0 else "bad"
        if m == "zero":
            why = (f"-A rho = {unclipped:+.2f} and -A clip(rho) = {clipped:+.2f}; the max picks the clipped one, a "
                   f"constant: this {side} token has already moved as far as its advantage asks for")
        else:
            why = f"-A rho = {unclipped:+.2f} is the larger (pessimistic) term, so the max keeps rho itself"
            if not lo <= rho <= hi:
                why += f": a {side} token whose probability moved the wrong way is pulled back, however far it went"
        wrong.append(f"token {i + 1} (ratio {rho}, A = {a:+.0f}) is {m}, not {g}: {why}")
    if wrong:
        return report(False, "; ".join(wrong) + f". Clipping removes the gain only in the direction the advantage "
                                                 f"favours: above {hi} for A > 0, below {lo} for A < 0.")
    return report(True, f"gradients {[round(v, 3) for v in grads.tolist()]}: outside [{lo}, {hi}] only the moves that "
                        f"would help further are cut off (ratio {hi}+ with A > 0, below {lo} with A < 0); a token that "
                        f"moved the wrong way keeps its full gradient. PPO is pessimistic, not symmetric.")


# ---- the adaptive KL controller of the shipped P2A run (predicted, then read from its metrics.csv) ----------

KL_RUN = "P2A"
KL_CHOICES = {"KL in the last iteration": ("above the target", "below the target"),
              "beta over the run": ("rose", "fell", "stayed within 1%"),
              "beta with horizon_for_run": ("rose", "fell", "stayed within 1%")}


def kl_run(name: str = KL_RUN) -> tuple[list[dict], dict]:
    """(the metrics rows, the PPO config) of the shipped run data/adapters/<name>, with current metric and config
    names (`run_folder.read_metrics`, ppo_config.LEGACY_CONFIG_NAMES)."""
    import json

    from ..config import ADAPTERS_DIR
    from ..rl.ppo_config import LEGACY_CONFIG_NAMES
    from ..rl.run_folder import read_metrics

    rows = read_metrics(ADAPTERS_DIR / name / "metrics.csv")
    record = json.loads((ADAPTERS_DIR / name / "adapter.provenance.json").read_text())
    config = {LEGACY_CONFIG_NAMES.get(k, k): v for k, v in record["config"].items()}
    return rows, config


def _direction(start: float, end: float) -> str:
    return "stayed within 1%" if abs(end / start - 1) < 0.01 else ("rose" if end > start else "fell")


def check_kl_controller(prediction: dict) -> bool:
    """Notebook 04: predict from the shipped P2A run's settings (adaptive KL, target 6 nats, horizon K = 10000, 10
    iterations of 8 answers) whether its last KL was above the target, whether beta rose, fell or stayed within 1%,
    and what `horizon_for_run`'s K would have done with the same KL measurements. The check reads
    data/adapters/P2A/metrics.csv and replays `rl.ppo.AdaptiveKLController` on its KL column."""
    if not isinstance(prediction, dict) or any(k not in prediction for k in KL_CHOICES):
        return report(False, f"give a dict with the keys {list(KL_CHOICES)}; got {prediction!r}.")
    guess = {k: str(prediction[k]).strip().lower() for k in KL_CHOICES}
    bad = [k for k, allowed in KL_CHOICES.items() if guess[k] not in allowed]
    if bad:
        return report(False, "replace " + "; ".join(f"{k!r}: {prediction[k]!r} by one of {', '.join(map(repr, KL_CHOICES[k]))}"
                                                    for k in bad) + " (your prediction, before you look).")
    try:
        rows, cfg = kl_run()
        kls, betas = [r["kl/response"] for r in rows], [r["kl/coef"] for r in rows]
        target, horizon, batch = float(cfg["target"]), int(cfg["horizon"]), int(cfg["batch_size"])
    except (OSError, KeyError, ValueError) as err:
        return report(False, f"could not read the shipped {KL_RUN} run ({err}); `rlphf-lab train-policy` writes it.")
    # replay: beta of iteration i+1 = beta of iteration i updated with iteration i's KL, as PPOTrainer.step does
    short = ppo.horizon_for_run(len(rows) * batch)
    replay = {}
    for K in (horizon, short):
        ctl = ppo.AdaptiveKLController(betas[0], target, K)
        for kl in kls[:-1]:
            ctl.update(kl, batch)
        replay[K] = ctl.value
    below = sum(kl < target for kl in kls)
    measured = {"KL in the last iteration": "above the target" if kls[-1] > target else "below the target",
                "beta over the run": _direction(betas[0], betas[-1]),
                "beta with horizon_for_run": _direction(betas[0], replay[short])}
    line = (f"{KL_RUN}: KL {kls[0]:.1f} -> {kls[-1]:.1f} nats (target {target:g}, below it in {below} of {len(kls)} "
            f"iterations); beta {betas[0]:.5f} -> {betas[-1]:.5f} ({betas[-1] / betas[0] - 1:+.2%}) with K = {horizon}; "
            f"replayed with K = horizon_for_run({len(rows) * batch}) = {short}: {replay[short]:.5f} "
            f"({replay[short] / betas[0] - 1:+.0%})")
    wrong = []
    if guess["KL in the last iteration"] != measured["KL in the last iteration"]:
        wrong.append(f"the last KL was {measured['KL in the last iteration']}: "
                     + ("the KL starts at 0 (the LoRA adapter starts as a no-op) and grows as the policy drifts from "
                        "the reference, and nothing stops it crossing the target: beta only reacts afterwards"
                        if kls[-1] > target else
                        "the KL starts at 0 (the LoRA adapter starts as a no-op), and this short run never drifted "
                        "that far from the reference"))
    if guess["beta over the run"] != measured["beta over the run"]:
        wrong.append(f"beta {measured['beta over the run']}: each update multiplies it by 1 + e n / K with "
                     f"e = clip(KL / target - 1, -0.2, 0.2), and with n = {batch} answers per iteration and "
                     f"K = {horizon} that is at most a factor {1 + 0.2 * batch / horizon:.5f} per iteration "
                     f"(exp(0.2 N / K) = {math.exp(0.2 * len(rows) * batch / horizon):.4f} over the run)")
    if guess["beta with horizon_for_run"] != measured["beta with horizon_for_run"]:
        wrong.append(f"with K = {short} beta {measured['beta with horizon_for_run']}: the KL was below the target in "
                     f"{below} of the {len(kls)} iterations, so e < 0 and beta shrinks (by up to {0.2 * batch / short:.0%} "
                     f"an iteration), which lets the policy move further")
    if wrong:
        text = "; ".join(wrong)
        return report(False, f"{line}. {text[0].upper()}{text[1:]}.")
    agree = abs(replay[horizon] - betas[-1]) < 1e-6
    return report(True, f"{line}. Ziegler et al.'s K = {horizon} is meant for runs of hundreds of thousands of answers: "
                        f"on {len(rows) * batch} it leaves beta fixed in all but name, which is why PPOConfig now "
                        f"defaults to horizon_for_run"
                        + (f" (replayed with K = {horizon}, the controller ends on the logged {betas[-1]:.5f})." if agree else "."))
