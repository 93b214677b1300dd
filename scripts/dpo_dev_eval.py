"""Own-side win rate of one DPO adapter on the dev prompts: how DPO recipes are compared.

    .venv/bin/python scripts/dpo_dev_eval.py --run v3-above-base-P3B=runs/dpo_sweep/P3B
    .venv/bin/python scripts/dpo_dev_eval.py --run shipped-P3B=data/adapters/dpo-P3B

The dev prompts are the 33 train-split prompts that `rlphf-lab train-dpo` never trains on
(data.split_dev, the ones PPO's held-out metrics use), never the 88 eval prompts every method is
finally judged on. Each prompt is answered with `--seeds` sampling seeds by the adapter and by the
vanilla model (the vanilla answers are cached beside the table), and the simulated annotators judge
the adapter's answer against the vanilla one on the adapter's own side (a tie counts half), as
`rlphf-lab evaluate` does. One row per run is appended to data/sweeps/dpo_recipe/dev_eval.csv.
Run it alone on the machine (generation uses both cores).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rlphf_lab.data import load_prompts, split_dev                        # noqa: E402
from rlphf_lab.evaluate import generate_responses, judge_responses       # noqa: E402
from rlphf_lab.rl.heldout import SHORT_ANSWER_WORDS                       # noqa: E402

OUT = REPO / "data" / "sweeps" / "dpo_recipe"
FIELDS = ["run", "side", "adapter", "answers", "win_rate", "wins", "ties", "losses", "words", "vanilla_words",
          "short_fraction", "pairs", "steps", "learning_rate", "beta", "min_gap", "hack_share", "above_base",
          "train_time_s", "seconds", "trained_on_dev"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="NAME=ADAPTER_FOLDER; the side is read from the adapter's provenance")
    ap.add_argument("--seeds", default="0,1", help="sampling seeds, one answer per prompt and seed (default 0,1)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--out", default=str(OUT / "dev_eval.csv"))
    args = ap.parse_args()
    name, _, folder = args.run.partition("=")
    folder = Path(folder)
    record = json.loads((folder / "adapter.provenance.json").read_text())
    side, config = record["final_metrics"]["side"], record["config"]
    method = f"dpo-{side}"
    seeds = [int(s) for s in args.seeds.split(",")]
    dev = split_dev(load_prompts("train"))[1]

    from rlphf_lab.models import load_policy
    start = time.perf_counter()
    cache = Path(args.out).with_name(f"dev_vanilla_{args.max_new_tokens}.jsonl")
    vanilla = [json.loads(line) for line in cache.open()] if cache.exists() else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / method).symlink_to(folder.resolve())       # generate_responses finds adapters by method name
        for seed in seeds:
            have = [r for r in vanilla if r["seed"] == seed]
            model, tokenizer = load_policy()                    # a fresh base model: the adapter gets loaded into it
            new = generate_responses(model, tokenizer, tmp, dev, methods=[method], seed=seed,
                                     max_new_tokens=args.max_new_tokens, baseline=not have)
            if not have:
                have = [{**r, "seed": seed} for r in new if r["method"] == "vanilla"]
                vanilla += have
            # one prompt id per (prompt, seed), so the judge pairs each answer with its own vanilla answer
            answers = have + [r for r in new if r["method"] == method]
            rows += [{**r, "prompt_id": f"{r['prompt_id']}@{seed}"} for r in answers]
    cache.write_text("".join(json.dumps(r) + "\n" for r in vanilla))
    # a method that ignores the combination is judged once per combination holding its side: keep one each
    verdicts = list({v["prompt_id"]: v for v in judge_responses(rows) if v["side"] == side}.values())
    count = {k: sum(v["verdict"] == k for v in verdicts) for k in ("win", "tie", "loss")}
    mine = [r for r in rows if r["method"] == method]
    base = [r for r in rows if r["method"] == "vanilla"]
    words = [len(r["response"].split()) for r in mine]
    row = {"run": name, "side": side, "adapter": str(folder), "answers": len(verdicts),
           "win_rate": round((count["win"] + 0.5 * count["tie"]) / len(verdicts), 3),
           "wins": count["win"], "ties": count["tie"], "losses": count["loss"],
           "words": round(sum(words) / len(words), 1),
           "vanilla_words": round(sum(len(r["response"].split()) for r in base) / len(base), 1),
           "short_fraction": round(sum(w < SHORT_ANSWER_WORDS for w in words) / len(words), 3),
           "pairs": record["final_metrics"].get("pairs"), "steps": record["final_metrics"].get("steps"),
           "learning_rate": config.get("learning_rate"), "beta": config.get("beta"), "min_gap": config.get("min_gap"),
           "hack_share": config.get("hack_share"), "above_base": config.get("above_base", False),
           "train_time_s": record.get("wall_time_s"), "seconds": round(time.perf_counter() - start, 1),
           # runs from before train-dpo left the dev prompts out saw their pairs (no excluded_prompts record)
           "trained_on_dev": "no" if config.get("excluded_prompts") else "yes"}
    out = Path(args.out)
    new_file = not out.exists()
    with out.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new_file:
            w.writeheader()
        w.writerow(row)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
