"""The maintained library path beside ours: the same rewards through TRL's RLOOTrainer or GRPOTrainer.

TRL 1.x has no PPOTrainer. Its online RL trainers take `reward_funcs` (callables or models) and
`reward_weights`, and combine them as a weighted sum, sum_k w_k r_k, i.e. MORLAIF's weighted_linear
scalarizer; other scalarizers (worst_case, ...) have no equivalent there. This module turns our
reward models into TRL reward functions and runs a budget-matched TRL run:

    funcs = trl_reward_funcs(scorer, ["P1A", "P2A", "P3A"])          # one TRL reward function per column
    run = train_trl("rloo", model, tok, instructions, scorer, ["P1A", "P2A", "P3A"], weights=[1, 1, 1],
                    steps=2, batch_size=4, max_new_tokens=24)
    run.history        # [{"step", "seconds", "reward", "kl"}, ...], run.model is the trained PeftModel

Budget: `steps` x `batch_size` sampled responses, as PPOTrainer's iterations x batch_size.
TRL's batch counts completions: batch_size // num_generations prompts, each answered num_generations
times (the group RLOO and GRPO compare each answer with). Checked against trl 1.16's source.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch

TRL_KINDS = ("rloo", "grpo")


def _text(completion) -> str:
    """A TRL completion as text: conversational ([{"role": "assistant", "content": ...}]) or plain."""
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return str(completion)


def _instruction(prompt) -> str:
    """The user's instruction from a TRL prompt (the last user message, or the plain string)."""
    if isinstance(prompt, list):
        users = [m["content"] for m in prompt if m.get("role") == "user"]
        return users[-1] if users else ""
    return str(prompt)


class _SharedScores:
    """Score a batch once for all K reward functions: TRL calls each function in turn with the same
    batch, and our scorer computes every column from one backbone pass."""

    def __init__(self, score_fn, codes: Sequence[str]):
        self.score_fn, self.codes = score_fn, list(codes)
        self._key, self._value = None, None

    def __call__(self, instructions: list[str], texts: list[str]) -> torch.Tensor:
        key = (tuple(instructions), tuple(texts))
        if key != self._key:
            value = torch.as_tensor(self.score_fn(self.codes, instructions, texts), dtype=torch.float32)
            self._key, self._value = key, value.reshape(len(texts), len(self.codes))
        return self._value


def trl_reward_funcs(score_fn, codes: Sequence[str]) -> list:
    """One TRL reward function per reward column, named after its code (TRL logs rewards/<code>/mean).

    Each has TRL's signature f(prompts, completions, **kwargs) -> list[float]. It scores the plain
    instruction (the dataset's "instruction" column if present, else the last user message) with the
    response, as our trainer does.
    """
    codes = list(codes)
    if not codes:
        raise ValueError("trl_reward_funcs needs at least one reward code, e.g. ['P2A'].")
    shared = _SharedScores(score_fn, codes)
    funcs = []
    for k, code in enumerate(codes):
        def reward(prompts, completions, instruction=None, _k=k, **kwargs) -> list[float]:
            instructions = list(instruction) if instruction is not None else [_instruction(p) for p in prompts]
            return shared(instructions, [_text(c) for c in completions])[:, _k].tolist()
        reward.__name__ = code
        funcs.append(reward)
    return funcs


def trl_dataset(instructions: Sequence[str], preference_prompts: Sequence[str] | None = None):
    """A conversational prompt dataset: "prompt" (the user turn the policy sees) and "instruction"
    (the plain instruction the reward models score; TRL passes extra columns to reward functions)."""
    from datasets import Dataset

    shown = list(preference_prompts) if preference_prompts is not None else list(instructions)
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in shown],
                              "instruction": list(instructions)})


def trl_config(kind: str = "rloo", *, output_dir: str | None = None, steps: int = 2, batch_size: int = 4,
               num_generations: int = 2, max_new_tokens: int = 24, learning_rate: float = 1e-4,
               beta: float = 0.2, temperature: float = 0.7, reward_weights: Sequence[float] | None = None,
               seed: int = 0):
    """An RLOOConfig / GRPOConfig matched to PPOConfig's budget and sampling, set up for a CPU:
    bf16 autocast and gradient checkpointing off (TRL's defaults are on), dropout off, no saving."""
    if kind not in TRL_KINDS:
        raise ValueError(f"Unknown TRL trainer {kind!r}; use one of {TRL_KINDS}.")
    if batch_size % num_generations:
        raise ValueError(f"batch_size={batch_size} must be a multiple of num_generations={num_generations} "
                         f"(TRL answers batch_size // num_generations prompts, num_generations times each).")
    if kind == "rloo":
        from trl import RLOOConfig as Config
    else:
        from trl import GRPOConfig as Config
    return Config(output_dir=output_dir or tempfile.mkdtemp(prefix=f"trl-{kind}-"),
                  per_device_train_batch_size=batch_size, num_generations=num_generations,
                  max_completion_length=max_new_tokens, temperature=temperature, top_p=1.0, top_k=0,
                  learning_rate=learning_rate, beta=beta, num_iterations=1, max_steps=steps,
                  reward_weights=list(reward_weights) if reward_weights is not None else None,
                  logging_steps=1, save_strategy="no", report_to="none", use_cpu=not torch.cuda.is_available(),
                  bf16=False,                     # the model is already bf16 where the CPU has it: no autocast
                  gradient_checkpointing=False,   # re-running forwards only costs time at this size
                  disable_dropout=True, seed=seed, dataloader_num_workers=0)


@dataclass
class TRLRun:
    """A finished TRL run: per-step history, training seconds, and the trained PeftModel."""
    kind: str
    history: list[dict] = field(default_factory=list)   # {"step", "seconds" (cumulative), "reward", "kl", ...}
    seconds: float = 0.0
    model: object = None
    trainer: object = None


def _step_callback(run: TRLRun):
    """A transformers TrainerCallback filling run.history from TRL's logs and the step wall times."""
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            run.seconds += time.perf_counter() - self.start
            run.history.append({"step": state.global_step, "iteration": state.global_step, "seconds": run.seconds})

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and run.history and "reward" in logs:
                row = run.history[-1]
                row["reward"] = row["reward/score"] = float(logs["reward"])
                for key in ("kl", "completions/mean_length", "completions/clipped_ratio"):
                    if key in logs:
                        row[key] = float(logs[key])

    return StepLog()


def train_trl(kind: str, model, tokenizer, instructions: Sequence[str], score_fn, codes: Sequence[str], *,
              weights: Sequence[float] | None = None, steps: int = 2, batch_size: int = 4, num_generations: int = 2,
              max_new_tokens: int = 24, learning_rate: float = 1e-4, beta: float = 0.2, temperature: float = 0.7,
              lora_r: int = 16, lora_alpha: int = 32, target_modules: Sequence[str] = ("q_proj", "v_proj"),
              seed: int = 0, output_dir: str | None = None) -> TRLRun:
    """Train a LoRA adapter on `model` with TRL's RLOO ("rloo") or GRPO ("grpo") trainer, rewarded by
    sum_k weights[k] * score_fn(codes)[:, k]; the same LoRA layout as PPOConfig's defaults."""
    from peft import LoraConfig

    if kind == "rloo":
        from trl import RLOOTrainer as Trainer
    elif kind == "grpo":
        from trl import GRPOTrainer as Trainer
    else:
        raise ValueError(f"Unknown TRL trainer {kind!r}; use one of {TRL_KINDS}.")
    args = trl_config(kind, output_dir=output_dir, steps=steps, batch_size=batch_size,
                      num_generations=num_generations, max_new_tokens=max_new_tokens, learning_rate=learning_rate,
                      beta=beta, temperature=temperature, reward_weights=weights, seed=seed)
    lora = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=list(target_modules),
                      bias="none", task_type="CAUSAL_LM")
    run = TRLRun(kind)
    trainer = Trainer(model=model, reward_funcs=trl_reward_funcs(score_fn, codes), args=args,
                      train_dataset=trl_dataset(instructions), processing_class=tokenizer, peft_config=lora,
                      callbacks=[_step_callback(run)])
    trainer.train()
    run.model, run.trainer = trainer.model, trainer
    run.model.eval()
    return run


def reward_per_second(before: float, after: float, seconds: float) -> float:
    """Reward gained per second of training: (after - before) / seconds."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0 (got {seconds}).")
    return (after - before) / seconds
