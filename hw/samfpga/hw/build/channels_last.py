"""Channels-last layouts through the streamlined encoder: the NCHW <-> NHWC transposes that conv lowering and
TinyViT's token/map reshapes leave around convs, residual joins and thresholds are sunk until they cancel.

Why: every transpose that survives streamlining becomes a whole-feature-map buffer in hardware (FINN's
``Shuffle`` -> ``InnerShuffle`` layers; a 64x64x32 map is 64 BRAM36), makes the skip FIFO of the residual join
around it hold a whole frame, and leaves the thresholds between the two transposes channel-first, which the
``Requant`` conversion cannot take. In the bundled default (KV260 build of 2026-12-01) 536 of 1,080 shuffle BRAM36
were stage-0 MBConv transposes (the residual's fork and join in NCHW) and 268 the transposes around each
TinyViT block's depthwise ``local_conv`` (``[B, HW, C] -> [B, C, H, W]`` and back, with a threshold in between).

Rules, each pure data movement (exact, tolerance 0):
    SinkDataMovementPastThreshold  D -> MT            => MT' -> D      D: a run of Transpose/Reshape; MT' thresholds
                                                                         along the axis D maps onto MT's channel
                                                                         axis; only when MT' is channels-last or
                                                                         its thresholds are shared
    SinkTransposesPastJoinAdd      Add(T(x), T(y))    => T(Add(x, y))  same permutation on both inputs
    CollapseDataMovement (streamline_rules): Transpose/Reshape runs that keep the element order -> one Reshape
and, tried one at a time and kept only when the graph then moves fewer elements through transposes,
    SinkTransposePastFork          T -> {c1, c2, ...}  => T_i -> c_i   (the residual's fork in NCHW)
``ChannelsLast`` applies them to a fixpoint; ``transposed_elements`` is the measure it minimises.
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from samfpga.hw.build.streamline_rules import DATA_MOVEMENT, CollapseDataMovement, apply_data_movement

_LAST = {2: "NC", 3: "NWC", 4: "NHWC"}


def channel_axis(model: ModelWrapper, node) -> int:
    """Axis of ``node``'s (a MultiThreshold's) input that its thresholds index, as qonnx executes it."""
    from qonnx.custom_op.registry import getCustomOp

    rank = len(model.get_tensor_shape(node.input[0]))
    layout = getCustomOp(node).get_nodeattr("data_layout")
    if not layout:
        layout = {2: "NC", 3: "NWC", 4: "NCHW"}.get(rank, "")
    return layout.index("C") if "C" in layout else 1


def _shared(model: ModelWrapper, node) -> bool:
    t = model.get_initializer(node.input[1])
    return t is not None and t.shape[0] == 1


def transposed_elements(model: ModelWrapper) -> int:
    """Elements passing through Transpose nodes, plus those thresholded channel-first: what ``ChannelsLast``
    minimises (each is a buffer, or a threshold layer that cannot become arithmetic)."""
    total = 0
    for n in model.graph.node:
        shape = model.get_tensor_shape(n.input[0])
        if shape is None:
            continue
        size = int(np.prod(shape))
        if n.op_type == "Transpose":
            total += size
        elif n.op_type == "MultiThreshold" and not _shared(model, n) and channel_axis(model, n) != len(shape) - 1:
            total += size
    return total


def _producer_run(model: ModelWrapper, tensor: str) -> list:
    """The run of Transpose/Reshape nodes, each the sole consumer of the one before, that ends in ``tensor``."""
    run: list = []
    cur = model.find_producer(tensor)
    while cur is not None and cur.op_type in DATA_MOVEMENT and len(model.find_consumers(cur.output[0])) == 1 \
            and cur.output[0] not in [o.name for o in model.graph.output]:
        run.insert(0, cur)
        cur = model.find_producer(cur.input[0])
    return run


def _mapped_axis(model: ModelWrapper, run: list, axis: int) -> int | None:
    """The input axis of ``run`` whose index becomes output axis ``axis`` (every element keeps it), or None."""
    in_shape = list(model.get_tensor_shape(run[0].input[0]))
    out_shape = list(model.get_tensor_shape(run[-1].output[0]))
    target = np.indices(out_shape)[axis]
    for a in range(len(in_shape)):
        if in_shape[a] != out_shape[axis]:
            continue
        idx = np.indices(in_shape)[a]
        for node in run:
            idx = apply_data_movement(model, node, idx)
        if np.array_equal(idx.reshape(out_shape), target):
            return a
    return None


class SinkDataMovementPastThreshold(Transformation):
    """``D -> MultiThreshold`` becomes ``MultiThreshold' -> D`` (see the module docstring)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.custom_op.registry import getCustomOp

        for mt in list(model.graph.node):
            if mt.op_type != "MultiThreshold":
                continue
            run = _producer_run(model, mt.input[0])
            if not run:
                continue
            in_shape = model.get_tensor_shape(run[0].input[0])
            if in_shape is None or len(in_shape) not in _LAST:
                continue
            if _shared(model, mt):
                layout = ""
            else:
                a = _mapped_axis(model, run, channel_axis(model, mt))
                if a != len(in_shape) - 1:
                    continue
                layout = _LAST[len(in_shape)]
            src, dst = run[0].input[0], mt.output[0]
            mid = model.make_new_valueinfo_name()
            graph = model.graph
            graph.node.remove(mt)
            mt.input[0] = src
            mt.output[0] = mid
            getCustomOp(mt).set_nodeattr("data_layout", layout)
            graph.node.insert(list(graph.node).index(run[0]), mt)  # inserts a copy: edit before
            run[0].input[0] = mid
            # the run's last tensor takes the threshold's old output name: consumers and graph outputs unchanged
            last_out = run[-1].output[0]
            run[-1].output[0] = dst
            model.set_tensor_shape(mid, list(in_shape))
            model.set_tensor_datatype(mid, model.get_tensor_datatype(dst))
            for node in run:
                model.set_tensor_datatype(node.output[0], model.get_tensor_datatype(dst))
            _drop_valueinfo(model, last_out)
            return model, True
        return model, False


def _drop_valueinfo(model: ModelWrapper, name: str) -> None:
    for vi in list(model.graph.value_info):
        if vi.name == name:
            model.graph.value_info.remove(vi)


class SinkTransposesPastJoinAdd(Transformation):
    """``Add(T(x), T(y))`` with the same permutation, each Transpose feeding only the Add, becomes
    ``T(Add(x, y))``."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for add in list(model.graph.node):
            if add.op_type != "Add" or len(add.input) != 2:
                continue
            if any(model.get_initializer(t) is not None for t in add.input):
                continue
            prods = [model.find_producer(t) for t in add.input]
            if any(p is None or p.op_type != "Transpose" or len(model.find_consumers(p.output[0])) != 1
                   for p in prods):
                continue
            perms = [list(helper.get_node_attr_value(p, "perm")) for p in prods]
            shapes = [model.get_tensor_shape(p.input[0]) for p in prods]
            if perms[0] != perms[1] or shapes[0] != shapes[1] or shapes[0] is None:
                continue
            graph = model.graph
            out = add.output[0]
            mid = model.make_new_valueinfo_name()
            for p in prods:
                graph.node.remove(p)
            add.input[0], add.input[1] = prods[0].input[0], prods[1].input[0]
            add.output[0] = mid
            pos = list(graph.node).index(add) + 1
            graph.node.insert(pos, helper.make_node("Transpose", [mid], [out], perm=perms[0],
                                                    name=f"{prods[0].name}_joined"))
            model.set_tensor_shape(mid, list(shapes[0]))
            model.set_tensor_datatype(mid, model.get_tensor_datatype(out))
            return model, True
        return model, False


def _sink_past_fork(model: ModelWrapper, t_node) -> ModelWrapper:
    """A copy of ``t_node`` (a Transpose with several consumers) in front of each consumer."""
    graph = model.graph
    cons = model.find_consumers(t_node.output[0])
    pos = list(graph.node).index(t_node)
    dt = model.get_tensor_datatype(t_node.output[0])
    shape = model.get_tensor_shape(t_node.output[0])
    perm = list(helper.get_node_attr_value(t_node, "perm"))
    for i, c in enumerate(cons):
        out = model.make_new_valueinfo_name()
        graph.node.insert(pos + 1 + i, helper.make_node("Transpose", [t_node.input[0]], [out], perm=perm,
                                                        name=f"{t_node.name}_fork{i}"))
        model.set_tensor_shape(out, list(shape))
        model.set_tensor_datatype(out, dt)
        for j, name in enumerate(c.input):
            if name == t_node.output[0]:
                c.input[j] = out
    graph.node.remove(t_node)
    _drop_valueinfo(model, t_node.output[0])
    return model


def _canonical(model: ModelWrapper) -> ModelWrapper:
    """The exact rules to a fixpoint (each pass changes one place; bounded by the node count)."""
    from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes
    from qonnx.transformation.general import SortGraph

    rules = [SinkDataMovementPastThreshold(), SinkTransposesPastJoinAdd(), CollapseDataMovement(),
             AbsorbConsecutiveTransposes()]
    for _ in range(4 * len(model.graph.node) + 8):
        before = model.model.SerializeToString()
        for rule in rules:
            model = model.transform(rule, make_deepcopy=False, cleanup=False)
        if model.model.SerializeToString() == before:
            break
    return model.transform(SortGraph())


class ChannelsLast(Transformation):
    """The rules of this module to a fixpoint; each Transpose with several consumers is sunk past its fork
    tentatively and kept only when ``transposed_elements`` then drops."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        model = _canonical(model)
        tried: set[str] = set()
        while True:
            cost = transposed_elements(model)
            forks = [n for n in model.graph.node if n.op_type == "Transpose" and n.name not in tried
                     and len(model.find_consumers(n.output[0])) > 1
                     and n.output[0] not in [o.name for o in model.graph.output]]
            if not forks:
                return model, False
            t_node = forks[0]
            tried.add(t_node.name)
            trial = copy.deepcopy(model)
            trial = _canonical(_sink_past_fork(trial, trial.get_node_from_name(t_node.name)))
            if transposed_elements(trial) < cost:
                model = trial
