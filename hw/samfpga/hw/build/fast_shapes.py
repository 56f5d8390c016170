"""``check_all_tensor_shapes_specified``: qonnx's ``ModelWrapper`` method of that name (same answer, same
value_info added for initializers without one) in linear time.

``ModelWrapper.__init__`` calls it (with ``fix_missing_init_shape=True``), and so does every ``InferShapes``; it
calls ``get_tensor_shape`` per node input and output, which lists every input, output and value_info each time:
quadratic, 11.9 of the 64 CPU seconds of ``qonnx_to_finn`` on the 64x64 test encoder (docs/build_speed.md). Here
the names are counted once; a tensor with several value_infos raises the AssertionError ``get_tensor_shape``
raises, and an initializer without one gets it through qonnx's own ``set_tensor_shape`` in the same order.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper


def check_all_tensor_shapes_specified(self: ModelWrapper, fix_missing_init_shape: bool = False) -> bool:
    """Whether every node input and output has a shape (a ValueInfo, or an initializer's shape); see qonnx."""
    from onnx import numpy_helper

    graph = self._model_proto.graph
    count: dict[str, int] = {}
    for x in (*graph.input, *graph.output, *graph.value_info):
        count[x.name] = count.get(x.name, 0) + 1
    first_init: dict[str, int] = {}
    for i, x in enumerate(graph.initializer):
        first_init.setdefault(x.name, i)
    ret = True
    for n in graph.node:
        for t in (*(i for i in n.input if i != ""), *n.output):
            c = count.get(t, 0)
            if c > 1:
                raise AssertionError("Multiple ValueInfoProto found for " + t)
            if c == 1:
                continue
            k = first_init.get(t)
            if k is None:
                ret = False
                continue
            if fix_missing_init_shape:
                init = graph.initializer[k]
                self.set_tensor_shape(t, numpy_helper.to_array(init).shape, dtype=init.data_type)
                count[t] = 1
    return ret
