"""Per-iteration parameters of a layer that serves the blocks of a rolled body in turn.

A rolled body (``samfpga.hw.rolled``) runs one hardware copy of a block N times per frame, one pass over the
block's map each, and some of its layers' parameters differ per block (``Loop.attr_params``: an integer
LayerNorm's ``eps_int`` and ``negate`` flags, for example; ``Loop.params``: weights, scales, bias tables). A layer
that supports this carries all N sets in two node attributes:

- ``loop_iterations``: N (0 or 1: not in a loop);
- ``loop_values``: JSON ``{attribute: [value of iteration 0, ..., value of iteration N-1]}``;
- ``loop_frames``: K, the frames that pass through each block in turn before the next block (0 or 1: one). With
  K > 1 the host interleaves K independent maps in the loop (block i of map 0, ..., of map K-1, then block i + 1), so
  one map's pass fills the body while the one before drains; a set then serves K passes (``tokens_per_pass`` x K
  tokens). Python execution does not depend on it.

Its other attributes hold iteration 0's values, so FINN's python execution of the node is iteration 0's;
``at_iteration`` sets iteration i's for python execution of a later pass. A per-iteration initializer input (a
softmax's bias table, a matrix unit's weights) is carried the same way under the name the op gives it in
``LOOP_INPUTS`` (name -> input index); the initializer itself holds iteration 0's. The generated HDL holds every
set and the layer counts its own tokens (``tokens_per_pass``) to know which set a pass uses, so a pass needs no
select signal from outside: the host (or a loop controller) only has to stream the N passes in order, each whole.
Which attributes may vary is the op's ``LOOP_ATTRS`` / ``LOOP_INPUTS``; an op whose looped HDL needs another
setting says so in ``adapt_to_loop()`` (FINN+'s requantiser: decoupled parameters), which ``make_looped`` calls.
Layers: the project's IntLayerNorm_rtl, IntSoftmax_rtl and DepthwiseVVAU_rtl, and FINN+'s MVAU_rtl and
Requant_rtl through the project's subclasses (``mvau_rtl``, ``requant_rom``; ``looped_memstream``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

import numpy as np

NODE_ATTRS = {"loop_iterations": ("i", False, 0), "loop_values": ("s", False, ""), "loop_frames": ("i", False, 0)}


class LoopedAttrs:
    """Mixin for an op class that may serve several iterations: ``NODE_ATTRS`` added to its attributes (list it
    before the op class it extends)."""

    def get_nodeattr_types(self) -> dict:
        attrs = super().get_nodeattr_types()
        attrs.update(NODE_ATTRS)
        return attrs


def _name(op) -> str:
    return f"{op.onnx_node.op_type} node {op.onnx_node.name!r}"


def iterations(op) -> int:
    """N of a looped layer, 1 otherwise."""
    return max(1, int(op.get_nodeattr("loop_iterations")))


def _refuse_unsupported(op, names) -> None:
    """ValueError naming the node and the first of ``names`` its RTL cannot take per iteration (``LOOP_ATTRS`` /
    ``LOOP_INPUTS``)."""
    allowed = (*getattr(type(op), "LOOP_ATTRS", ()), *getattr(type(op), "LOOP_INPUTS", {}))
    for attr in names:
        if attr not in allowed:
            raise ValueError(f"{_name(op)}: attribute {attr!r} cannot differ per iteration in its RTL "
                             f"(per-iteration attributes: {list(allowed) or 'none'})")


def loop_values(op) -> dict[str, list]:
    """``{attribute: N values}`` of a looped layer ({} when not looped), checked against ``loop_iterations``."""
    n = iterations(op)
    text = op.get_nodeattr("loop_values")
    if n == 1:
        return {}
    values = json.loads(text) if text else {}
    _refuse_unsupported(op, values)
    for attr, vals in values.items():
        if len(vals) != n:
            raise ValueError(f"{_name(op)}: loop_values[{attr!r}] has {len(vals)} values for {n} iterations")
    return values


def make_looped(op, values: Mapping[str, Sequence], model=None) -> None:
    """Make ``op`` serve N iterations: ``values`` maps each attribute (or ``LOOP_INPUTS`` name) that differs per
    iteration to its N values.

    Refuses (``ValueError`` naming the node and attribute) attributes the op's RTL cannot take per iteration
    (``type(op).LOOP_ATTRS`` / ``LOOP_INPUTS``), value lists of different lengths, and fewer than 2 iterations.
    Sets the attributes (and, in ``model``, the initializer inputs) to iteration 0's values.
    """
    lengths = {len(v) for v in values.values()}
    if not values or len(lengths) != 1:
        raise ValueError(f"{_name(op)}: per-iteration values need one length for every attribute, got "
                         f"{ {a: len(v) for a, v in values.items()} }")
    n = lengths.pop()
    if n < 2:
        raise ValueError(f"{_name(op)}: a loop needs at least 2 iterations, got {n}")
    _refuse_unsupported(op, values)
    plain = {a: [_plain(v) for v in vals] for a, vals in values.items()}
    inputs = getattr(type(op), "LOOP_INPUTS", {})
    if model is None and any(a in inputs for a in plain):
        raise ValueError(f"{_name(op)}: per-iteration {sorted(set(plain) & set(inputs))} need the model")
    op.set_nodeattr("loop_iterations", n)
    op.set_nodeattr("loop_values", json.dumps(plain, sort_keys=True))
    _set(op, model, {a: vals[0] for a, vals in plain.items()})
    adapt = getattr(op, "adapt_to_loop", None)
    if adapt is not None:  # an op whose looped HDL needs another setting (a requantiser's decoupled parameters)
        adapt()


def _set(op, model, values: Mapping) -> None:
    inputs = getattr(type(op), "LOOP_INPUTS", {})
    for attr, v in values.items():
        if attr in inputs:
            model.set_initializer(op.onnx_node.input[inputs[attr]], np.asarray(v, dtype=np.float32))
        else:
            op.set_nodeattr(attr, v)


def _plain(v):
    """JSON-able form of an attribute value (numpy scalars and arrays to Python ints / lists)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def iteration_attrs(op, i: int) -> dict:
    """The attributes iteration ``i`` (mod N) overrides."""
    values = loop_values(op)
    n = iterations(op)
    return {attr: vals[i % n] for attr, vals in values.items()}


def looped_ops(model) -> list:
    """The custom ops of ``model`` that serve more than one iteration."""
    from qonnx.custom_op.registry import getCustomOp

    ops = []
    for node in model.graph.node:
        try:
            op = getCustomOp(node)
        except Exception:  # not a custom op (a plain ONNX node): never looped
            continue
        if "loop_iterations" in op.get_nodeattr_types() and iterations(op) > 1:
            ops.append(op)
    return ops


@contextmanager
def iteration_of(op, model, i: int):
    """Within the block, ``op``'s attributes and per-iteration initializers are iteration ``i``'s (mod N); what
    they were before is restored after it (HDL generation reads one iteration's values through FINN's code)."""
    values = iteration_attrs(op, i)
    inputs = getattr(type(op), "LOOP_INPUTS", {})
    saved = {a: (model.get_initializer(op.onnx_node.input[inputs[a]]) if a in inputs else op.get_nodeattr(a))
             for a in values}
    _set(op, model, values)
    try:
        yield op
    finally:
        _set(op, model, saved)


def at_iteration(model, i: int):
    """Set every looped node of ``model`` to iteration ``i`` (mod its N) for python execution; returns ``model``."""
    for op in looped_ops(model):
        _set(op, model, iteration_attrs(op, i))
    return model


def frames(op) -> int:
    """K of a looped layer (``loop_frames``): the passes each parameter set serves in turn, 1 when not set."""
    return max(1, int(op.get_nodeattr("loop_frames"))) if "loop_frames" in op.get_nodeattr_types() else 1


def set_frames(model, k: int):
    """Every looped node of ``model`` serves each set for ``k`` passes in a row (``loop_frames``; before generating
    its HDL); returns ``model``."""
    if k < 1:
        raise ValueError(f"loop_frames must be at least 1, got {k}")
    for op in looped_ops(model):
        op.set_nodeattr("loop_frames", int(k))
    return model


def tokens_per_pass(op) -> int:
    """Tokens a layer counts before its next parameter set: the op's ``pass_tokens()`` where it has one (a depthwise
    convolution's output pixels), else the product of its ``numInputVectors``, times ``frames(op)``."""
    own = getattr(op, "pass_tokens", None)
    one = int(own()) if own is not None else int(np.prod(op.get_nodeattr("numInputVectors")))
    return one * frames(op)
