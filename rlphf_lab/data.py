"""Prompt sets shipped in data/ (and, later, feedback stores and datasets built from them)."""
from __future__ import annotations

import json
import os
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


def package_versions(names=("torch", "transformers", "peft", "trl", "datasets", "accelerate")) -> dict:
    """Installed versions of the packages that matter for reproducing an artifact."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def write_provenance(artifact: str | Path, *, command: str, seed: int | None, wall_time_s: float, **extra) -> Path:
    """Write `<artifact>.provenance.json` beside an artifact: how to make it again."""
    import platform
    import subprocess
    import sys
    from datetime import datetime, timezone

    artifact = Path(artifact)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=DATA_DIR.parent, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    record = {
        "artifact": artifact.name,
        "command": command,
        "seed": seed,
        "wall_time_s": round(wall_time_s, 1),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "packages": package_versions(),
        **extra,
    }
    path = artifact.with_name(artifact.name + ".provenance.json")
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
