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

from ..config import bf16_autocast_pays
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


@torch.no_grad()
def answer_logps(model, tokenizer, instructions: Sequence[str], answers: Sequence[str]) -> torch.Tensor:
    """log pi(y|x) summed over the answer's tokens (and its end-of-turn token), one per pair: (batch,) fp32.

    x is the instruction in the chat template, ending with the assistant header (models.format_chat)."""
    from ..models import format_chat

    out = []
    for x, y in zip(instructions, answers):
        prompt_ids = tokenizer(format_chat(tokenizer, x), add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(y + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + answer_ids], device=model.device)
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()     # (answer tokens, vocab)
        logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[0, len(prompt_ids):, None]).sum()
        out.append(logp)
    return torch.stack(out).cpu()


def pair_rewards(model, tokenizer, rows: list[dict], beta: float = 0.1) -> list[dict]:
    """The implicit rewards of a PEFT model's active adapter on dpo_pairs rows: per pair r(x, y_w), r(x, y_l)
    and their margin, with pi = the model and pi_ref = the same model with its adapters switched off."""
    xs = [r["prompt"][0]["content"] for r in rows]
    chosen, rejected = [r["chosen"][0]["content"] for r in rows], [r["rejected"][0]["content"] for r in rows]
    pc, pr = answer_logps(model, tokenizer, xs, chosen), answer_logps(model, tokenizer, xs, rejected)
    with model.disable_adapter():
        rc, rr = answer_logps(model, tokenizer, xs, chosen), answer_logps(model, tokenizer, xs, rejected)
    r_w, r_l = implicit_reward(pc, rc, beta), implicit_reward(pr, rr, beta)
    return [{"pair_id": row.get("pair_id", ""), "reward_chosen": round(a.item(), 4), "reward_rejected": round(b.item(), 4),
             "margin": round((a - b).item(), 4)} for row, a, b in zip(rows, r_w, r_l)]


def dpo_pairs(candidates: list[dict], pairs: list[dict], side: str, *, split: str = "train",
              max_pairs: int | None = None, min_gap: float = 0.0, hack_share: float | None = None,
              above_base: bool = False, exclude_prompts: Sequence[str] = (), seed: int = 0) -> list[dict]:
    """One side's labelled pairs as TRL preference rows (conversational format):

        {"prompt": [{"role": "user", "content": x}], "chosen": [{"role": "assistant", "content": y_w}],
         "rejected": [{"role": "assistant", "content": y_l}], "pair_id": ...}

    `pairs` hold candidate ids (the shipped pairs_*.jsonl) or the texts themselves (chosen / rejected).
    Pairs whose chosen answer is a hack row are left out (DPO would raise its probability); pairs with
    a hack as the rejected answer stay: they teach the adapter what not to write. `min_gap` keeps the
    pairs whose annotator scores (score_chosen - score_rejected) differ by at least that much: near-ties
    are mostly noise for DPO. `max_pairs` then keeps a seeded random subset, of which at most `hack_share`
    have a hack as the rejected answer (None: the natural mix; half of the shipped pairs with a gap of 1
    or more reject a hack, and a short run learns more about its side from the other half).

    `above_base` keeps only the pairs whose chosen answer scores higher on this side than the base
    model's own plain answer (the candidate of style "none") to the same prompt. Many labelled pairs
    prefer one poor answer over a worse one (for "unfriendly": a neutral answer over a friendly one);
    DPO then learns to stay where the base model already is. A pair whose winner beats the base
    model's answer points the adapter beyond it. `exclude_prompts`: prompt ids never trained on
    (the dev prompts that recipes are compared on). Missing texts and a side without pairs are
    ValueErrors that say what to do.
    """
    code = get_preference(side).code
    if hack_share is not None and not 0.0 <= hack_share <= 1.0:
        raise ValueError(f"hack_share is {hack_share}; give a share between 0 and 1 (or None for the natural mix).")
    by_id = {c["id"]: c for c in candidates}
    skip = set(exclude_prompts)
    mine = [p for p in pairs if p.get("preference") == code and p.get("split", split) == split
            and _prompt_of(p, by_id) not in skip]
    if not mine:
        have = sorted({p.get("preference") for p in pairs if p.get("preference")})
        raise ValueError(f"No {split} pairs for side {code} (the pairs cover {have or 'no side'}); label them with "
                         f"`rlphf-lab label-pairs --split {split}` or pick another side.")
    base_score = _base_scores(mine, by_id) if above_base else {}
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
        if min_gap > 0 and p.get("score_chosen", np.inf) - p.get("score_rejected", -np.inf) < min_gap:
            continue
        if above_base and not p.get("score_chosen", -np.inf) > base_score.get(_prompt_of(p, by_id), np.inf):
            continue
        rows.append({"prompt": [{"role": "user", "content": instruction}],
                     "chosen": [{"role": "assistant", "content": texts["chosen"]}],
                     "rejected": [{"role": "assistant", "content": texts["rejected"]}],
                     "pair_id": p.get("pair_id", ""), "hack_rejected": rejected is not None and is_hack(rejected)})
    if not rows:
        raise ValueError(f"No {split} pair of side {code} is left after dropping hack answers, gaps under "
                         f"{min_gap:g}" + (" and winners not above the base model's answer" if above_base else "")
                         + "; lower --min-gap" + (" or leave out --above-base." if above_base else "."))
    if max_pairs is not None and len(rows) > max_pairs:
        rng = np.random.default_rng(seed)
        if hack_share is None:
            keep = rng.choice(len(rows), size=max_pairs, replace=False)
        else:
            hacks = [i for i, r in enumerate(rows) if r["hack_rejected"]]
            others = [i for i, r in enumerate(rows) if not r["hack_rejected"]]
            n_hacks = min(len(hacks), max(int(round(hack_share * max_pairs)), max_pairs - len(others)))
            keep = [*rng.choice(hacks, size=n_hacks, replace=False), *rng.choice(others, size=max_pairs - n_hacks, replace=False)]
        rows = [rows[i] for i in sorted(keep)]
    return rows


def _base_scores(pairs: list[dict], by_id: dict[str, dict]) -> dict[str, float]:
    """prompt_id -> this side's score of the base model's plain answer (style "none"), as its pairs label it."""
    seen: dict[str, list[float]] = {}
    for p in pairs:
        for key, score in (("chosen_id", "score_chosen"), ("rejected_id", "score_rejected")):
            c = by_id.get(p.get(key))
            if c is not None and c.get("style") == "none" and score in p:
                seen.setdefault(_prompt_of(p, by_id), []).append(float(p[score]))
    return {k: float(np.mean(v)) for k, v in seen.items()}


def _prompt_of(pair: dict, by_id: dict[str, dict]) -> str | None:
    """The prompt id of a pair: its own, or its chosen candidate's."""
    return pair.get("prompt_id") or by_id.get(pair.get("chosen_id"), {}).get("prompt_id")


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest TRL checkpoint (output_dir/checkpoints/checkpoint-<step>), or None: start from scratch."""
    steps = [p for p in (Path(output_dir) / CHECKPOINT_DIR).glob("checkpoint-*")
             if p.name.removeprefix("checkpoint-").isdigit() and (p / "trainer_state.json").exists()]
    return str(max(steps, key=lambda p: int(p.name.removeprefix("checkpoint-")))) if steps else None


def check_dpo_out(output_dir: str | Path, *, overwrite: bool = False, resume: bool = False) -> None:
    """Refuse to start a DPO run over earlier work unless told what to do with it (before a model loads):
    --resume continues from the newest checkpoint, --overwrite starts again (old checkpoints are removed,
    the old adapter is replaced only once the new one is written)."""
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: --resume continues the run in --out, "
                         "--overwrite replaces it with a new one.")
    out = Path(output_dir)
    found = [name for name in (f"{ADAPTER_DIR}/", f"{CHECKPOINT_DIR}/") if (out / name).exists()]
    if resume and (last_checkpoint(out) or not found):
        return
    if found and not overwrite:
        hint = ("it has no checkpoint to resume from; " if resume else "")
        raise FileExistsError(f"{out} holds a DPO run ({', '.join(found)}); {hint}nothing was changed. To continue "
                              f"it add --resume, to replace it add --overwrite, to keep it pass another --out.")
    if overwrite and (out / CHECKPOINT_DIR).exists():
        import shutil

        shutil.rmtree(out / CHECKPOINT_DIR)


def soup_ingredients(root: str | Path | None = None) -> dict[str, tuple[Path, str]]:
    """{side: (adapter folder, "dpo" or "ppo")}: the shipped DPO adapter of each side (data/adapters/dpo-<side>),
    else that side's PPO adapter (data/adapters/<side>), else nothing. Load them under the side codes
    (soups.load_adapters(model, {side: folder})) and the SoupWidget's sliders mix DPO and PPO sides alike."""
    from ..preferences import SIDES
    from ..soups import shipped_adapter_dirs

    dpo = shipped_adapter_dirs([f"dpo-{s}" for s in SIDES], root)
    ppo = shipped_adapter_dirs(SIDES, root)
    out = {}
    for side in SIDES:
        if f"dpo-{side}" in dpo:
            out[side] = (dpo[f"dpo-{side}"], "dpo")
        elif side in ppo:
            out[side] = (ppo[side], "ppo")
    return out


def _LogTo(callback):
    """A transformers TrainerCallback that hands every training log row to callback(metrics)."""
    from transformers import TrainerCallback

    class LogTo(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                callback({"iteration": state.global_step, **logs})

    return LogTo()


def train_dpo_side(candidates: list[dict], pairs: list[dict], eval_pairs: list[dict], side: str,
                   output_dir: str | Path, *, max_pairs: int | None = 256, eval_pairs_n: int = 32,
                   min_gap: float = 0.0, hack_share: float | None = None, above_base: bool = False,
                   exclude_prompts: Sequence[str] = (), epochs: float = 1.0, max_steps: int = -1, batch_size: int = 8,
                   learning_rate: float = 1e-3,
                   beta: float = 0.1, max_length: int = 256, lora_r: int = 16, lora_alpha: int = 32,
                   target_modules: Sequence[str] = ("q_proj", "v_proj"), save_steps: int = 8, seed: int = 0,
                   resume: bool = True, device: str | None = None, command: str | None = None,
                   model=None, tokenizer=None, callback=None) -> dict:
    """Train one side's DPO adapter with TRL's DPOTrainer; writes output_dir/adapter (+ provenance),
    output_dir/metrics.csv and output_dir/checkpoints/checkpoint-<step> (every `save_steps`; a rerun with
    resume=True continues from the newest one). Returns the summary that the provenance records.

    model / tokenizer: the base model to train an adapter on (default: SmolLM2 in fp32 from load_policy;
    the tests pass a tiny one). callback(metrics): called with every logged training row, its step as
    "iteration" (a LivePlot draws the loss and margins while it trains)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from ..data import partial_path, replace_with, write_provenance
    from ..models import load_policy
    from .policy import reset_accelerate_state

    begin = time.perf_counter()
    output_dir = Path(output_dir)
    train_rows = dpo_pairs(candidates, pairs, side, split="train", max_pairs=max_pairs, min_gap=min_gap,
                           hack_share=hack_share, above_base=above_base, exclude_prompts=exclude_prompts, seed=seed)
    eval_rows = dpo_pairs(candidates, eval_pairs, side, split="eval", max_pairs=eval_pairs_n, seed=seed)
    strip = ("prompt", "chosen", "rejected")
    train_set = Dataset.from_list([{k: r[k] for k in strip} for r in train_rows])
    eval_set = Dataset.from_list([{k: r[k] for k in strip} for r in eval_rows])
    if model is None:
        model, tokenizer = load_policy(device=device, dtype="float32")   # fp32 master weights; bf16 autocast
    cpu = model.device.type == "cpu"
    use_bf16 = bf16_autocast_pays(model.device)    # 2-3x faster with native bf16; emulated (AVX2 only) 15x slower
    steps_per_epoch = -(-len(train_rows) // batch_size)
    total = max_steps if max_steps > 0 else int(np.ceil(epochs * steps_per_epoch))
    args = DPOConfig(output_dir=str(output_dir / CHECKPOINT_DIR), num_train_epochs=epochs, max_steps=max_steps,
                     per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
                     learning_rate=learning_rate, beta=beta, seed=seed, lr_scheduler_type="cosine",
                     warmup_steps=max(1, total // 10), logging_steps=max(1, min(4, total // 8)),
                     eval_strategy="no", save_strategy="steps",   # held-out pairs: before and after (an eval costs ~a minute)
                     save_steps=save_steps, save_total_limit=2, report_to="none", max_length=max_length,
                     bf16=use_bf16,          # and no gradient checkpointing (the default): it only slows a CPU down
                     use_cpu=cpu, dataloader_num_workers=0, disable_tqdm=False)
    peft_config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=list(target_modules),
                             task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                         processing_class=tokenizer, peft_config=peft_config)
    if callback is not None:
        trainer.add_callback(_LogTo(callback))
    try:
        before = trainer.evaluate()                       # the untrained adapter: margin 0, accuracy ~ ties
        resume_from = last_checkpoint(output_dir) if resume else None
        start = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume_from)
        wall = time.perf_counter() - start
        after = trainer.evaluate()
    finally:
        reset_accelerate_state()                          # no bf16 autocast left behind for a later PPO run
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
               "wall_time_s": round(wall, 1), "resumed_from": resume_from,
               # training alone (this sitting, if resumed), and with loading the model and both evaluations
               "total_time_s": round(time.perf_counter() - begin, 1)}
    write_provenance(adapter, command=command or f"train_dpo_side(side={side!r})", seed=seed, wall_time_s=wall,
                     device=str(model.device), dtype="float32 weights" + (", bf16 autocast" if use_bf16 else ""),
                     final_metrics=summary,
                     config={"method": "dpo", "beta": beta, "epochs": epochs, "max_steps": max_steps,
                             "batch_size": batch_size, "learning_rate": learning_rate, "max_pairs": max_pairs, "min_gap": min_gap,
                             "hack_share": hack_share, "above_base": above_base,
                             "excluded_prompts": len(set(exclude_prompts)), "hack_rejected_pairs": sum(r["hack_rejected"] for r in train_rows),
                             "max_length": max_length, "lora_r": lora_r, "lora_alpha": lora_alpha,
                             "target_modules": list(target_modules), "torch_threads": torch.get_num_threads()})
    return summary
