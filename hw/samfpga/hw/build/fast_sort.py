"""``FastSortGraph``: qonnx's ``SortGraph`` (same node order, same graph) in linear time.

qonnx's ``SortGraph`` runs in every ``ModelWrapper.cleanup``, i.e. after every ``model.transform``. It finds each
node's predecessors with ``find_producer`` (a scan of all nodes per input) and their positions with
``list.index`` (protobuf content comparisons), so it is quadratic in the node count: 17 of the 64 CPU seconds of
``qonnx_to_finn`` on the 64x64 test encoder (docs/build_speed.md). This version builds the same dependency sets
from dictionaries (first producer of each tensor, first node with equal content) and sorts them with the same
``toposort_flatten``; nodes qonnx drops (no producer and no input from an initializer or graph input) are
dropped alike. tests/test_build_speed.py compares it with qonnx's.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation


def _count_by_name(container) -> dict[str, int]:
    counts: dict[str, int] = {}
    for x in container:
        counts[x.name] = counts.get(x.name, 0) + 1
    return counts


def _found(counts: dict[str, int], name: str) -> bool:
    """``qonnx.util.basic.get_by_name(container, name)`` is truthy (it raises on several matches)."""
    c = counts.get(name, 0)
    if c > 1:
        raise Exception("Found multiple get_by_name matches, undefined behavior")
    return c == 1


def sort_graph(model: ModelWrapper) -> ModelWrapper:
    """``SortGraph().apply(model)`` on ``model`` in place; returns it."""
    from toposort import toposort_flatten

    graph = model.graph
    if len(graph.node) == 1:
        return model
    node_list = list(graph.node)
    # list.index(pred) finds the first node equal in content to the producer
    first_equal: dict[bytes, int] = {}
    index_of = []
    for i, n in enumerate(node_list):
        index_of.append(first_equal.setdefault(n.SerializeToString(deterministic=True), i))
    producer: dict[str, int] = {}  # find_producer: the first node (in graph order) with the tensor as an output
    for i, n in enumerate(node_list):
        for o in n.output:
            producer.setdefault(o, i)
    inits = _count_by_name(graph.initializer)
    inputs = _count_by_name(graph.input)
    deps: dict[int, set[int]] = {}
    for i, n in enumerate(node_list):
        preds = [index_of[producer[t]] for t in n.input if t in producer]
        if not preds:
            for name in n.input:
                if _found(inits, name) or _found(inputs, name):
                    deps[i] = set()
                    break
            continue
        deps[i] = set(preds)
    order = toposort_flatten(deps)
    del graph.node[:]
    graph.node.extend(node_list[i] for i in order)
    return model


class FastSortGraph(Transformation):
    """qonnx's ``SortGraph`` in linear time (module docstring); same result."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        return sort_graph(model), False
