"""Every notebook's exercises: at least three each, every check fails on the starter code that the
notebook ships and passes on the solution in notebooks/solutions/.

Conventions (NOTEBOOK_STYLE.md):
- an exercise is a code cell tagged "exercise"; it stands alone (the names below are given) and its
  last line calls one check: `check_token_rewards(my_token_rewards)` or `exercises.check_...(...)`;
- notebooks/solutions/<notebook>.py holds the solved cells, each after a line `# %% <check name>`
  (the same check call last), so a student can read them as a script or open them with jupytext.
A check that loads the model is marked by its cell's tag "model" and runs with the model tests.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import rlphf_lab.exercises as exercises

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
SOLUTIONS = ROOT / "notebooks" / "solutions"
MIN_EXERCISES = 3


def exercise_cells(notebook: Path) -> list[dict]:
    cells = json.loads(notebook.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code" and "exercise" in c.get("metadata", {}).get("tags", [])]


def check_name(source: str) -> str:
    """The check a cell calls on its last line (check_x(...) or exercises.check_x(...))."""
    last = ast.parse(source).body[-1]
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)):
        raise AssertionError(f"an exercise cell ends with its check call; this one ends with {ast.dump(last)[:80]}")
    func = last.value.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    assert name.startswith("check_"), f"the last line calls {name!r}, not a check_..."
    return name


def solutions(notebook: Path) -> dict[str, str]:
    """check name -> the solved cell, from notebooks/solutions/<notebook>.py."""
    path = SOLUTIONS / f"{notebook.stem}.py"
    assert path.exists(), f"no solutions file {path.relative_to(ROOT)}"
    chunks = re.split(r"^# %% (check_\w+)\s*$", path.read_text(), flags=re.M)
    return {name: code for name, code in zip(chunks[1::2], chunks[2::2])}


def run_cell(source: str) -> bool:
    """Run a cell in a fresh namespace and return what its last line (the check) returns."""
    namespace = {"torch": torch, "np": np, "exercises": exercises,
                 **{n: getattr(exercises, n) for n in exercises.__all__}}
    tree = ast.parse(source)
    *body, last = tree.body
    exec(compile(ast.Module(body=body, type_ignores=[]), "<exercise>", "exec"), namespace)
    return eval(compile(ast.Expression(last.value), "<exercise>", "eval"), namespace)


CASES = [pytest.param(nb, i, marks=[pytest.mark.model] if "model" in c.get("metadata", {}).get("tags", []) else [],
                      id=f"{nb.stem}-{check_name(''.join(c['source']))}")
         for nb in NOTEBOOKS for i, c in enumerate(exercise_cells(nb))]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_three_exercises_with_solutions(notebook):
    cells = exercise_cells(notebook)
    names = [check_name("".join(c["source"])) for c in cells]
    assert len(names) >= MIN_EXERCISES, f"{notebook.name} has {len(names)} exercises ({names}); the course asks for {MIN_EXERCISES}"
    assert len(set(names)) == len(names), f"{notebook.name} calls one check in two exercises: {names}"
    assert set(names) <= set(solutions(notebook)), f"no solution for {set(names) - set(solutions(notebook))}"


@pytest.mark.parametrize("notebook, index", CASES)
def test_the_check_fails_on_the_starter_and_passes_on_the_solution(notebook, index, capsys):
    source = "".join(exercise_cells(notebook)[index]["source"])
    name = check_name(source)
    assert run_cell(source) is False, f"{name} accepts the starter code of {notebook.name}: it cannot fail"
    assert capsys.readouterr().out.startswith("Not yet:"), f"{name} must say why the starter code fails"
    solved = solutions(notebook)[name]
    assert check_name(solved) == name
    assert run_cell(solved) is True, f"{name} rejects its solution in notebooks/solutions/{notebook.stem}.py"
    assert "Correct!" in capsys.readouterr().out
