"""The engine's host files: what the board's host needs to run a program (``samfpga.backends.engine_host`` reads
them; its module doc gives the format).

``write_host(prog, out, design)`` writes, under ``out``: ``host.json`` (the register block's address, the DDR
buffer's size, the regions the host writes once, where each frame's input goes and its output comes from, every
step's registers with addresses as buffer offsets), ``ddr.bin`` (the regions' bytes: the program's weight image,
the lanes' parameters, the image window's table, the window steps' weights, the V transposes' one-hot inputs and
AV's weight images: ``engine_gemm_path.constant_writes``) and, when the output is not stored in order, its index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: the output's index file (stored element of each output element)
INDEX_FILE = "output_index.npy"


def address_keys() -> list[str]:
    """The path's registers that hold DDR addresses: each access DMA's base, the unit's weights."""
    from samfpga.backends.unit_regs import ENGINE_GEMM_PATH

    return [k for k, _, _ in ENGINE_GEMM_PATH.params if k.endswith("_base")]


def _input(prog, steps: list, lay) -> dict:
    """Where each frame's input goes: the image window's pixels for an image step reading it, the stored tensor
    for any other."""
    from samfpga.hw.sim import engine_gemm_path as gp
    from samfpga.hw.sim.image_window import PIXEL_BYTES

    readers = [s for s in steps if s.input.tensor == prog.input or (s.residual and s.residual.tensor == prog.input)]
    if not readers:
        raise ValueError(f"no step reads the program's input {prog.input}")
    writes = []
    for s in readers:
        if any(s is x for x in gp.image_steps(prog)) and s.input.tensor == prog.input:
            writes.append({"at": lay.bases[f"{s.name}.image"], "format": "image",
                           "shape": list(s.input.shape[-3:]), "pixel_bytes": PIXEL_BYTES})
        else:
            w = {"at": lay.bases[prog.input], "format": "stored", "elem_bytes": prog.elem_bytes(prog.input)}
            if prog.input in prog.layouts:
                raise ValueError(f"the program's input {prog.input} is stored out of order")
            writes.append(w)
    return {"writes": [dict(t) for t in {json.dumps(w, sort_keys=True): w for w in writes}.values()]}


def _output(prog, graph, lay) -> tuple[dict, np.ndarray | None]:
    """Where the output comes from: the stored tensor the program's last reads leave it in, and the index of
    each output element among its stored elements (None: in order)."""
    from samfpga.hw.sim import engine_gemm_path as gp

    op = prog.output_read
    t = op.tensor if op is not None else prog.output
    e = prog.elem_bytes(t)
    n = gp._tensor_bytes(prog, t) // e
    if op is not None:
        index = np.asarray(op.access.indices(), dtype=np.int64).ravel()
    elif t in prog.layouts:  # stored = graph[layout]: graph element i is stored element argsort(layout)[i]
        index = np.argsort(prog.layouts[t])
    else:
        index = None
    if index is not None and np.array_equal(index, np.arange(n)):
        index = None
    return {"tensor": prog.output, "shape": list(graph.shape(prog.output)), "dtype": graph.dtype(prog.output),
            "stored": t, "at": lay.bases[t], "elements": int(n), "elem_bytes": e,
            "signed": not graph.dtype(t).startswith("UINT")}, index


def host_files(prog, graph, cell: str, regs_base: int, regs_range: int, master_addr_bits: int, board: str = "",
               fclk_mhz: float = 0.0, configs=None) -> tuple[dict, bytes, np.ndarray | None]:
    """(host.json's content, ddr.bin's bytes, the output's index or None) for ``prog``, compiled from integer graph
    ``graph`` (``samfpga.intexec``: the input's and output's shapes and datatypes), every step of which the path runs
    and whose every register value fits its register (``ValueError`` otherwise, naming the step and the register);
    ``configs``: its step registers (``engine_gemm_path.step_configs``, computed when
    None)."""
    from samfpga.backends.engine_host import FORMAT, VERSION
    from samfpga.backends.unit_regs import ENGINE_GEMM_PATH
    from samfpga.hw.sim import engine_gemm_path as gp

    steps = gp.path_steps(prog)
    if [s.name for s in steps] != [s.name for s in prog.steps]:
        off = [s.name for s in prog.steps if all(s is not x for x in steps)]
        raise ValueError(f"steps the GEMM path does not run: {off}")
    configs = configs or gp.step_configs(prog)
    for s, regs in zip(steps, configs.regs, strict=True):  # every value must fit its register (a wider one would
        try:  # be cut by the hardware: a count over the counters' width, ENGINE_CNT_BITS)
            ENGINE_GEMM_PATH.writes(regs)
        except ValueError as e:
            raise ValueError(f"step {s.name} ({s.kind}): {e}") from None
    lay = configs.layout
    regions, image = [], bytearray()
    for name, at, data in gp.constant_writes(prog, steps, lay):
        zero = not any(data)
        regions.append({"name": name, "at": at, "bytes": len(data), "file_at": None if zero else len(image)})
        if not zero:
            image += data
    out, index = _output(prog, graph, lay)
    out["index"] = None if index is None else INDEX_FILE
    spec = {"format": FORMAT, "version": VERSION, "board": board, "fclk_mhz": fclk_mhz, "cell": cell,
            "regs": regs_base, "range": regs_range, "unit": "engine_gemm_path", "master_addr_bits": master_addr_bits,
            "ddr_bytes": lay.size, "regions": regions, "address_keys": address_keys(),
            "input": {"tensor": prog.input, "shape": list(graph.shape(prog.input)), "dtype": graph.dtype(prog.input),
                      **_input(prog, steps, lay)},
            "output": out,
            "steps": [{"name": s.name, "kind": s.kind, "regs": c} for s, c in zip(steps, configs.regs, strict=True)]}
    return spec, bytes(image), index


def write_host(prog, graph, out: Path, design, configs=None) -> Path:
    """The host files of ``prog`` (compiled from ``graph``) on ``design`` (``engine.design.EngineDesign``) under
    ``out`` (``configs``: as ``host_files``); returns ``out / host.json``."""
    from samfpga.backends.engine_host import HOST_FILE, IMAGE_FILE

    spec, image, index = host_files(prog, graph, design.cell, design.regs_base, design.regs_range,
                                    int(design.params.get("AXI_AW", 32)), design.board, design.fclk_mhz, configs)
    out.mkdir(parents=True, exist_ok=True)
    (out / IMAGE_FILE).write_bytes(image)
    if index is not None:
        np.save(out / INDEX_FILE, index.astype(np.int32 if index.max() < 2**31 else np.int64))
    (out / HOST_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    return out / HOST_FILE
