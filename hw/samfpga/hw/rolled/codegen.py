"""HDL of a rolled graph (``samfpga build-hw --roll``, step ``hw_codegen``): every part through FINN's PrepareIP.

``generate(model, out, board, clk_mhz)`` rolls ``model`` (``samfpga.hw.rolled.roll``, as the ``roll`` step did) and
generates, in part order, the HDL of each piece that runs once and of each loop's body with every iteration's
parameters in its layers (``samfpga.hw.rolled.hdl.looped_body``; the layers count their own passes). Per part
``k``: the graph with its nodes' ``code_gen_dir_ipgen`` pointing into ``out/hdl/rolled/<k>_<kind>/<node>/`` is
saved as ``out/rolled/<k>_<kind>.onnx`` (kind ``once`` or ``body``), ``out/rolled/parts.json`` lists the parts
(file, kind, iterations, layers, looped layers), and ``out/rolled/host.json`` describes them for the board's host
(``samfpga.backends.rolled_host.parts_to_json``: each part's blocks, buffers and shapes, as ``run_parts`` takes
them, each block's input and output tensor in the unrolled graph, and its runtime-writeable layers, whose memories
the bitstream cannot initialise: name, word count and
``rolled/runtime_weights/<part>/<node>.dat``, the words the host writes over the layer's AXI-Lite, a looped
layer's for every block, as ``samfpga.hw.build.package.runtime_words`` gives them and the RTL benches write
them; its token-batched units: register values and weights, ``rolled/token_batch/<part>/<node>.bin``; and the
address of every AXI-Lite slave, ``samfpga.hw.rolled.board``). Then the Vivado design of the parts
(``samfpga.hw.rolled.design``: each part's HDL as the RTL benches simulate it, linted together, and
``vivado/rolled/project.tcl``), which ``parts.json``'s ``vivado`` records.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from samfpga.hw import HW_DOMAIN


def move_code(model, dst_root: Path) -> int:
    """Move each HW node's generated code to ``dst_root/<node>`` (its ``code_gen_dir_ipgen`` updated); returns the
    count of nodes with code."""
    from qonnx.custom_op.registry import getCustomOp

    dst_root.mkdir(parents=True, exist_ok=True)
    moved = 0
    for n in model.graph.node:
        if not n.domain.startswith(HW_DOMAIN):
            continue
        op = getCustomOp(n)
        src = op.get_nodeattr("code_gen_dir_ipgen")
        if src and Path(src).is_dir():
            dst = dst_root / n.name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.move(src, dst)
            op.set_nodeattr("code_gen_dir_ipgen", str(dst))
            moved += 1
    return moved


def generate(model, out: Path, board, clk_mhz: float, with_design: bool = True) -> dict:
    """Generate the rolled graph's HDL under ``out`` for ``board`` (``samfpga.hw.boards.Board``) at ``clk_mhz``
    (module doc) and, with ``with_design``, the Vivado design of its parts (``samfpga.hw.rolled.design``); returns
    the ``parts.json`` dict."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.backends.rolled_host import parts_to_json
    from samfpga.hw.build.package import (
        RUNTIME_DIR,
        runtime_words,
        runtime_writeable_nodes,
        write_runtime_weights,
    )
    from samfpga.hw.rolled import design, roll
    from samfpga.hw.rolled.board import assign_addresses, token_batch_units
    from samfpga.hw.rolled.graph import Loop
    from samfpga.hw.rolled.hdl import looped_body
    from samfpga.hw.sim.rolled_loop import AXI_AW
    from samfpga.hw.sim.rolled_parts import host_parts

    rg = roll(model)
    if not rg.loops:
        raise ValueError("hw_codegen: the graph has no rolled stage")
    (out / "rolled").mkdir(parents=True, exist_ok=True)
    parts, graphs, tensors = [], [], []
    for k, p in enumerate(rg.parts):
        if isinstance(p, Loop):
            g, res = looped_body(p)
            if res.missing:
                raise ValueError(f"hw_codegen: body layers without per-iteration HDL: {res.missing}")
            kind, info = "body", {"iterations": p.iterations, "looped": len(res.looped)}
            tensors.append([[b.act_in, b.act_out] for b in p.plan.stage.blocks])
        else:
            g, kind, info = copy.deepcopy(p), "once", {"iterations": 1, "looped": 0}
            tensors.append([[p.graph.input[0].name, p.graph.output[0].name]])
        g = g.transform(PrepareIP(board.part, 1000.0 / clk_mhz))
        layers = move_code(g, out / "hdl" / "rolled" / f"{k}_{kind}")
        name = f"{k}_{kind}.onnx"
        g.save(str(out / "rolled" / name))
        graphs.append(g)
        parts.append({"file": f"rolled/{name}", "kind": kind, "layers": layers, **info})
    names = [Path(p["file"]).stem for p in parts]
    host = {**parts_to_json(host_parts(graphs, names)),  # raises before any index
            "board": board.name, "part": board.part, "family": board.family, "fclk_mhz": float(clk_mhz)}
    words = [{n.name: runtime_words(getCustomOp(n), g) for n in runtime_writeable_nodes(g)} for g in graphs]
    for entry, name, ws, g, ts in zip(host["parts"], names, words, graphs, tensors):
        entry["tensors"] = ts  # each block's input and output in the unrolled graph (a package's pynq-sim runs them)
        entry["token_batch"] = token_batch_units(g, name, out / "rolled")
        entry["runtime_weights"] = [{"name": n, "words": len(w), "file": f"{RUNTIME_DIR}/{name}/{n}.dat"}
                                    for n, w in ws.items()]
    # the narrowest AXI master of the design bounds where the driver's DDR region may lie
    host["master_addr_bits"] = min([AXI_AW, *(u["addr_bits"] for p in host["parts"] for u in p["token_batch"])])
    assign_addresses(host, board.family)
    vivado = (design.generate(graphs, host, [p["kind"] for p in parts], words, out, board, clk_mhz) if with_design
              else None)
    index = {"format": "samfpga-rolled-hdl", "version": 1, "parts": parts, "vivado": vivado}
    for entry, ws in zip(host["parts"], words):
        write_runtime_weights(entry["runtime_weights"], ws, out / "rolled")
    (out / "rolled" / "parts.json").write_text(json.dumps(index, indent=1) + "\n")
    (out / "rolled" / "host.json").write_text(json.dumps(host, indent=1) + "\n")
    return index


def summary(index: dict) -> str:
    """One line: parts, bodies and layers with HDL."""
    bodies = [p for p in index["parts"] if p["kind"] == "body"]
    return (f"{len(index['parts'])} parts ({len(bodies)} loop bodies, "
            f"{', '.join(str(p['iterations']) for p in bodies)} iterations), "
            f"{sum(p['layers'] for p in index['parts'])} layers with HDL, "
            f"{sum(p['looped'] for p in bodies)} of them holding every iteration's parameters")
