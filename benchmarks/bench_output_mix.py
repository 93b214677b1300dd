"""Decoding speed of mixing in outputs (MOD) against the number of adapters, on the real SmolLM2-135M-Instruct.

    .venv/bin/python benchmarks/bench_output_mix.py [--adapters 1 2 3 4 5 6] [--new-tokens 32] [--repeats 3]
                                                    [--threads N] [--switching] [--out FILE]

For k = 1..6 random stand-in adapters (r=16, q_proj/v_proj; speed does not depend on the values),
greedy decoding of one short prompt, tokens per second (median over --repeats):
  * output mix of k adapters (`soups.generate_mixed_outputs`: one forward of k rows per token,
    a different adapter per row, each row its own KV cache);
  * the weight soup of the same k adapters (`set_soup_weights`, HF generate: one forward per token
    with k LoRA branches per layer);
  * the base model (adapters off): the ceiling for both.
--switching adds the design alternative that `soups.outputs` does not use: k forwards in a row per
token, switching the active adapter between them (`use_adapter`), one KV cache per adapter.
Prints `uptime` before and after (the numbers mean little on a busy machine), a markdown table, and
writes benchmarks/results/bench_output_mix.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from rlphf_lab import data, models, soups
from rlphf_lab.preferences import SIDES

RESULTS = Path(__file__).resolve().parent / "results" / "bench_output_mix.json"
PROMPT = "Why is the sky blue?"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        load = os.getloadavg()
        return f"load average: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"


def hf_tokens_per_second(model, tok, n_tokens: int) -> float:
    """The model as it is (base or weight soup), HF generate, greedy, exactly n_tokens new tokens."""
    enc = tok([models.format_chat(tok, PROMPT)], return_tensors="pt", add_special_tokens=False).to(model.device)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=n_tokens, min_new_tokens=n_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return (out.shape[1] - enc["input_ids"].shape[1]) / (time.perf_counter() - start)


def mixed_tokens_per_second(model, tok, names, n_tokens: int) -> float:
    """Output mix of `names` at equal weights, greedy; counts the tokens actually decoded (EOS may come first)."""
    start = time.perf_counter()
    steps = list(soups.outputs.mixed_token_steps(model, tok, [models.format_chat(tok, PROMPT)],
                                                 {n: 1.0 for n in names}, max_new_tokens=n_tokens,
                                                 temperature=0, top_p=1.0, seed=0))
    return len(steps) / (time.perf_counter() - start)


@torch.no_grad()
def switching_tokens_per_second(model, tok, names, n_tokens: int) -> float:
    """The alternative: per token, k forwards one after another, the active adapter switched between them."""
    enc = tok([models.format_chat(tok, PROMPT)], return_tensors="pt", add_special_tokens=False).to(model.device)
    saved = soups.soup_weights(model)
    caches, inputs = [None] * len(names), [enc["input_ids"]] * len(names)
    start = time.perf_counter()
    for _ in range(n_tokens):
        logprobs = []
        for i, name in enumerate(names):
            soups.use_adapter(model, name)
            out = model(input_ids=inputs[i], cache=caches[i], use_cache=True, logits_to_keep=1)
            caches[i] = out.cache
            logprobs.append(out.logits[:, -1].float().log_softmax(-1))
        token = soups.mix_logprobs(torch.stack(logprobs), [1 / len(names)] * len(names)).argmax(-1, keepdim=True)
        inputs = [token] * len(names)
    seconds = time.perf_counter() - start
    soups.set_soup_weights(model, {n: w for n, w in saved.items() if w > 0})
    return n_tokens / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--switching", action="store_true", help="also time switching adapters per forward")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not all(1 <= k <= len(SIDES) for k in args.adapters):
        parser.error(f"--adapters: each k between 1 and {len(SIDES)}")
    up_before = uptime()
    print("uptime:", up_before)
    med, n = statistics.median, args.new_tokens

    model, tok = models.load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = soups.random_lora_adapters(model, SIDES, tmp, std=0.02, seed=0)
        model = soups.load_adapters(model, dirs)
    with model.disable_adapter():                                     # warm-up
        hf_tokens_per_second(model, tok, 4)
    mixed_tokens_per_second(model, tok, SIDES[:2], 4)

    with model.disable_adapter():
        base = [hf_tokens_per_second(model, tok, n) for _ in range(args.repeats)]
    rows = []
    for k in args.adapters:
        names = list(SIDES[:k])
        soups.set_soup_weights(model, {name: 1.0 for name in names})
        soup = [hf_tokens_per_second(model, tok, n) for _ in range(args.repeats)]
        mixed = [mixed_tokens_per_second(model, tok, names, n) for _ in range(args.repeats)]
        row = {"adapters": k, "output_mix_tokens_per_s": med(mixed), "weight_soup_tokens_per_s": med(soup),
               "base_tokens_per_s": med(base), "output_mix_runs": mixed, "weight_soup_runs": soup}
        if args.switching:
            row["switching_tokens_per_s"] = med([switching_tokens_per_second(model, tok, names, n)
                                                 for _ in range(args.repeats)])
        rows.append(row)
        print(f"k={k}: output mix {row['output_mix_tokens_per_s']:.1f}, weight soup "
              f"{row['weight_soup_tokens_per_s']:.1f}, base {med(base):.1f} tokens/s", flush=True)

    up_after = uptime()
    switching = " switching (tok/s) |" if args.switching else ""
    print(f"\n| adapters k | output mix (tok/s) | weight soup (tok/s) | base model (tok/s) | output mix / soup |"
          f"{switching}\n|---|---|---|---|---|" + ("---|" if args.switching else ""))
    for r in rows:
        extra = f" {r['switching_tokens_per_s']:.1f} |" if args.switching else ""
        print(f"| {r['adapters']} | {r['output_mix_tokens_per_s']:.1f} | {r['weight_soup_tokens_per_s']:.1f} | "
              f"{r['base_tokens_per_s']:.1f} | {r['output_mix_tokens_per_s'] / r['weight_soup_tokens_per_s']:.2f} |"
              f"{extra}")
    setup = {"new_tokens": n, "repeats": args.repeats, "prompt": PROMPT, "r": 16, "lora_alpha": 32,
             "dtype": str(next(model.parameters()).dtype), "device": str(model.device),
             "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
             "uptime_before": up_before, "uptime_after": up_after, "versions": data.package_versions()}
    print(f"\nmedians of {args.repeats} runs, {n} new tokens, greedy; {setup['dtype']} on {setup['device']}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs")
    print("uptime:", up_after)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "setup": setup}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
