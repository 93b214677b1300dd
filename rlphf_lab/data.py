"""Prompt sets shipped in data/ (and, later, feedback stores and datasets built from them)."""
from __future__ import annotations

import json
from pathlib import Path

from .config import DATA_DIR

PROMPTS_FILE = DATA_DIR / "prompts.jsonl"
SPLITS = ("train", "eval")


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file written by the lab (every line must be valid JSON)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}, line {n}: not valid JSON ({err}).") from err
    return rows


def write_jsonl(path: str | Path, rows) -> Path:
    """Write rows as JSONL (one JSON object per line, UTF-8)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def load_prompts(split: str | None = None, limit: int | None = None, path: str | Path = PROMPTS_FILE) -> list[dict]:
    """The project's instructions: dicts with id, category, split, instruction.

    `split` is "train", "eval" or None (all); `limit` keeps the first n (for quick mode).
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {SPLITS} or None for all prompts.")
    rows = [r for r in read_jsonl(path) if split is None or r["split"] == split]
    return rows[:limit] if limit is not None else rows
