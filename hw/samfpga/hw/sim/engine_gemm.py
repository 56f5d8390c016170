"""The layer-sequential engine's GEMM steps in python: FINN's token-batched layers run one after another on one
run-time-shaped unit (``samfpga.hw.plan.engine``, token_batch_mvu.sv with RT_SHAPE = 1), each padded to the unit's
folds and packed into one DDR image, each read back by the unit's own schedule model (``token_batch_mvu.unit_model``).

What this checks against FINN's python execution of the same graph: that padding a layer to whole folds (zero
weights on padded inputs and outputs, zero requantisation parameters on padded channels, padded outputs dropped)
and running it with the unit's run-time shape registers (``layer_shape``) at the engine's batch computes exactly
the layer, and that the layers' images coexist in one DDR image at their own offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samfpga.hw.sim import token_batch_mvu as tb

#: every layer's image starts on a 4 KiB page (no burst crosses one; the unit's BASE must be burst-aligned)
PAGE = 4096


@dataclass
class EngineLayer:
    """One GEMM step: the node, its padded shape on the unit (``shape``: the registers SF, NF, BATCH), its DDR
    offset and image, and its true (unpadded) MW / MH."""

    name: str
    mw: int
    mh: int
    shape: tb.TokenBatchConfig
    offset: int
    image: bytes


def engine_layer(op, graph, unit: tb.TokenBatchConfig, offset: int = 0) -> EngineLayer:
    """A ``TokenBatchMVU_rtl`` node ``op`` as a step of the engine's ``unit`` (``unit.rt_shape``): MW / MH padded to
    the unit's SIMD / PE, its weights and requantisation parameters packed for that shape at ``offset``. ValueError
    when the node's datatypes are not the unit's or the unit's buffers cannot hold the layer."""
    cfg = op.unit_config()
    for k in ("a_bits", "w_bits", "a_signed", "w_signed", "out_bits", "out_signed"):
        if getattr(cfg, k) != getattr(unit, k):
            raise ValueError(f"{op.onnx_node.name}: {k} {getattr(cfg, k)} is not the engine unit's {getattr(unit, k)}")
    if cfg.acc_bits > unit.acc_bits:
        raise ValueError(f"{op.onnx_node.name}: {cfg.acc_bits}-bit sums, the unit holds {unit.acc_bits}")
    mw, mh = cfg.mw, cfg.mh
    mwp, mhp = tb.whole_folds(mw, unit.simd), tb.whole_folds(mh, unit.pe)
    shape = tb.layer_shape(unit, mwp, mhp)  # as many tokens per pass as the unit's banks hold
    w = np.zeros((1, mhp, mwp), dtype=np.int64)
    w[0, :mh, :mw] = op.weights(graph)
    rq = op.requant(graph)
    padded = tb.RequantParams(*(np.pad(np.asarray(a), ((0, 0), (0, mhp - mh))) for a in (rq.scale, rq.bias, rq.shift)))
    return EngineLayer(op.onnx_node.name, mw, mh, shape, offset, tb.pack_weights(w, shape, rq=padded))


def compile_chain(model, unit: tb.TokenBatchConfig) -> tuple[list[EngineLayer], bytes]:
    """Every ``TokenBatchMVU_rtl`` node of ``model`` (graph order) as engine steps, and the one DDR image holding
    them (each on its own page)."""
    from qonnx.custom_op.registry import getCustomOp

    layers, off = [], 0
    for node in model.graph.node:
        if node.op_type != "TokenBatchMVU_rtl":
            continue
        lay = engine_layer(getCustomOp(node), model.graph, unit, off)
        layers.append(lay)
        off = tb.whole_folds(off + len(lay.image), PAGE)
    image = bytearray(off)
    for lay in layers:
        image[lay.offset:lay.offset + len(lay.image)] = lay.image
    return layers, bytes(image)


def run_chain(layers: list[EngineLayer], image: bytes, x: np.ndarray) -> np.ndarray:
    """The steps in order on the DDR ``image``, each layer's input padded with zeros to its padded MW and its output
    cut to its MH: x (t, mw) integers -> (t, mh) int64."""
    y = np.asarray(x, dtype=np.int64)
    for lay in layers:
        if y.shape[-1] != lay.mw:
            raise ValueError(f"{lay.name}: input of {y.shape[-1]} values, the layer takes {lay.mw}")
        xp = np.zeros((1, y.shape[0], lay.shape.mw), dtype=np.int64)
        xp[0, :, :lay.mw] = y
        y = tb.unit_model(xp, image, lay.shape, base=lay.offset)[0, :, :lay.mh]
    return y
