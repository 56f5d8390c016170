"""Bench the RTL nodes of an existing FINN HW graph (e.g. the project's FINN build of the encoder).

Each ``*_rtl`` node of the ONNX file (after ``specialize_layers``; HDL already generated or not) is cut out into
a single-node graph with its initializers and datatypes, its HDL is (re)generated into this run's FINN build dir
and the bench runs on seeded random input of the node's input datatypes. Nodes that cannot be simulated here are
listed with the reason (HLS nodes: their HDL needs Vitis HLS; nodes whose FINN cycle estimate exceeds the limit:
cocotb drives roughly 10k-80k cycles/s).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samfpga.hw.sim.finn_boot import boot_finn
from samfpga.hw.sim.nodes import CLK_NS, ZYNQ_PART, _rand
from samfpga.hw.sim.runner import BenchResult, run_bench


@dataclass
class Skipped:
    """A node of the build that was not simulated, and why."""

    name: str
    op_type: str
    reason: str


def _shrink(op, max_vectors: int) -> bool:
    """Reduce the number of pixels/tokens a node processes to at most ``max_vectors`` (weights, channels, folding
    and datatypes untouched). Returns whether the node was changed. Sliding-window and padding nodes are not
    shrunk (their image size is part of the configuration)."""
    types = op.get_nodeattr_types()
    if "mem_mode" in types and op.get_nodeattr("mem_mode") == "dynamic":
        # attention matmul (both operands streamed): the weight stream carries one matrix per vecs[0] x vecs[1]
        # (window x head), each applied to vecs[2:] rows; keep one matrix and at most max_vectors rows
        vecs = list(op.get_nodeattr("numInputVectors"))
        if len(vecs) < 3:
            return False
        new = [1, 1, min(int(np.prod(vecs[2:])), max_vectors)]
        if int(np.prod(new)) == int(np.prod(vecs)):
            return False
        op.set_nodeattr("numInputVectors", new)
        return True
    if "numInputVectors" in types:
        vecs = op.get_nodeattr("numInputVectors")
        vecs = [vecs] if isinstance(vecs, int) else list(vecs)
        if int(np.prod(vecs)) <= max_vectors:
            return False
        op.set_nodeattr("numInputVectors", [1, max_vectors] if types["numInputVectors"][0] == "ints" else
                        max_vectors)
        return True
    if "inShape" in types and "outShape" in types:  # data-width converter: folding depends on the last dim
        shape = list(op.get_nodeattr("inShape"))
        if int(np.prod(shape[:-1])) <= max_vectors:
            return False
        op.set_nodeattr("inShape", [1, max_vectors, shape[-1]])
        op.set_nodeattr("outShape", [1, max_vectors, shape[-1]])
        return True
    if "folded_shape" in types and "normal_shape" in types:  # FIFO
        normal, folded = list(op.get_nodeattr("normal_shape")), list(op.get_nodeattr("folded_shape"))
        if int(np.prod(normal[:-1])) <= max_vectors:
            return False
        op.set_nodeattr("normal_shape", [1, max_vectors, normal[-1]])
        op.set_nodeattr("folded_shape", [1, max_vectors, *folded[-2:]])
        return True
    return False


def single_node_model(model, node, max_vectors: int | None = None):
    """A graph holding only ``node`` of ``model``: its inputs (graph inputs or initializers), datatypes, attributes.

    The node's code-generation folders are cleared so PrepareIP regenerates its HDL for this run. With
    ``max_vectors``, the node is shrunk to at most that many pixels/tokens (see ``_shrink``) and the graph's
    tensor shapes follow the node's own normal shapes.
    """
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    new = copy.deepcopy(node)
    ins, inits = [], []
    for t in new.input:
        if model.get_initializer(t) is not None:
            inits.append(t)
        else:
            ins.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, model.get_tensor_shape(t)))
    outs = [helper.make_tensor_value_info(t, TensorProto.FLOAT, model.get_tensor_shape(t)) for t in new.output]
    m = ModelWrapper(qonnx_make_model(helper.make_graph([new], f"{node.name}_only", ins, outs),
                                      producer_name="samfpga.hw.sim.from_build"))
    for t in list(new.input) + list(new.output):
        m.set_tensor_datatype(t, model.get_tensor_datatype(t))
    for t in inits:
        m.set_initializer(t, model.get_initializer(t))
    op = getCustomOp(m.graph.node[0])
    for attr in ("code_gen_dir_ipgen", "ipgen_path", "ip_path", "code_gen_dir_cppsim"):
        if attr in op.get_nodeattr_types():
            op.set_nodeattr(attr, "")
    if max_vectors is not None and _shrink(op, max_vectors):
        for vi in m.graph.input:
            k = list(new.input).index(vi.name)
            m.set_tensor_shape(vi.name, list(op.get_normal_input_shape(k)))
        for k, vi in enumerate(m.graph.output):
            m.set_tensor_shape(vi.name, list(op.get_normal_output_shape(k)))
    return m


def bench_build(onnx_path: str | Path, work_root: Path, part: str = ZYNQ_PART, clk_ns: float = CLK_NS,
                max_cycles: int = 200_000, only: list[str] | None = None, seed: int = 0,
                pause: float = 0.3, max_vectors: int | None = None) -> tuple[list[BenchResult], list[Skipped]]:
    """Bench every RTL node of the FINN HW graph in ``onnx_path`` (see module doc).

    max_vectors: shrink nodes to at most this many pixels/tokens first (weights, folding, datatypes as built).
    """
    boot_finn()
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import samfpga.hw.custom_ops  # noqa: F401  (own RTL ops may appear in the graph)

    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"FINN graph not found: {path}")
    model = ModelWrapper(str(path))
    results: list[BenchResult] = []
    skipped: list[Skipped] = []
    rng = np.random.default_rng(seed)
    for node in model.graph.node:
        if only and node.name not in only:
            continue
        if not node.op_type.endswith("_rtl"):
            why = "HLS node: HDL needs Vitis HLS" if node.op_type.endswith("_hls") else "not a FINN HW RTL node"
            skipped.append(Skipped(node.name, node.op_type, why))
            continue
        m = single_node_model(model, node, max_vectors=max_vectors)
        op = getCustomOp(m.graph.node[0])
        cycles = int(op.get_exp_cycles())
        if cycles > max_cycles:
            skipped.append(Skipped(node.name, node.op_type, f"FINN estimates {cycles} cycles > {max_cycles}"))
            continue
        m = m.transform(PrepareIP(part, clk_ns))
        inputs = {}
        for t in (i.name for i in m.graph.input):
            dt = m.get_tensor_datatype(t)
            inputs[t] = _rand(dt.name, tuple(m.get_tensor_shape(t)), rng)
        params = {"source": str(path), "part": part,
                  "shrunk_to_vectors": max_vectors if model.get_tensor_shape(node.output[0])
                  != m.get_tensor_shape(node.output[0]) else None}
        res = run_bench(node.name, m, inputs, work_root / node.name, params=params, pause=pause, seed=seed)
        results.append(res)
    return results, skipped
