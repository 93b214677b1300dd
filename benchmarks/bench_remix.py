"""Re-mix mid-answer on the real SmolLM2-135M-Instruct with six LoRA adapters (r=16, q_proj/v_proj).

    .venv/bin/python benchmarks/bench_remix.py [--prefix 100] [--repeats 5] [--threads N] [--out FILE]

Measures (issue 13, target on the lab's 2-core CPU):
  * move -> first token under the new weights, answer prefix of --prefix tokens: the debounce has
    fired, `soups.continue_answer` re-mixes the model and feeds prompt + prefix again (a fresh
    forward builds the KV cache) until its first text piece; target <= 150 ms (median of --repeats),
    for the live soup, the folded soup (fold=True) and the output mixture (mix="outputs");
  * mid-sentence switch: an answer is streaming, the move comes at token --prefix (should_stop says
    stop), and the clock runs until the first piece under the new weights (it includes finishing
    the token in flight and the worker thread's exit);
  * for scale: the first token of a fresh answer (no prefix) after a weight change, and the floor: one
    forward pass over prompt + prefix through the base model, which any re-mix of the prefix must pay.
`uptime` is printed before and after: compare numbers only from an idle machine. The adapters are
random stand-ins (speed does not depend on their values). Writes benchmarks/results/bench_remix.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from rlphf_lab import models, soups
from rlphf_lab.preferences import SIDES

RESULTS = Path(__file__).resolve().parent / "results" / "bench_remix.json"
PROMPT = "Write a long, detailed essay on the history of the printing press and its effects on Europe."
OLD = soups.dimension_weights_to_sides({"P1": 0.5, "P2": 0.0, "P3": 0.5})
NEW = soups.dimension_weights_to_sides({"P1": 0.5, "P2": 1.0, "P3": 0.5})
GEN = dict(temperature=0.7, top_p=0.9, seed=0)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "uptime unavailable"


def prefix_tokens(model, tok, n: int) -> tuple[int, list[int]]:
    """(seed, n answer tokens written by the OLD soup with it): seeds tried until the answer is that long."""
    for seed in range(20):
        answer = soups.RemixAnswer(PROMPT)
        for _ in soups.continue_answer(model, tok, answer, OLD, max_new_tokens=n, **{**GEN, "seed": seed}):
            pass
        if len(answer.token_ids) >= n:
            return seed, answer.token_ids[:n]
    raise RuntimeError(f"no answer of {n} tokens in 20 seeds")


def time_move(model, tok, prefix: list[int], **kw) -> float:
    """ms from the move (debounce fired) to the first piece under NEW, continuing after `prefix`."""
    answer = soups.RemixAnswer(PROMPT, segments=[soups.Segment(weights=OLD, mix="weights", token_ids=list(prefix))])
    start = time.perf_counter()
    pieces = soups.continue_answer(model, tok, answer, NEW, max_new_tokens=len(prefix) + 8, **GEN, **kw)
    next(pieces)
    ms = (time.perf_counter() - start) * 1000
    pieces.close()
    return ms


def time_floor(model, tok, prefix: list[int]) -> float:
    """ms of the one forward pass a move cannot skip: prompt + prefix through the base model (adapters off),
    last position's logits only. Every weight changed, so every cached key and value did: this is the least
    a re-mix that recomputes the prefix can cost on this machine."""
    text = models.format_chat(tok, PROMPT, None)
    ids = torch.cat([tok(text, return_tensors="pt", add_special_tokens=False).input_ids,
                     torch.tensor([prefix])], dim=1).to(model.device)
    with torch.no_grad(), model.disable_adapter():
        start = time.perf_counter()
        model(input_ids=ids, logits_to_keep=1)
        return (time.perf_counter() - start) * 1000


def time_switch(model, tok, n: int, seed: int) -> float:
    """An answer streams under OLD; at token n the slider moves: ms until the first piece under NEW."""
    answer, moved = soups.RemixAnswer(PROMPT), []
    soups.set_soup_weights(model, OLD)
    for _ in soups.continue_answer(model, tok, answer, OLD, max_new_tokens=n + 40, should_stop=lambda: bool(moved),
                                   **{**GEN, "seed": seed}):
        if len(answer.token_ids) >= n and not moved:
            moved.append(time.perf_counter())              # the move: the stream stops at its next token
    pieces = soups.continue_answer(model, tok, answer, NEW, max_new_tokens=n + 48, **GEN)
    next(pieces)
    ms = (time.perf_counter() - moved[0]) * 1000
    pieces.close()
    return ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    before = uptime()
    print(f"uptime before: {before}")
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = models.load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        model = soups.load_adapters(model, soups.random_lora_adapters(model, SIDES, tmp, std=0.02, seed=0, r=16))
    seed, prefix = prefix_tokens(model, tok, args.prefix)
    med = statistics.median
    rows = {}
    for name, kw, pre in [("fresh answer, live soup", {}, []), ("move, live soup", {}, prefix),
                          ("move, folded soup", {"fold": True}, prefix), ("move, mixed outputs", {"mix": "outputs"}, prefix)]:
        time_move(model, tok, pre, **kw)                                   # warm-up
        rows[name] = [time_move(model, tok, pre, **kw) for _ in range(args.repeats)]
    soups.unfold_soup(model)
    rows["floor: one forward over prompt + prefix, base model"] = [time_floor(model, tok, prefix) for _ in range(args.repeats)]
    time_switch(model, tok, 8, seed)                                       # warm-up
    rows["mid-sentence switch, live soup"] = [time_switch(model, tok, args.prefix, seed) for _ in range(args.repeats)]
    after = uptime()
    print(f"\n| {args.prefix}-token prefix, torch threads {torch.get_num_threads()} | median ms | max ms | target |")
    print("|---|---|---|---|")
    for name, ms in rows.items():
        target = "<= 150" if name.startswith("move") or name.startswith("mid") else ""
        target = "(the least a move can cost)" if name.startswith("floor") else target
        print(f"| {name} | {med(ms):.0f} | {max(ms):.0f} | {target} |")
    print(f"\nuptime after: {after}")
    out = {"prefix_tokens": args.prefix, "repeats": args.repeats, "threads": torch.get_num_threads(),
           "dtype": str(model.dtype), "uptime_before": before, "uptime_after": after, "target_ms": 150.0,
           "ms": {name: {"median": med(ms), "max": max(ms), "all": ms} for name, ms in rows.items()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
