"""Soup speed on the real SmolLM2-135M-Instruct with six LoRA adapters (r=16, q_proj/v_proj).

    .venv/bin/python benchmarks/bench_soup.py [--changes 200] [--first-token 10] [--flat 1000]
                                              [--refolds 100] [--rounds 9] [--all-linear] [--out FILE]

Measures (targets from issue 6, on the lab's 2-core CPU):
  * one weight change (`set_soup_weights`): median over --changes calls, target <= 5 ms;
  * first streamed token after a weight change, one-sentence prompt: median over --first-token, <= 300 ms;
  * --flat weight changes in a row: RSS, adapter count and parameter count before and after (flat).
The folded soup (issue 13, `soups.fold_soup_weights`: W + sum_i w_i s_i B_i A_i written into W):
  * one re-fold after a slider move: median over --refolds moves of one slider dragged (the others kept),
    target <= 20 ms; beside it a drag's first move and moves of every slider at once (a new combination);
  * streaming tokens/s folded / base model, target >= 0.95: base, live soup and folded soup are timed in
    turn, --rounds times, and the median of the per-round ratios is reported (robust to a busy machine);
  * the logit gap folded vs live soup (bf16 rounding) and the memory the fold keeps.
--all-linear: r=8 adapters on every linear layer (q, k, v, o, gate, up, down) instead, written to
bench_soup_all_linear.json. `uptime` is printed before and after: compare numbers only from an idle machine.
The adapters are random stand-ins (non-zero A and B) saved to a temporary folder: speed does not
depend on the values. Prints a markdown table and writes benchmarks/results/bench_soup.json (bench_soup_threads{N}.json
with --threads N). On a loaded 2-core machine compare --threads 1: two torch threads fighting
other processes for two cores can be several times slower than one.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from rlphf_lab import data, models, soups
from rlphf_lab.preferences import SIDES, combinations

RESULTS = Path(__file__).resolve().parent / "results" / "bench_soup.json"
PROMPT = "Why is the sky blue?"
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def uptime() -> str:
    """The `uptime` line (load averages): the other processes this run competed with."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: %.2f, %.2f, %.2f" % os.getloadavg()


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc; no extra package)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def random_positions(rng: random.Random) -> dict[str, float]:
    """Dimension slider positions, a third of them at an end (0 or 1: one side gets weight 0)."""
    pick = lambda: rng.choice([0.0, 1.0, rng.random()])   # noqa: E731
    return {"P1": pick(), "P2": pick(), "P3": pick()}


def time_weight_changes(model, n: int, rng: random.Random) -> list[float]:
    """What a slider move costs: all six sides named (zeros included), so no adapter switching."""
    times = []
    for _ in range(n):
        weights = soups.dimension_weights_to_sides(random_positions(rng))
        start = time.perf_counter()
        soups.set_soup_weights(model, weights)
        times.append((time.perf_counter() - start) * 1000)
    return times


def time_combination_switches(model, n: int, rng: random.Random) -> list[float]:
    """A change of the active set (e.g. "P1A+P2B+P3A" -> "P1B+P2A+P3A"): PEFT's set_adapter walks the model."""
    times = []
    for _ in range(n):
        combo = rng.choice(combinations())
        start = time.perf_counter()
        soups.set_soup_weights(model, soups.combination_weights(combo))
        times.append((time.perf_counter() - start) * 1000)
    return times


def time_first_token(model, tok, n: int, rng: random.Random, soup: bool = True) -> tuple[list[float], list[float]]:
    """Wall and CPU (this process) milliseconds from a weight change to the first piece of the answer."""
    wall, cpu = [], []
    for i in range(n):
        weights = soups.dimension_weights_to_sides(random_positions(rng))
        start, start_cpu = time.perf_counter(), time.process_time()
        if soup:
            soups.set_soup_weights(model, weights)       # a slider move ...
        stream = models.stream_generate(model, tok, PROMPT, max_new_tokens=8, seed=i)
        next(stream)                                     # ... until the first piece of the answer
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        stream.close()
    return wall, cpu


def time_refolds(model, n: int, rng: random.Random) -> list[float]:
    """Every slider at a new position at once (a new combination): every adapter's columns recomputed."""
    times = []
    for _ in range(n):
        weights = soups.dimension_weights_to_sides(random_positions(rng))
        start = time.perf_counter()
        soups.fold_soup_weights(model, weights)
        times.append((time.perf_counter() - start) * 1000)
    return times


def time_drags(model, n: int, rng: random.Random, moves_per_drag: int = 10) -> tuple[list[float], list[float]]:
    """A slider drag: one dimension's slider steps `moves_per_drag` times while the others stay, then another
    slider is dragged. Returns (ms of the moves that reuse the kept partial sum, ms of each drag's first
    move, which builds it)."""
    positions = {"P1": 0.5, "P2": 0.5, "P3": 0.5}
    soups.fold_soup_weights(model, soups.dimension_weights_to_sides(positions))
    moves, firsts, dims = [], [], list(positions)
    while len(moves) < n:
        dim = rng.choice([d for d in dims if d != dims[-1]])
        dims.append(dim)
        for k in range(moves_per_drag):
            positions[dim] = rng.random()
            start = time.perf_counter()
            soups.fold_soup_weights(model, soups.dimension_weights_to_sides(positions))
            (firsts if k == 0 else moves).append((time.perf_counter() - start) * 1000)
    return moves[:n], firsts


def speed_rounds(model, tok, rounds: int, weights: dict[str, float]) -> dict[str, list[float]]:
    """tokens/s of the base model, the live soup and the folded soup, timed in turn `rounds` times."""
    out = {"base": [], "live": [], "folded": []}
    for _ in range(rounds):
        soups.set_soup_weights(model, weights)                # live (unfolds if folded)
        with model.disable_adapter():
            out["base"].append(tokens_per_second(model, tok, 64))
        out["live"].append(tokens_per_second(model, tok, 64))
        with soups.folded(model, weights):
            out["folded"].append(tokens_per_second(model, tok, 64))
    return out


def prompt_logits(model, tok) -> torch.Tensor:
    ids = tok(PROMPT, return_tensors="pt").input_ids.to(model.device)
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def tokens_per_second(model, tok, n_tokens: int = 32) -> float:
    start = time.perf_counter()
    pieces = list(models.stream_generate(model, tok, PROMPT, max_new_tokens=n_tokens, temperature=0, seed=0))
    n = len(tok(("".join(pieces)), add_special_tokens=False)["input_ids"])
    return n / (time.perf_counter() - start)


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--first-token", type=int, default=10)
    parser.add_argument("--flat", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--refolds", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=9, help="base / live / folded tokens/s rounds (64 tokens each)")
    parser.add_argument("--all-linear", action="store_true", help="r=8 adapters on every linear layer")
    parser.add_argument("--out", default=None, help="results file (default: benchmarks/results/bench_soup*.json)")
    args = parser.parse_args(argv)
    load_before = uptime()
    print(f"uptime before: {load_before}")
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = random.Random(0)
    med = statistics.median

    model, tok = models.load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        lora = dict(r=8, target_modules=ALL_LINEAR) if args.all_linear else dict(r=16)
        dirs = soups.random_lora_adapters(model, SIDES, tmp, std=0.02, seed=0, **lora)
        model = soups.load_adapters(model, dirs)
    n_lora_layers = len({id(layer) for layer, _, _ in soups.soup_state(model).layers})

    time_weight_changes(model, 20, rng)                                # warm-up
    change = time_weight_changes(model, args.changes, rng)
    switch = time_combination_switches(model, max(20, args.changes // 4), rng)
    soups.set_soup_weights(model, {s: 1.0 for s in SIDES})
    time_first_token(model, tok, 2, rng)                               # warm-up
    first, first_cpu = time_first_token(model, tok, args.first_token, rng)
    with model.disable_adapter():                                      # the same, base model alone
        base_first, base_first_cpu = time_first_token(model, tok, args.first_token, rng, soup=False)
    tps_soup = tokens_per_second(model, tok)
    with model.disable_adapter():
        tps_base = tokens_per_second(model, tok)

    # the folded soup: first fold (saves originals, stacks factors), re-folds, speed against the base model
    equal = {s: 1.0 for s in SIDES}
    soups.set_soup_weights(model, equal)
    live_logits = prompt_logits(model, tok)
    with model.disable_adapter():
        base_logits = prompt_logits(model, tok)
    start = time.perf_counter()
    soups.fold_soup_weights(model, equal)
    first_fold = (time.perf_counter() - start) * 1000
    fold_logits = prompt_logits(model, tok)
    time_refolds(model, 5, rng)                                        # warm-up
    refold = time_refolds(model, args.refolds, rng)
    time_drags(model, 5, rng)                                          # warm-up
    drag, drag_first = time_drags(model, args.refolds, rng)
    fold_memory = soups.fold_memory(model)
    soups.unfold_soup(model)
    speed = speed_rounds(model, tok, args.rounds, equal)
    ratio = [f / b for f, b in zip(speed["folded"], speed["base"])]
    live_ratio = [s / b for s, b in zip(speed["live"], speed["base"])]

    gc.collect()
    before = dict(rss_mb=rss_mb(), adapters=len(soups.adapter_names(model)), parameters=n_parameters(model))
    time_weight_changes(model, args.flat, rng)
    gc.collect()
    after = dict(rss_mb=rss_mb(), adapters=len(soups.adapter_names(model)), parameters=n_parameters(model))
    flat = (before["adapters"] == after["adapters"] and before["parameters"] == after["parameters"]
            and after["rss_mb"] - before["rss_mb"] < 5)

    results = {
        "weight_change_ms": {"median": med(change), "p95": sorted(change)[int(0.95 * len(change))],
                             "max": max(change), "n": len(change), "target": 5.0},
        "active_set_switch_ms": {"median": med(switch), "max": max(switch), "n": len(switch)},
        "first_token_ms": {"median": med(first), "max": max(first), "cpu_median": med(first_cpu),
                           "n": len(first), "target": 300.0, "prompt": PROMPT},
        "first_token_base_model_ms": {"median": med(base_first), "cpu_median": med(base_first_cpu)},
        "tokens_per_s": {"soup_6_adapters": tps_soup, "base_adapters_off": tps_base},
        "fold": {"refold_ms": {"median": med(drag), "p95": sorted(drag)[int(0.95 * len(drag))],
                               "max": max(drag), "n": len(drag), "target": 20.0,
                               "what": "one slider dragged: the moves after a drag's first"},
                 "refold_drag_first_move_ms": {"median": med(drag_first), "max": max(drag_first),
                                               "n": len(drag_first)},
                 "refold_every_slider_ms": {"median": med(refold), "p95": sorted(refold)[int(0.95 * len(refold))],
                                            "max": max(refold), "n": len(refold)},
                 "first_fold_ms": first_fold, "memory_mb": fold_memory["bytes"] / 2**20,
                 "memory_tensors": fold_memory["tensors"],
                 "tokens_per_s": speed, "folded_over_base": {"median": med(ratio), "per_round": ratio,
                                                             "target": 0.95},
                 "live_over_base": {"median": med(live_ratio), "per_round": live_ratio},
                 "max_logit_gap_folded_vs_live": (fold_logits - live_logits).abs().max().item(),
                 "max_logit_gap_base_vs_live": (base_logits - live_logits).abs().max().item()},
        "memory_flat": {"changes": args.flat, "before": before, "after": after,
                        "rss_delta_mb": after["rss_mb"] - before["rss_mb"], "flat": flat},
        "setup": {"adapters": len(SIDES), "lora_layers": n_lora_layers, "r": lora["r"], "lora_alpha": 32,
                  "target_modules": list(lora.get("target_modules", ("q_proj", "v_proj"))),
                  "dtype": str(next(model.parameters()).dtype), "device": str(model.device),
                  "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                  "load_average_1_5_15": os.getloadavg(), "uptime_before": load_before, "uptime_after": uptime(),
                  "versions": data.package_versions()},
    }
    ok = lambda value, target: "yes" if value <= target else "NO"   # noqa: E731
    print("| measure | result | target | met |\n|---|---|---|---|")
    print(f"| one weight change, 6 adapters (median of {len(change)}) | {med(change):.3f} ms "
          f"(p95 {results['weight_change_ms']['p95']:.3f}, max {max(change):.3f}) | <= 5 ms | {ok(med(change), 5)} |")
    print(f"| change of the active set, e.g. new combination (median of {len(switch)}) | {med(switch):.2f} ms "
          f"(max {max(switch):.2f}) | (info) | |")
    print(f"| first streamed token after a weight change (median of {len(first)}) | {med(first):.0f} ms wall, "
          f"{med(first_cpu):.0f} ms CPU (max {max(first):.0f} wall) | <= 300 ms | {ok(med(first), 300)} |")
    print(f"| same, base model alone (adapters off) | {med(base_first):.0f} ms wall, {med(base_first_cpu):.0f} ms CPU "
          f"| (reference) | |")
    print(f"| streaming speed, soup of 6 / base model | {tps_soup:.1f} / {tps_base:.1f} tokens/s | | |")
    print(f"| re-fold after a slider move, one slider dragged (median of {len(drag)}) | {med(drag):.1f} ms "
          f"(p95 {results['fold']['refold_ms']['p95']:.1f}; first fold {first_fold:.0f} ms, keeps "
          f"{fold_memory['bytes'] / 2**20:.0f} MB) | <= 20 ms | {ok(med(drag), 20)} |")
    print(f"| same, a drag's first move (builds the others' partial sum; median of {len(drag_first)}) | "
          f"{med(drag_first):.1f} ms (max {max(drag_first):.1f}) | (info) | |")
    print(f"| re-fold with every slider moved at once, e.g. a new combination (median of {len(refold)}) | "
          f"{med(refold):.1f} ms (p95 {results['fold']['refold_every_slider_ms']['p95']:.1f}) | (info) | |")
    print(f"| streaming speed folded / base, median of {len(ratio)} rounds' ratios | {med(ratio):.3f} "
          f"({med(speed['folded']):.1f} / {med(speed['base']):.1f} tokens/s; live soup {med(live_ratio):.3f}) "
          f"| >= 0.95 | {'yes' if med(ratio) >= 0.95 else 'NO'} |")
    print(f"| max logit gap on the prompt, folded vs live soup (bf16 rounding) | "
          f"{results['fold']['max_logit_gap_folded_vs_live']:.3f} (base vs live: "
          f"{results['fold']['max_logit_gap_base_vs_live']:.3f}) | (info) | |")
    print(f"| {args.flat} weight changes: RSS, adapters, parameters | {before['rss_mb']:.1f} -> {after['rss_mb']:.1f} MB, "
          f"{before['adapters']} -> {after['adapters']}, {before['parameters']:,} -> {after['parameters']:,} | flat | "
          f"{'yes' if flat else 'NO'} |")
    load = os.getloadavg()
    print(f"\n{results['setup']['dtype']} on {results['setup']['device']}, {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")
    print(f"uptime after: {results['setup']['uptime_after']}")
    name = RESULTS.stem + ("_all_linear" if args.all_linear else "") + (f"_threads{args.threads}" if args.threads else "")
    out = Path(args.out) if args.out else RESULTS.with_name(name + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
