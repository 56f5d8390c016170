"""The tiny build's engine host files (compiler environment), what the board-environment engine tests load:

    .venv/bin/python -m tests.support.tiny_engine --out tests/runtime/data/tiny_engine

The program of tests/runtime/data/tiny_deploy's integer graph on the engine at PE 8 x SIMD 16, batch 16 (the
path's default side lanes: tests/test_engine_program.py's ``program_run``, whose 41 steps
tests/test_sim_engine_gemm_path.py runs on the RTL), its register block at the KV260's PL base
(``engine.design.regs_base``): ``engine.host.host_files``, and ``expected.npz``: an accelerator input (the host
layers before the accelerator on a seeded random image) and the integer graph's accelerator output for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.support.package_files import main_for


def files(seed: int = 3):
    """(graph, program, host.json's content, ddr.bin's bytes, output index or None, accelerator input x)."""
    from samfpga.hw.engine.design import CELL, REGS_RANGE, regs_base
    from samfpga.hw.engine.host import host_files
    from samfpga.hw.sim import engine_gemm_path as gp
    from tests.test_engine_program import _graph, _inputs, _program

    g = _graph()
    prog = _program(g)
    spec, image, index = host_files(prog, g, CELL, regs_base("kv260"), REGS_RANGE, gp.rtl_params(prog)["AXI_AW"],
                                    "kv260", 200.0)
    return g, prog, spec, image, index, g.run_host_pre(_inputs(g, seed))


def write(out: Path) -> None:
    from samfpga.backends.engine_host import HOST_FILE, IMAGE_FILE
    from samfpga.hw.engine.host import INDEX_FILE

    g, _, spec, image, index, x = files()
    out.mkdir(parents=True, exist_ok=True)
    (out / HOST_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    (out / IMAGE_FILE).write_bytes(image)
    if index is not None:
        np.save(out / INDEX_FILE, index.astype(np.int32))
    np.savez_compressed(out / "expected.npz", x=x.astype(np.uint8), y=g.run_accelerator(x).astype(np.int8))


main = main_for(__doc__, write)

if __name__ == "__main__":
    raise SystemExit(main())
