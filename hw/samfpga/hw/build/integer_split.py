"""``IntegerSplit``: the qkv ``Split`` of attention splits the integer stream (FINN: StreamingSplit + MVAUs)."""

from __future__ import annotations

from onnx import helper
from qonnx.transformation.base import Transformation

from samfpga.hw.build.streamline_rules import AbsorbScalarBiasIntoMultiThresholdAll


class IntegerSplit(Transformation):
    """Makes a ``Split`` fed by a quantizer (the qkv split of attention) split the integer stream, so FINN converts it
    to a StreamingSplit and the q/k/v MatMuls to MVAUs.

    Scalar ``Mul`` (the dequantization scale) -> Reshape/Transpose -> ``Split`` becomes Reshape/Transpose ->
    ``Split`` -> one ``Mul`` per output (the Muls then travel through each branch like any quantizer's scale in
    FINN's streamlining); the quantizer's sign bias (MultiThreshold -> scalar Add) is absorbed into the
    MultiThreshold (FINN's ``AbsorbScalarBiasIntoMultiThreshold`` in one pass, exact), and the Split outputs are annotated
    with the Split input's integer datatype (qonnx's ``InferDataTypes`` does not know Split and would leave them
    FLOAT32, which keeps the MatMuls behind it off the MVAU conversion). Exact: scalar ops commute with data
    movement."""

    def apply(self, model):
        from qonnx.transformation.infer_datatypes import InferDataTypes
        from qonnx.transformation.infer_shapes import InferShapes

        moved = False
        for split in model.get_nodes_by_op_type("Split"):
            moved |= self._move_mul(model, split)
        if moved:
            model = model.transform(AbsorbScalarBiasIntoMultiThresholdAll())
            model = model.transform(InferShapes()).transform(InferDataTypes())
        for split in model.get_nodes_by_op_type("Split"):
            dt = model.get_tensor_datatype(split.input[0])
            if dt is not None and dt.is_integer():
                for out in split.output:
                    model.set_tensor_datatype(out, dt)
        return model, False

    @staticmethod
    def _move_mul(model, split) -> bool:
        chain, n = [], model.find_producer(split.input[0])
        while n is not None and n.op_type in ("Reshape", "Transpose") and len(model.find_consumers(n.output[0])) == 1:
            chain.append(n)
            n = model.find_producer(n.input[0])
        if n is None or n.op_type != "Mul" or len(model.find_consumers(n.output[0])) != 1:
            return False
        scale = model.get_initializer(n.input[1])
        if scale is None or scale.size != 1 or model.get_initializer(n.input[0]) is not None:
            return False
        (chain[-1] if chain else split).input[0] = n.input[0]
        g = model.graph
        g.node.remove(n)
        for i, out in enumerate(list(split.output)):
            mid = model.make_new_valueinfo_name()
            model.set_tensor_shape(mid, model.get_tensor_shape(out))
            split.output[i] = mid
            g.node.insert(list(g.node).index(split) + 1 + i,
                          helper.make_node("Mul", [mid, n.input[1]], [out], name=f"{n.name}_{i}"))
        return True
