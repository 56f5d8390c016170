"""Threshold tables made to fit one loop body: tables of other step counts padded (``pad_thresholds``), and an
identity table for a block without a Thresholding layer that the others have (``identity_thresholds``).

A Thresholding layer's output is the number of steps its input reaches plus an offset (``ActVal``): a step above
every input adds nothing, and the steps lo+1..hi over an input range [lo, hi] with offset lo give the input back.
"""

from __future__ import annotations

import numpy as np

from samfpga.hw.rolled.blocks import base_op
from samfpga.hw.rolled.datatypes import widest

#: layers whose thresholds (input slot) may be padded to more steps (step-count attribute)
THRESHOLD_INPUT: dict[str, tuple[int, str | None]] = {"Thresholding": (1, "numSteps"), "MVAU": (2, None),
                                                      "VVAU": (2, None)}


def pad_thresholds(op: str, slot: int, values: list[np.ndarray], nodes: list, model):
    """Threshold tables (C or 1, steps) of different step counts / channel counts made one shape: shared tables
    broadcast to C rows, shorter tables padded with a step above every input (never reached, so each output count
    is unchanged). None when ``slot`` is not a threshold input or the tables cannot be made one shape."""
    if THRESHOLD_INPUT.get(op, (None,))[0] != slot or any(v.ndim != 2 for v in values):
        return None
    from qonnx.core.datatype import DataType

    rows = max(v.shape[0] for v in values)
    if any(v.shape[0] not in (1, rows) for v in values):
        return None
    steps = max(v.shape[1] for v in values)
    top = max(int(DataType[widest([model.get_tensor_datatype(n.input[0]).name for n in nodes])].max()),
              int(max(v.max() for v in values))) + 1
    out = []
    for v in values:
        v = np.broadcast_to(v, (rows, v.shape[1]))
        out.append(np.concatenate([v, np.full((rows, steps - v.shape[1]), top, dtype=v.dtype)], axis=1))
    return out, DataType.get_smallest_possible(top).name


IDENTITY_SUFFIX = "@identity"
#: most steps of an identity threshold table (input range) that a block missing a Thresholding may get
IDENTITY_MAX_STEPS = 4096


def identity_thresholds(model, ref: list, i: int, nodes: list, m: dict[int, int], b: int):
    """A Thresholding of block 0 (``ref[i]``) without counterpart in block ``b``, placed in a chain (its input read
    by it alone, produced by a node that block ``b`` has): an identity Thresholding for block ``b`` (thresholds at
    lo+1..hi of the input range, offset lo: output = input), so the body carries the layer in every iteration.
    Returns (virtual node, description) with its table added to ``model``; None where that does not apply."""
    from onnx import helper
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    t = ref[i]
    if base_op(t.op_type) != "Thresholding" or len(model.find_consumers(t.input[0])) != 1:
        return None
    prod = [k for k, n in enumerate(ref) if t.input[0] in n.output]
    if not prod or prod[0] not in m:
        return None
    pn = nodes[m[prod[0]]]
    slot = list(ref[prod[0]].output).index(t.input[0])
    x = pn.output[slot]
    dt = model.get_tensor_datatype(x)
    if not dt.is_integer() or int(dt.max()) - int(dt.min()) > IDENTITY_MAX_STEPS:
        return None
    lo, hi = int(dt.min()), int(dt.max())
    table = np.arange(lo + 1, hi + 1, dtype=np.float32)[None]
    name = f"{t.name}{IDENTITY_SUFFIX}{b}"
    model.set_initializer(f"{name}_thresholds", table)
    tdt = DataType[widest([DataType.get_smallest_possible(lo + 1).name, DataType.get_smallest_possible(hi).name])]
    model.set_tensor_datatype(f"{name}_thresholds", tdt)
    node = helper.make_node(t.op_type, [f"{x}{IDENTITY_SUFFIX}", f"{name}_thresholds"], [x], name=name,
                            domain=t.domain)
    node.attribute.extend(a for a in t.attribute if a.name not in ("ActVal", "numSteps", "inputDataType",
                                                                   "outputDataType", "weightDataType"))
    inst = getCustomOp(node)
    for k, v in (("ActVal", lo), ("numSteps", hi - lo), ("inputDataType", dt.name), ("outputDataType", dt.name),
                 ("weightDataType", tdt.name)):
        inst.set_nodeattr(k, v)
    return node, f"identity thresholds in block {b} ({hi - lo} steps over {dt.name}, offset {lo})", (m[prod[0]], slot)
