"""Generation speed of the policy model on this machine.

    python benchmarks/bench_generation.py [--repeats 3] [--new-tokens 64]

Measures, in one run: model load time cold (GGUF -> safetensors conversion into a fresh cache)
vs cached (a fresh process loading the converted folder), and sampling throughput (new tokens per
second) for batch 1 and batch 8 in fp32 and bf16. Reports medians over repeats, prints a
markdown table and writes benchmarks/results/bench_generation.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rlphf_lab import config, models

RESULTS = Path(__file__).resolve().parent / "results" / "bench_generation.json"
INSTRUCTION = "Explain how a refrigerator keeps food cold."


def time_in_fresh_process(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def load_times(repeats: int) -> dict:
    """Cold: convert the GGUF into an empty cache. Cached: load the converted folder (fresh process,
    imports done before the clock starts)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RLPHF_LAB_CACHE": tmp}
        cold = time_in_fresh_process(
            "import time, rlphf_lab.models as m\nt = time.perf_counter(); m.convert_model(verbose=False); "
            "m.load_policy(); print(time.perf_counter() - t)", env)
        code = ("import time, rlphf_lab.models as m, transformers.models.llama.modeling_llama\n"
                "t = time.perf_counter(); m.load_policy(); print(time.perf_counter() - t)")
        cached = [time_in_fresh_process(code, env) for _ in range(repeats)]
    return {"cold_load_s": cold, "cached_load_s": statistics.median(cached)}


def throughput(dtype: torch.dtype, batch: int, new_tokens: int, repeats: int) -> float:
    """New tokens per second while sampling exactly `new_tokens` per sequence (EOS ignored)."""
    model, tok = models.load_policy(dtype=dtype)
    enc = tok([models.format_chat(tok, INSTRUCTION)] * batch, return_tensors="pt", padding=True,
              add_special_tokens=False).to(model.device)
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, temperature=0.7,
              top_p=0.9, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        model.generate(**enc, max_new_tokens=4, pad_token_id=tok.pad_token_id)   # warm-up
        times = []
        for r in range(repeats):
            torch.manual_seed(r)
            start = time.perf_counter()
            model.generate(**enc, **kw)
            times.append(time.perf_counter() - start)
    return batch * new_tokens / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()

    results = {"machine": f"{os.cpu_count()} cores, bf16 native: {config.cpu_supports_bf16()}",
               "torch_threads": torch.get_num_threads(), "new_tokens": args.new_tokens, "repeats": args.repeats}
    results.update(load_times(args.repeats))
    for dtype_name, dtype in [("fp32", torch.float32), ("bf16", torch.bfloat16)]:
        for batch in (1, 8):
            results[f"tokens_per_s_{dtype_name}_batch{batch}"] = throughput(dtype, batch, args.new_tokens, args.repeats)
    for batch in (1, 8):
        results[f"bf16_speedup_batch{batch}"] = (results[f"tokens_per_s_bf16_batch{batch}"]
                                                 / results[f"tokens_per_s_fp32_batch{batch}"])

    print(f"| measure | value |\n|---|---|")
    print(f"| model load, cold (GGUF conversion + load) | {results['cold_load_s']:.1f} s |")
    print(f"| model load, cached (median) | {results['cached_load_s']:.2f} s |")
    for batch in (1, 8):
        for d in ("fp32", "bf16"):
            print(f"| sampling, batch {batch}, {d} | {results[f'tokens_per_s_{d}_batch{batch}']:.0f} new tokens/s |")
        print(f"| bf16 / fp32 speed-up, batch {batch} | {results[f'bf16_speedup_batch{batch}']:.2f}x |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
