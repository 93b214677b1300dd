"""Time of one PPO iteration on the real SmolLM2-135M-Instruct, and the same budget through TRL.

    .venv/bin/python benchmarks/bench_ppo.py [--batch 8] [--new-tokens 32] [--repeats 3] [--threads N]

Measures, in one run, on the same prompts, batch size and response length:
  * our iteration (rlphf_lab.rl.PPOTrainer.step), split into generation, reference pass, policy
    forward/backward, reward and the rest; median over --repeats iterations after one warm-up;
  * the bare compute of the same work, timed alone on the same tensors: model.generate, one
    no-grad forward with the adapter off (reference), one no-grad forward (old log-probs) and the
    forward+backward+AdamW steps of the update. Overhead ratio = iteration / sum of bare compute
    (target <= 1.25);
  * one step of TRL's RLOOTrainer (same model, LoRA config, batch, temperature, response length,
    toy reward): median seconds per step. Ratio = our iteration / RLOO step.
The comparison uses ppo_epochs=1 and one minibatch (RLOO also makes one update per batch); pass
--ppo-epochs 4 for the trainer's default. Responses may end early at EOS in both trainers; the
table shows the mean response lengths. Prints a markdown table and writes
benchmarks/results/bench_ppo.json. On a busy 2-core machine try --threads 1.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from rlphf_lab import config, models
from rlphf_lab.data import load_prompts
from rlphf_lab.rl import PPOConfig, PPOTrainer, personalized_soups, ppo, toy_length_score_fn

RESULTS = Path(__file__).resolve().parent / "results" / "bench_ppo.json"
PHASES = ["generation", "reference", "policy", "reward", "other"]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def ours(args, prompts) -> tuple[dict, dict]:
    """Median phase times of PPOTrainer.step, and bare-compute times on the same tensors."""
    model, tok = models.load_policy()
    obj = personalized_soups("P2A", toy_length_score_fn)
    cfg = PPOConfig(output_dir=tempfile.mkdtemp(), batch_size=args.batch, mini_batch_size=args.mini_batch or args.batch,
                    ppo_epochs=args.ppo_epochs, max_new_tokens=args.new_tokens, missing_eos_penalty=None)
    trainer = PPOTrainer(cfg, model, tok, prompts, **obj.trainer_kwargs())
    steps = [trainer.step(i) for i in range(args.repeats + 1)][1:]            # the first one warms up
    phases = {p: median([m[f"time/{p}"] for m in steps]) for p in PHASES}
    phases["total"] = median([m["time/total"] for m in steps])
    phases["response_length"] = median([m["response_length"] for m in steps])

    # Bare compute on one rollout's tensors: nothing but the model calls and the loss.
    queries = trainer.draw_queries(0)
    r = trainer.rollout(queries, iteration=0)
    policy, T = trainer.unwrapped.policy, r.response.shape[1]
    enc = tok([models.format_chat(tok, q.prompt) for q in queries], return_tensors="pt", padding=True,
              add_special_tokens=False)
    n_updates = args.ppo_epochs * (args.batch // cfg.mini_batch_size)
    bare = {"generation": [], "reference": [], "policy": []}
    for rep in range(args.repeats):
        torch.manual_seed(rep)
        start = time.perf_counter()
        with torch.no_grad():
            policy.generate(**enc, max_new_tokens=args.new_tokens, min_new_tokens=T, do_sample=True,
                            temperature=cfg.temperature, top_k=0, top_p=1.0, pad_token_id=tok.pad_token_id)
        bare["generation"].append(time.perf_counter() - start)

        start = time.perf_counter()
        with torch.no_grad(), policy.disable_adapter():
            policy(input_ids=r.input_ids, attention_mask=r.attention_mask, logits_to_keep=T + 1)
        bare["reference"].append(time.perf_counter() - start)

        start = time.perf_counter()
        with torch.no_grad():
            policy(input_ids=r.input_ids, attention_mask=r.attention_mask, logits_to_keep=T + 1)
        for idx in torch.arange(args.batch).split(cfg.mini_batch_size)[:1] * n_updates:
            logits = policy(input_ids=r.input_ids[idx], attention_mask=r.attention_mask[idx],
                            logits_to_keep=T + 1).logits[:, :-1]
            loss = -ppo.masked_mean(ppo.logprobs_from_logits(logits, r.response[idx], cfg.temperature), r.mask[idx])
            loss.backward()
            trainer.optimizer.step()
            trainer.optimizer.zero_grad()
        bare["policy"].append(time.perf_counter() - start)
    bare = {k: median(v) for k, v in bare.items()}
    bare["sum"] = sum(bare.values())
    return phases, bare


def trl_rloo(args, prompts) -> dict:
    """Median seconds per RLOOTrainer step on the same batch, length, LoRA and toy reward."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import RLOOConfig, RLOOTrainer

    model, tok = models.load_policy()

    def toy_reward(prompts, completions, **kwargs):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return toy_length_score_fn(["P2A"], [""] * len(texts), texts)[:, 0].tolist()

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.lengths, self.start = [], [], None

        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self.start)

        def on_log(self, _args, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                self.lengths.append(logs["completions/mean_length"])

    timer = StepTimer()
    cfg = RLOOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch, num_generations=2,
                     max_completion_length=args.new_tokens, temperature=0.7, top_p=1.0, top_k=0,
                     learning_rate=1e-4, beta=0.2, num_iterations=1, max_steps=args.repeats + 1,
                     logging_steps=1, save_strategy="no", report_to="none", use_cpu=not torch.cuda.is_available(),
                     bf16=False,                    # the model is already bf16: no autocast on top
                     gradient_checkpointing=False,  # TRL's default True re-runs forwards: slower here
                     disable_dropout=True, seed=0, dataloader_num_workers=0)
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in prompts]})
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = RLOOTrainer(model=model, reward_funcs=toy_reward, args=cfg, train_dataset=data, processing_class=tok,
                          peft_config=lora, callbacks=[timer])
    trainer.train()
    return {"step_s": median(timer.times[1:]), "response_length": median(timer.lengths[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mini-batch", type=int, default=None, help="default: the whole batch (one update)")
    parser.add_argument("--ppo-epochs", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-trl", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Prompts that ask for long answers, so most responses run to --new-tokens in both trainers.
    prompts = [p["instruction"] + " Explain in detail." for p in load_prompts("train", limit=64)]

    phases, bare = ours(args, prompts)
    rloo = None if args.skip_trl else trl_rloo(args, prompts)
    results = {"machine": f"{os.cpu_count()} cores, bf16 native: {config.cpu_supports_bf16()}",
               "device": str(config.default_device()), "dtype": str(config.default_dtype()),
               "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg(),
               "batch": args.batch, "mini_batch": args.mini_batch or args.batch, "ppo_epochs": args.ppo_epochs,
               "new_tokens": args.new_tokens, "repeats": args.repeats,
               "ours_s": phases, "bare_s": bare, "overhead_ratio": phases["total"] / bare["sum"],
               "overhead_target": 1.25, "trl_rloo": rloo,
               "ours_over_rloo": phases["total"] / rloo["step_s"] if rloo else None,
               "argv": sys.argv[1:]}

    print(f"PPO iteration, batch {args.batch}, up to {args.new_tokens} new tokens, ppo_epochs {args.ppo_epochs}, "
          f"{torch.get_num_threads()} threads (median of {args.repeats})\n")
    print("| phase | ours (s) | bare compute (s) |\n|---|---|---|")
    for p in ("generation", "reference", "policy"):
        print(f"| {p} | {phases[p]:.2f} | {bare[p]:.2f} |")
    print(f"| reward | {phases['reward']:.3f} | - |\n| other | {phases['other']:.3f} | - |")
    print(f"| **whole iteration** | **{phases['total']:.2f}** | {bare['sum']:.2f} |")
    print(f"\noverhead ratio (iteration / bare compute): {results['overhead_ratio']:.2f} (target <= 1.25)")
    print(f"mean response length: ours {phases['response_length']:.1f} tokens", end="")
    if rloo:
        print(f", RLOO {rloo['response_length']:.1f} tokens")
        print(f"TRL RLOOTrainer step: {rloo['step_s']:.2f} s; ours / RLOO = {results['ours_over_rloo']:.2f}")
    else:
        print()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
