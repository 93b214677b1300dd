"""The multitask SFT baseline: supervised fine-tuning on the preferred responses of every combination.

RLPHF compares the soups with a "multitask" policy: one model fine-tuned, with the preference
prompt in the input, on the responses that each preference combination prefers. Ours:

    for every train prompt x and each of the 8 combinations c = (s1, s2, s3):
        input  = x + preference_prompt(c)
        target = argmax over the prompt's 7 candidates y of  sum_{s in c} score_s(y)   (simulated annotators)

then TRL's SFTTrainer with a LoRA adapter of the same shape as the PPO adapters (so it can sit in
the same soup widget), loss on the completion tokens only.

    rlphf-lab train-sft --out data/adapters/multitask
"""
from __future__ import annotations

import time
from pathlib import Path

from ..feedback.hacks import is_hack
from ..feedback.pairs import group_by_prompt, score_candidates
from ..preferences import apply_preference, combinations, parse_combination
from ..tables import write_csv
from .run_folder import ADAPTER_DIR


def multitask_examples(candidates: list[dict], combos: list[str] | None = None, split: str = "train") -> list[dict]:
    """Prompt-completion rows (TRL's conversational format) for every prompt of `split` and combination."""
    combos = combos or combinations()
    rows = [c for c in candidates if c["split"] == split and not is_hack(c)]   # hack rows are never a target
    if not rows:
        raise ValueError(f"No {split} candidates; run `rlphf-lab generate-candidates` first.")
    scores = score_candidates(rows)
    examples = []
    for prompt_id, by_style in group_by_prompt(rows).items():
        for combo in combos:
            sides = [p.code for p in parse_combination(combo)]
            # the candidate this combination's user likes best: max_y sum_s score_s(y)
            best = max(by_style.values(), key=lambda c: sum(scores[c["id"]]["scores"][s] for s in sides))
            examples.append({
                "prompt": [{"role": "user", "content": apply_preference(best["instruction"], combo)}],
                "completion": [{"role": "assistant", "content": best["response"]}],
                "prompt_id": prompt_id, "combination": combo, "style": best["style"],
            })
    return examples


def train_multitask_sft(candidates: list[dict], output_dir: str | Path, *, epochs: float = 2.0, batch_size: int = 8,
                        learning_rate: float = 2e-4, max_steps: int = -1, seed: int = 0, lora_r: int = 16,
                        lora_alpha: int = 32, target_modules=("q_proj", "v_proj"), device: str | None = None,
                        command: str | None = None) -> dict:
    """Fine-tune a LoRA adapter with TRL's SFTTrainer; writes output_dir/adapter (+ provenance) and
    output_dir/metrics.csv. Returns {"loss", "steps", "wall_time_s", "examples"}."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from ..data import partial_path, replace_with, write_provenance
    from ..models import load_policy
    from .policy import reset_accelerate_state

    output_dir = Path(output_dir)
    examples = multitask_examples(candidates)
    dataset = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
    model, tokenizer = load_policy(device=device, dtype="float32")   # fp32 master weights; autocast below
    use_bf16 = model.device.type == "cuda"
    args = SFTConfig(output_dir=str(output_dir / "checkpoints"), num_train_epochs=epochs, max_steps=max_steps,
                     per_device_train_batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                     lr_scheduler_type="cosine", warmup_steps=10, logging_steps=5, save_strategy="no",
                     report_to="none", max_length=512, bf16=use_bf16, completion_only_loss=True,
                     use_cpu=model.device.type == "cpu", dataloader_num_workers=0)
    peft_config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=list(target_modules),
                             task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    start = time.perf_counter()
    try:
        result = trainer.train()
    finally:
        reset_accelerate_state()          # no bf16 autocast (on a GPU) left behind for a later PPO run
    wall = time.perf_counter() - start
    adapter = output_dir / ADAPTER_DIR
    # written as adapter.partial and renamed: an adapter being replaced (--overwrite) stays whole until then
    trainer.model.save_pretrained(partial_path(adapter), safe_serialization=True)
    replace_with(partial_path(adapter), adapter)
    logs = [r for r in trainer.state.log_history if "loss" in r]
    fields = ["step", "epoch", "loss", "learning_rate"]
    write_csv(output_dir / "metrics.csv", [{k: r.get(k) for k in fields} for r in logs], fieldnames=fields)
    summary = {"loss": float(result.training_loss), "steps": int(trainer.state.global_step),
               "wall_time_s": round(wall, 1), "examples": len(examples)}
    write_provenance(adapter, command=command or "train_multitask_sft()", seed=seed, wall_time_s=wall,
                     device=str(model.device), dtype="float32 weights" + (", bf16 autocast" if use_bf16 else ""),
                     final_metrics=summary, config={"epochs": epochs, "batch_size": batch_size,
                                                    "learning_rate": learning_rate, "lora_r": lora_r,
                                                    "lora_alpha": lora_alpha, "target_modules": list(target_modules)})
    return summary
