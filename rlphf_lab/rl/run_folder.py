"""What a training run leaves in its output folder, and how to read it: the adapter, checkpoints,
metrics.csv and the provenance record; whether a folder holds work that must not be replaced.

    runs/p2a/
      adapter/                   PEFT adapter (safetensors) + value_head.safetensors
      adapter.provenance.json    the command, settings, metrics and cost of the run
      metrics.csv                one row per iteration
      checkpoints/iteration-N/   everything a resumed run needs (see rl/checkpointing.py)
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..tables import append_csv_row

ADAPTER_DIR = "adapter"
VALUE_HEAD_FILE = "value_head.safetensors"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
PROVENANCE_FILE = "adapter.provenance.json"
REPLACED_DIR = "replaced"          # the run an overwrite replaces waits here until the new one is complete


def existing_run(output_dir: str | Path) -> list[str]:
    """What of an earlier run worth keeping is in output_dir: an adapter or checkpoints (empty
    list: nothing; a metrics.csv alone is a run that stopped before its first checkpoint)."""
    out = Path(output_dir)
    found = [name for name in (f"{ADAPTER_DIR}/", PROVENANCE_FILE) if (out / name).exists()]
    if checkpoint_folders(out):
        found.append(f"{len(checkpoint_folders(out))} checkpoints")
    if found and (out / METRICS_FILE).exists():
        rows = max(0, len((out / METRICS_FILE).read_text().splitlines()) - 1)      # minus the header
        found.append(f"{METRICS_FILE} ({rows} iterations)")
    return found


def is_finished(output_dir: str | Path) -> bool:
    """True when output_dir holds a complete adapter with its provenance record."""
    out = Path(output_dir)
    return (out / ADAPTER_DIR / VALUE_HEAD_FILE).exists() and (out / PROVENANCE_FILE).exists()


def check_fresh_start(output_dir: str | Path, *, overwrite: bool = False, resume: bool = False) -> None:
    """Raise FileExistsError if starting a run from iteration 0 in output_dir would replace work:
    a fresh run needs overwrite when the folder holds a run; a resume that found no checkpoint
    starts over, except on a finished run (there is nothing to continue, and nothing to gain).
    The CLI calls this before it loads a model; PPOTrainer.train calls it again."""
    found = existing_run(output_dir)
    if not found:
        return
    if resume and is_finished(output_dir) and (Path(output_dir) / REPLACED_DIR).exists():
        raise FileExistsError(f"{output_dir}: an --overwrite run stopped before its first checkpoint, so there is "
                              f"nothing to resume (the run it replaces is still there: {ADAPTER_DIR}/ and "
                              f"{REPLACED_DIR}/); start it again with --overwrite.")
    if resume and is_finished(output_dir):
        raise FileExistsError(f"{output_dir} holds a finished run ({', '.join(found)}) but no checkpoint to resume "
                              f"from (checkpoints are not shipped); nothing was changed. To keep it, train into another "
                              f"output folder; to replace it, start a fresh run with --overwrite.")
    if not resume and not overwrite:
        raise FileExistsError(f"{output_dir} already holds a training run ({', '.join(found)}); nothing was changed. "
                              f"To keep it, train into another output folder; to continue it, add --resume; "
                              f"to replace it, add --overwrite.")


def checkpoint_folders(output_dir: str | Path) -> list[Path]:
    """The complete checkpoint folders under output_dir/checkpoints, oldest first (no `.partial` ones)."""
    folders = [f for f in (Path(output_dir) / CHECKPOINT_DIR).glob("iteration-*")
               if f.name.removeprefix("iteration-").isdigit() and (f / "trainer_state.json").exists()]
    return sorted(folders, key=lambda f: int(f.name.removeprefix("iteration-")))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under output_dir/checkpoints, or None."""
    folders = checkpoint_folders(output_dir)
    return folders[-1] if folders else None


def _append_metrics(path: Path, metrics: dict) -> None:
    append_csv_row(path, {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in metrics.items()})


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Keep the rows of iterations <= `iteration` (all later rows belong to a run being redone).
    The shorter file is written beside the old one and renamed over it."""
    from ..data import partial_path, replace_with

    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [current_metric_names(row) for row in rows if int(row["iteration"]) <= iteration]
    legacy = any(k in LEGACY_METRIC_NAMES for k in (rows[0] if rows else {}))
    if len(keep) == len(rows) and not legacy:      # (a run from before the names were namespaced is renamed)
        return
    tmp = partial_path(path)
    tmp.unlink(missing_ok=True)
    for row in keep:
        _append_metrics(tmp, row)
    if not keep:
        tmp.touch()
    replace_with(tmp, path)


# metrics.csv files written before the metrics were namespaced used these names
LEGACY_METRIC_NAMES = {"kl": "kl/response", "kl_coef": "kl/coef", "entropy": "policy/entropy",
                       "approx_kl": "policy/approx_kl", "clipfrac": "policy/clipfrac", "vf_clipfrac": "value/clipfrac",
                       "policy_loss": "loss/policy", "value_loss": "loss/value", "response_length": "response/length",
                       "eos_fraction": "response/eos_fraction"}


def current_metric_names(row: dict) -> dict:
    """A metrics row with legacy names (LEGACY_METRIC_NAMES) renamed; current names pass unchanged."""
    return {LEGACY_METRIC_NAMES.get(k, k): v for k, v in row.items()}


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics.csv (or of output_dir/metrics.csv) as dicts of floats, current names."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    with open(path, newline="") as f:
        return [current_metric_names({k: float(v) for k, v in row.items() if v != ""}) for row in csv.DictReader(f)]
