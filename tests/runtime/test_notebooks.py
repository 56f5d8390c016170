"""Every code cell of every notebook in notebooks/ runs, in order, in the board-like environment (no torch).

The notebooks are user documentation; executing them here keeps them from rotting. Cells run in one namespace
with the repository root as working directory, as Jupyter would when started there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ has no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4
    code = [("".join(c["source"]), i) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code cells"
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    start = time.time() - 1
    ns: dict = {"__name__": "__main__"}
    for src, i in code:
        try:
            exec(compile(src, f"{path.name}[cell {i}]", "exec"), ns)  # noqa: S102 - running the user's notebook is the test
        except Exception as err:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"{path.name} cell {i} failed: {err!r}") from err
    written = [p for p in (ROOT / "out" / "notebooks").glob("*.png") if p.stat().st_mtime >= start]
    assert written, f"{path.name} wrote no figure into out/notebooks"
