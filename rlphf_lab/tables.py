"""Tables as lists of dict rows: means per group, CSV files, markdown.

    rows = [{"label": "soup", "P2A": 0.4}, {"label": "soup", "P2A": 0.6}, {"label": "vanilla", "P2A": 0.1}]
    group_means(rows)                 # [{"label": "soup", "n": 2, "P2A": 0.5}, {"label": "vanilla", "n": 1, "P2A": 0.1}]
    write_csv("out.csv", rows); read_csv("out.csv")
    print(markdown_table(group_means(rows)))

Every table the lab writes (evaluation summaries, reward-model accuracy, training metrics) goes
through these few functions, so they all read back the same way.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def group_means(rows: list[dict], by: str = "label", columns: Sequence[str] | None = None) -> list[dict]:
    """One row per value of `by` (first-seen order): {by: value, "n": rows in the group, column: mean, ...}.

    columns: the columns to average; None averages every numeric column of the group's first row.
    """
    groups: dict = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    out = []
    for key, members in groups.items():
        cols = columns if columns is not None else [k for k, v in members[0].items() if _is_number(v) and k != by]
        out.append({by: key, "n": len(members), **{k: sum(m[k] for m in members) / len(members) for k in cols}})
    return out


def write_csv(path: str | Path, rows: list[dict], fieldnames: Sequence[str] | None = None) -> Path:
    """Write rows as a CSV file with a header (columns: `fieldnames`, or the first row's keys)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(fieldnames) if fieldnames is not None else (list(rows[0]) if rows else [])
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def append_csv_row(path: str | Path, row: dict) -> None:
    """Append one row to a CSV file, the header first when the file is new or empty (a training run's
    metrics file grows by one row per iteration). Values go under the file's own header, whatever the
    row's key order; a row with a new column widens the file (the earlier rows get "" there), so no
    value is ever dropped or written under another column's name."""
    path = Path(path)
    header = []
    if path.exists() and path.stat().st_size > 0:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
    new_columns = [k for k in row if k not in header]
    if header and new_columns:                      # rewrite with the wider header, then append
        rows = _read_rows(path)
        header = header + new_columns
        tmp = path.with_name(path.name + ".widening")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header, restval="")
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or list(row), restval="")
        if not header:
            writer.writeheader()
        writer.writerow(row)


def _read_rows(path: str | Path) -> list[dict]:
    """Rows of a CSV file as dicts of strings, exactly as written."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a table written by write_csv, numbers as floats (other values as strings)."""
    def value(v: str):
        try:
            return float(v)
        except ValueError:
            return v
    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def markdown_table(rows: list[dict], digits: int = 3) -> str:
    """A markdown table of dict rows (floats rounded to `digits`)."""
    if not rows:
        return ""
    keys = list(rows[0])
    fmt = lambda x: f"{x:.{digits}f}" if isinstance(x, float) else str(x)   # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)
