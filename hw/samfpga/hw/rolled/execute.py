"""Python execution of a rolled graph (FINN's ``execute_onnx``), and of the unrolled graph it came from.

``execute_rolled`` runs the parts in order: each unrolled piece once, each loop's body ``iterations`` times with
iteration i's PARAMETER initializers and attribute values set before the run and the body's output fed back as the
next iteration's input. Specialised layers (``X_rtl`` / ``X_hls``) run as their HW abstraction ``X``
(``samfpga.hw.build.package.python_view``): HLS layers otherwise execute only in cppsim.
"""

from __future__ import annotations

import numpy as np

from samfpga.hw.rolled.graph import Loop, RolledGraph


def _python(model):
    from samfpga.hw.build.package import python_view

    return python_view(model)


def run_once(model, x: np.ndarray) -> np.ndarray:
    """FINN python execution of ``model`` (one input, one output; specialised layers as their abstraction)."""
    from finn.core.onnx_exec import execute_onnx

    return execute_onnx(model, {model.graph.input[0].name: x})[model.graph.output[0].name]


def set_iteration(loop: Loop, body, i: int) -> None:
    """Iteration ``i``'s parameters (initializers and per-iteration attributes) set on ``body`` (a copy of
    ``loop.body``, same tensor and node names)."""
    from qonnx.custom_op.registry import getCustomOp

    nodes = {n.name: n for n in body.graph.node}
    for t, stacked in loop.params.items():
        body.set_initializer(t, np.asarray(stacked[i], dtype=np.float32))
    for (node, attr), vals in loop.attr_params.items():
        getCustomOp(nodes[node]).set_nodeattr(attr, vals[i])


def run_loop(loop: Loop, x: np.ndarray) -> np.ndarray:
    """``loop.body`` ``loop.iterations`` times from ``x``, with each iteration's parameters."""
    body = _python(loop.body)
    for i in range(loop.iterations):
        set_iteration(loop, body, i)
        x = run_once(body, x)
    return x


def execute_rolled(rolled: RolledGraph, x: np.ndarray) -> np.ndarray:
    """The rolled graph on ``x`` (the original graph's input); returns the original graph's output."""
    for part in rolled.parts:
        x = run_loop(part, x) if isinstance(part, Loop) else run_once(_python(part), x)
    return x


def execute_unrolled(model, x: np.ndarray) -> np.ndarray:
    """The original (unrolled) graph on ``x``, the same way."""
    return run_once(_python(model), x)


def part_body(part):
    """``(i, x) -> y``: block i of ``part`` (a looped HW body, ``samfpga.hw.rolled.hdl.looped_body``, or a piece that
    runs once; a saved ``rolled/<k>_<kind>.onnx``) on ``x`` in python, with iteration i's parameters; what the
    simulated board of a rolled build computes (``samfpga.pynq_sim.rolled_device``)."""
    from samfpga.hw.custom_ops.looped import at_iteration, looped_ops

    looped = bool(looped_ops(part))

    def run(i: int, x: np.ndarray) -> np.ndarray:
        if looped:
            at_iteration(part, i)
        return run_once(_python(part), x)
    return run
