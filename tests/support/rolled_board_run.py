"""Board-environment half of tests/test_rolled.py::test_rolled_build_generates_each_parts_hdl (pynq lives only in
.venv-board): the board's driver (``RolledAccelerator``) on the simulated board of a rolled build
(``RolledSimDevice``) whose part bodies answer from a table the development environment computed by python
execution of each part, keyed by (part, block, the exact input values): a block given any other input fails the
run. Usage: ``python tests/support/rolled_board_run.py ROLLED_DIR TABLE.npz OUT.npz``; OUT holds ``y`` (the output
of ``x`` in TABLE), ``stale_runs`` and ``jobs_read``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from samfpga.backends.rolled_driver import RolledAccelerator
from samfpga.pynq_sim.rolled_device import RolledSimDevice


def lookup_bodies(table: dict[str, np.ndarray], parts: int) -> list:
    """Bodies from TABLE's arrays ``in_<j>_<i>_<k>`` / ``out_<j>_<i>_<k>`` (part j, block i, case k)."""
    def body(j: int):
        cases = {}
        for key in table:
            if key.startswith(f"in_{j}_"):
                _, _, i, k = key.split("_")
                cases.setdefault(int(i), []).append((table[key], table[f"out_{j}_{i}_{k}"]))

        def run(i: int, x: np.ndarray) -> np.ndarray:
            for want, y in cases.get(i, []):
                if want.shape == x.shape and np.array_equal(want, x):
                    return y
            raise ValueError(f"part {j} block {i}: an input the development environment did not compute")
        return run
    return [body(j) for j in range(parts)]


def main(argv: list[str]) -> int:
    root, table_path, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    table = dict(np.load(table_path))
    n = 1 + max(int(k.split("_")[1]) for k in table if k.startswith("in_"))
    dev = RolledSimDevice(root, lookup_bodies(table, n))
    acc = RolledAccelerator(root, dev.bitfile, device=dev, poll_s=0)
    try:
        y = acc.execute(table["x"])
    finally:
        acc.close()
    np.savez(out, y=y, stale_runs=dev.stale_runs, jobs_read=np.array([p.jobs_read for p in dev.parts]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
