"""A small package with runtime-writeable layers for the board-environment driver tests
(tests/runtime/test_runtime_weights_board.py; compiler environment).

    .venv/bin/python -m tests.support.runtime_weights_package --out tests/runtime/data/tiny_runtime_weights

An MVAU with its weights in URAM (``ram_style=ultra``, so runtime-writeable on Zynq) followed by a runtime-writeable
Thresholding layer (12 -> 8 channels over 4 tokens, seeded), specialised to RTL for the KV260's part; written as the
build's package export writes it (``write_export``: graph, driver.json with its ``runtime_weights`` section, the runtime weight files), plus ``expected.npz``: a seeded input and FINN's python execution of the graph on it.
tests/test_deploy_runtime_weights.py regenerates it and compares with the committed files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support.package_files import main_for, write_package


def graph():
    """The FINN HW graph (after SpecializeLayers and HDL generation): MVAU_rtl -> Thresholding_rtl."""
    from samfpga.hw.sim import nodes

    mv = nodes.mvau(mw=12, mh=8, simd=3, pe=2, n=4, odt="INT12", ram_style="ultra", runtime_writeable=1, seed=7)
    th = nodes.thresholding(ch=8, pe=2, n=4, idt="INT12", odt="UINT4", runtime_writeable=1, seed=8,
                            t_range=(-300, 300))
    th.inputs = {"mvau_out": th.inputs.pop("thr_in")}
    return nodes.build_hw_graph([mv, th])


def write(out: Path) -> None:
    from qonnx.core.onnx_exec import execute_onnx

    from samfpga.hw.build.package import python_view
    from samfpga.hw.sim import nodes

    model = graph()
    x = nodes._rand("INT4", (1, 4, 12), np.random.default_rng(9))
    write_package(out, model, x, execute_onnx(python_view(model), {"mvau_in": x})["thr_out"])


main = main_for(__doc__, write)


if __name__ == "__main__":
    raise SystemExit(main())
