"""Render the course for self-study: run every notebook and write static HTML pages with an index.

    .venv/bin/python scripts/build_course.py                 # what `make html` runs: site/index.html
    .venv/bin/python scripts/build_course.py --out site notebooks/04_ppo.ipynb
    .venv/bin/python scripts/build_course.py --times benchmarks/results/notebook_times.csv   # and record times

Each notebook is executed top to bottom in a fresh kernel (nbclient, as Jupyter would), in the
notebook's folder and at the size the environment sets (RLPHF_QUICK=1: the quick size; `make html`
sets it, see the Makefile), and exported with nbconvert's HTML exporter: every output and figure is in
the page. Widgets are saved with their last state (store_widget_state), so a slider shows where it was
left, but nothing runs behind it. A notebook that fails still gets its page (the error is in it), the
index marks it, and the command exits with status 1 after building the others.
--times CSV records each notebook's wall time at the size it ran at (one row per notebook and size, the
machine and its load beside it): the table the README and every notebook's first cell print
(`rlphf_lab.course.expected_time`). Time notebooks one at a time on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import datetime
import html
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def title_of(nb) -> str:
    """The first markdown heading of a notebook (its lecture title)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def render(path: Path, out_dir: Path, timeout: int) -> dict:
    """Execute one notebook and write out_dir/<name>.html; returns its index row."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as err:
        error = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    seconds = time.perf_counter() - start
    page, _ = HTMLExporter().from_notebook_node(nb)
    (out_dir / f"{path.stem}.html").write_text(page)
    return {"notebook": path.stem, "title": title_of(nb), "seconds": round(seconds, 1), "error": error}


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), for the timing table."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def record_time(path: Path, row: dict, size: str, load_before: float) -> None:
    """Put one notebook's time into the table at `path`, replacing its earlier row at this size."""
    sys.path.insert(0, str(REPO))
    from rlphf_lab.course import FIELDS, measured_times
    from rlphf_lab.tables import write_csv

    rows = measured_times(path)
    rows[(row["notebook"], size)] = {
        "notebook": row["notebook"], "size": size, "seconds": row["seconds"], "failed": row["error"],
        "date": datetime.date.today().isoformat(), "cpu": cpu_name(), "cores": os.cpu_count(),
        "load_before": round(load_before, 2)}
    write_csv(path, sorted(rows.values(), key=lambda r: (r["size"], r["notebook"])), fieldnames=FIELDS)


def index_html(rows: list[dict]) -> str:
    items = "\n".join(
        f"<li><a href='{r['notebook']}.html'>{html.escape(r['notebook'])}</a> {html.escape(r['title'])} "
        f"<small>({r['seconds'] / 60:.1f} min{'' if not r['error'] else ', FAILED: ' + html.escape(r['error'])})</small></li>"
        for r in rows)
    return (f"<!doctype html><meta charset='utf-8'><title>rlphf_lab course</title>"
            f"<h1>rlphf_lab: personalized alignment, the rendered course</h1>"
            f"<p>Every notebook run top to bottom; the outputs are what a class sees. Built by "
            f"<code>make html</code> (scripts/build_course.py).</p><ol>\n{items}\n</ol>\n")


def size_of_run() -> str:
    """The size the notebooks run at: the environment's (RLPHF_SIZE / RLPHF_QUICK), else the notebooks' own
    default, the class size (config.use_size("class") in each first cell)."""
    sys.path.insert(0, str(REPO))
    from rlphf_lab import config

    return config.use_size("class")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9]*.ipynb in order")
    ap.add_argument("--out", type=Path, default=REPO / "site", help="output folder (default site/)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell before it counts as failed")
    ap.add_argument("--times", type=Path, default=None, help="record each notebook's wall time in this CSV")
    args = ap.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
    missing = [str(p) for p in notebooks if not p.exists()]
    if missing:
        raise SystemExit(f"No such notebook: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in notebooks:
        print(f"running {path.name} ...", flush=True)
        load_before = os.getloadavg()[0]
        rows.append(render(path.resolve(), args.out, args.timeout))
        if args.times:
            record_time(args.times, rows[-1], size_of_run(), load_before)
        print(f"  {rows[-1]['seconds']:.0f} s" + (f", FAILED: {rows[-1]['error']}" if rows[-1]["error"] else ""), flush=True)
    (args.out / "index.html").write_text(index_html(rows))
    (args.out / "build.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out / 'index.html'} ({len(rows)} notebooks)")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
