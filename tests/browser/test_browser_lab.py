"""JupyterLab in a real browser: notebook 06's SoupWidget dragged with the mouse, and the
FeedbackWidget clicked three times. The server runs on a temporary copy of the notebooks, in quick
mode (RLPHF_QUICK=1), with no token, on a free local port; nothing is saved over the repo."""
import json
import time

import nbformat
import pytest

import harness as H

pytestmark = pytest.mark.browser

NOTEBOOK_06 = H.ROOT / "notebooks" / "06_soups.ipynb"
WIDGET_CELL = "SoupWidget(model, tokenizer"      # the code cell of notebook 06 that shows the widget
MINUTES = 60_000


@pytest.fixture(scope="module")
def lab(work_dir):
    root = work_dir / "lab-root"
    H.copy_notebook(NOTEBOOK_06, root)
    server = H.start_lab(root, work_dir, RLPHF_QUICK=1)
    server.root = root
    yield server
    server.stop()


@pytest.fixture
def page(work_dir, request):
    with H.chromium(viewport=(1400, 1000)) as page:
        yield page
        page.screenshot(path=str(work_dir / f"{request.node.name}.png"))     # what the page showed at the end


def open_notebook(page, lab, name):
    page.goto(f"{lab.url}/lab/tree/{name}", timeout=3 * MINUTES)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=3 * MINUTES)
    # the kernel is up when the status bar says Idle
    page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=3 * MINUTES)


def menu(page, top: str, item: str):
    """Click a top-level menu and one of its items, as a user does."""
    page.locator(".lm-MenuBar-item", has_text=top).first.click()
    page.locator(".lm-Menu-item", has_text=item).first.click()


def test_feedback_widget_three_clicks_land_in_the_store(lab, page, work_dir):
    store = work_dir / "browser_labels.jsonl"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from rlphf_lab import data\n"
        "from rlphf_lab.widgets import FeedbackWidget\n\n"
        "pairs = [p for p in data.load_pairs('pairs_eval') if p['preference'] == 'P3A'][:5]\n"
        f"FeedbackWidget(pairs, {str(store)!r}, preference='P3A', rater='browser-test', seed=0)")]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, lab.root / "feedback_clicks.ipynb")

    open_notebook(page, lab, "feedback_clicks.ipynb")
    menu(page, "Run", "Run All Cells")
    progress = page.locator(".jp-OutputArea .widget-html-content", has_text="labelled")
    progress.first.wait_for(timeout=5 * MINUTES)
    assert "0 / 5 labelled" in progress.first.inner_text()
    assert not store.exists()
    for n, label in enumerate(["A", "B", "tie"], start=1):
        page.locator(".jp-OutputArea button.widget-button", has_text=label).first.click()
        page.locator(".jp-OutputArea .widget-html-content", has_text=f"{n} / 5 labelled").first.wait_for(timeout=MINUTES)
    lines = store.read_text().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [r["label"] for r in records] == ["A", "B", "tie"]
    assert {r["rater"] for r in records} == {"browser-test"} and len({r["pair_id"] for r in records}) == 3


def test_notebook_06_soup_widget_streams_and_follows_a_mouse_drag(lab, page):
    open_notebook(page, lab, NOTEBOOK_06.name)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    widget_cell = cells.filter(has=page.locator(".jp-InputArea", has_text=WIDGET_CELL)).first
    widget_cell.locator(".jp-InputPrompt").click()               # select it (command mode)
    menu(page, "Run", "Run All Above Selected Cell")              # the notebook's own cells, up to the widget
    widget_cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")                            # and the widget cell itself

    start = time.time()
    widget_cell.locator(".jp-OutputArea .widget-slider").first.wait_for(timeout=15 * MINUTES)
    print(f"notebook 06 ran up to the widget in {time.time() - start:.0f} s")
    H.wait_for_status(page, lambda s: s.startswith("weights:"), 600, "the first answer")
    first = H.answer_text(page)
    assert first.strip()

    H.record_answer_lengths(page)
    assert H.drag_slider(page, "informativeness", 1.0) == "1.00"   # all the way to informative (P2B)
    status = H.wait_for_status(page, lambda s: "P2B 0.33" in s, 600, "the answer after the drag")
    lengths, final = H.answer_lengths(page), H.answer_text(page)

    assert "P2A" not in status and status.count("0.17") == 4      # P1A P1B P3A P3B at 1/6 each, P2B at 1/3
    assert final.strip() and final != first
    # it streamed: after the drag the answer restarted short and grew in several steps to the final text
    restart = next(i for i in range(1, len(lengths)) if lengths[i] < lengths[i - 1])
    grown = lengths[restart:]
    assert grown == sorted(grown) and len(set(grown)) >= 3, lengths
    assert grown[-1] == len(final), (lengths, len(final))
