"""scripts/build_course.py (make html): a notebook is executed and rendered with its outputs, a failing one
gets its page and a FAILED mark in the index, and the command exits 1."""
import importlib.util
from pathlib import Path

import nbformat

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_course.py"
spec = importlib.util.spec_from_file_location("build_course", SCRIPT)
build_course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_course)


def notebook(path, *code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A tiny lecture"), *map(nbformat.v4.new_code_cell, code)]
    nbformat.write(nb, path)
    return path


def test_the_course_pages_hold_every_output_and_the_index_marks_a_failure(tmp_path):
    good = notebook(tmp_path / "00_good.ipynb", "print(6 * 7)")
    bad = notebook(tmp_path / "01_bad.ipynb", "raise ValueError('a broken cell')")
    status = build_course.main([str(good), str(bad), "--out", str(tmp_path / "site"), "--timeout", "120"])
    assert status == 1
    assert "42" in (tmp_path / "site" / "00_good.html").read_text()
    assert "a broken cell" in (tmp_path / "site" / "01_bad.html").read_text()
    index = (tmp_path / "site" / "index.html").read_text()
    assert "00_good.html" in index and "A tiny lecture" in index
    assert index.count("FAILED") == 1 and "ValueError" in index
