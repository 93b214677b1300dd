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


def test_times_are_recorded_per_notebook_and_size_and_read_back_for_the_first_cell(tmp_path, monkeypatch):
    from rlphf_lab import course

    monkeypatch.delenv("RLPHF_QUICK", raising=False)
    monkeypatch.setenv("RLPHF_SIZE", "class")
    times = tmp_path / "times.csv"
    good = notebook(tmp_path / "00_good.ipynb", "import time; time.sleep(0.2)")
    assert build_course.main([str(good), "--out", str(tmp_path / "site"), "--times", str(times)]) == 0
    rows = course.measured_times(times)
    assert list(rows) == [("00_good", "class")] and rows["00_good", "class"]["seconds"] >= 0.2
    assert rows["00_good", "class"]["failed"] == "" and rows["00_good", "class"]["cores"] >= 1
    assert course.expected_time("00_good", "class", times).startswith("00_good: about 1 min at the class size")
    assert "not been timed at the full size" in course.expected_time("00_good", "full", times)
    monkeypatch.setenv("RLPHF_SIZE", "quick")                 # another size: a second row, the first kept
    assert build_course.main([str(good), "--out", str(tmp_path / "site"), "--times", str(times)]) == 0
    assert set(course.measured_times(times)) == {("00_good", "class"), ("00_good", "quick")}
