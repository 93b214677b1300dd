"""Small HTML tables for notebooks: long texts side by side, wrapped, readable."""
from __future__ import annotations

import html


def html_table(rows: list[dict], columns: list[str] | None = None, max_chars: int = 600) -> str:
    """Render rows (dicts) as an HTML table with wrapped cells; long texts are cut at max_chars."""
    if not rows:
        return "<p><i>(no rows)</i></p>"
    columns = columns or list(rows[0])

    def cell(value) -> str:
        text = value if isinstance(value, str) else (f"{value:.3g}" if isinstance(value, float) else str(value))
        if len(text) > max_chars:
            text = text[:max_chars] + " ..."
        return html.escape(text).replace("\n", "<br>")

    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left;vertical-align:top;white-space:normal'>"
                                    f"{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def show_table(rows: list[dict], columns: list[str] | None = None, max_chars: int = 600):
    """Display `html_table(...)` in a notebook (returns the IPython HTML object)."""
    from IPython.display import HTML

    return HTML(html_table(rows, columns, max_chars))
