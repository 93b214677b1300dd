"""The PPO training loop for a LoRA policy: rollout, rewards, advantages, updates, checkpoints.

One iteration, in the order the code runs it (the maths is in rl/ppo.py):

    1. draw `batch_size` prompts; each process takes its own shard
    2. generation      sample a response per prompt (chat template, left padding, temperature tau)
    3. policy pass     log pi_old(a_t|s_t) and V(s_t) for every response token
    4. reference pass  log pi_ref(a_t|s_t): the same model with its LoRA adapter switched off
    5. reward          reward_fn(plain instructions, responses) -> (B, K) -> scalarizer -> (B,)
                       -> normalised -> missing-EOS penalty -> per-token rewards with the KL penalty
    6. GAE, whitened advantages
    7. ppo_epochs passes over shuffled minibatches: clipped policy loss + vf_coef * value loss
    8. adapt the KL coefficient; log metrics; checkpoint every `save_every` iterations

    trainer = PPOTrainer(PPOConfig(output_dir="runs/p2a"), model, tokenizer, prompts, reward_fn)
    trainer.train()          # writes runs/p2a/adapter/, metrics.csv, adapter.provenance.json

The trainer runs under Hugging Face Accelerate: `accelerate launch --num_processes 2 ...` splits
every batch over the processes and averages the gradients, with no change to this file.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import random
import shutil
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..models import format_chat
from ..rewards.scalarize import weighted_linear
from ..tables import append_csv_row
from . import ppo

# reward_fn(plain instructions, responses) -> (batch, K): one column per reward model
RewardFn = Callable[[list[str], list[str]], torch.Tensor]
# scalarizer(rewards (batch, K), weights (K,)) -> (batch,), e.g. rlphf_lab.rewards.weighted_linear
Scalarizer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ADAPTER_DIR = "adapter"
VALUE_HEAD_FILE = "value_head.safetensors"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
PROVENANCE_FILE = "adapter.provenance.json"
REPLACED_DIR = "replaced"          # the run an overwrite replaces waits here until the new one is complete
# PPOConfig fields a resumed run may change: they say how long to train and where and how often to
# save, not what an iteration computes. Every other field (and fields added later) must match.
RESUMABLE_SETTINGS = ("iterations", "save_every", "output_dir", "eval_every")   # what a resumed run may change
# (eval_every only decides when held-out metrics are logged; it never changes what is trained)
PHASES = ("generation", "policy", "reference", "reward")   # timed; "other" is the rest


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
    adaptive_kl: bool = True             # adapt beta towards target_kl (else fixed)
    target_kl: float = 6.0               # KL target per response, nats
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


# --------------------------------------------------------------------------------------------
# The model: LoRA policy + value head, one module so that DDP sees a single forward
# --------------------------------------------------------------------------------------------


class PolicyWithValueHead(nn.Module):
    """A PEFT LoRA causal LM and a linear value head on its last hidden state."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy                                    # peft.PeftModel
        hidden = policy.get_base_model().config.get_text_config().hidden_size
        self.value_head = nn.Linear(hidden, 1)                  # fp32
        nn.init.zeros_(self.value_head.weight)                  # V = 0 everywhere at the start
        nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids, attention_mask, n_response: int):
        """logits (B, T, V) predicting the last n_response tokens, and values V(s_t) (B, T)."""
        lm = self.policy.get_base_model()                       # the LoRA layers are inside it
        # positions count real tokens only, so left padding does not shift them
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        hidden = lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                  use_cache=False).last_hidden_state        # (B, P + T, H)
        # state s_t (prompt + first t response tokens) ends at position P + t - 1
        h = hidden[:, -n_response - 1:-1]                                    # (B, T, H)
        # logits in fp32 (hidden state and output layer cast up): in bf16 the logits are rounded
        # to steps of 0.06-0.125 at |z| = 8-32, and that rounding would enter every ratio and KL_t
        head = lm.get_output_embeddings()
        if head.weight.dtype == torch.float32:
            logits = head(h.float())                                         # (B, T, V)
        else:
            bias = None if head.bias is None else head.bias.float()
            logits = nn.functional.linear(h.float(), head.weight.float(), bias)   # (B, T, V) fp32
        values = self.value_head(h.float()).squeeze(-1)                      # (B, T)
        return logits, values


def make_accelerator():
    """An Accelerator on the lab's device. On a machine without a GPU it gets cpu=True, which also
    lets several CPU processes (from torchrun or `accelerate launch --multi_gpu`) join one gloo group."""
    from accelerate import Accelerator

    from ..config import default_device

    return Accelerator(cpu=default_device().type == "cpu")


def add_lora(model, config: PPOConfig):
    """Wrap a causal LM with a fresh LoRA adapter (PEFT, task CAUSAL_LM); a PeftModel is kept as it is."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(model, PeftModel):
        return model
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0 (eval mode does this too; we also train in eval mode)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.eval()


# --------------------------------------------------------------------------------------------
# Rewards: (batch, K) -> one score per response
# --------------------------------------------------------------------------------------------


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

# held-out metrics (PPOTrainer.evaluate); rows of iterations without an evaluation leave them empty
EVAL_KEYS = ("eval/score", "eval/ref_score", "eval/win_rate", "eval/judge", "eval/ref_judge", "eval/judge_win_rate",
             "eval/kl", "eval/response_length", "eval/eos_fraction", "eval/short_fraction", "time/eval")
SHORT_ANSWER_WORDS = 8       # an answer with fewer words counts as short (a likely non-answer)


class PPOTrainer:
    """PPO on a LoRA adapter of `model`, rewarded by `reward_fn` (see the module docstring).

    prompts: plain instructions, Query objects, or (policy prompt, reward instruction) pairs.
    query_fn: optional; turns each drawn instruction into a Query (Prompted-MORL adds a random
    preference combination here). callback(metrics) runs after every iteration (live plots).
    eval_prompts: held-out instructions (not in `prompts`) for `evaluate`, every config.eval_every
    iterations; judge_fn: optional second scorer with reward_fn's protocol (e.g. the simulated
    annotators), whose held-out win rate against the reference says whether the reward model's
    gains are real.
    """

    def __init__(self, config: PPOConfig, model, tokenizer, prompts: Sequence, reward_fn: RewardFn, *,
                 scalarizer: Scalarizer | None = None, reward_names: Sequence[str] | None = None,
                 query_fn: QueryFn | None = None, callback: Callable[[dict], None] | None = None,
                 accelerator=None, eval_prompts: Sequence | None = None, judge_fn: RewardFn | None = None):
        if not prompts:
            raise ValueError("No prompts: pass a non-empty list of instructions (e.g. data.load_prompts('train')).")
        if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
            raise ValueError("The tokenizer's pad token must exist and differ from EOS (else padding looks like "
                             "'the answer ended'); use rlphf_lab.models.load_tokenizer, which sets <|endoftext|>.")
        self.config, self.tokenizer = config, tokenizer
        self.prompts = list(prompts)
        if query_fn is not None and not all(isinstance(p, str) for p in self.prompts):
            raise ValueError("query_fn builds Queries from plain instructions: pass prompts as strings.")
        self.reward_fn, self.query_fn, self.callback = reward_fn, query_fn, callback
        self.scalarizer = scalarizer or weighted_linear     # R = sum_i w_i r_i
        self.reward_names = list(reward_names) if reward_names else None
        self.accelerator = accelerator or make_accelerator()
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        for name in ("batch_size", "mini_batch_size"):
            if getattr(config, name) % self.world:
                raise ValueError(f"{name}={getattr(config, name)} does not split over {self.world} processes; "
                                 f"use a multiple of {self.world}.")
        self.local_batch = config.batch_size // self.world
        self.local_mini_batch = config.mini_batch_size // self.world

        if "lm_head" in config.lora_target_modules and next(model.parameters()).dtype != torch.float32:
            raise ValueError("LoRA on lm_head needs an fp32 model (the trainer computes a low-precision model's "
                             "logits in fp32 from the base weights); load it with dtype='float32' or drop lm_head.")
        torch.manual_seed(config.seed)                      # the LoRA A matrices start random
        policy = add_lora(model, config)
        disable_dropout(policy)
        module = PolicyWithValueHead(policy)
        optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=config.learning_rate)
        self.model, self.optimizer = self.accelerator.prepare(module, optimizer)
        self.device = self.accelerator.device

        if config.adaptive_kl:
            horizon = config.horizon or ppo.horizon_for_run(config.iterations * config.batch_size)
            self.kl_ctl = ppo.AdaptiveKLController(config.init_kl_coef, config.target_kl, horizon)
        else:
            self.kl_ctl = ppo.FixedKLController(config.init_kl_coef)
        self.reward_stats = ppo.RunningMoments()
        self.eval_prompts, self.judge_fn = list(eval_prompts or []), judge_fn
        if config.eval_every and not self.eval_prompts:
            raise ValueError(f"eval_every={config.eval_every} needs held-out prompts: pass eval_prompts=[...] "
                             f"(instructions not in the training prompts), or set eval_every=0.")
        if len(self.eval_prompts) % self.world:
            raise ValueError(f"{len(self.eval_prompts)} eval prompts do not split over {self.world} processes; "
                             f"use a multiple of {self.world}.")
        self._eval_reference: dict | None = None   # the reference model's held-out answers, scored once
        self.iteration = 0                 # iterations completed
        self.wall_time = 0.0               # seconds of training, summed over resumed runs
        self.history: list[dict] = []

    # ---------------------------------------------------------------------------------------
    # Rollout
    # ---------------------------------------------------------------------------------------

    @property
    def unwrapped(self) -> PolicyWithValueHead:
        return self.accelerator.unwrap_model(self.model)

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)

    def draw_queries(self, iteration: int, stream: int = PROMPTS, n: int | None = None) -> list[Query]:
        """This process's share of the prompts for one iteration: the global batch walks through
        the prompt list in a fresh random order each epoch, then every process takes its slice."""
        n = n or self.config.batch_size
        N = len(self.prompts)
        picks = []
        for pos in range(iteration * n, (iteration + 1) * n):
            epoch, k = divmod(pos, N)
            order = torch.randperm(N, generator=torch.Generator().manual_seed(_seed(self.config.seed, epoch, stream)))
            picks.append(self.prompts[order[k]])
        g = torch.Generator().manual_seed(_seed(self.config.seed, iteration, stream, rank=1))
        queries = [self.query_fn(p, g) if self.query_fn else as_query(p) for p in picks]
        share = n // self.world
        return queries[self.rank * share:(self.rank + 1) * share]

    @torch.no_grad()
    def generate(self, queries: list[Query], seed: int, use_adapter: bool = True):
        """Sample one response per query: prompt + response ids (B, P+T), the prompt's attention
        mask (B, P), and the response ids (B, T). The adapter is off for reference samples."""
        texts = [format_chat(self.tokenizer, q.prompt) for q in queries]
        self.tokenizer.padding_side = "left"              # generation continues from the right edge
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        policy = self.unwrapped.policy
        torch.manual_seed(seed)
        with policy.disable_adapter() if not use_adapter else nullcontext():
            out = policy.generate(**enc, max_new_tokens=self.config.max_new_tokens, do_sample=True,
                                  temperature=self.config.temperature, top_k=0, top_p=1.0,
                                  pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
        P = enc["input_ids"].shape[1]
        return out, enc["attention_mask"], out[:, P:]

    def decode(self, response: torch.Tensor, mask: torch.Tensor) -> list[str]:
        """Response texts without the EOS and whatever came after it."""
        lengths = mask.sum(dim=1).long().tolist()
        return [self.tokenizer.decode(row[:n], skip_special_tokens=True).strip() for row, n in zip(response, lengths)]

    @torch.no_grad()
    def forward_logprobs(self, input_ids, attention_mask, response, use_adapter: bool = True):
        """log pi(a_t|s_t), V(s_t), entropy: each (B, T), computed in minibatch-sized chunks."""
        model, T = self.unwrapped, response.shape[1]
        logprobs, values, entropy = [], [], []
        with model.policy.disable_adapter() if not use_adapter else nullcontext():
            for i in range(0, len(input_ids), self.local_mini_batch):
                chunk = slice(i, i + self.local_mini_batch)
                logits, v = model(input_ids[chunk], attention_mask[chunk], T)
                logprobs.append(ppo.logprobs_from_logits(logits, response[chunk], self.config.temperature))
                values.append(v)
                entropy.append(ppo.entropy_from_logits(logits, self.config.temperature))
        return torch.cat(logprobs), torch.cat(values), torch.cat(entropy)

    def score(self, queries: list[Query], responses: list[str], scorer: RewardFn | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw rewards (B, K) from reward_fn (or `scorer`)(plain instructions, responses), and their
        scalarization (B,)."""
        rewards = (scorer or self.reward_fn)([q.instruction for q in queries], list(responses))
        rewards = torch.as_tensor(rewards, dtype=torch.float32).to(self.device)
        if rewards.dim() != 2 or rewards.shape[0] != len(queries):
            raise ValueError(f"reward_fn returned shape {tuple(rewards.shape)}; it must return (batch, K) = "
                             f"({len(queries)}, K), one column per reward model (for one reward use r[:, None]).")
        K = rewards.shape[1]
        default = self.config.reward_weights if self.config.reward_weights is not None else [1.0] * K
        rows = [q.weights if q.weights is not None else default for q in queries]
        for w in rows:
            if len(w) != K:
                raise ValueError(f"{len(w)} reward weights for {K} reward columns; give one weight per column "
                                 f"(PPOConfig.reward_weights or Query.weights).")
        weights = torch.tensor(rows, dtype=torch.float32, device=self.device)       # (B, K)
        return rewards, scalarize_rows(rewards, weights, self.scalarizer)

    def rollout(self, queries: list[Query], iteration: int, timer: dict | None = None) -> Rollout:
        """Steps 2-5 of an iteration for this process's queries."""
        timer = {} if timer is None else timer
        with _timed(timer, "generation", self.device):
            input_ids, prompt_mask, response = self.generate(queries, _seed(self.config.seed, iteration, SAMPLING, self.rank))
            mask, has_eos = ppo.response_mask(response, self.tokenizer.eos_token_id)
            attention_mask = torch.cat([prompt_mask, mask.long()], dim=1)       # nothing after the EOS
        with _timed(timer, "policy", self.device):
            logprobs, values, entropy = self.forward_logprobs(input_ids, attention_mask, response)
        with _timed(timer, "reference", self.device):
            ref_logprobs, _, _ = self.forward_logprobs(input_ids, attention_mask, response, use_adapter=False)
        with _timed(timer, "reward", self.device):
            responses = self.decode(response, mask)
            rewards, scores = self.score(queries, responses)
        return Rollout(queries, responses, input_ids, attention_mask, response, mask, has_eos,
                       logprobs, ref_logprobs, values, entropy, rewards, scores)

    # ---------------------------------------------------------------------------------------
    # Reward normalisation
    # ---------------------------------------------------------------------------------------

    def reference_statistics(self) -> None:
        """Mean and std of the score on responses of the reference model (adapter off), as in
        Ziegler et al.: the normalised reward starts at mean 0, std 1."""
        n = max(self.world, self.config.reference_samples - self.config.reference_samples % self.world)
        queries = self.draw_queries(0, stream=REFERENCE, n=n)
        scores = []
        for i in range(0, len(queries), self.local_batch):
            chunk = queries[i:i + self.local_batch]
            ids, prompt_mask, response = self.generate(chunk, _seed(self.config.seed, i, REFERENCE, self.rank),
                                                       use_adapter=False)
            mask, _ = ppo.response_mask(response, self.tokenizer.eos_token_id)
            scores.append(self.score(chunk, self.decode(response, mask))[1])
        self.reward_stats = ppo.RunningMoments()
        self.reward_stats.update(self.accelerator.gather(torch.cat(scores)).cpu())

    def normalize_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Normalised scores; "running" first adds this batch (from all processes) to the statistics."""
        if self.config.reward_normalization == "none":
            return scores
        if self.config.reward_normalization == "running":
            self.reward_stats.update(self.accelerator.gather(scores).cpu())
        return self.reward_stats.normalize(scores)

    # ---------------------------------------------------------------------------------------
    # Held-out evaluation: fixed prompts, fixed seeds, the policy against the reference
    # ---------------------------------------------------------------------------------------

    def eval_queries(self) -> list[Query]:
        """This process's share of the held-out queries (the same ones at every evaluation)."""
        g = torch.Generator().manual_seed(_seed(self.config.seed, 0, EVAL, rank=1))
        queries = [self.query_fn(p, g) if self.query_fn else as_query(p) for p in self.eval_prompts]
        share = len(queries) // self.world
        return queries[self.rank * share:(self.rank + 1) * share]

    @torch.no_grad()
    def answer_and_score(self, queries: list[Query], use_adapter: bool = True) -> dict:
        """Seeded answers to `queries` (adapter on or off) with their scores, judge scores and KL."""
        out = {k: [] for k in ("score", "judge", "kl", "length", "eos", "short")}
        for i in range(0, len(queries), self.local_batch):
            chunk = queries[i:i + self.local_batch]
            ids, prompt_mask, response = self.generate(chunk, _seed(self.config.seed, i, EVAL, self.rank), use_adapter)
            mask, has_eos = ppo.response_mask(response, self.tokenizer.eos_token_id)
            attention_mask = torch.cat([prompt_mask, mask.long()], dim=1)
            texts = self.decode(response, mask)
            out["score"].append(self.score(chunk, texts)[1])
            if self.judge_fn is not None:
                out["judge"].append(self.score(chunk, texts, self.judge_fn)[1])
            # KL(pi || pi_ref) per answer ~= sum_t log pi(a_t|s_t) - log pi_ref(a_t|s_t), on pi's own samples
            logprobs, _, _ = self.forward_logprobs(ids, attention_mask, response)
            ref_logprobs, _, _ = self.forward_logprobs(ids, attention_mask, response, use_adapter=False)
            out["kl"].append(((logprobs - ref_logprobs) * mask).sum(dim=1))
            out["length"].append(mask.sum(dim=1))
            out["eos"].append(has_eos.float())
            out["short"].append(torch.tensor([len(t.split()) < SHORT_ANSWER_WORDS for t in texts],
                                             dtype=torch.float32, device=self.device))
        return {k: self.accelerator.gather(torch.cat(v)).cpu() for k, v in out.items() if v}

    def evaluate(self) -> dict:
        """Held-out metrics (EVAL_KEYS) of the current policy on the eval prompts:

            eval/score, eval/ref_score     mean reward-model score of the policy's / reference's answers
            eval/win_rate                  P(score(policy answer) > score(reference answer)), ties 1/2
            eval/judge, eval/ref_judge, eval/judge_win_rate   the same for judge_fn, if given
            eval/kl                        KL per answer (nats) on the policy's answers
            eval/response_length, eval/eos_fraction, eval/short_fraction (< 8 words)
        """
        start = time.perf_counter()
        queries = self.eval_queries()
        if self._eval_reference is None:            # the reference never changes: answer once
            self._eval_reference = self.answer_and_score(queries, use_adapter=False)
        ref, pol = self._eval_reference, self.answer_and_score(queries)

        def win_rate(a, b):
            # P(a > b) + 1/2 P(a = b), over prompts
            return ((a > b).float() + 0.5 * (a == b).float()).mean().item()

        m = dict.fromkeys(EVAL_KEYS, "")
        m.update({"eval/score": pol["score"].mean().item(), "eval/ref_score": ref["score"].mean().item(),
                  "eval/win_rate": win_rate(pol["score"], ref["score"]), "eval/kl": pol["kl"].mean().item(),
                  "eval/response_length": pol["length"].float().mean().item(),
                  "eval/eos_fraction": pol["eos"].mean().item(), "eval/short_fraction": pol["short"].mean().item()})
        if "judge" in pol:
            m.update({"eval/judge": pol["judge"].mean().item(), "eval/ref_judge": ref["judge"].mean().item(),
                      "eval/judge_win_rate": win_rate(pol["judge"], ref["judge"])})
        m["time/eval"] = time.perf_counter() - start
        return m

    # ---------------------------------------------------------------------------------------
    # One PPO iteration
    # ---------------------------------------------------------------------------------------

    def step(self, iteration: int) -> dict:
        """Run iteration `iteration` (0-based): rollout, advantages, ppo_epochs of updates. Returns metrics."""
        cfg, timer, start = self.config, {}, time.perf_counter()
        queries = self.draw_queries(iteration)
        r = self.rollout(queries, iteration, timer)
        kl_coef = self.kl_ctl.value

        # score -> normalised score -> missing-EOS penalty                        (B,)
        scores = self.normalize_scores(r.scores)
        scores = ppo.apply_missing_eos_penalty(scores, r.has_eos, cfg.missing_eos_penalty)
        # r_t = -beta KL_t (+ score at the last token)                           (B, T)
        rewards, kl = ppo.compute_rewards(scores, r.logprobs, r.ref_logprobs, r.mask, kl_coef)
        if cfg.whiten_rewards:
            rewards = ppo.masked_whiten(rewards, r.mask, shift_mean=False)
        advantages, returns = ppo.compute_gae(rewards, r.values, r.mask, cfg.gamma, cfg.lam)
        advantages = ppo.masked_whiten(advantages, r.mask)

        with _timed(timer, "policy", self.device):
            stats = self.ppo_update(r, advantages, returns, iteration)

        # KL per response, averaged over all processes, drives beta
        kl_per_response = self.accelerator.gather(kl.sum(dim=1))
        self.kl_ctl.update(kl_per_response.mean().item(), cfg.batch_size)

        timer["total"] = time.perf_counter() - start
        timer["other"] = timer["total"] - sum(timer.get(p, 0.0) for p in PHASES)
        return self._metrics(iteration, r, scores, rewards, kl_per_response, kl_coef, stats, timer)

    def ppo_update(self, r: Rollout, advantages, returns, iteration: int) -> dict:
        """ppo_epochs passes over shuffled minibatches; returns the mean loss statistics."""
        cfg, T = self.config, r.response.shape[1]
        g = torch.Generator().manual_seed(_seed(cfg.seed, iteration, MINIBATCHES, self.rank))
        totals: dict[str, float] = {}
        n = 0
        for _ in range(cfg.ppo_epochs):
            for idx in torch.randperm(len(r.response), generator=g).split(self.local_mini_batch):
                idx = idx.to(self.device)
                logits, values = self.model(r.input_ids[idx], r.attention_mask[idx], T)
                logprobs = ppo.logprobs_from_logits(logits, r.response[idx], cfg.temperature)
                pg_loss, pg_stats = ppo.policy_loss(logprobs, r.logprobs[idx], advantages[idx], r.mask[idx],
                                                    cfg.cliprange)
                vf_loss, vf_stats = ppo.value_loss(values, r.values[idx], returns[idx], r.mask[idx],
                                                   cfg.cliprange_value)
                # L = L_clip + c_vf * L_V
                loss = pg_loss + cfg.vf_coef * vf_loss
                self.accelerator.backward(loss)
                if cfg.max_grad_norm is not None:
                    self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
                step = {"policy_loss": pg_loss.detach(), "value_loss": vf_loss.detach(), **pg_stats, **vf_stats}
                for k, v in step.items():
                    totals[k] = totals.get(k, 0.0) + float(v)
                n += 1
        means = torch.tensor([totals[k] / n for k in sorted(totals)], device=self.device)
        means = self.accelerator.reduce(means, reduction="mean")
        return dict(zip(sorted(totals), means.tolist()))

    def _metrics(self, iteration, r: Rollout, scores, rewards, kl_per_response, kl_coef, stats, timer) -> dict:
        gather = self.accelerator.gather
        raw = gather(r.rewards)                                       # (B, K)
        names = self.reward_names or [f"reward_{k}" for k in range(raw.shape[1])]
        lengths = gather(r.mask.sum(dim=1))
        token_entropy = ppo.masked_mean(r.entropy, r.mask, dim=1)
        m = {"iteration": iteration + 1,
             "reward/score": gather(r.scores).mean().item(),           # scalarized, before normalisation
             **{f"reward/{name}": raw[:, k].mean().item() for k, name in enumerate(names)},
             "reward/normalized": gather(scores).mean().item(),       # after normalisation and EOS penalty
             "reward/total": gather(rewards.sum(dim=1)).mean().item(),  # score - beta KL, per response
             "kl": kl_per_response.mean().item(),
             "kl_coef": kl_coef,
             "entropy": gather(token_entropy).mean().item(),
             "response_length": lengths.float().mean().item(),
             "eos_fraction": gather(r.has_eos.float()).mean().item(),
             **stats}
        # the slowest process sets the pace
        times = torch.tensor([timer.get(p, 0.0) for p in (*PHASES, "other", "total")], device=self.device)
        times = self.accelerator.reduce(times, reduction="mean")
        m.update({f"time/{p}": t for p, t in zip((*PHASES, "other", "total"), times.tolist())})
        return m

    # ---------------------------------------------------------------------------------------
    # The loop
    # ---------------------------------------------------------------------------------------

    def train(self, resume: bool = False, command: str | None = None, overwrite: bool = False) -> list[dict]:
        """Run until config.iterations; with resume=True continue from the latest checkpoint.

        Writes output_dir/adapter (PEFT, safetensors, plus the value head), metrics.csv,
        adapter.provenance.json and, every save_every iterations, checkpoints/iteration-N.

        Finished work is never replaced by accident:
          - a fresh run into a folder that already holds a run raises FileExistsError, unless
            overwrite=True; then the old run's checkpoints and metrics wait in output_dir/replaced/
            (and its adapter stays in place) until the new adapter is complete;
          - resume=True continues from the newest readable checkpoint (a damaged newest one falls
            back to the one before, saying so) after checking that its settings are this config's
            (`check_resume`); without a checkpoint it starts afresh, except on a finished run, which
            it refuses (there is nothing to continue, and starting over would replace it).
        Every file is written under a temporary name and renamed when complete.
        """
        cfg = self.config
        if resume and overwrite:
            raise ValueError("resume and overwrite exclude each other: resume continues the run in the output "
                             "folder, overwrite replaces it with a new one.")
        if cfg.iterations < 1:
            raise ValueError(f"iterations={cfg.iterations}: a run needs at least 1 iteration.")
        self.command, self._earlier_runs = command or "PPOTrainer.train()", []
        checkpoint = self.resume_from_checkpoint() if resume else None
        if checkpoint is None:
            check_fresh_start(self.output_dir, overwrite=overwrite, resume=resume)
            if resume and (self.output_dir / METRICS_FILE).exists():
                self._note(f"no checkpoint in {self.output_dir / CHECKPOINT_DIR}; starting from iteration 0.")
            if cfg.reward_normalization == "reference":
                self.reference_statistics()
        self.accelerator.wait_for_everyone()               # every process checked before anything moves
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if checkpoint is None:
                self._set_old_run_aside()
            _truncate_metrics(self.output_dir / METRICS_FILE, self.iteration)
        self.accelerator.wait_for_everyone()
        self._first_iteration = self.iteration
        if self.iteration >= cfg.iterations and is_finished(self.output_dir):
            self._note(f"{self.output_dir} already finished {self.iteration} iterations; nothing to do "
                       f"(raise iterations to continue it).")
            return self.history
        bar = tqdm(range(self.iteration, cfg.iterations), desc="PPO", initial=self.iteration, total=cfg.iterations,
                   disable=not self.accelerator.is_main_process)
        for iteration in bar:
            start = time.perf_counter()
            metrics = self.step(iteration)
            self.iteration = iteration + 1
            self.wall_time += time.perf_counter() - start
            if cfg.eval_every:          # held-out metrics (not counted in the training wall time)
                due = self.iteration % cfg.eval_every == 0 or self.iteration == cfg.iterations
                metrics.update(self.evaluate() if due else dict.fromkeys(EVAL_KEYS, ""))
            self.history.append(metrics)
            bar.set_postfix(reward=f"{metrics['reward/score']:.3f}", kl=f"{metrics['kl']:.2f}")
            if self.accelerator.is_main_process:
                _append_metrics(self.output_dir / METRICS_FILE, metrics)
                if self.callback is not None:
                    self.callback(metrics)
            if cfg.save_every and self.iteration % cfg.save_every == 0 and self.iteration < cfg.iterations:
                self.save_checkpoint()
        self.save_checkpoint()
        self.save_model()
        if self.accelerator.is_main_process:
            from ..data import write_provenance

            final = self.history[-1] if self.history else (read_metrics(self.output_dir) or [{}])[-1]
            write_provenance(self.output_dir / ADAPTER_DIR, command=self.command, seed=cfg.seed,
                             wall_time_s=self.wall_time, iterations=self.iteration, processes=self.world,
                             device=str(self.device), dtype=str(self.unwrapped.policy.dtype),
                             final_metrics=final, config=asdict(cfg), runs=self._runs(),
                             kl_horizon=getattr(self.kl_ctl, "horizon", None))
            shutil.rmtree(self.output_dir / REPLACED_DIR, ignore_errors=True)   # the new run is complete now
        self.accelerator.wait_for_everyone()
        return self.history

    # ---------------------------------------------------------------------------------------
    # What is in the output folder: refuse to replace finished work, check a resume
    # ---------------------------------------------------------------------------------------

    # set by train(); these defaults serve a trainer whose save_checkpoint() is called directly
    command = "PPOTrainer.train()"
    _earlier_runs: list = []         # the runs before a resume (reassigned, never mutated)
    _first_iteration = 0

    def _note(self, message: str) -> None:
        """One line on stderr from the main process (a fallback, a fresh start, nothing to do)."""
        if self.accelerator.is_main_process:
            print(f"note: {message}", file=sys.stderr)

    def _set_old_run_aside(self) -> None:
        """Move the checkpoints and metrics of the run being replaced into output_dir/replaced/ (its
        adapter stays where it is until the new one is complete); train() deletes them at the end."""
        out, aside = self.output_dir, self.output_dir / REPLACED_DIR
        live = [p for p in (out / CHECKPOINT_DIR, out / METRICS_FILE) if p.exists()]
        if not live:
            return
        if aside.exists():   # an earlier replacement stopped half way: its own partial files go
            self._note(f"discarding the unfinished replacement run in {out} (the run it was replacing is kept "
                       f"in {aside} until this one finishes).")
            for p in live:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            return
        aside.mkdir()
        for p in live:
            p.rename(aside / p.name)
        self._note(f"the run being replaced waits in {aside} until this one is complete.")

    def _runs(self) -> list[dict]:
        """Every command that trained this adapter, with the iterations it ran (a resumed run has several)."""
        return self._earlier_runs + [{"command": self.command, "iterations": [self._first_iteration, self.iteration]}]

    def run_settings(self) -> dict:
        """Everything that decides what a run computes, as JSON values: the config without
        RESUMABLE_SETTINGS, the KL horizon the controller really uses, the reward columns, scalarizer,
        query function, prompts (a fingerprint), base model, dtype and number of processes."""
        settings = {k: v for k, v in asdict(self.config).items() if k not in RESUMABLE_SETTINGS}
        if "horizon" in settings:          # None means "fitted to the run": compare the value in use
            settings["horizon"] = getattr(self.kl_ctl, "horizon", settings["horizon"])
        prompts = json.dumps([asdict(as_query(p)) for p in self.prompts], sort_keys=True)
        policy = self.unwrapped.policy
        settings.update(reward_names=self.reward_names, scalarizer=_callable_name(self.scalarizer),
                        query_fn=_callable_name(self.query_fn),
                        prompts=f"{len(self.prompts)} prompts, sha256 {hashlib.sha256(prompts.encode()).hexdigest()[:16]}",
                        base_model=getattr(policy.get_base_model().config, "_name_or_path", None),
                        dtype=str(policy.dtype), processes=self.world)
        return json.loads(json.dumps(settings))          # lists, not tuples: as read back from JSON

    def check_resume(self, state: dict, checkpoint: Path) -> None:
        """Refuse (ResumeMismatch, a ValueError) to resume a checkpoint whose run had other settings
        than this one: the optimizer state, RNG and statistics belong to those settings, and the
        record would lie.
        Only RESUMABLE_SETTINGS may differ; iterations may grow, never drop below the checkpoint's."""
        # a field added to PPOConfig after the checkpoint was written held its default value then
        saved = {f.name: f.default if f.default is not MISSING else f.default_factory()
                 for f in fields(PPOConfig) if f.name not in RESUMABLE_SETTINGS
                 and (f.default is not MISSING or f.default_factory is not MISSING)}
        if "settings" in state:
            saved.update(state["settings"])
        else:                               # a checkpoint from before settings were recorded
            saved.update({k: v for k, v in state.get("config", {}).items() if k not in RESUMABLE_SETTINGS})
            saved["horizon"] = state.get("kl_controller", {}).get("horizon", saved.get("horizon"))
        now = self.run_settings()
        differ = [k for k in now if k in saved and saved[k] != now[k]]
        if differ:
            listing = "; ".join(f"{k}: {saved[k]!r} in the checkpoint, {now[k]!r} now" for k in differ)
            raise ResumeMismatch(f"Cannot resume {checkpoint}: it was trained with other settings ({listing}). "
                                 f"Resume with the checkpoint's settings (only {', '.join(RESUMABLE_SETTINGS)} may "
                                 f"change), or train into another output folder.")
        if self.config.iterations < state["iteration"]:
            raise ResumeMismatch(f"Cannot resume {checkpoint} with iterations={self.config.iterations}: it has "
                                 f"{state['iteration']} iterations done already; pass iterations >= {state['iteration']}.")

    def resume_from_checkpoint(self) -> Path | None:
        """Load the newest readable checkpoint whose settings match (None: there is none at all)."""
        problems = []
        for folder in reversed(checkpoint_folders(self.output_dir)):
            try:
                loaded = self.read_checkpoint(folder)
            except ResumeMismatch:                      # another run's settings: never fall back silently
                raise
            except ValueError as err:                   # damaged: fall back to the one before
                problems.append(f"{folder.name}: {err}")
                self._note(f"checkpoint {folder} cannot be used ({err}); trying the one before it.")
                continue
            self.apply_checkpoint(loaded)
            if problems:
                self._note(f"resuming from {folder.name} instead (iteration {self.iteration}).")
            return folder
        if problems:
            raise ValueError(f"No usable checkpoint in {self.output_dir / CHECKPOINT_DIR} ({'; '.join(problems)}). "
                             f"Start the run again with --overwrite.")
        return None

    # ---------------------------------------------------------------------------------------
    # Saving and resuming
    # ---------------------------------------------------------------------------------------

    def save_model(self, path: str | Path | None = None) -> Path:
        """Write the adapter folder (PEFT save_pretrained, safetensors) with value_head.safetensors inside.

        It is written as `<path>.partial` and renamed when complete: an old adapter at `path` stays
        whole until the new one replaces it."""
        from safetensors.torch import save_file

        from ..data import partial_path, replace_with

        path = Path(path) if path else self.output_dir / ADAPTER_DIR
        if self.accelerator.is_main_process:
            tmp = partial_path(path)
            shutil.rmtree(tmp, ignore_errors=True)         # left over from an interrupted save
            model = self.unwrapped
            model.policy.save_pretrained(tmp, safe_serialization=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in model.value_head.state_dict().items()},
                      tmp / VALUE_HEAD_FILE)
            replace_with(tmp, path)
        self.accelerator.wait_for_everyone()
        return path

    def save_checkpoint(self) -> Path:
        """Everything a resumed run needs: adapter + value head, optimizer, KL controller,
        reward statistics, iteration, the run's settings, and every process's RNG states.
        Written into `iteration-N.partial` and renamed when every process has written its part."""
        from ..data import partial_path, replace_with

        path = self.output_dir / CHECKPOINT_DIR / f"iteration-{self.iteration:05d}"
        tmp = partial_path(path)
        if self.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.save_model(tmp / ADAPTER_DIR)
        if self.accelerator.is_main_process:
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            state = {"iteration": self.iteration, "wall_time": self.wall_time, "kl_controller": self.kl_ctl.state_dict(),
                     "reward_stats": self.reward_stats.state_dict(), "config": asdict(self.config),
                     "settings": self.run_settings(), "runs": self._runs()}
            (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
        self.accelerator.wait_for_everyone()
        rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / f"rng_state_{self.rank}.pt")
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            replace_with(tmp, path)
        self.accelerator.wait_for_everyone()
        return path

    def read_checkpoint(self, path: str | Path) -> dict:
        """Read and check every file of a checkpoint without changing the trainer: a damaged file
        is a ValueError naming it; settings that differ from this run's raise ResumeMismatch."""
        from peft import get_peft_model_state_dict

        from ..data import read_json, read_safetensors

        path = Path(path)
        fix = "the checkpoint is damaged (an interrupted save or a full disk)"
        state = read_json(path / "trainer_state.json", fix)
        missing = [k for k in ("iteration", "wall_time", "kl_controller", "reward_stats") if k not in state]
        if missing:
            raise ValueError(f"{path / 'trainer_state.json'} lacks {missing}; {fix}.")
        self.check_resume(state, path)
        model = self.unwrapped
        adapter = read_safetensors(path / ADAPTER_DIR / "adapter_model.safetensors", fix)
        value_head = read_safetensors(path / ADAPTER_DIR / VALUE_HEAD_FILE, fix)
        for name, tensors, expected in (("adapter", adapter, get_peft_model_state_dict(model.policy)),
                                        ("value head", value_head, model.value_head.state_dict())):
            shapes = {k: tuple(v.shape) for k, v in tensors.items()}
            if shapes != {k: tuple(v.shape) for k, v in expected.items()}:
                raise ValueError(f"{path}: the {name} weights do not fit this model's layout; {fix}.")
        optimizer = _torch_load(path / "optimizer.pt", fix, weights_only=True)
        groups = [len(g["params"]) for g in optimizer.get("param_groups", [])] if isinstance(optimizer, dict) else None
        if groups != [len(g["params"]) for g in self.optimizer.param_groups]:
            raise ValueError(f"{path / 'optimizer.pt'} holds the state of another set of parameters; {fix}.")
        rng_file = path / f"rng_state_{self.rank}.pt"
        rng = _torch_load(rng_file, fix, weights_only=False) if rng_file.exists() else None
        return {"path": path, "state": state, "adapter": adapter, "value_head": value_head, "optimizer": optimizer,
                "rng": rng}

    def apply_checkpoint(self, checkpoint: dict) -> None:
        """Put a checkpoint read by read_checkpoint into the model, optimizer, controllers and RNGs."""
        from peft import set_peft_model_state_dict

        model, state, rng = self.unwrapped, checkpoint["state"], checkpoint["rng"]
        set_peft_model_state_dict(model.policy, {k: v.to(self.device) for k, v in checkpoint["adapter"].items()})
        model.value_head.load_state_dict(checkpoint["value_head"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.iteration, self.wall_time = state["iteration"], state["wall_time"]
        self.kl_ctl.load_state_dict(state["kl_controller"])
        self.reward_stats.load_state_dict(state["reward_stats"])
        self._earlier_runs = state.get("runs", [])
        if rng is not None:
            random.setstate(rng["python"])
            np.random.set_state(rng["numpy"])
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint written by save_checkpoint (same settings, same number of processes);
        nothing changes unless every file reads and fits."""
        self.apply_checkpoint(self.read_checkpoint(path))


class ResumeMismatch(ValueError):
    """A checkpoint of a run with other settings than the one asked to resume it."""


def _torch_load(file: Path, fix: str, weights_only: bool):
    try:
        return torch.load(file, map_location="cpu", weights_only=weights_only)
    except FileNotFoundError:
        raise ValueError(f"{file} is missing; {fix}.") from None
    except Exception as err:     # a truncated zip archive, an unpickling error
        raise ValueError(f"{file} cannot be read ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                         f"{fix}.") from None


def _callable_name(fn) -> str | None:
    """A readable name for a scalarizer or query function (partials show their arguments)."""
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        return f"{_callable_name(fn.func)}({', '.join(f'{k}={v!r}' for k, v in sorted(fn.keywords.items()))})"
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def existing_run(output_dir: str | Path) -> list[str]:
    """What of an earlier run worth keeping is in output_dir: an adapter or checkpoints (empty
    list: nothing; a metrics.csv alone is a run that stopped before its first checkpoint)."""
    out = Path(output_dir)
    found = [name for name in (f"{ADAPTER_DIR}/", PROVENANCE_FILE) if (out / name).exists()]
    if checkpoint_folders(out):
        found.append(f"{len(checkpoint_folders(out))} checkpoints")
    if found and (out / METRICS_FILE).exists():
        rows = max(0, len((out / METRICS_FILE).read_text().splitlines()) - 1)      # minus the header
        found.append(f"{METRICS_FILE} ({rows} iterations)")
    return found


def is_finished(output_dir: str | Path) -> bool:
    """True when output_dir holds a complete adapter with its provenance record."""
    out = Path(output_dir)
    return (out / ADAPTER_DIR / VALUE_HEAD_FILE).exists() and (out / PROVENANCE_FILE).exists()


def check_fresh_start(output_dir: str | Path, *, overwrite: bool = False, resume: bool = False) -> None:
    """Raise FileExistsError if starting a run from iteration 0 in output_dir would replace work:
    a fresh run needs overwrite when the folder holds a run; a resume that found no checkpoint
    starts over, except on a finished run (there is nothing to continue, and nothing to gain).
    The CLI calls this before it loads a model; PPOTrainer.train calls it again."""
    found = existing_run(output_dir)
    if not found:
        return
    if resume and is_finished(output_dir) and (Path(output_dir) / REPLACED_DIR).exists():
        raise FileExistsError(f"{output_dir}: an --overwrite run stopped before its first checkpoint, so there is "
                              f"nothing to resume (the run it replaces is still there: {ADAPTER_DIR}/ and "
                              f"{REPLACED_DIR}/); start it again with --overwrite.")
    if resume and is_finished(output_dir):
        raise FileExistsError(f"{output_dir} holds a finished run ({', '.join(found)}) but no checkpoint to resume "
                              f"from (checkpoints are not shipped); nothing was changed. To keep it, train into another "
                              f"output folder; to replace it, start a fresh run with --overwrite.")
    if not resume and not overwrite:
        raise FileExistsError(f"{output_dir} already holds a training run ({', '.join(found)}); nothing was changed. "
                              f"To keep it, train into another output folder; to continue it, add --resume; "
                              f"to replace it, add --overwrite.")


def checkpoint_folders(output_dir: str | Path) -> list[Path]:
    """The complete checkpoint folders under output_dir/checkpoints, oldest first (no `.partial` ones)."""
    folders = [f for f in (Path(output_dir) / CHECKPOINT_DIR).glob("iteration-*")
               if f.name.removeprefix("iteration-").isdigit() and (f / "trainer_state.json").exists()]
    return sorted(folders, key=lambda f: int(f.name.removeprefix("iteration-")))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under output_dir/checkpoints, or None."""
    folders = checkpoint_folders(output_dir)
    return folders[-1] if folders else None


# --------------------------------------------------------------------------------------------
# Small helpers: timing and the metrics CSV
# --------------------------------------------------------------------------------------------


@contextmanager
def _timed(timer: dict, phase: str, device):
    """Add the seconds spent in the block to timer[phase] (waits for the GPU, if any)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    yield
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    timer[phase] = timer.get(phase, 0.0) + time.perf_counter() - start


def _append_metrics(path: Path, metrics: dict) -> None:
    append_csv_row(path, {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in metrics.items()})


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Keep the rows of iterations <= `iteration` (all later rows belong to a run being redone).
    The shorter file is written beside the old one and renamed over it."""
    from ..data import partial_path, replace_with

    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [row for row in rows if int(row["iteration"]) <= iteration]
    if len(keep) == len(rows):
        return
    tmp = partial_path(path)
    tmp.unlink(missing_ok=True)
    for row in keep:
        _append_metrics(tmp, row)
    if not keep:
        tmp.touch()
    replace_with(tmp, path)


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics.csv (or of output_dir/metrics.csv) as dicts of floats."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
