"""Small seeded PPO sweeps: the one that chose the shipped recipe (on the sides that failed to learn
before), and the KL-coefficient sweep notebook 04 shows (reward over-optimisation, KL blow-up).

    .venv/bin/python scripts/sweep_recipe.py                    # run every (side, setting), resumable
    .venv/bin/python scripts/sweep_recipe.py --sides P3A --settings lr3e-4,lr1e-3
    .venv/bin/python scripts/sweep_recipe.py --summarize        # only rebuild the table and figure
    .venv/bin/python scripts/sweep_recipe.py --sweep kl         # P2A at three KL coefficients (about 25 min
                                                                #   on 2 cores): data/sweeps/kl.{csv,md,png}

Every run is the project's own command,

    rlphf-lab train-policy --preference SIDE <shared settings> <setting> --eval-every E --out runs/sweep/SIDE-SETTING

seeded and checkpointed (an interrupted sweep continues where it stopped; finished runs are kept).
Each run logs held-out metrics on the dev prompts (train-split prompts PPO never trains on; never
the eval split) every E iterations: the reward model's score, the simulated annotators' win rate
against the untrained model, KL and answer length. The script copies them into

    data/sweeps/recipe.csv     one row per run and evaluation (rollouts, eval/* columns)
    data/sweeps/recipe.md      the last evaluation of every run, as a table
    data/sweeps/recipe.png     held-out annotator win rate, reward-model score, KL and length against rollouts

(`--sweep kl` writes kl.csv, kl.md and kl.png the same way, plus kl_overoptimisation.png: the reward
model's held-out score and the annotators' against KL, Gao et al. 2023's picture of over-optimisation,
and kl_answers.jsonl: each finished run's answers to the first dev prompts.)

Run it alone on the machine (one training job at a time, all cores).
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / ".venv" / "bin" / "rlphf-lab"
RUNS = REPO / "runs" / "sweep"
OUT = REPO / "data" / "sweeps"

# What every run shares: the reward models, the seed, the batch, the answer budget, the KL control.
# The KL horizon is fixed at the one fitted to a 2,000-rollout run (ppo.horizon_for_run(2000) = 200),
# so a sweep run can be continued (--resume --iterations 250) into a full run with the same numbers.
SHARED = ["--reward", "rm", "--seed", "0", "--batch-size", "8", "--mini-batch-size", "4", "--max-new-tokens", "128",
          "--init-kl-coef", "0.05", "--kl-target", "6", "--kl-horizon", "200", "--missing-eos-penalty", "1.0"]
# What the sweep varies (each a list of train-policy options).
SETTINGS = {
    "lr3e-4": ["--learning-rate", "3e-4", "--ppo-epochs", "2"],     # the previous shipped settings, new EOS / KL / fp32
    "lr1e-3": ["--learning-rate", "1e-3", "--ppo-epochs", "2"],     # three times the step size
    # lr3e-4 again against the v3 reward models (features with relevance to the instruction, 2026-12-07);
    # the two settings above ran against the v2 reward models that were shipped before them
    "rm3-lr3e-4": ["--learning-rate", "3e-4", "--ppo-epochs", "2"],
}
SIDES = ["P3A", "P1B", "P2B"]

# The KL sweep: P2A (concise, the cheapest effect to see) at a class-sized budget and a large step, so
# the reward model can be over-optimised within a few hundred rollouts. The coefficient is fixed (a
# horizon of 1e9 samples: the adaptive controller does not move it); beta = 0 is no KL penalty at all.
# 96 new tokens: enough for a concise answer to end (EOS) inside the budget, so "shorter" can be learned.
KL_SHARED = ["--reward", "rm", "--seed", "0", "--batch-size", "8", "--mini-batch-size", "4", "--max-new-tokens", "96",
             "--learning-rate", "1e-3", "--ppo-epochs", "2", "--kl-horizon", "1000000000",
             "--missing-eos-penalty", "1.0", "--eval-prompts", "16"]
KL_SETTINGS = {"beta0": ["--init-kl-coef", "0"], "beta0.05": ["--init-kl-coef", "0.05"],
               "beta0.5": ["--init-kl-coef", "0.5"]}
EVAL_COLUMNS = ["eval/judge_win_rate", "eval/judge", "eval/ref_judge", "eval/win_rate", "eval/score", "eval/ref_score",
                "eval/kl", "eval/response_length", "eval/eos_fraction", "eval/short_fraction"]
SWEEPS = {   # name: (shared options, settings, sides, run folder, output stem, default iterations, eval every)
    "recipe": (SHARED, SETTINGS, SIDES, RUNS, "recipe", 32, 8),
    "kl": (KL_SHARED, KL_SETTINGS, ["P2A"], REPO / "runs" / "sweep-kl", "kl", 12, 3),
}
def run(sweep: str, side: str, setting: str, iterations: int, eval_every: int) -> Path:
    shared, settings, _, runs, _, _, _ = SWEEPS[sweep]
    out = runs / f"{side}-{setting}"
    done = out / "adapter.provenance.json"
    if done.exists():
        print(f"{side} {setting}: done already ({out})")
        return out
    cmd = [str(LAB), "train-policy", "--preference", side, *shared, *settings[setting],
           "--iterations", str(iterations), "--eval-every", str(eval_every), "--save-every", str(eval_every),
           "--out", str(out)]
    if (out / "checkpoints").exists():
        cmd.append("--resume")
    print(f"{side} {setting}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"{side} {setting}: {time.perf_counter() - start:.0f} s", flush=True)
    return out


def recorded(stem: str = "recipe") -> list[dict]:
    """The rows already in data/sweeps/<stem>.csv (runs/ is not committed, so a fresh clone has only these)."""
    if not (OUT / f"{stem}.csv").exists():
        return []
    with open(OUT / f"{stem}.csv", newline="") as f:
        return [{"side": r["side"], "setting": r["setting"], "iteration": int(r["iteration"]),
                 "rollouts": int(r["rollouts"]), **{k: float(r[k]) for k in EVAL_COLUMNS if r.get(k, "") != ""}}
                for r in csv.DictReader(f)]


def collect(sweep: str = "recipe", batch_size: int = 8) -> list[dict]:
    """Every evaluation row of every sweep run: from runs/ where the run is on this machine, else as recorded."""
    _, _, _, runs, stem, _, _ = SWEEPS[sweep]
    rows = []
    for metrics in sorted(runs.glob("*/metrics.csv")):
        side, setting = metrics.parent.name.split("-", 1)
        with open(metrics, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("eval/kl", "") == "":
                    continue
                rows.append({"side": side, "setting": setting, "iteration": int(row["iteration"]),
                             "rollouts": int(row["iteration"]) * batch_size,
                             **{k: float(row[k]) for k in EVAL_COLUMNS if row.get(k, "") != ""}})
    here = {(r["side"], r["setting"]) for r in rows}
    rows += [r for r in recorded(stem) if (r["side"], r["setting"]) not in here]
    return sorted(rows, key=lambda r: (r["side"], r["setting"], r["iteration"]))


def summarize(rows: list[dict], sweep: str = "recipe") -> None:
    from rlphf_lab.plots import plot_overoptimisation, plot_recipe_sweep

    stem = SWEEPS[sweep][4]
    OUT.mkdir(parents=True, exist_ok=True)
    columns = ["side", "setting", "iteration", "rollouts", *EVAL_COLUMNS]
    with open(OUT / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})
    last = {}
    for row in rows:
        last[(row["side"], row["setting"])] = row
    lines = ["| side | setting | rollouts | annotator win rate | RM score (ref) | KL | length (tokens) | EOS | short |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (side, setting), r in sorted(last.items()):
        lines.append(f"| {side} | {setting} | {r['rollouts']} | {r.get('eval/judge_win_rate', float('nan')):.2f} | "
                     f"{r['eval/score']:.2f} ({r['eval/ref_score']:.2f}) | {r['eval/kl']:.1f} | "
                     f"{r['eval/response_length']:.0f} | {r['eval/eos_fraction']:.2f} | {r['eval/short_fraction']:.2f} |")
    (OUT / f"{stem}.md").write_text("\n".join(lines) + "\n")
    fig = plot_recipe_sweep(rows)
    fig.savefig(OUT / f"{stem}.png", dpi=110, bbox_inches="tight")
    if sweep == "kl":
        plot_overoptimisation(rows).savefig(OUT / "kl_overoptimisation.png", dpi=110, bbox_inches="tight")
    print("\n".join(lines))
    print(f"table and figure in {OUT}")


def final_answers(sweep: str, n_prompts: int = 3, max_new_tokens: int = 96) -> None:
    """Each finished run's answers to the first dev prompts (greedy), beside the untrained model's:
    data/sweeps/<stem>_answers.jsonl, what a KL coefficient does to the text."""
    sys.path.insert(0, str(REPO))
    from rlphf_lab import models
    from rlphf_lab.data import load_prompts, split_dev, write_jsonl
    from rlphf_lab.rl.compare import load_adapter_policy

    _, _, _, runs, stem, _, _ = SWEEPS[sweep]
    prompts = [p["instruction"] for p in split_dev(load_prompts("train"))[1][:n_prompts]]   # what train-policy evaluates on
    gen = dict(max_new_tokens=max_new_tokens, temperature=0)
    base, tok = models.load_policy()
    rows = [{"run": "untrained", "instruction": p, "answer": a}
            for p, a in zip(prompts, models.generate(base, tok, prompts, **gen))]
    for out in sorted(runs.glob("*/adapter")):
        policy = load_adapter_policy(out)
        rows += [{"run": out.parent.name, "instruction": p, "answer": a}
                 for p, a in zip(prompts, models.generate(policy, tok, prompts, **gen))]
    write_jsonl(OUT / f"{stem}_answers.jsonl", rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", choices=list(SWEEPS), default="recipe")
    parser.add_argument("--sides", default=None, help="default: the sweep's sides")
    parser.add_argument("--settings", default=None, help="default: all of the sweep's settings")
    parser.add_argument("--iterations", type=int, default=None, help="PPO iterations per run (x 8 rollouts)")
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--summarize", action="store_true", help="only rebuild table and figure from the runs")
    args = parser.parse_args()
    _, settings, sides, _, _, iterations, eval_every = SWEEPS[args.sweep]
    chosen = args.settings.split(",") if args.settings else list(settings)
    unknown = [s for s in chosen if s not in settings]
    if unknown:
        print(f"error: unknown settings {unknown}; choose from {', '.join(settings)}", file=sys.stderr)
        return 2
    if not args.summarize:
        for side in (args.sides.split(",") if args.sides else sides):
            for setting in chosen:
                run(args.sweep, side, setting, args.iterations or iterations, args.eval_every or eval_every)
        if args.sweep == "kl":
            final_answers(args.sweep)
    summarize(collect(args.sweep), args.sweep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
