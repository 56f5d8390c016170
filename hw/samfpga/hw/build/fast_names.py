"""``FastReadableTensorNames``: qonnx's ``GiveReadableTensorNames`` (same names, same graph) in linear time.

qonnx renames every tensor twice (``GiveUniqueTensorNames`` to ``tensor_<i>``, then ``<node>_out<k>`` /
``<node>_param<k>``) with ``ModelWrapper.rename_tensor``, which scans every node, value_info, input, output,
initializer and quantization annotation per call, and tests "is this input an initializer" with
``get_initializer`` (a list scan plus a numpy copy of the tensor): quadratic in the graph size, about 119 s of the
tiny encoder's streamline profile (docs/hardware.md "Flow speed"). This module replays the same sequence of
renames on name indices, with ``rename_tensor``'s exact semantics (per node only the first slot holding the old
name is renamed; the first-match containers raise on duplicate names as qonnx's ``get_by_name`` does), and writes
the final names once. tests/test_build_speed.py compares it with qonnx's on the test encoder's graphs.

``samfpga.hw.build.speedups.installed`` makes qonnx's classes use these during a build (FINN+'s steps included).
"""

from __future__ import annotations

from collections import defaultdict

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation


class _FirstMatch:
    """A protobuf container whose entries are found by name as ``qonnx.util.basic.get_by_name`` finds them (the
    one match, or an Exception when there are several)."""

    def __init__(self, container, field: str = "name") -> None:
        self.container, self.field = container, field
        self.names = [getattr(x, field) for x in container]
        self.where: dict[str, list[int]] = defaultdict(list)
        for i, n in enumerate(self.names):
            self.where[n].append(i)

    def rename(self, old: str, new: str) -> None:
        idx = self.where.get(old)
        if not idx:
            return
        if len(idx) > 1:
            raise Exception("Found multiple get_by_name matches, undefined behavior")
        i = idx.pop()
        self.names[i] = new
        self.where[new].append(i)
        self.where[new].sort()

    def has(self, name: str) -> bool:
        return bool(self.where.get(name))

    def write(self) -> None:
        for x, n in zip(self.container, self.names):
            if getattr(x, self.field) != n:
                setattr(x, self.field, n)


class _Renamer:
    """``ModelWrapper.rename_tensor`` replayed on name indices of ``graph``; ``write`` stores the result."""

    def __init__(self, graph) -> None:
        self.graph = graph
        self.inputs = [list(n.input) for n in graph.node]
        self.outputs = [list(n.output) for n in graph.node]
        self.nodes_with: dict[str, set[int]] = defaultdict(set)
        for j, (ins, outs) in enumerate(zip(self.inputs, self.outputs)):
            for t in (*ins, *outs):
                self.nodes_with[t].add(j)
        self.gin = _FirstMatch(graph.input)
        self.gout = _FirstMatch(graph.output)
        self.vi = _FirstMatch(graph.value_info)
        self.init = _FirstMatch(graph.initializer)
        self.qa = _FirstMatch(graph.quantization_annotation, "tensor_name")

    def rename(self, old: str, new: str) -> None:
        # same order as rename_tensor: input, output, value_info, initializer, annotation, then node i/o
        for c in (self.gin, self.gout, self.vi, self.init, self.qa):
            c.rename(old, new)
        for j in sorted(self.nodes_with.get(old, ())):
            ins, outs = self.inputs[j], self.outputs[j]
            if old in ins:
                ins[ins.index(old)] = new
            if old in outs:
                outs[outs.index(old)] = new
            if old not in ins and old not in outs:
                self.nodes_with[old].discard(j)
            self.nodes_with[new].add(j)

    def write(self) -> None:
        for c in (self.gin, self.gout, self.vi, self.init, self.qa):
            c.write()
        for n, ins, outs in zip(self.graph.node, self.inputs, self.outputs):
            for k, t in enumerate(ins):
                if n.input[k] != t:
                    n.input[k] = t
            for k, t in enumerate(outs):
                if n.output[k] != t:
                    n.output[k] = t


def unique_tensor_names(model: ModelWrapper) -> ModelWrapper:
    """``GiveUniqueTensorNames().apply(model)``'s renames (value_info, inputs, outputs, in
    ``get_all_tensor_names``' order, to ``tensor_<i>``) on ``model`` in place, in linear time; returns it."""
    graph = model.graph
    r = _Renamer(graph)
    names = [x.name for x in graph.value_info] + [x.name for x in graph.input] + [x.name for x in graph.output]
    for i, name in enumerate(names):
        r.rename(name, f"tensor_{i}")
    r.write()
    return model


def readable_names_after_unique(model: ModelWrapper) -> ModelWrapper:
    """The renames ``GiveReadableTensorNames.apply`` makes after its ``GiveUniqueTensorNames`` pass, on ``model``
    in place, in linear time; returns it."""
    graph = model.graph
    r = _Renamer(graph)
    for j, n in enumerate(graph.node):
        if n.name == "":
            raise AssertionError("Found empty node name")
        for k, o in enumerate(list(r.outputs[j])):
            r.rename(o, f"{n.name}_out{k}")
        p = 0
        for i in list(r.inputs[j]):
            if r.init.has(i):  # get_initializer(i) is not None
                r.rename(i, f"{n.name}_param{p}")
                p += 1
    for i, name in enumerate(list(r.gin.names)):
        r.rename(name, "global_in" if i == 0 else f"global_in_{i}")
    for i, name in enumerate(list(r.gout.names)):
        r.rename(name, "global_out" if i == 0 else f"global_out_{i}")
    r.write()
    return model


class FastUniqueTensorNames(Transformation):
    """qonnx's ``GiveUniqueTensorNames`` in linear time; same result."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        return unique_tensor_names(model), False


class FastReadableTensorNames(Transformation):
    """qonnx's ``GiveReadableTensorNames`` in linear time (module docstring); same result."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        # as qonnx: the unique names through model.transform (a deep copy, then the cleanup passes), then the
        # readable ones
        model = model.transform(FastUniqueTensorNames())
        return readable_names_after_unique(model), False
