"""Train, load and compare PPO policies: the glue notebooks 04 and 05 call.

    policy = train_or_load("P2A", personalized_soups("P2A", scorer), config, prompts)   # shipped or live
    rows = score_policy_answers(policy.model, tok, eval_prompts, scorer, ["P2A"], label="trained")
    show_table(side_by_side(rows_base + rows, "P2A"))
    means_by_label(rows_base + rows, ["P2A"])     # mean length and reward per label

Shipped adapters live in data/adapters/<name>/adapter (PEFT folders written by PPOTrainer, with
adapter.provenance.json beside them); every function here also works when they are absent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from .. import config as lab_config
from ..feedback import annotators
from ..rewards.scalarize import weighted_linear
from ..tables import group_means
from .run_folder import current_metric_names
from .trainer import PPOConfig, PPOTrainer

ADAPTERS_DIR = lab_config.ADAPTERS_DIR


# --------------------------------------------------------------------------------------------
# Shipped adapters
# --------------------------------------------------------------------------------------------


def shipped_adapter(name: str, root: str | Path | None = None) -> Path | None:
    """data/adapters/<name>/adapter if it holds a PEFT adapter (config and weights), else None."""
    from ..soups import shipped_adapter_dirs

    return shipped_adapter_dirs([name], root or ADAPTERS_DIR).get(name)


def shipped_record(path: str | Path) -> dict:
    """The provenance record written beside an adapter folder (wall time, final metrics), or {}."""
    file = Path(path).with_name(Path(path).name + ".provenance.json")
    return json.loads(file.read_text()) if file.exists() else {}


def load_adapter_policy(path: str | Path, device: str | None = None, dtype=None):
    """A fresh base model with the PEFT adapter at `path` on top (eval mode, frozen)."""
    from peft import PeftModel

    from ..models import load_policy

    from ..soups import read_adapter_config, read_adapter_weights

    config = read_adapter_config(path)
    base, _ = load_policy(device=device, dtype=dtype)
    read_adapter_weights(path, config, base)        # a damaged adapter: one clear error, before PEFT sees it
    model = PeftModel.from_pretrained(base, str(path), local_files_only=True)
    model.eval()
    return model


@dataclass
class TrainedPolicy:
    """One policy to compare: its model, where it came from, and its training curve."""
    label: str
    model: object                       # a peft.PeftModel
    source: str                         # "trained live" or the shipped folder
    history: list[dict] = field(default_factory=list)
    seconds: float = float("nan")       # training wall time
    trained_on: str = "this machine"    # where those seconds were spent: a shipped run's machine and device


def train_live(objective, config: PPOConfig, prompts: Sequence, *, callback: Callable | None = None,
               model=None, tokenizer=None) -> PPOTrainer:
    """Train `objective` with PPO on a fresh copy of the policy model; returns the trainer
    (trainer.history, trainer.unwrapped.policy, trainer.wall_time). A run already in
    config.output_dir is replaced (live runs are demos: keep real ones in their own folders)."""
    from ..models import load_policy

    if model is None:
        model, tokenizer = load_policy()
    if objective.reward_weights is not None:
        config = replace(config, reward_weights=objective.reward_weights)
    trainer = PPOTrainer(config, model, tokenizer, prompts, callback=callback, **objective.trainer_kwargs())
    # a live demo run replaces its own last run (e.g. a notebook cell run again)
    trainer.train(command=f"rlphf_lab.rl.compare.train_live({objective.name!r})", overwrite=True)
    return trainer


def train_or_load(name: str, objective, config: PPOConfig, prompts: Sequence, *, callback: Callable | None = None,
                  root: str | Path | None = None, use_shipped: bool = True) -> TrainedPolicy:
    """The shipped adapter data/adapters/<name> when there is one (and use_shipped), else a live run."""
    path = shipped_adapter(name, root) if use_shipped else None
    if path is not None:
        record = shipped_record(path)
        history = [current_metric_names(record["final_metrics"])] if record.get("final_metrics") else []
        print(f"{name}: loaded the shipped adapter {path} ({record.get('iterations', '?')} iterations; "
              f"{record.get('command', 'command not recorded')})")
        return TrainedPolicy(name, load_adapter_policy(path), f"shipped: {path}", history,
                             float(record.get("wall_time_s", "nan")),
                             f"{record.get('machine', '?')}, {record.get('device', '?')}")
    trainer = train_live(objective, replace(config, output_dir=str(Path(config.output_dir) / name)), prompts,
                         callback=callback)
    return TrainedPolicy(name, trainer.unwrapped.policy, "trained live", trainer.history, trainer.wall_time)


# --------------------------------------------------------------------------------------------
# Rewards
# --------------------------------------------------------------------------------------------


# The "generally better" reward of the RLHF baseline, when no reward model for it ships: the same
# rater that labelled the shipped general reward model's pairs (annotators.GENERAL_WEIGHTS, half
# informativeness, half friendliness), as weights on each dimension's positive side: {"P2B": .5, "P3A": .5}.
GENERAL_WEIGHTS = {side: annotators.GENERAL_WEIGHTS[side[:2]] for side, sign in annotators.SIGN.items()
                   if sign > 0 and side[:2] in annotators.GENERAL_WEIGHTS}


def general_score_fn(score_fn, weights: dict[str, float] | None = None, code: str = "general"):
    """A score_fn that also knows `code` ("general", the RLHF baseline's single reward).

    If the scorer has its own reward model for `code`, it is used as it is. Otherwise `code` is the
    general rater's reward built from the side rewards: r_general = sum_s w_s r_s / sum_s w_s over
    GENERAL_WEIGHTS, what a reward model trained on that rater's labels learns to first order.
    """
    models = getattr(score_fn, "models", None)
    if models is not None and code in models:
        return score_fn
    weights = dict(weights or GENERAL_WEIGHTS)
    parts, w = list(weights), torch.tensor(list(weights.values()), dtype=torch.float32)

    def scorer(side_codes, instructions, responses):
        side_codes = list(side_codes)
        need = [c for c in side_codes if c != code]
        if code in side_codes:
            need += [s for s in parts if s not in need]
        cols = torch.as_tensor(score_fn(need, instructions, responses), dtype=torch.float32)   # (batch, len(need))
        out = []
        for c in side_codes:
            if c == code:
                # r_general = sum_s w_s r_s / sum_s w_s
                out.append(cols[:, [need.index(s) for s in parts]] @ w / w.sum())
            else:
                out.append(cols[:, need.index(c)])
        return torch.stack(out, dim=1)                              # (batch, len(side_codes))

    scorer.models = models
    return scorer


def score_policy_answers(model, tokenizer, instructions: Sequence[str], score_fn, codes: Sequence[str], *,
                         label: str = "", use_adapter: bool = True, preference=None,
                         weights: Sequence[float] | None = None, scalarizer=None, max_new_tokens: int = 64,
                         temperature: float = 0.7, seed: int | None = 0, batch_size: int = 8) -> list[dict]:
    """Answer each instruction with `model` (adapter off if use_adapter=False; `preference` prompt
    appended if given) and score the answer with every reward in `codes` on the PLAIN instruction.

    Rows: {label, instruction, response, tokens, <code>: reward, ..., reward: scalarized}.
    """
    from contextlib import nullcontext

    from ..models import generate

    ctx = model.disable_adapter() if not use_adapter else nullcontext()
    with ctx:
        answers = generate(model, tokenizer, list(instructions), preference, max_new_tokens=max_new_tokens,
                           temperature=temperature, seed=seed, batch_size=batch_size)
    rewards = torch.as_tensor(score_fn(list(codes), list(instructions), answers), dtype=torch.float32)
    w = torch.tensor(list(weights) if weights is not None else [1.0] * len(codes), dtype=torch.float32)
    scalar = (scalarizer or weighted_linear)(rewards, w)
    rows = []
    for i, (ins, ans) in enumerate(zip(instructions, answers)):
        row = {"label": label, "instruction": ins, "response": ans,
               "tokens": len(tokenizer(ans, add_special_tokens=False)["input_ids"])}
        row.update({c: float(rewards[i, k]) for k, c in enumerate(codes)})
        row["reward"] = float(scalar[i])
        rows.append(row)
    return rows


def means_by_label(rows: list[dict], columns: Sequence[str] = ("reward",)) -> list[dict]:
    """Per label (first-seen order): the number of answers, mean tokens and the mean of each column."""
    return [{"label": g["label"], "answers": g["n"], "mean tokens": g["tokens"], **{c: g[c] for c in columns}}
            for g in group_means(rows, "label", ["tokens", *columns])]


def side_by_side(rows: list[dict], code: str = "reward", max_chars: int = 400) -> list[dict]:
    """One row per instruction, one column per label: '[n tokens, code +0.12] answer'."""
    table: dict[str, dict] = {}
    for r in rows:
        entry = table.setdefault(r["instruction"], {"instruction": r["instruction"]})
        text = r["response"] if len(r["response"]) <= max_chars else r["response"][:max_chars] + " ..."
        entry[r["label"]] = f"[{r['tokens']} tokens, {code} {r[code]:+.2f}] {text}"
    return list(table.values())


def length_change(summary: list[dict], before: str, after: str) -> float:
    """Relative change of the mean answer length from label `before` to label `after` (-0.3 = 30% shorter)."""
    by = {row["label"]: row for row in summary}
    return by[after]["mean tokens"] / by[before]["mean tokens"] - 1.0


def with_seconds(history: list[dict]) -> list[dict]:
    """PPOTrainer metrics rows with "seconds": the cumulative training wall time after each iteration."""
    total, out = 0.0, []
    for row in history:
        total += row.get("time/total", 0.0)
        out.append({**row, "seconds": total})
    return out
