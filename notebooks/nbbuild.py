"""What every notebooks/build_<name>.py shares: turn its list of cells into a notebook with stable
cell ids and a python3 kernelspec, and write it beside the builder with outputs cleared.

Run a builder as a script (`python notebooks/build_ppo_sweep.py`); its directory is then on
sys.path, so it imports this module as `nbbuild`."""
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook


def build(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding changes nothing unless cells do
        cell.id = f"cell-{i}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write(cells, name: str) -> Path:
    """Validate and write notebooks/<name> (e.g. "ppo_sweep.ipynb")."""
    out = Path(__file__).with_name(name)
    nb = build(cells)
    nbformat.validate(nb)
    nbformat.write(nb, out)
    print(f"wrote {out}")
    return out
