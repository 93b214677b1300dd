"""Candidate responses: for each prompt, one sample per preference prompt (and one with none).

Responses written under opposite preference prompts differ along that dimension, so pairs drawn
from one prompt's candidates carry signal for every annotator. The *instruction* stored with a
candidate is the plain one: reward models later score (plain instruction, response), exactly as
PPO will call them (the reference code trained with the preference prompt and scored without).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..data import read_jsonl
from ..models import generate
from ..preferences import SIDES

STYLES = ["none"] + SIDES          # the preference prompt each candidate was sampled under


def candidate_id(prompt_id: str, style: str) -> str:
    return f"{prompt_id}-{style}"


def generate_candidates(model, tokenizer, prompts: list[dict], out_path: str | Path, *, styles=STYLES,
                        max_new_tokens: int = 128, temperature: float = 0.7, top_p: float = 0.9,
                        seed: int = 0, batch_size: int = 16, progress: bool = True) -> list[dict]:
    """Sample one response per (prompt, style) and append each batch to `out_path` (JSONL).

    Resumable: candidates already in the file are skipped, so an interrupted run continues where
    it stopped. Batch b uses seed + b over the *full* job list, so a resumed run gives the same
    responses as an uninterrupted one.
    """
    out_path = Path(out_path)
    done = {row["id"] for row in read_jsonl(out_path)} if out_path.exists() else set()
    jobs = [(p, s) for p in prompts for s in styles]
    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(jobs), desc="candidates", disable=not progress, initial=len(done))
    with open(out_path, "a", encoding="utf-8") as f:
        for b, batch in enumerate(batches):
            if all(candidate_id(p["id"], s) in done for p, s in batch):
                continue
            start = time.perf_counter()
            answers = generate(model, tokenizer, [p["instruction"] for p, _ in batch],
                               preference=[None if s == "none" else s for _, s in batch],
                               max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                               seed=seed * 100_003 + b, batch_size=len(batch))
            per_item = (time.perf_counter() - start) / len(batch)
            for (p, s), answer in zip(batch, answers):
                cid = candidate_id(p["id"], s)
                if cid in done:
                    continue
                row = {"id": cid, "prompt_id": p["id"], "split": p["split"], "category": p["category"],
                       "instruction": p["instruction"], "style": s, "response": answer,
                       "seed": seed, "batch": b, "seconds": round(per_item, 3)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                done.add(cid)
            f.flush()
            bar.update(len(batch))
    bar.close()
    wanted = {candidate_id(p["id"], s) for p, s in jobs}
    return [row for row in read_jsonl(out_path) if row["id"] in wanted]
