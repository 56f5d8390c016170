"""QONNX activation ``Quant`` -> FINN MultiThreshold with thresholds that round exactly as the Quant does.

Two rounding rules occur in the project's QONNX graphs:

- **round half up**, ``floor(x/s + 0.5)`` (the project's rule, samfpga.models.quant.rounding): exported as
  ``Add(x, s/2) -> Quant(rounding_mode=FLOOR)``. The pair is folded back into one quantizer whose thresholds sit at
  the half steps and compare with ``>=``, which is what FINN's own handlers place: uniform thresholds, which
  ``requant.InferExactRequant`` turns into arithmetic ``Requant`` layers later.
- **round half to even** (QONNX ``ROUND``/``HALF_EVEN`` = numpy/torch round; Brevitas' default ``RoundSte``).
  FINN's own conversion (``ConvertQuantActToMultiThreshold``) rounds every tie UP, and ties are frequent wherever a
  value on a fine power-of-two grid is requantized to a coarser one (50% of the inputs after a residual add).
  ``x > t`` for the levels that ties must not reach: ``x >= t + g/2`` where the input is provably on a power-of-two
  grid ``g`` (``input_grid``; the threshold stays on a half-grid point, so FINN's later scaling and integer
  rounding of thresholds keep it exact), else ``x >= nextafter(t)`` (exact for the float32 comparison itself).
  Such thresholds alternate and stay threshold tables.
"""

from __future__ import annotations

import numpy as np
from qonnx.transformation.base import Transformation

from samfpga.hw.build.streamline_rules import is_po2

# ops that pass values through unchanged (so the input grid is the output grid)
_PASSTHROUGH = {"Transpose", "Reshape", "Identity", "Split", "Flatten", "Squeeze", "Unsqueeze", "Relu", "MaxPool",
                "Concat"}


def _po2(x: np.ndarray) -> bool:
    """Every element is a power of two in magnitude (either sign)."""
    return is_po2(np.abs(x))


def _on_grid(c: np.ndarray, g: float) -> bool:
    return bool(np.all(np.mod(np.asarray(c, dtype=np.float64), g) == 0))


def input_grid(model, tensor: str, _memo: dict | None = None) -> float | None:
    """The largest power of two ``g`` such that every value of ``tensor`` is a multiple of ``g``, as far as the graph
    proves it (outputs of power-of-two Quant nodes, through reshapes, sums, products and on-grid constants), else
    None (e.g. after LayerNorm, Softmax or a float bias)."""
    memo = {} if _memo is None else _memo
    if tensor in memo:
        return memo[tensor]
    memo[tensor] = None  # cycles cannot occur in ONNX, but keep recursion safe
    g = _grid(model, tensor, memo)
    memo[tensor] = g
    return g


def _grid(model, tensor: str, memo: dict) -> float | None:
    n = model.find_producer(tensor)
    if n is None:
        return None
    op = n.op_type
    init = [model.get_initializer(i) for i in n.input]
    if op == "Quant":
        scale = init[1]
        if scale is None or not _po2(scale) or init[2] is None or np.any(init[2] != 0):
            return None
        return float(np.min(np.abs(scale)))
    if op in _PASSTHROUGH:
        grids = [input_grid(model, i, memo) for i, c in zip(n.input, init, strict=True) if c is None and i][:1]
        if op == "Concat":
            grids = [input_grid(model, i, memo) for i in n.input]
        return None if not grids or None in grids else min(grids)
    if op in ("Add", "Sub"):
        dyn = [i for i, c in zip(n.input, init, strict=True) if c is None]
        grids = [input_grid(model, i, memo) for i in dyn]
        if not grids or None in grids:
            return None
        g = min(grids)
        consts = [c for c in init if c is not None]
        return g if all(_on_grid(c, g) for c in consts) else None
    if op in ("MatMul", "Conv", "Mul"):
        grids = []
        for i, c in zip(n.input[:2], init[:2], strict=True):
            if c is None:
                grids.append(input_grid(model, i, memo))
            elif op == "Mul" and _po2(c) and np.asarray(c).size == 1:
                grids.append(float(np.abs(c).flatten()[0]))
            else:
                grids.append(None)
        if None in grids:
            return None
        g = grids[0] * grids[1]
        if op == "Conv" and len(n.input) > 2 and not _on_grid(init[2], g):
            return None
        return g
    return None


def half_even_thresholds(thresholds: np.ndarray, act_bias: float, grid: float | None) -> np.ndarray:
    """Move the thresholds of odd output levels just above the tie so that ties round to the even level.

    ``thresholds``: (C, N) float32 as FINN computes them (column i: first input value that gives output level
    ``i + 1 + act_bias``, the exact half step between two levels). ``grid``: power-of-two grid of the input, or None.
    """
    t = np.asarray(thresholds, dtype=np.float32).copy()
    levels = np.arange(t.shape[1]) + 1 + int(round(float(act_bias)))
    odd = (levels % 2) != 0
    if grid is None:
        t[:, odd] = np.nextafter(t[:, odd], np.float32(np.inf))
        return t
    step = float(np.min(np.abs(np.diff(t.astype(np.float64), axis=1)))) if t.shape[1] > 1 else np.inf
    if grid > step:
        return t  # the input grid is coarser than the output step: no input lies on a half step
    t[:, odd] = t[:, odd] + np.float32(grid / 2)
    return t


def _half_up_pair(model, n):
    """The ``Add(x, s/2)`` in front of a ``Quant(FLOOR)`` with scalar scale ``s`` (the export's round-half-up form),
    else None."""
    add = model.find_producer(n.input[0])
    if add is None or add.op_type != "Add" or len(model.find_consumers(add.output[0])) != 1:
        return None
    half, scale = model.get_initializer(add.input[1]), model.get_initializer(n.input[1])
    if half is None or scale is None or half.size != 1 or scale.size != 1 or model.get_initializer(add.input[0]) is not None:
        return None
    return add if np.float32(half.flatten()[0]) == np.float32(scale.flatten()[0]) / np.float32(2) else None


class QuantActToMultiThreshold(Transformation):
    """Converts activation ``Quant`` nodes to MultiThreshold nodes that round as the Quant does (module docstring):
    ``Add(x, s/2) -> Quant(FLOOR)`` pairs (round half up) and ``Quant(ROUND|HALF_EVEN)`` (ties to even). Uses FINN's
    own handler of each node (same Add/Mul nodes, data layout and datatypes as ``ConvertQuantActToMultiThreshold``)
    and changes only the threshold values of half-even ones; run it before FINN's ``step_qonnx_to_finn``, which
    then finds no activation Quant left to convert. Quant nodes FINN would not convert (more than ``max_bits`` bits,
    other rounding modes) are left to FINN."""

    def __init__(self, max_bits: int = 8) -> None:
        super().__init__()
        self.max_bits = max_bits

    def apply(self, model):
        from finn.transformation.qonnx.qonnx_activation_handlers import (
            QuantActBaseHandler,
            QuantIdentityHandler,
        )
        from qonnx.transformation.infer_data_layouts import InferDataLayouts
        from qonnx.transformation.infer_datatypes import InferDataTypes

        # as FINN's conversion: datatypes and layouts inferred once, on the QONNX graph
        model = model.transform(InferDataTypes()).transform(InferDataLayouts())
        memo: dict = {}
        grids = {n.name: input_grid(model, n.input[0], memo) for n in model.graph.node if n.op_type == "Quant"}
        while True:
            for idx, n in enumerate(model.graph.node):
                mode = self._mode(model, n)
                if mode is None:
                    continue
                if mode == "half_up":  # fold the export's Add(s/2) back: FINN's thresholds are floor(x/s + 0.5)
                    add = _half_up_pair(model, n)
                    n.input[0] = add.input[0]
                    model.graph.node.remove(add)
                    idx = list(model.graph.node).index(n)
                pred = model.find_direct_predecessors(n)
                pred_op = pred[0].op_type if pred else None
                handlers = QuantActBaseHandler.__subclasses__()
                cls = next((c for c in handlers if pred_op in c.valid_predecessor_op_types()), QuantIdentityHandler)
                handler = cls(model, n, idx + 1)
                if mode == "half_even":
                    base = handler._calculate_thresholds
                    act_bias = float(np.asarray(handler._calculate_act_bias()).flatten()[0])
                    grid = grids.get(n.name)
                    handler._calculate_thresholds = lambda b=base, a=act_bias, g=grid: half_even_thresholds(b(), a, g)
                model = handler.replace_quant_node()
                break
            else:
                return model, False

    def _mode(self, model, n) -> str | None:
        """"half_up", "half_even" or None (not converted here)."""
        from qonnx.custom_op.registry import getCustomOp

        if n.op_type != "Quant" or model.get_initializer(n.input[0]) is not None:
            return None
        if model.get_initializer(n.output[0]) is not None:
            return None
        bits = model.get_initializer(n.input[3])
        zp = model.get_initializer(n.input[2])
        if bits is None or float(bits) > self.max_bits or zp is None or np.any(zp != 0):
            return None
        rounding = getCustomOp(n).get_nodeattr("rounding_mode").upper()
        if rounding in ("ROUND", "HALF_EVEN"):
            return "half_even"
        if rounding == "FLOOR" and _half_up_pair(model, n) is not None:
            return "half_up"
        return None
