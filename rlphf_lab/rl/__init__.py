"""PPO with LoRA for language models, single- and multi-objective.

    ppo      the maths, one equation per line: log-probs, KL penalty, GAE, clipped losses, KL control
    trainer        PPOTrainer: the loop (rollout, rewards, advantages, updates, metrics; runs under Accelerate)
    ppo_config     PPOConfig, every setting of a run
    policy         the LoRA policy with its value head
    rollout        Query, the Rollout record, scalarize_rows
    heldout        held-out evaluation every eval_every iterations
    checkpointing  saving and exact resume
    run_folder     what a run writes (adapter/, metrics.csv, checkpoints/) and reading it back
    multi    the four objectives: Personalized Soups per side, Prompted-MORL, MORLAIF, RLHF baseline

    from rlphf_lab.rl import PPOConfig, PPOTrainer, personalized_soups, toy_length_score_fn
    obj = personalized_soups("P2A", toy_length_score_fn)
    PPOTrainer(PPOConfig(output_dir="runs/p2a"), model, tok, prompts, **obj.trainer_kwargs()).train()
"""
from .multi import (GENERAL, Objective, get_scalarizer, load_score_fn, morlaif, personalized_soups, prompted_morl,
                    rlhf, toy_length_score_fn)
from .ppo import (AdaptiveKLController, FixedKLController, RunningMoments, apply_missing_eos_penalty, compute_gae,
                  compute_rewards, entropy_from_logits, logprobs_from_logits, masked_mean, masked_whiten, policy_loss,
                  response_mask, value_loss)
from .ppo_config import PPOConfig
from .rollout import Query, scalarize_rows
from .run_folder import latest_checkpoint, read_metrics
from .trainer import PPOTrainer

__all__ = ["PPOConfig", "PPOTrainer", "Query", "latest_checkpoint", "read_metrics", "scalarize_rows",
           "Objective", "personalized_soups", "prompted_morl", "morlaif", "rlhf", "toy_length_score_fn",
           "load_score_fn", "get_scalarizer", "GENERAL",
           "logprobs_from_logits", "entropy_from_logits", "response_mask", "masked_mean", "masked_whiten",
           "apply_missing_eos_penalty", "compute_rewards", "compute_gae", "policy_loss", "value_loss",
           "AdaptiveKLController", "FixedKLController", "RunningMoments"]
