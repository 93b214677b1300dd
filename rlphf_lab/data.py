"""The lab's files: the shipped prompts and labelled pairs in data/, JSONL and `datasets` conversion,
provenance records, and writes that never leave a half-written file (write to `.partial`, rename)."""
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


def partial_path(path: str | Path) -> Path:
    """Where an artifact is written until it is complete: `<name>.partial` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def replace_with(new: str | Path, target: str | Path) -> Path:
    """Put the finished file or folder `new` where `target` is, replacing it.

    Until this call `target` is untouched, so an interrupted write never leaves half an artifact:
    write to `partial_path(target)`, then call this. A file is swapped in one step (os.replace);
    a folder is swapped by renaming the old one to `<name>.old`, the new one into place, and only
    then deleting the old one.
    """
    import shutil

    new, target = Path(new), Path(target)
    if not new.is_dir():
        os.replace(new, target)
        return target
    old = target.with_name(target.name + ".old")
    if old.exists() and target.exists():      # left over from a swap that was interrupted after its rename
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file (UTF-8) so that it is either the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return replace_with(tmp, path)


def read_safetensors(file: str | Path, fix: str) -> dict:
    """The tensors of a .safetensors file, checked: it exists, it reads, it is not empty, and every
    value is finite. Each problem is a ValueError naming the file and ending with `fix` (what to do)."""
    import torch
    from safetensors.torch import load_file

    file = Path(file)
    if not file.is_file():
        raise ValueError(f"{file} is missing; {fix}.")
    try:
        tensors = load_file(file)
    except Exception as err:    # safetensors' SafetensorError: truncated, empty or random bytes
        raise ValueError(f"{file} cannot be read ({type(err).__name__}: {err}): the file is damaged or "
                         f"incomplete; {fix}.") from None
    if not tensors:
        raise ValueError(f"{file} holds no tensors; {fix}.")
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{file} holds NaN or inf values in {len(bad)} tensors (e.g. {bad[0]}): training diverged "
                         f"or the file is damaged; {fix}.")
    return tensors


def read_json(file: str | Path, fix: str) -> dict:
    """A JSON object from a file the lab wrote; missing, unreadable or invalid JSON is a ValueError naming the file."""
    file = Path(file)
    if not file.is_file():
        raise ValueError(f"{file} is missing; {fix}.")
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:        # JSONDecodeError, invalid UTF-8, unreadable
        raise ValueError(f"{file} is not valid JSON ({err}); {fix}.") from None
    if not isinstance(value, dict):
        raise ValueError(f"{file} holds {type(value).__name__}, not a JSON object; {fix}.")
    return value


def write_jsonl(path: str | Path, rows) -> Path:
    """Write rows as JSONL (one JSON object per line, UTF-8); the old file stays until the new one is complete."""
    return write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def load_prompts(split: str | None = None, limit: int | None = None, path: str | Path = PROMPTS_FILE) -> list[dict]:
    """The project's instructions: dicts with id, category, split, instruction.

    `split` is "train", "eval" or None (all); `limit` keeps the first n (for quick mode).
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {SPLITS} or None for all prompts.")
    rows = [r for r in read_jsonl(path) if split is None or r["split"] == split]
    return rows[:limit] if limit is not None else rows


def balanced_prompts(train_per_category: int, path: str | Path = PROMPTS_FILE) -> list[dict]:
    """All eval prompts plus the first `train_per_category` train prompts of every category,
    in file order: a smaller training set that still covers every topic."""
    taken: dict[str, int] = {}
    out = []
    for row in load_prompts(path=path):
        if row["split"] == "train":
            if taken.get(row["category"], 0) >= train_per_category:
                continue
            taken[row["category"]] = taken.get(row["category"], 0) + 1
        out.append(row)
    return out


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
    commit = commit or os.environ.get("RLPHF_COMMIT")     # a copy of the tree without .git (a remote GPU)
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
    return write_text_atomic(artifact.with_name(artifact.name + ".provenance.json"), json.dumps(record, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Feedback: the append-only store, shipped pair sets, conversion to TRL's preference format
# --------------------------------------------------------------------------------------------

FEEDBACK_DIR = DATA_DIR / "feedback"
CANDIDATES_FILE = DATA_DIR / "candidates.jsonl"
# Text fields that shipped pair files leave out: they are joined back from candidates.jsonl.
TEXT_FIELDS = ("instruction", "chosen", "rejected")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not standard JSON")


class FeedbackStore:
    """An append-only JSONL file of feedback records: one line per click, never rewritten.

        store = FeedbackStore("my_labels.jsonl")
        store.append({"pair_id": "...", "chosen": "...", ...})   # on disk before it returns
        store.records()                                            # every valid line

    `append` writes one line, flushes and fsyncs, so a kernel crash loses at most the record
    being written; it refuses (ValueError) a record that `records` could not read back: anything
    but a dict, or values that are not standard JSON (NaN, inf, objects). `records` skips a
    corrupt or truncated line (invalid JSON, invalid UTF-8, NaN), warns with its line number and
    lists it in `problems`; the file itself is never changed except by appending.

    A store whose file does not exist yet is new (`is_new`): the first append creates it. To read
    labels that must already be there, pass `must_exist=True`: a mistyped path then raises
    FileNotFoundError instead of reading as an empty store.
    """

    def __init__(self, path: str | Path, must_exist: bool = False):
        self.path = Path(path)
        self.problems: list[tuple[int, str]] = []     # (line number, what is wrong), from the last read
        if must_exist and not self.path.is_file():
            others = sorted(p.name for p in self.path.parent.glob("*.jsonl")) if self.path.parent.is_dir() else []
            raise FileNotFoundError(f"No feedback store at {self.path} (files there: {others or 'none'}); "
                                    f"check the path, or label some pairs first (the first label creates it).")

    @property
    def is_new(self) -> bool:
        """True while the file does not exist (nothing labelled yet, or a mistyped path)."""
        return not self.path.exists()

    def describe(self) -> str:
        """One line for a notebook or widget: how many records, or that the store is new."""
        if self.is_new:
            return f"new store {self.path} (no file yet: the first label creates it)"
        return f"{len(self.records())} records in {self.path}"

    def append(self, record: dict) -> None:
        """Append one record as one JSON line, then flush and fsync."""
        if not isinstance(record, dict):
            raise ValueError(f"A feedback record must be a dict, got {type(record).__name__}: {record!r:.80}; "
                             f"nothing was written.")
        try:
            line = json.dumps(record, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:       # NaN / inf, or a value JSON cannot hold
            raise ValueError(f"Cannot store this record as standard JSON ({err}); use plain numbers, strings, "
                             f"lists and dicts (no NaN). Nothing was written.") from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            # After a crash mid-write the last line has no newline: end it first, so the new record
            # starts a line of its own instead of being glued onto the broken one.
            if f.tell() > 0 and not self._ends_with_newline():
                f.write(b"\n")
            f.write(line.encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def records(self) -> list[dict]:
        """All valid records, in order. Bad lines are warned about, listed in `problems`, skipped."""
        import warnings

        self.problems = []
        if not self.path.exists():
            return []
        rows = []
        with open(self.path, "rb") as f:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    # strict: invalid UTF-8 is an error (never silently U+FFFD), and so is NaN
                    row = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
                    if not isinstance(row, dict):
                        raise ValueError("not a JSON object")
                except ValueError as err:               # UnicodeDecodeError and JSONDecodeError are ValueErrors
                    self.problems.append((n, str(err)))
                    warnings.warn(f"{self.path}, line {n}: skipped a corrupt or truncated record ({err}). "
                                  f"The line stays in the file; delete it by hand if you want it gone.", stacklevel=2)
                    continue
                rows.append(row)
        return rows

    def labelled_ids(self, rater: str | None = None) -> set[str]:
        """pair_ids already in the store (for `rater` only, if given): what a resumed session skips."""
        return {r["pair_id"] for r in self.records() if "pair_id" in r and (rater is None or r.get("rater") == rater)}

    def __len__(self) -> int:
        return len(self.records())


def write_pairs(path: str | Path, pairs: list[dict]) -> Path:
    """Write pair records without their texts (they come back from candidates.jsonl on load)."""
    return write_jsonl(path, ({k: v for k, v in p.items() if k not in TEXT_FIELDS} for p in pairs))


def load_pairs(name: str | Path, candidates: str | Path | list[dict] | None = None) -> list[dict]:
    """Load a pair set: a shipped name ("pairs_train", "raters_low", ...) or a path.

    Records written by `write_pairs` get their instruction, chosen and rejected texts back from
    the candidate pool (`candidates`: a path or rows; default data/candidates.jsonl).
    """
    path = Path(name)
    if not path.exists():
        path = FEEDBACK_DIR / (str(name) if str(name).endswith(".jsonl") else f"{name}.jsonl")
    if not path.exists():
        shipped = sorted(p.stem for p in FEEDBACK_DIR.glob("*.jsonl")) if FEEDBACK_DIR.exists() else []
        raise FileNotFoundError(f"No pair set {name!r}. Shipped sets: {shipped or 'none'}; "
                                f"make one with `rlphf-lab label-pairs` or pass a path.")
    pairs = read_jsonl(path)
    if all(all(k in p for k in TEXT_FIELDS) for p in pairs):
        return pairs
    rows = candidates if isinstance(candidates, list) else read_jsonl(candidates or CANDIDATES_FILE)
    by_id = {c["id"]: c for c in rows}
    for p in pairs:
        missing = [i for i in (p["chosen_id"], p["rejected_id"]) if i not in by_id]
        if missing:
            raise ValueError(f"{path}: pair {p['pair_id']} refers to candidates {missing} that are not in the "
                             f"candidate pool; regenerate it with `rlphf-lab generate-candidates` (seed 0).")
        p.setdefault("instruction", by_id[p["chosen_id"]]["instruction"])
        p.setdefault("chosen", by_id[p["chosen_id"]]["response"])
        p.setdefault("rejected", by_id[p["rejected_id"]]["response"])
    return pairs


# Columns every preference dataset carries besides prompt / chosen / rejected (None when absent).
METADATA_COLUMNS = ("pair_id", "prompt_id", "split", "preference", "rater", "chosen_id", "rejected_id",
                    "score_chosen", "score_rejected")


def to_preference_dataset(pairs_or_records, preference: str | None = None, rater: str | None = None):
    """A `datasets.Dataset` in TRL's conversational preference format.

    prompt = [{"role": "user", "content": instruction}], chosen / rejected = [{"role": "assistant",
    "content": ...}], plus METADATA_COLUMNS. Accepts pair records, a FeedbackStore or a path to
    one. Keeps only `preference` / `rater` when given; ties and skips (no chosen text) are dropped.
    The prompt is the plain instruction, without the preference text: a reward model for a side
    scores (instruction, response) exactly as PPO will call it.
    """
    from datasets import Dataset

    if isinstance(pairs_or_records, (str, Path)):
        pairs_or_records = FeedbackStore(pairs_or_records, must_exist=True)
    records = pairs_or_records.records() if isinstance(pairs_or_records, FeedbackStore) else list(pairs_or_records)
    rows = []
    for r in records:
        if preference is not None and r.get("preference") != preference:
            continue
        if rater is not None and r.get("rater") != rater:
            continue
        if not r.get("chosen") or not r.get("rejected") or r.get("label") in ("tie", "skip"):
            continue
        rows.append({
            "prompt": [{"role": "user", "content": r["instruction"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
            **{k: r.get(k) for k in METADATA_COLUMNS},
        })
    if not rows:
        raise ValueError(f"No labelled pairs left for preference={preference!r}, rater={rater!r}: check the "
                         f"filters (preferences present: {sorted({str(r.get('preference')) for r in records})}).")
    return Dataset.from_list(rows)


DEV_PER_CATEGORY = 3     # train prompts per category held out from PPO for its held-out metrics


def split_dev(prompts: list[dict], per_category: int = DEV_PER_CATEGORY) -> tuple[list[dict], list[dict]]:
    """(train, dev): the last `per_category` prompts of each category become a dev set.

    PPO trains on `train` and logs held-out rewards on `dev`, so recipes are compared without ever
    looking at the eval split (the 88 prompts every method is finally judged on).
    """
    if per_category < 0:
        raise ValueError(f"per_category must be >= 0 (got {per_category}).")
    by_category: dict[str, list[dict]] = {}
    for row in prompts:
        by_category.setdefault(row["category"], []).append(row)
    dev_ids = {row["id"] for rows in by_category.values() for row in rows[len(rows) - per_category:]} if per_category else set()
    # interleave categories in the dev list, so its first n prompts cover many topics
    dev = [row for k in range(per_category) for rows in by_category.values()
           for row in rows[len(rows) - per_category:][k:k + 1]]
    return [row for row in prompts if row["id"] not in dev_ids], dev
