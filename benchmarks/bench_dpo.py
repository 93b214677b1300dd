"""Seconds per DPO step on the real SmolLM2-135M-Instruct under the precision settings a CPU can use.

    .venv/bin/python benchmarks/bench_dpo.py [--side P2A] [--batch 8] [--steps 4] [--threads 2]

One run, the same seeded pairs (rl/dpo.py's recipe: gap >= 1, at most 10% hack pairs), batch and max
length for every variant, each a fresh LoRA on a fresh model (TRL's DPOTrainer, PEFT reference):
  * autocast  fp32 weights, bf16 autocast (the recipe's setting; fp32 master weights for the adapter)
  * bf16      bf16 weights, no autocast (PEFT keeps the LoRA weights in fp32)
  * fp32      fp32 weights, no autocast
  * precompute  the recipe's setting with TRL's precompute_ref_log_probs=True; its one-off reference
              pass over the pairs is timed apart from the steps
Median seconds per step over --steps steps after the first (warm-up), and the ratio to `autocast`.
Prints a markdown table with `uptime` before and after, and writes benchmarks/results/bench_dpo.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "bench_dpo.json"
VARIANTS = {"autocast": ("float32", True, False), "bf16": ("bfloat16", False, False),
            "fp32": ("float32", False, False), "precompute": ("float32", True, True)}


def time_variant(name: str, rows: list[dict], batch: int, steps: int, max_length: int) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from rlphf_lab.models import load_policy

    dtype, autocast, precompute = VARIANTS[name]
    model, tokenizer = load_policy(device="cpu", dtype=dtype)
    data = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(output_dir=out, max_steps=steps + 1, per_device_train_batch_size=batch, learning_rate=1e-3,
                         bf16=autocast, use_cpu=True, report_to="none", max_length=max_length, logging_steps=1,
                         save_strategy="no", precompute_ref_log_probs=precompute, disable_tqdm=True,
                         dataloader_num_workers=0)
        start = time.perf_counter()          # from building the trainer: where TRL may precompute
        trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                             peft_config=LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                                    task_type="CAUSAL_LM"))
        trainer.add_callback(StepTimer())
        trainer.train()
        total = time.perf_counter() - start
    step = statistics.median(times[1:])
    # building the trainer (tokenising) and, with precompute, scoring every pair with the reference first
    return {"variant": name, "step_s": round(step, 2), "steps_s": [round(t, 2) for t in times],
            "outside_steps_s": round(total - sum(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", default="P2A")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from rlphf_lab.data import load_pairs, read_jsonl, CANDIDATES_FILE
    from rlphf_lab.rl.dpo import dpo_pairs

    candidates = read_jsonl(CANDIDATES_FILE)
    rows = dpo_pairs(candidates, load_pairs("pairs_train", candidates), args.side, min_gap=1.0, hack_share=0.1,
                     max_pairs=args.batch * (args.steps + 1), seed=0)
    load_before = os.getloadavg()
    results = [time_variant(v, rows, args.batch, args.steps, args.max_length) for v in args.variants.split(",")]
    load_after = os.getloadavg()
    base = next((r["step_s"] for r in results if r["variant"] == "autocast"), None)
    for r in results:
        r["ratio_to_autocast"] = round(r["step_s"] / base, 2) if base else None
    record = {"side": args.side, "batch": args.batch, "max_length": args.max_length, "threads": args.threads,
              "uptime_load_before": load_before, "uptime_load_after": load_after, "results": results}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; batch {args.batch}, "
          f"max length {args.max_length}, {args.threads} threads")
    print("| variant | s / step (median) | / autocast | outside the steps (s) |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['variant']} | {r['step_s']} | {r['ratio_to_autocast']} | {r['outside_steps_s']} |")


if __name__ == "__main__":
    main()
