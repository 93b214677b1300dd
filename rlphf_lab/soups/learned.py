"""Did each loaded adapter learn its side? A slider that drives an adapter which barely moved from
the base model moves nothing a student can see, so the SoupWidget says so next to its sliders.

The measure is the adapter's own-side win rate against the vanilla model in the shipped evaluation
(data/evaluation/win_rates_by_side.csv, `rlphf-lab evaluate`): 0.5 means no better than the base model.
`load_adapters` records where each adapter came from (model.adapter_sources); the evaluation row of
a shipped adapter is its run folder's name (data/adapters/P3B/adapter -> "P3B", data/adapters/dpo-P3B/adapter
-> "dpo-P3B"). Adapters from anywhere else (random stand-ins, a student's own) get no claim.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..config import ADAPTERS_DIR, DATA_DIR

EVALUATION_DIR = DATA_DIR / "evaluation"
WEAK_WIN_RATE = 0.6        # below this own-side win rate an adapter counts as "barely learned"


def method_of(adapter_dir: str | Path, adapters_dir: str | Path | None = None) -> str | None:
    """The evaluation's method name of an adapter folder <adapters_dir>/<method>/adapter (None elsewhere:
    a random stand-in or a student's own adapter was never judged by the shipped evaluation)."""
    path = Path(adapter_dir).resolve()
    root = Path(adapters_dir or ADAPTERS_DIR).resolve()
    return path.parent.name if path.name == "adapter" and path.parent.parent == root else None


def own_side_win_rates(model, evaluation_dir: str | Path | None = None,
                       adapters_dir: str | Path | None = None) -> dict[str, float]:
    """{adapter name: its own-side win rate against vanilla} for the adapters in `model` that the
    evaluation has judged: named by a side code and loaded from <adapters_dir>/<method>/adapter
    (default data/adapters, the folder `rlphf-lab evaluate` reads)."""
    table = Path(evaluation_dir or EVALUATION_DIR) / "win_rates_by_side.csv"
    sources = getattr(model, "adapter_sources", {}) or {}
    if not table.exists() or not sources:
        return {}
    with table.open() as f:
        rows = {row["method"]: row for row in csv.DictReader(f)}
    rates = {}
    for name, folder in sources.items():
        value = rows.get(method_of(folder, adapters_dir), {}).get(name)
        if value not in (None, ""):
            rates[name] = float(value)
    return rates


def weak_adapters(rates: dict[str, float], threshold: float = WEAK_WIN_RATE) -> dict[str, float]:
    """The adapters whose own-side win rate is below `threshold`."""
    return {name: rate for name, rate in rates.items() if rate < threshold}


def weak_adapters_html(rates: dict[str, float], threshold: float = WEAK_WIN_RATE) -> str:
    """A warning line for the SoupWidget ("" when every judged adapter learned its side)."""
    weak = weak_adapters(rates, threshold)
    if not weak:
        return ""
    listed = ", ".join(f"{name} ({rate:.2f})" for name, rate in sorted(weak.items()))
    return (f"<div style='color:#a15c00'>&#9888; barely learned: {listed}: own-side win rate against the base model "
            f"under {threshold:g} (data/evaluation/win_rates_by_side.csv). Their sliders change little; "
            f"0.5 is no better than the base model.</div>")
