"""Training cost: n preference sides -> how many PPO runs, how many hours, to serve every combination.

    Personalized Soups            sum_d n_d runs   (one per side; a new side costs one more run)
    one policy per combination    prod_d n_d runs
    Prompted-MORL                 1 run, as long as pmorl_seconds * combinations / pmorl_combinations

with the measured wall times of the shipped adapters (`measured_training_cost`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .methods import SIDE_ADAPTERS

COST_SCENARIOS = (("P1", (2,)), ("P1 x P2", (2, 2)), ("P1 x P2 x P3", (2, 2, 2)),
                  ("P1 x P2 x P3 with P3C/P3D", (2, 2, 4)))


def training_cost(side_seconds: float, pmorl_seconds: float | None = None, pmorl_combinations: int = 8,
                  scenarios=COST_SCENARIOS) -> list[dict]:
    """Training runs and wall time to serve every combination, for growing sets of preference sides.

    Personalized Soups: one PPO run per side, sum_d n_d runs (linear); a new side costs one more run.
    One policy per combination: prod_d n_d runs (what soups avoid).
    Prompted-MORL: one run, but it must see every combination, so with the same samples per
    combination its length grows with their number: pmorl_seconds * combinations / pmorl_combinations,
    and a new side means training it again from the start.
    side_seconds, pmorl_seconds: measured wall times (adapter provenance records).
    """
    rows = []
    for label, dims in scenarios:
        sides, combos = int(sum(dims)), int(np.prod(dims))
        row = {"preferences": label, "sides": sides, "combinations": combos,
               "soup_runs": sides, "soup_hours": sides * side_seconds / 3600,
               "per_combination_runs": combos, "per_combination_hours": combos * side_seconds / 3600}
        if pmorl_seconds is not None:
            row["prompted_morl_runs"] = 1
            row["prompted_morl_hours"] = pmorl_seconds * combos / pmorl_combinations / 3600
        rows.append(row)
    return rows


DEVICES = ("cpu", "cuda")


def run_seconds(adapters_dir: str | Path, names: Sequence[str], device: str | None = None) -> dict[str, float]:
    """Measured wall time of each trained adapter, from its provenance record.

    device ("cpu", "cuda"): only runs trained there, so that compared times come from one machine.
    """
    from ..rl.compare import shipped_record
    from ..soups import shipped_adapter_dirs

    if device not in (None, *DEVICES):
        raise ValueError(f"Unknown device {device!r}; use one of {DEVICES} (or None for every run).")
    out = {}
    for name, folder in shipped_adapter_dirs(names, adapters_dir).items():
        info = shipped_record(folder)
        if "wall_time_s" in info and (device is None or str(info.get("device", "")).split(":")[0] == device):
            out[name] = float(info["wall_time_s"])
    return out


def measured_training_cost(adapters_dir: str | Path, default_seconds: float = 1800.0) -> dict:
    """`training_cost` from the shipped adapters' wall times, all from one machine: the one that
    trained Prompted-MORL (the side runs are averaged over the sides trained there too).

    Returns {"device", "side_seconds", "pmorl_seconds", "seconds" (per run, that device), "cost" (rows)}.
    With nothing trained yet, side runs are assumed to take `default_seconds` (device None).
    """
    names = [*SIDE_ADAPTERS, "prompted-morl"]
    device = next((d for d in DEVICES if "prompted-morl" in run_seconds(adapters_dir, names, d)), None)
    seconds = run_seconds(adapters_dir, names, device) if device else {}
    side_runs = [t for n, t in seconds.items() if n in SIDE_ADAPTERS]
    side_seconds = sum(side_runs) / len(side_runs) if side_runs else default_seconds
    return {"device": device, "side_seconds": side_seconds, "pmorl_seconds": seconds.get("prompted-morl"),
            "seconds": seconds, "cost": training_cost(side_seconds, seconds.get("prompted-morl"))}
