"""The two dependency lists agree, notebooks are committed clean, the README shows the commands."""
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pip_lines_of_environment_yml() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    return {l.strip()[2:].strip() for l in lines if re.match(r"^\s+- [A-Za-z0-9_.\-]+==", l)}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    assert _pip_lines_of_environment_yml() == wanted


def test_torch_is_pinned_to_the_cpu_build_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name} has outputs: strip them before committing"
                assert cell.get("execution_count") is None, f"{path.name} has execution counts"


def test_readme_shows_the_two_commands_and_ci_calls_make_test():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# The library's layers, bottom to top: a module may import only from its own package and lower layers.
LAYERS = [{"config", "preferences", "tables", "scoring"}, {"models", "data", "display", "course"}, {"feedback", "tour"},
          {"rewards", "soups"}, {"rl"}, {"plots"}, {"evaluate"}, {"exercises"}, {"widgets"},
          {"demo", "cli"}]


def test_lower_layers_never_import_higher_ones():
    """Every `from ..x import` (lazy ones inside functions too) points to a lower layer or the same package."""
    import ast

    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    root = Path(__file__).resolve().parent.parent / "rlphf_lab"
    wrong = []
    for f in root.rglob("*.py"):
        parts = f.relative_to(root).parts
        own = parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            up = node.level - (len(parts) - 1)        # how far above rlphf_lab/<own> the import starts
            if up < 1 and not (up == 0 and len(parts) == 1):
                continue                              # inside its own package
            target = (node.module or node.names[0].name).split(".")[0]
            if target != own and rank[target] >= rank[own]:
                wrong.append(f"{f.relative_to(root)} imports {target}")
    assert not wrong, wrong


def test_library_deprecation_notices_are_hidden_and_the_lab_s_own_warnings_are_not():
    import warnings

    from rlphf_lab.config import quiet_library_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_warnings()
        warnings.warn_explicit("old name", FutureWarning, "x.py", 1, module="transformers.training_args")
        warnings.warn_explicit("lab warning", UserWarning, "y.py", 1, module="rlphf_lab.data")
        warnings.warn_explicit("old lab name", FutureWarning, "y.py", 2, module="rlphf_lab.data")
    assert [str(w.message) for w in caught] == ["lab warning", "old lab name"]


def test_every_notebook_cell_has_an_id():
    """nbformat 4.5 wants an id on every cell (a future nbformat refuses a notebook without)."""
    import json

    for nb in sorted((Path(__file__).resolve().parent.parent / "notebooks").rglob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        assert all("id" in c for c in cells), nb.name
