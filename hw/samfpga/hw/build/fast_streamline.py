"""``FastStreamline``: FINN+'s ``Streamline`` (same rules, same order, same result graph) without the housekeeping
passes after rules that changed nothing."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes

from samfpga.hw.build.streamline_rules import AbsorbScalarBiasIntoMultiThresholdAll


def finn_streamline_rules() -> list[Transformation]:
    """The transformations of FINN+'s ``Streamline`` (finn-plus 1.6.1, ``finn.transformation.streamline``), in its
    order (``AbsorbScalarBiasIntoMultiThreshold`` as its one-pass equivalent)."""
    from finn.transformation.streamline import absorb, collapse_repeated, reorder
    from finn.transformation.streamline.sign_to_thres import ConvertSignToThres
    from qonnx.transformation.batchnorm_to_affine import BatchNormToAffine
    from qonnx.transformation.general import ConvertDivToMul, ConvertSubToAdd

    return [
        ConvertSubToAdd(), ConvertDivToMul(), BatchNormToAffine(), ConvertSignToThres(),
        reorder.MoveMulPastMaxPool(), AbsorbScalarBiasIntoMultiThresholdAll(), reorder.MoveScalesPastIm2Col(),
        reorder.MoveScalarLinearPastInvariants(), reorder.MoveAddPastMul(), reorder.MoveScalarAddPastMatMul(),
        reorder.MoveAddPastConv(), reorder.MoveScalarMulPastMatMul(), reorder.MoveScalarMulPastConv(),
        reorder.MoveAddPastMul(), collapse_repeated.CollapseRepeatedAdd(), collapse_repeated.CollapseRepeatedMul(),
        reorder.MoveMulPastMaxPool(), absorb.AbsorbAddIntoMultiThreshold(), absorb.FactorOutMulSignMagnitude(),
        absorb.AbsorbMulIntoMultiThreshold(), absorb.Absorb1BitMulIntoMatMul(), absorb.Absorb1BitMulIntoConv(),
    ]


class FastStreamline(Transformation):
    """FINN+'s ``Streamline`` with the same result graph, faster.

    ``Streamline`` applies its 22 rules in order and after *every* rule runs five housekeeping transformations
    (RemoveIdentityOps, GiveUniqueNodeNames, GiveReadableTensorNames, InferDataTypes, InferDataLayouts), each a
    deep copy plus a cleanup pass; GiveReadableTensorNames is quadratic in the node count. Most rules change
    nothing on a given graph, and the housekeeping is idempotent, so it is skipped after a rule that left the
    graph unchanged (same serialized model): the result is identical (tests/test_finn_streamline.py compares the
    two). Profile of the whole tiny encoder: 887 cleanups, 60% of the step in housekeeping (docs/hardware.md)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
        from qonnx.transformation.infer_data_layouts import InferDataLayouts
        from qonnx.transformation.remove import RemoveIdentityOps

        housekeeping = [RemoveIdentityOps(), GiveUniqueNodeNames(), GiveReadableTensorNames(), InferDataTypes(),
                        InferDataLayouts()]
        clean = False  # FINN's Streamline runs the housekeeping after the first rule even when it did nothing
        for rule in finn_streamline_rules():
            before = model.model.SerializeToString()
            model = model.transform(rule)
            if clean and model.model.SerializeToString() == before:
                continue
            for h in housekeeping:
                model = model.transform(h)
            clean = True
        return model, False
