"""Every notebook in notebooks/ runs top to bottom with a tiny budget.

Each notebook must have a code cell tagged `parameters` that sets BUDGET (env steps per seed) and
NUM_SEEDS. The tiny values below are injected after that cell (by papermill if it is installed,
else by nbclient with an injected cell) and the notebook runs in a temporary directory, so the
runs/ and figures it writes do not litter the repo. The kernel compiles with XLA's cheap settings
(jaxrl.core.run.FAST_COMPILE as XLA_FLAGS): runs this small spend most of their time compiling,
except those in EXECUTION_BOUND.
"""
import ast
import os
from pathlib import Path

import nbformat
import pytest

from jaxrl.core.run import FAST_COMPILE

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
TINY = {"BUDGET": 5_120, "NUM_SEEDS": 2}
CELL_TIMEOUT = 540  # a hang fails the test; this is not a speed check
CHEAP_XLA = " ".join(f"--{k}={str(v).lower()}" for k, v in FAST_COMPILE.items())
# Notebooks whose tiny run is bound by execution, not compiling: XLA's cheap settings slow the run
# more than they save (measured on the 2-core CPU, whole notebook, default vs cheap: stream_x 49 vs
# 85 s, offline 75 vs 131 s; the others gain: robust 70 vs 41, ppo_sweep 49 vs 28, drm 61 vs 49).
EXECUTION_BOUND = {"stream_x", "offline"}


def parameters_cell(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "a notebook needs exactly one code cell tagged 'parameters'"
    return tagged[0]


def assigned_names(source: str) -> set[str]:
    return {t.id for node in ast.parse(source).body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}


def execute(path: Path, params: dict, cwd: Path):
    try:
        import papermill
    except ImportError:
        papermill = None
    if papermill is not None:
        return papermill.execute_notebook(str(path), str(cwd / path.name), parameters=params, cwd=str(cwd),
                                          kernel_name="python3", execution_timeout=CELL_TIMEOUT, progress_bar=False)
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    src = "# injected by tests/test_notebooks.py\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(src, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(parameters_cell(nb) + 1, cell)
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def test_notebooks_exist():
    assert NOTEBOOKS, "notebooks/ has no .ipynb"
    assert EXECUTION_BOUND <= {p.stem for p in NOTEBOOKS}, "EXECUTION_BOUND names a notebook that is gone"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_tiny_budget(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks with outputs cleared"
    names = assigned_names(nb.cells[parameters_cell(nb)].source)
    assert {"BUDGET", "NUM_SEEDS"} <= names, f"the parameters cell must set BUDGET and NUM_SEEDS, it sets {sorted(names)}"
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if path.stem not in EXECUTION_BOUND:
        monkeypatch.setenv("XLA_FLAGS", f"{os.environ.get('XLA_FLAGS', '')} {CHEAP_XLA}".strip())  # the kernel's env
    before = set(path.parent.iterdir())
    execute(path, TINY, tmp_path)  # raises on the first cell that fails or times out
    littered = sorted(set(path.parent.iterdir()) - before)
    assert not littered, f"the notebook wrote into notebooks/: {littered}"
