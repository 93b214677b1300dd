"""Render the course for self-study: run every notebook and write static HTML pages with an index.

    .venv/bin/python scripts/build_course.py                 # what `make html` runs: site/index.html
    .venv/bin/python scripts/build_course.py --out site notebooks/04_ppo.ipynb

Each notebook is executed top to bottom in a fresh kernel (nbclient, as Jupyter would), in the
notebook's folder and at the size the environment sets (RLPHF_QUICK=1: the quick size; `make html`
sets it, see the Makefile), and exported with nbconvert's HTML exporter: every output and figure is in
the page. Widgets are saved with their last state (store_widget_state), so a slider shows where it was
left, but nothing runs behind it. A notebook that fails still gets its page (the error is in it), the
index marks it, and the command exits with status 1 after building the others.
"""
from __future__ import annotations

import argparse
import html
import json
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


def index_html(rows: list[dict]) -> str:
    items = "\n".join(
        f"<li><a href='{r['notebook']}.html'>{html.escape(r['notebook'])}</a> {html.escape(r['title'])} "
        f"<small>({r['seconds'] / 60:.1f} min{'' if not r['error'] else ', FAILED: ' + html.escape(r['error'])})</small></li>"
        for r in rows)
    return (f"<!doctype html><meta charset='utf-8'><title>rlphf_lab course</title>"
            f"<h1>rlphf_lab: personalized alignment, the rendered course</h1>"
            f"<p>Every notebook run top to bottom; the outputs are what a class sees. Built by "
            f"<code>make html</code> (scripts/build_course.py).</p><ol>\n{items}\n</ol>\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9]*.ipynb in order")
    ap.add_argument("--out", type=Path, default=REPO / "site", help="output folder (default site/)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell before it counts as failed")
    args = ap.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
    missing = [str(p) for p in notebooks if not p.exists()]
    if missing:
        raise SystemExit(f"No such notebook: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in notebooks:
        print(f"running {path.name} ...", flush=True)
        rows.append(render(path.resolve(), args.out, args.timeout))
        print(f"  {rows[-1]['seconds']:.0f} s" + (f", FAILED: {rows[-1]['error']}" if rows[-1]["error"] else ""), flush=True)
    (args.out / "index.html").write_text(index_html(rows))
    (args.out / "build.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out / 'index.html'} ({len(rows)} notebooks)")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
