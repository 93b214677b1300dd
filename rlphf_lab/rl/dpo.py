"""DPO side adapters: one LoRA per preference side, learned from that side's labelled pairs with
TRL's DPOTrainer, without a reward model and without sampling (Rafailov et al. 2023).

For a pair (x, y_w, y_l) of one side (y_w chosen, y_l rejected by that side's annotator):

    L_DPO = -log sigmoid( beta * [ log pi(y_w|x) / pi_ref(y_w|x)  -  log pi(y_l|x) / pi_ref(y_l|x) ] )

    x        the instruction, *without* the side's preference prompt (the adapter must carry the side)
    pi       the base model with the LoRA adapter being trained
    pi_ref   the same model with the adapter switched off (TRL does this when given a peft_config and
             no ref_model: no second copy of the model)
    beta     how strongly pi is held near pi_ref (0.1: TRL's default)

The bracket is the difference of two *implicit rewards* r(x, y) = beta log pi(y|x) / pi_ref(y|x), so
the loss is exactly the Bradley-Terry loss of notebook 02, -log sigmoid(r(x, y_w) - r(x, y_l)), with
the policy itself as the reward model. TRL logs the implicit rewards as rewards/chosen and
rewards/rejected, their difference as rewards/margins, and how often r(y_w) > r(y_l) as
rewards/accuracies.

The adapter has the PPO adapters' LoraConfig (same rank and target modules), so DPO and PPO sides
mix in one soup.

    rows = dpo_pairs(candidates, pairs, "P2A")                 # TRL's conversational preference format
    summary = train_dpo_side(candidates, pairs, eval_pairs, "P2A", "runs/dpo-P2A")
    rlphf-lab train-dpo --preference P2A --out data/adapters/dpo-P2A
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..feedback.hacks import is_hack
from ..preferences import get_preference
from ..tables import write_csv
from .run_folder import ADAPTER_DIR, CHECKPOINT_DIR, METRICS_FILE

# What TRL logs, under the names written to metrics.csv (train rows, and eval rows on held-out pairs).
METRIC_FIELDS = ("step", "epoch", "loss", "rewards/chosen", "rewards/rejected", "rewards/margins",
                 "rewards/accuracies", "logps/chosen", "logps/rejected", "learning_rate", "eval_loss",
                 "eval_rewards/margins", "eval_rewards/accuracies")


def implicit_reward(policy_logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x)); inputs are summed log-probs of the answer, (batch,)."""
    return beta * (policy_logp - ref_logp)


def dpo_loss(chosen_logp: torch.Tensor, rejected_logp: torch.Tensor, ref_chosen_logp: torch.Tensor,
             ref_rejected_logp: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """The mean DPO loss over a batch of pairs, -log sigmoid(r(x, y_w) - r(x, y_l)); all inputs (batch,).

    The same formula as TRL's `loss_type="sigmoid"`, written out for the notebook and its exercise."""
    margin = implicit_reward(chosen_logp, ref_chosen_logp, beta) - implicit_reward(rejected_logp, ref_rejected_logp, beta)
    return -F.logsigmoid(margin).mean()


def dpo_pairs(candidates: list[dict], pairs: list[dict], side: str, *, split: str = "train",
              max_pairs: int | None = None, seed: int = 0) -> list[dict]:
    """One side's labelled pairs as TRL preference rows (conversational format):

        {"prompt": [{"role": "user", "content": x}], "chosen": [{"role": "assistant", "content": y_w}],
         "rejected": [{"role": "assistant", "content": y_l}], "pair_id": ...}

    `pairs` hold candidate ids (the shipped pairs_*.jsonl) or the texts themselves (chosen / rejected).
    Pairs whose chosen answer is a hack row are left out (DPO would raise its probability); pairs with
    a hack as the rejected answer stay: they teach the adapter what not to write. `max_pairs` keeps a
    seeded random subset. Missing texts and a side without pairs are ValueErrors that say what to do.
    """
    code = get_preference(side).code
    by_id = {c["id"]: c for c in candidates}
    mine = [p for p in pairs if p.get("preference") == code and p.get("split", split) == split]
    if not mine:
        have = sorted({p.get("preference") for p in pairs if p.get("preference")})
        raise ValueError(f"No {split} pairs for side {code} (the pairs cover {have or 'no side'}); label them with "
                         f"`rlphf-lab label-pairs --split {split}` or pick another side.")
    rows = []
    for p in mine:
        chosen, rejected = by_id.get(p.get("chosen_id")), by_id.get(p.get("rejected_id"))
        texts = {"chosen": p.get("chosen", chosen and chosen["response"]),
                 "rejected": p.get("rejected", rejected and rejected["response"])}
        instruction = p.get("instruction") or (chosen or rejected or {}).get("instruction")
        missing = [k for k, v in texts.items() if not (isinstance(v, str) and v.strip())]
        if missing or not instruction:
            what = " and ".join(missing) or "instruction"
            raise ValueError(f"Pair {p.get('pair_id', '?')} has no {what} text (ids {p.get('chosen_id')!r}, "
                             f"{p.get('rejected_id')!r}); pass the candidates file the pairs were labelled from "
                             f"(data/candidates.jsonl) or pairs that carry chosen/rejected texts.")
        if chosen is not None and is_hack(chosen):
            continue
        rows.append({"prompt": [{"role": "user", "content": instruction}],
                     "chosen": [{"role": "assistant", "content": texts["chosen"]}],
                     "rejected": [{"role": "assistant", "content": texts["rejected"]}],
                     "pair_id": p.get("pair_id", "")})
    if max_pairs is not None and len(rows) > max_pairs:
        keep = np.random.default_rng(seed).choice(len(rows), size=max_pairs, replace=False)
        rows = [rows[i] for i in sorted(keep)]
    return rows


def _last_checkpoint(folder: Path) -> str | None:
    """The newest TRL checkpoint-<step> folder in folder (None: start from scratch)."""
    steps = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    return str(steps[-1]) if steps else None


def train_dpo_side(candidates: list[dict], pairs: list[dict], eval_pairs: list[dict], side: str,
                   output_dir: str | Path, *, max_pairs: int | None = 1024, eval_pairs_n: int = 128,
                   epochs: float = 1.0, max_steps: int = -1, batch_size: int = 8, learning_rate: float = 5e-5,
                   beta: float = 0.1, max_length: int = 320, lora_r: int = 16, lora_alpha: int = 32,
                   target_modules: Sequence[str] = ("q_proj", "v_proj"), save_steps: int = 25, seed: int = 0,
                   resume: bool = True, device: str | None = None, command: str | None = None) -> dict:
    """Train one side's DPO adapter with TRL's DPOTrainer; writes output_dir/adapter (+ provenance),
    output_dir/metrics.csv and output_dir/checkpoints/checkpoint-<step> (every `save_steps`; a rerun with
    resume=True continues from the newest one). Returns the summary that the provenance records."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from ..data import partial_path, replace_with, write_provenance
    from ..models import load_policy

    output_dir = Path(output_dir)
    train_rows = dpo_pairs(candidates, pairs, side, split="train", max_pairs=max_pairs, seed=seed)
    eval_rows = dpo_pairs(candidates, eval_pairs, side, split="eval", max_pairs=eval_pairs_n, seed=seed)
    strip = ("prompt", "chosen", "rejected")
    train_set = Dataset.from_list([{k: r[k] for k in strip} for r in train_rows])
    eval_set = Dataset.from_list([{k: r[k] for k in strip} for r in eval_rows])
    model, tokenizer = load_policy(device=device, dtype="float32")   # fp32 master weights; bf16 autocast
    cpu = model.device.type == "cpu"
    use_bf16 = cpu or torch.cuda.is_bf16_supported()    # bf16 autocast is 2-3x faster on this CPU too
    steps_per_epoch = -(-len(train_rows) // batch_size)
    total = max_steps if max_steps > 0 else int(np.ceil(epochs * steps_per_epoch))
    args = DPOConfig(output_dir=str(output_dir / CHECKPOINT_DIR), num_train_epochs=epochs, max_steps=max_steps,
                     per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
                     learning_rate=learning_rate, beta=beta, seed=seed, lr_scheduler_type="cosine",
                     warmup_steps=max(1, total // 10), logging_steps=max(1, min(10, total // 10)),
                     eval_strategy="steps", eval_steps=max(1, total // 4), save_strategy="steps",
                     save_steps=save_steps, save_total_limit=2, report_to="none", max_length=max_length,
                     bf16=use_bf16, gradient_checkpointing=False,   # checkpointing only slows a CPU down
                     use_cpu=cpu, dataloader_num_workers=0, disable_tqdm=False)
    peft_config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=list(target_modules),
                             task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                         processing_class=tokenizer, peft_config=peft_config)
    before = trainer.evaluate()                       # the untrained adapter: margin 0, accuracy ~ ties
    resume_from = _last_checkpoint(output_dir / CHECKPOINT_DIR) if resume else None
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    wall = time.perf_counter() - start
    after = trainer.evaluate()
    adapter = output_dir / ADAPTER_DIR
    # written as adapter.partial and renamed: an adapter being replaced stays whole until then
    trainer.model.save_pretrained(partial_path(adapter), safe_serialization=True)
    replace_with(partial_path(adapter), adapter)
    logs = [r for r in trainer.state.log_history if "loss" in r or "eval_loss" in r]
    write_csv(output_dir / METRICS_FILE, [{k: r.get(k) for k in METRIC_FIELDS} for r in logs],
              fieldnames=list(METRIC_FIELDS))
    summary = {"side": get_preference(side).code, "pairs": len(train_rows), "eval_pairs": len(eval_rows),
               "steps": int(trainer.state.global_step), "loss": float(result.training_loss),
               "eval_accuracy_before": before.get("eval_rewards/accuracies"),
               "eval_accuracy": after.get("eval_rewards/accuracies"),
               "eval_margin_before": before.get("eval_rewards/margins"), "eval_margin": after.get("eval_rewards/margins"),
               "wall_time_s": round(wall, 1), "resumed_from": resume_from}
    write_provenance(adapter, command=command or f"train_dpo_side(side={side!r})", seed=seed, wall_time_s=wall,
                     device=str(model.device), dtype="float32 weights" + (", bf16 autocast" if use_bf16 else ""),
                     final_metrics=summary,
                     config={"method": "dpo", "beta": beta, "epochs": epochs, "max_steps": max_steps,
                             "batch_size": batch_size, "learning_rate": learning_rate, "max_pairs": max_pairs,
                             "max_length": max_length, "lora_r": lora_r, "lora_alpha": lora_alpha,
                             "target_modules": list(target_modules), "torch_threads": torch.get_num_threads()})
    return summary
