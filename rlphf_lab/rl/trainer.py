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

Around it: rl/ppo_config.py (the settings), rl/policy.py (LoRA policy + value head), rl/rollout.py
(queries, the rollout record, scalarization), rl/heldout.py (held-out evaluation), rl/checkpointing.py
(saving and exact resume) and rl/run_folder.py (what a run writes, and reading it back).
"""
from __future__ import annotations

import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..models import format_chat
from ..rewards.scalarize import weighted_linear
from . import ppo
from .checkpointing import Checkpointing
from .heldout import EVAL_KEYS, HeldOutEvaluation
from .policy import PolicyWithValueHead, add_lora, disable_dropout, make_accelerator
from .ppo_config import PPOConfig
from .rollout import (MINIBATCHES, PROMPTS, REFERENCE, SAMPLING, Query, QueryFn, RewardFn, Rollout, Scalarizer, _seed,
                      as_query, scalarize_rows)
from .run_folder import (ADAPTER_DIR, CHECKPOINT_DIR, METRICS_FILE, REPLACED_DIR, _append_metrics, _truncate_metrics,
                         check_fresh_start, is_finished, read_metrics)

PHASES = ("generation", "policy", "reference", "reward")   # timed; "other" is the rest


class PPOTrainer(HeldOutEvaluation, Checkpointing):
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

        if config.adap_kl_ctrl:
            horizon = config.horizon or ppo.horizon_for_run(config.iterations * config.batch_size)
            self.kl_ctl = ppo.AdaptiveKLController(config.init_kl_coef, config.target, horizon)
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
        # left padding: generation continues from the right edge (for this call; the tokenizer is shared)
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left",
                             add_special_tokens=False).to(self.device)
        policy = self.unwrapped.policy
        # HF generate samples from the global RNG: seed it for this call, then give the caller's state back
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), \
                (policy.disable_adapter() if not use_adapter else nullcontext()):
            torch.manual_seed(seed)
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
        # how well V_old predicted the returns it was trained towards (the mean over processes)
        explained = ppo.explained_variance(r.values, returns, r.mask).to(self.device)
        stats["value/explained_variance"] = self.accelerator.reduce(explained, reduction="mean").item()

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
                step = {"loss/policy": pg_loss.detach(), "loss/value": vf_loss.detach(),
                        "policy/approx_kl": pg_stats["approx_kl"], "policy/clipfrac": pg_stats["clipfrac"],
                        "value/clipfrac": vf_stats["vf_clipfrac"]}
                for k, v in step.items():
                    totals[k] = totals.get(k, 0.0) + float(v)
                n += 1
        means = torch.tensor([totals[k] / n for k in sorted(totals)], device=self.device)
        means = self.accelerator.reduce(means, reduction="mean")
        return dict(zip(sorted(totals), means.tolist()))

    def _metrics(self, iteration, r: Rollout, scores, rewards, kl_per_response, kl_coef, stats, timer) -> dict:
        """One row of metrics.csv, namespaced: reward/, kl/, policy/, value/, loss/, response/, time/
        (and eval/ on evaluation iterations, rl/heldout.py)."""
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
             "kl/response": kl_per_response.mean().item(),              # KL(pi || pi_ref) per response, nats
             "kl/coef": kl_coef,                                        # beta used in this iteration
             "policy/entropy": gather(token_entropy).mean().item(),     # per token, at temperature tau
             "response/length": lengths.float().mean().item(),         # tokens, the EOS included
             "response/eos_fraction": gather(r.has_eos.float()).mean().item(),
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
            bar.set_postfix(reward=f"{metrics['reward/score']:.3f}", kl=f"{metrics['kl/response']:.2f}")
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
