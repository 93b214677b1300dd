"""What one PPO iteration samples: the queries it answers, the rollout it records, and how the
reward columns become one score per response.

    reward_fn(plain instructions, responses) -> rewards (B, K)      one column per reward model
    scalarizer(rewards (B, K), weights (K,)) -> scores (B,)         e.g. rewards.weighted_linear
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

# reward_fn(plain instructions, responses) -> (batch, K): one column per reward model
RewardFn = Callable[[list[str], list[str]], torch.Tensor]
# scalarizer(rewards (batch, K), weights (K,)) -> (batch,), e.g. rlphf_lab.rewards.weighted_linear
Scalarizer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Query:
    """One rollout prompt: what the policy sees, and what the reward function scores.

    For Prompted-MORL the policy sees the instruction plus a preference prompt, while the reward
    models score the *plain* instruction with the response. `weights` (one per reward column)
    override PPOConfig.reward_weights for this query; zero-weight columns are left out.
    """
    prompt: str                                  # the user turn given to the policy
    instruction: str                             # the plain instruction given to reward_fn
    weights: tuple[float, ...] | None = None     # per-query scalarization weights (K,), or None
    tag: str = ""                                # a label for logs, e.g. "P1A+P2B+P3A"


# query_fn(plain instruction, generator) -> Query: how a prompt becomes a rollout query
QueryFn = Callable[[str, torch.Generator], Query]




def scalarize_rows(rewards: torch.Tensor, weights: torch.Tensor, scalarizer: Scalarizer) -> torch.Tensor:
    """Apply the scalarizer row by row group: rows that share a weight vector are scored together,
    on the columns whose weight is non-zero. rewards, weights: (B, K) -> scores (B,)."""
    scores = torch.empty(len(rewards), dtype=rewards.dtype, device=rewards.device)
    for w in torch.unique(weights, dim=0):
        rows = (weights == w).all(dim=1)
        cols = w != 0
        scores[rows] = scalarizer(rewards[rows][:, cols], w[cols]).to(rewards.dtype)
    return scores


def as_query(item) -> Query:
    """A prompt given as a Query, a plain instruction, or a (policy prompt, reward instruction) pair."""
    if isinstance(item, Query):
        return item
    if isinstance(item, str):
        return Query(prompt=item, instruction=item)
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return Query(prompt=item[0], instruction=item[1])
    raise ValueError(f"Cannot use {item!r} as a prompt: pass a string, a Query, or a pair "
                     f"(instruction_for_policy, instruction_for_reward).")


@dataclass
class Rollout:
    """One batch of sampled responses and everything PPO needs about them (B rows, T tokens)."""
    queries: list[Query]
    responses: list[str]           # decoded, without the EOS
    input_ids: torch.Tensor        # (B, P + T) prompt (left padded) + response
    attention_mask: torch.Tensor   # (B, P + T), 0 on prompt padding and after the EOS
    response: torch.Tensor         # (B, T) response token ids
    mask: torch.Tensor             # (B, T) 1 on real response tokens (the EOS included)
    has_eos: torch.Tensor          # (B,) bool
    logprobs: torch.Tensor         # (B, T) log pi_old
    ref_logprobs: torch.Tensor     # (B, T) log pi_ref
    values: torch.Tensor           # (B, T) V_old
    entropy: torch.Tensor          # (B, T) entropy of pi_old
    rewards: torch.Tensor          # (B, K) raw rewards, one column per reward model
    scores: torch.Tensor           # (B,) scalarized, before normalisation


def _seed(seed: int, iteration: int, stream: int, rank: int = 0) -> int:
    """A distinct, reproducible seed per (run seed, iteration, purpose, process): a resumed run
    draws exactly the numbers an uninterrupted run would have drawn."""
    return ((seed * 100_003 + iteration) * 8 + stream) * 1024 + rank


PROMPTS, SAMPLING, MINIBATCHES, REFERENCE, EVAL = range(5)   # the seed streams
