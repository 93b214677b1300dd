"""The course's own measurements: how long each notebook takes at each size, for its first cell.

    scripts/build_course.py --times benchmarks/results/notebook_times.csv   # measures (what make html runs)
    expected_time("04_ppo")      -> "04_ppo: about 9 min at the class size (measured 2026-12-07 on 2 cores of AMD EPYC)."

The table lives in benchmarks/results/notebook_times.csv, one row per (notebook, size): the wall time of
a fresh kernel running the notebook top to bottom, the machine, and its load when the run started.
"""
from __future__ import annotations

from pathlib import Path

from . import config
from .tables import read_csv

NOTEBOOK_TIMES = config.REPO_ROOT / "benchmarks" / "results" / "notebook_times.csv"
FIELDS = ["notebook", "size", "seconds", "failed", "date", "cpu", "cores", "load_before"]


def measured_times(path: Path | str = NOTEBOOK_TIMES) -> dict[tuple[str, str], dict]:
    """{(notebook, size): row} from the timing table; empty if nothing was measured yet."""
    path = Path(path)
    if not path.exists():
        return {}
    return {(r["notebook"], r["size"]): r for r in read_csv(path)}


def expected_time(notebook: str, size: str | None = None, path: Path | str = NOTEBOOK_TIMES) -> str:
    """One line for a notebook's first cell: its measured wall time at `size` (default: the size it runs at)."""
    size = size or config.size()
    row = measured_times(path).get((Path(notebook).stem, size))
    if row is None:
        return (f"{Path(notebook).stem} has not been timed at the {size} size yet "
                f"(scripts/build_course.py --times {Path(NOTEBOOK_TIMES).relative_to(config.REPO_ROOT)}).")
    state = " (it FAILED then: see its page)" if row.get("failed") else ""
    return (f"{row['notebook']}: about {max(1, round(float(row['seconds']) / 60))} min at the {size} size{state} "
            f"(measured {row['date']} on {int(float(row['cores']))} cores of {row['cpu']}).")
