"""PPOConfig: every setting of a PPO run, with TRL's names where the concept is TRL's.

The names are TRL 0.x's PPOConfig (the last TRL with this PPO): ppo_epochs, mini_batch_size,
init_kl_coef, adap_kl_ctrl, target, horizon, cliprange, cliprange_value, vf_coef, gamma, lam,
whiten_rewards. Note that `target` is the adaptive controller's KL target (Ziegler et al.); TRL 0.x
and CleanRL use `target_kl` for something else (stop an update early past that KL), which this
trainer does not do. missing_eos_penalty is TRL's RLOO/GRPO name.
"""
from __future__ import annotations

from dataclasses import dataclass, field


# names these settings had before they followed TRL (read from old checkpoints and records)
LEGACY_CONFIG_NAMES = {"adaptive_kl": "adap_kl_ctrl", "target_kl": "target"}


@dataclass
class PPOConfig:
    """PPO settings; names follow TRL's PPOConfig where one exists. Defaults: RLPHF's PPO
    (Jang et al. 2023) with Ziegler et al.'s adaptive KL, sized for a laptop CPU."""
    output_dir: str = "runs/ppo"
    iterations: int = 20                 # PPO iterations (rollout + update) in total
    learning_rate: float = 1e-4          # AdamW, LoRA and value head
    batch_size: int = 16                 # rollouts per iteration, over all processes
    mini_batch_size: int = 4             # rollouts per gradient step, over all processes
    ppo_epochs: int = 4                  # passes over each batch of rollouts
    cliprange: float = 0.2               # eps of the clipped policy loss
    cliprange_value: float = 0.2         # eps_v of the clipped value loss
    vf_coef: float = 0.1                 # c_vf in L = L_clip + c_vf L_V
    gamma: float = 1.0                   # discount
    lam: float = 0.95                    # GAE lambda
    max_grad_norm: float | None = 1.0    # gradient clipping (None: off)
    init_kl_coef: float = 0.2            # beta_0
    adap_kl_ctrl: bool = True            # adapt beta towards `target` (else beta stays init_kl_coef)
    target: float = 6.0                  # the adaptive controller's KL target per response, nats
    horizon: int | None = None           # K_beta of the adaptive controller, in samples (None: fit to the run,
                                         #   ppo.horizon_for_run(iterations * batch_size): beta can move ~7x)
    temperature: float = 0.7             # sampling temperature, also applied to the log-probs
    max_new_tokens: int = 64             # response length limit
    missing_eos_penalty: float | None = 1.0    # subtracted from the (normalised) score of an answer cut off
                                               #   before EOS, as in TRL's RLOO/GRPO (None: no penalty)
    reward_normalization: str = "running"      # "running", "reference" (stats of reference samples) or "none"
    reference_samples: int = 64          # responses sampled from the reference for "reference" normalisation
    whiten_rewards: bool = False         # divide per-token rewards by their std before GAE
    reward_weights: list[float] | None = None  # scalarizer weights (K,); None: all ones
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0            # dropout off: the log-probs must not be random
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    seed: int = 0
    save_every: int = 0                  # checkpoint every N iterations (0: only at the end)
    eval_every: int = 0                  # held-out evaluation every N iterations and at the end (0: never);
                                         #   needs PPOTrainer(eval_prompts=...)

    def __post_init__(self):
        if self.reward_normalization not in ("running", "reference", "none"):
            raise ValueError(f"reward_normalization={self.reward_normalization!r}; use 'running', 'reference' or 'none'.")
        if self.batch_size % self.mini_batch_size:
            raise ValueError(f"batch_size={self.batch_size} is not a multiple of mini_batch_size={self.mini_batch_size}; "
                             f"pick a mini_batch_size that divides it.")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 (got {self.temperature}): PPO needs sampled responses.")
