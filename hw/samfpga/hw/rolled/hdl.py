"""Which layers of a rolled body can carry every iteration's parameters in their own HDL, and the body with them set.

A ``Loop``'s body is block 0's layers; what differs per block is in ``Loop.params`` (PARAMETER initializers, by
tensor) and ``Loop.attr_params`` (attributes, by node). A layer whose op supports per-iteration parameter sets
(``samfpga.hw.custom_ops.looped``: the integer LayerNorm and softmax, the depthwise VVAU, FINN+'s MVAU, Requant and
Thresholding) gets all N sets; its RTL then counts its own passes. A token-batched unit holds them too (for python
execution and its DDR image, ``token_batch.looped_image``): its RTL reads iteration i's weights and requantiser
parameters at BASE + i x STRIDE in DDR by its own registers. The others that have per-iteration parameters are
listed as missing, with what differs (``step_roll`` records them; ``hw_codegen`` refuses a body that has any).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np

from samfpga.hw.rolled.graph import Loop


@dataclass
class BodyHDL:
    """``looped``: body nodes that now hold every iteration's parameters; ``shared``: body nodes with nothing per
    iteration; ``missing``: ``{"node", "op_type", "varies"}`` for the nodes whose per-iteration parameters their
    op cannot take yet (``varies``: attribute names and ``input k`` for initializer inputs)."""

    looped: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _stack_values(stacked: np.ndarray) -> list:
    a = np.asarray(stacked)
    if np.array_equal(a, np.round(a)):
        a = np.round(a).astype(np.int64)
    return [x.tolist() for x in a]


def looped_body(loop: Loop):
    """A copy of ``loop.body`` whose supported layers hold all ``loop.iterations`` parameter sets, and the
    ``BodyHDL`` that says which layers those are and which per-iteration parameters are still without HDL."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.custom_ops import looped

    body = copy.deepcopy(loop.body)
    res = BodyHDL()
    for node in body.graph.node:
        attrs = {a: vals for (n, a), vals in loop.attr_params.items() if n == node.name}
        inputs = {k: t for k, t in enumerate(node.input) if t in loop.params}
        if not attrs and not inputs:
            res.shared.append(node.name)
            continue
        op = getCustomOp(node)
        by_slot = {k: name for name, k in getattr(type(op), "LOOP_INPUTS", {}).items()}
        can = set(getattr(type(op), "LOOP_ATTRS", ())) if "loop_iterations" in op.get_nodeattr_types() else set()
        unsupported = [a for a in attrs if a not in can] + [f"input {k}" for k in inputs if k not in by_slot]
        if unsupported:
            res.missing.append({"node": node.name, "op_type": node.op_type,
                                "varies": sorted(attrs) + [f"input {k}" for k in sorted(inputs)]})
            continue
        values = {a: list(vals) for a, vals in attrs.items()}
        values.update({by_slot[k]: _stack_values(loop.params[t]) for k, t in inputs.items()})
        looped.make_looped(op, values, model=body)
        res.looped.append(node.name)
    return body, res


def missing_summary(stages: list[dict]) -> str:
    """'op_type x count (what varies)' over the ``missing`` entries of ``BodyHDL.to_dict()`` per stage."""
    counts: dict[str, tuple[int, set]] = {}
    for st in stages:
        for m in st.get("missing", []):
            n, what = counts.get(m["op_type"], (0, set()))
            counts[m["op_type"]] = (n + 1, what | set(m["varies"]))
    return ", ".join(f"{op} x{n} ({', '.join(sorted(w))})" for op, (n, w) in sorted(counts.items()))


def coverage_line(stages: list[dict]) -> str:
    """One sentence for the report and the build's stop message: how many body layers hold every iteration's
    parameters, and ``missing_summary``."""
    looped = sum(len(st["looped"]) for st in stages)
    return (f"body layers that hold every iteration's parameters in their own HDL: {looped}; per-iteration "
            f"parameters with no HDL yet: {missing_summary(stages) or 'none'}")
