"""Stage-by-stage execution of a build's graphs, for the verification chain (QONNX -> FINN -> HW layers).

``run_chain`` runs the software steps one by one on a QONNX model, executes the graph after each one with
FINN's Python execution (``finn.core.onnx_exec.execute_onnx``) on the same input and returns every stage's
output, so tests can compare each stage with the previous one. ``slice_qonnx`` cuts a sub-graph out of a QONNX
file (between named tensors) when the whole encoder is too slow to push through the flow in a test.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.build.config import BuildConfig, BuildOptions
from samfpga.hw.build.speedups import installed
from samfpga.hw.build.steps import HW_DOMAIN, STEPS, BuildContext
from samfpga.hw.finn_env import boot

CHAIN_STEPS = ("qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw")


@dataclass
class Stage:
    """One stage of the chain: the step after which the graph ran, its output and its node census."""

    step: str
    output: np.ndarray
    nodes: int
    hw_nodes: int
    host_nodes: list[tuple[str, str]]  # (name, op_type) of nodes not in the HW-layer domain
    op_types: dict[str, int] = field(default_factory=dict)  # {op_type: count} of the whole graph


def slice_qonnx(src: str | Path, dst: str | Path, inputs: list[str], outputs: list[str]) -> Path:
    """Write the sub-graph of ``src`` between tensors ``inputs`` and ``outputs`` to ``dst``: the nodes the
    outputs depend on, stopping at ``inputs``; initializers, shapes and QONNX datatype annotations kept."""
    import onnx
    from onnx import helper

    m = onnx.load(str(src))
    g = m.graph
    producer = {t: n for n in g.node for t in n.output}
    inits = {i.name for i in g.initializer}
    missing = [t for t in (*inputs, *outputs) if t not in producer and t not in {i.name for i in g.input}]
    if missing:
        raise ValueError(f"{src}: no tensor(s) {missing} to slice at")
    keep, todo = set(), list(outputs)
    while todo:
        t = todo.pop()
        if t in inputs or t in inits or t not in producer:
            continue
        n = producer[t]
        if id(n) not in keep:
            keep.add(id(n))
            todo.extend(n.input)
    nodes = [n for n in g.node if id(n) in keep]
    used = {t for n in nodes for t in n.input} | set(outputs)
    vi = {v.name: v for v in (*g.value_info, *g.input, *g.output)}
    for t in (*inputs, *outputs):
        if t not in vi:
            raise ValueError(f"{src}: tensor {t} has no shape information")
    graph = helper.make_graph(
        nodes, f"{g.name}_slice", [vi[t] for t in inputs], [vi[t] for t in outputs],
        [i for i in g.initializer if i.name in used],
        value_info=[v for k, v in vi.items() if k in used and k not in inputs and k not in outputs],
    )
    graph.quantization_annotation.extend(a for a in g.quantization_annotation if a.tensor_name in used)
    out = helper.make_model(graph, opset_imports=m.opset_import)
    onnx.save(out, str(dst))
    return Path(dst)


def execute(model, x: np.ndarray) -> np.ndarray:
    """FINN Python execution of ``model`` (one input, one output) on ``x``."""
    from finn.core.onnx_exec import execute_onnx

    out = execute_onnx(model, {model.graph.input[0].name: x})
    return out[model.graph.output[0].name]


def run_chain(qonnx_path: str | Path, x: np.ndarray, work: str | Path, board: str = "kv260",
              steps: tuple[str, ...] = CHAIN_STEPS, options: BuildOptions | None = None) -> list[Stage]:
    """Run ``steps`` on ``qonnx_path`` and execute the graph on ``x`` before the first step ("qonnx") and after
    each step. ``x``: the graph input (e.g. (1,3,S,S) float32). ``options``: the build options (default
    ``BuildOptions()``)."""
    boot(Path(work) / "finn_build")
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401

    ctx = BuildContext(cfg=BuildConfig(board=board, output_dir=str(work), options=options or BuildOptions()),
                       out=Path(work))
    model = ModelWrapper(str(qonnx_path))
    stages = [_stage("qonnx", model, x)]
    with installed():  # as flow.run_build: qonnx's housekeeping in linear time (same graphs)
        for name in steps:
            model = STEPS[name](model, ctx)
            stages.append(_stage(name, model, x))
    return stages



# The bundled default's first stage-2 transformer block in its exported QONNX (input of the block's first conv,
# output of its last quantizer): the block the integer benches cut out (bench/int_bias_default.py,
# bench/int_norm_default_block.py).
DEFAULT_BLOCK_CUT: tuple[list[str], list[str]] = (["Conv_10_out0"], ["Quant_73_out0"])


def run_cut_chain(qonnx_path: str | Path, cut: tuple[list[str], list[str]], work: str | Path,
                  seed: int = 7) -> list[Stage]:
    """The sub-graph of ``qonnx_path`` between ``cut`` = (input tensors, output tensors) (``slice_qonnx``, written
    to ``work/blk.onnx``) through ``run_chain`` (in ``work/work``) on a normal(0, 1) float32 input of the cut's
    shape drawn with numpy seed ``seed``."""
    from qonnx.core.modelwrapper import ModelWrapper

    sliced = slice_qonnx(qonnx_path, Path(work) / "blk.onnx", *cut)
    shape = ModelWrapper(str(sliced)).get_tensor_shape(cut[0][0])
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return run_chain(sliced, x, Path(work) / "work")

def _stage(step: str, model, x: np.ndarray) -> Stage:
    host = [(n.name, n.op_type) for n in model.graph.node if not n.domain.startswith(HW_DOMAIN)]
    return Stage(step, execute(model, x), len(model.graph.node), len(model.graph.node) - len(host), host,
                 dict(Counter(n.op_type for n in model.graph.node)))
