"""Train and evaluate the six per-preference reward models from the shipped feedback sets.

    rlphf-lab train-rewards                      # fast path, all six sides, seconds after features
    rlphf-lab train-rewards --backend trl --sides P2A --max-steps 60

Writes data/reward_models/<backend>/<side>/ and data/reward_models/accuracy.csv.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import torch

from .. import config
from ..preferences import SIDES
from ..tables import write_csv
from . import hack_ranking
from .features import cached_features
from .reward_model import (RewardModel, RewardScorer, pair_accuracy, pairs_features, train_head,
                           train_trl_reward_model, trl_scores)

ACCURACY_FIELDS = ["side", "backend", "n_train", "n_eval", "train_accuracy", "eval_accuracy", "seconds"]


def reference_samples(candidates: list[dict]) -> list[dict]:
    """Reference-policy samples for normalisation: the plain-prompt ("none") train candidates."""
    return [c for c in candidates if c["style"] == "none" and c["split"] == "train"]


def train_feature_reward_models(model, tokenizer, candidates: list[dict], train_pairs: list[dict],
                                eval_pairs: list[dict], sides=SIDES, *, out_root: str | Path, seed: int = 0,
                                epochs: int = 300, progress: bool = True) -> list[dict]:
    """Fast path for every side: cached features -> Bradley-Terry head -> normalise -> save -> accuracy rows."""
    feats = cached_features(model, tokenizer, candidates, name="candidates", progress=progress)
    ref = torch.stack([feats[c["id"]] for c in reference_samples(candidates)])
    rows = []
    for side in sides:
        tr = [p for p in train_pairs if p["preference"] == side]
        ev = [p for p in eval_pairs if p["preference"] == side]
        if not tr:
            raise ValueError(f"No training pairs for {side}; label some with `rlphf-lab label-pairs`.")
        head, result = train_head(*pairs_features(tr, feats), epochs=epochs, seed=seed, side=side)
        with torch.no_grad():
            raw_ref = head(ref)
        rm = RewardModel(side, "features", head=head, score_mean=raw_ref.mean().item(), score_std=raw_ref.std().item())
        eval_acc = pair_accuracy(*(rm.score_features(x) for x in pairs_features(ev, feats))) if ev else float("nan")
        rm.metrics = {"train_accuracy": result.train_accuracy, "eval_accuracy": eval_acc,
                      "n_train": len(tr), "n_eval": len(ev), "seed": seed, "epochs": epochs}
        rm.save(Path(out_root) / "features" / side)
        rows.append({"side": side, "backend": "features", "n_train": len(tr), "n_eval": len(ev),
                     "train_accuracy": round(result.train_accuracy, 4), "eval_accuracy": round(eval_acc, 4),
                     "seconds": round(result.seconds, 2)})
    return rows


def train_trl_reward_models(candidates: list[dict], train_pairs: list[dict], eval_pairs: list[dict], sides, *,
                            out_root: str | Path, max_steps: int | None, seed: int = 0, batch_size: int = 8) -> list[dict]:
    """Library path for the given sides: TRL RewardTrainer + LoRA; same normalisation and accuracy rows."""
    rows = []
    ref = reference_samples(candidates)
    for side in sides:
        tr = [p for p in train_pairs if p["preference"] == side]
        ev = [p for p in eval_pairs if p["preference"] == side]
        start = time.perf_counter()
        model, tok = train_trl_reward_model(side, tr, out_dir=Path(out_root) / "trl-runs" / side,
                                            max_steps=max_steps, seed=seed, batch_size=batch_size)
        seconds = time.perf_counter() - start
        raw_ref = trl_scores(model, tok, [c["instruction"] for c in ref], [c["response"] for c in ref])
        rm = RewardModel(side, "trl", seqcls=model, score_mean=raw_ref.mean().item(), score_std=raw_ref.std().item())

        def acc(pairs):
            ins = [p["instruction"] for p in pairs]
            return pair_accuracy(rm.score(None, tok, ins, [p["chosen"] for p in pairs]),
                                 rm.score(None, tok, ins, [p["rejected"] for p in pairs]))

        n_steps = max_steps if max_steps is not None else -(-len(tr) // batch_size)
        used = tr[:n_steps * batch_size]
        train_acc, eval_acc = acc(used[:256]), acc(ev) if ev else float("nan")
        rm.metrics = {"train_accuracy": train_acc, "eval_accuracy": eval_acc, "n_train": len(used),
                      "n_eval": len(ev), "max_steps": max_steps, "seed": seed}
        rm.save(Path(out_root) / "trl" / side)
        rows.append({"side": side, "backend": "trl", "n_train": len(used), "n_eval": len(ev),
                     "train_accuracy": round(train_acc, 4), "eval_accuracy": round(eval_acc, 4),
                     "seconds": round(seconds, 1)})
    return rows


def hack_ranking_rows(model, tokenizer, reward_models: dict, candidates: list[dict], *,
                      n_prompts: int = hack_ranking.N_PROMPTS) -> list[dict]:
    """How many hack-suite answers (built from eval-split answers, `hack_ranking`) each trained reward model
    scores at or above the normal answer: rows {"side", "kind", "comparisons", "misranked"}."""
    sides = list(reward_models)
    rows = hack_ranking.hack_suite(candidates, n_prompts)
    failures = hack_ranking.misranked(RewardScorer(model, tokenizer, reward_models), sides, rows)
    return hack_ranking.ranking_table(sides, rows, failures)


def _merged_rows(path: Path, rows: list[dict], key) -> list[dict]:
    """The rows already in the CSV at `path` whose key(row) no new row has, then the new rows."""
    old = []
    if path.exists():
        with open(path, newline="") as f:
            old = list(csv.DictReader(f))
    keys = {key(r) for r in rows}
    return [r for r in old if key(r) not in keys] + rows


def update_hack_ranking_csv(path: str | Path, rows: list[dict]) -> Path:
    """Merge rows into hack_ranking.csv, replacing the earlier rows of the same sides."""
    return write_csv(path, _merged_rows(Path(path), rows, key=lambda r: r["side"]), fieldnames=hack_ranking.FIELDS)


def update_accuracy_csv(path: str | Path, rows: list[dict]) -> Path:
    """Merge rows into the metrics CSV, replacing earlier rows of the same (side, backend)."""
    merged = _merged_rows(Path(path), rows, key=lambda r: (r["side"], r["backend"]))
    merged.sort(key=lambda r: (r["backend"], r["side"]))
    return write_csv(path, [{k: r[k] for k in ACCURACY_FIELDS} for r in merged], fieldnames=ACCURACY_FIELDS)


def read_accuracy_csv(path: str | Path | None = None) -> list[dict]:
    path = Path(path) if path else config.DATA_DIR / "reward_models" / "accuracy.csv"
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def score_by_style(reward_models: dict, candidates: list[dict], features: dict[str, torch.Tensor]) -> dict:
    """Mean normalised score of every reward model on the candidates written under each style.

    Returns {style: {side: mean score}}: a sanity check that the P2A model likes P2A-style
    answers, and a map of how the preference dimensions interact in the data.
    """
    table = {}
    for style in sorted({c["style"] for c in candidates}, key=lambda s: (s != "none", s)):
        rows = [c for c in candidates if c["style"] == style and c["id"] in features]
        if not rows:
            continue
        phi = torch.stack([features[c["id"]] for c in rows])
        table[style] = {side: rm.score_features(phi).mean().item() for side, rm in reward_models.items()}
    return table


def overall_preference_data(reward_models: dict, candidates: list[dict], features: dict[str, torch.Tensor],
                            combination: str, *, n_pairs: int = 400, seed: int = 0):
    """Data for fitting MORLAIF's objective weights: for random pairs of candidates of one prompt,
    the per-objective reward differences (n, K) and an *overall* preference (n,) in {0, 1}.

    The overall judge is a user with the given combination: the sum of the simulated annotators'
    scores for its sides. Logistic regression of that label on the differences (fit_objective_weights)
    then tells how much each reward model should weigh in the scalarized PPO reward.
    """
    import numpy as np

    from ..feedback.annotators import score
    from ..preferences import parse_combination

    sides = [p.code for p in parse_combination(combination)]
    by_prompt: dict[str, list[dict]] = {}
    for c in candidates:
        if c["id"] in features:
            by_prompt.setdefault(c["prompt_id"], []).append(c)
    prompts = [k for k, v in by_prompt.items() if len(v) >= 2]
    if not prompts:
        raise ValueError("Need at least one prompt with two candidates that have features.")
    rng = np.random.default_rng(seed)
    names = list(reward_models)
    diffs, labels = [], []
    for _ in range(n_pairs):
        a, b = rng.choice(by_prompt[prompts[rng.integers(len(prompts))]], size=2, replace=False)
        phi = torch.stack([features[a["id"]], features[b["id"]]])
        r = torch.stack([reward_models[s].score_features(phi) for s in names], dim=1)   # (2, K)
        diffs.append(r[0] - r[1])
        overall = sum(score(s, a["response"]) - score(s, b["response"]) for s in sides)
        labels.append(float(overall > 0))
    return torch.stack(diffs), torch.tensor(labels), names
