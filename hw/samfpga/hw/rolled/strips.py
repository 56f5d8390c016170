"""Column strips of a convolution body in the FINN graph: the body built at a strip's width, and the python execution
of a feature map as strips with their halo columns (docs/loop_rolling.md, "Column strips of a conv body").

The planner's column strips (``samfpga.hw.plan.strips``, docs/plan.md) make every line buffer a strip wide instead
of a map wide. In the FINN graph a strip is an ordinary narrower image: ``restripe`` copies a body whose maps are
all (1, H, W, C) with W preserved (1 x 1 layers, stride-1 k x k convolutions with their own "same" padding,
elementwise layers) and sets every width-bearing attribute (``numInputVectors``, ``ImgDim``, ``IFMDim``,
``OFMDim``, ``Dim``) to a strip's width; the tensor shapes follow from FINN's own shape inference.

``execute_strips`` runs a map through such a body strip by strip: strip t computes output columns
[t * S, (t + 1) * S) (S = W / tiles) from the input columns [t * S - h, (t + 1) * S + h) clipped to the map, where
the halo h (``halo``) is the sum of (k - 1) / 2 over the body's convolutions; each strip's own zero padding then
lands at the map's edge (the image's padding, as the unrolled body pads) or beyond the halo on an interior side,
where it changes only halo columns, which are dropped. Edge strips have one halo, interior strips two, so a body
in strips takes at most two strip widths (``strip_widths``); the hardware for both is the wider (the strip padding
unit pads the image-edge side at run time, docs/strip_pad.md). Not built: strips of the transformer bodies (their
window shuffles flatten H and W into token and window axes), strips in the build's fit, HDL and driver.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

#: attributes that carry a map's width, per form: (1, H, W) vectors; (H, W) images
_VECTORS = "numInputVectors"
_IMAGES = ("ImgDim", "IFMDim", "OFMDim", "Dim")
#: HW layers a conv body may hold (their other attributes carry no width)
CONV_BODY_OPS = frozenset({"MVAU", "VVAU", "DepthwiseVVAU", "Requant", "Thresholding", "FMPadding",
                           "ConvolutionInputGenerator", "AddStreams", "DuplicateStreams", "StreamingDataWidthConverter",
                           "StreamingFIFO", "ChannelwiseOp", "IntLayerNorm"})


def _base(op_type: str) -> str:
    for style in ("_rtl", "_hls"):
        if op_type.endswith(style):
            return op_type[: -len(style)]
    return op_type


def _map_width(model) -> int:
    shape = model.get_tensor_shape(model.graph.input[0].name)
    if len(shape) != 4 or shape[0] != 1:
        raise ValueError(f"{model.graph.input[0].name}: a conv body takes a (1, H, W, C) map, got {shape}")
    return int(shape[2])


def halo(model) -> int:
    """Halo columns one side of a strip needs: the sum of (k - 1) / 2 over the body's sliding windows (each a
    stride-1, dilation-1, odd k x k window with its own "same" padding, else ``ValueError`` naming the node)."""
    from qonnx.custom_op.registry import getCustomOp

    h = 0
    for n in model.graph.node:
        if _base(n.op_type) != "ConvolutionInputGenerator":
            continue
        op = getCustomOp(n)
        k, s, d = (list(op.get_nodeattr(a)) for a in ("ConvKernelDim", "Stride", "Dilation"))
        ifm, ofm = list(op.get_nodeattr("IFMDim")), list(op.get_nodeattr("OFMDim"))
        if s != [1, 1] or d != [1, 1] or k[1] % 2 == 0 or ifm[1] - ofm[1] != k[1] - 1:
            raise ValueError(f"{n.name}: strips take stride-1, dilation-1, odd windows with 'same' padding; it has "
                             f"kernel {k}, stride {s}, dilation {d}, IFMDim {ifm}, OFMDim {ofm}")
        h += (k[1] - 1) // 2
    return h


def restripe(model, width: int):
    """A copy of conv body ``model`` (input and output (1, H, W, C), every map W wide) whose layers take maps
    ``width`` wide (module doc); ``ValueError`` names a layer outside ``CONV_BODY_OPS`` or one whose width
    attribute is not the map's."""
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.infer_shapes import InferShapes

    w0 = _map_width(model)
    halo(model)  # refuses windows that strips cannot cut
    m = copy.deepcopy(model)
    for n in m.graph.node:
        if _base(n.op_type) not in CONV_BODY_OPS:
            raise ValueError(f"{n.name}: {n.op_type} is not a layer of a conv body strips can cut "
                             f"({', '.join(sorted(CONV_BODY_OPS))})")
        op = getCustomOp(n)
        types = {a.name for a in n.attribute}  # set on the node (defaults carry no map)
        if _VECTORS in types:
            v = list(op.get_nodeattr(_VECTORS))
            if len(v) != 3 or v[2] != w0:
                raise ValueError(f"{n.name}: {_VECTORS} {v} is not a (1, H, {w0}) map")
            op.set_nodeattr(_VECTORS, [v[0], v[1], width])
        for a in _IMAGES:
            if a in types:
                d = list(op.get_nodeattr(a))
                if d[1] < w0:
                    raise ValueError(f"{n.name}: {a} {d} narrower than the map ({w0})")
                op.set_nodeattr(a, [d[0], width + d[1] - w0])  # a padded image keeps its padding
    maps = [t for t in [*m.graph.input, *m.graph.output, *m.graph.value_info] if m.get_initializer(t.name) is None]
    for t in maps:
        shape = list(m.get_tensor_shape(t.name))
        if len(shape) != 4 or shape[2] < w0:
            raise ValueError(f"tensor {t.name}: {shape} is not a map at least {w0} wide")
        m.set_tensor_shape(t.name, [shape[0], shape[1], width + shape[2] - w0, shape[3]])
    # FINN's shape inference from the set attributes must give the same shapes
    inferred = copy.deepcopy(m).transform(InferShapes())
    for t in maps:
        if inferred.get_tensor_shape(t.name) != m.get_tensor_shape(t.name):
            raise ValueError(f"tensor {t.name}: {m.get_tensor_shape(t.name)} at strip width {width}, FINN infers "
                             f"{inferred.get_tensor_shape(t.name)}")
    return m


def strip_columns(width: int, tiles: int, h: int) -> list[tuple[int, int, int, int]]:
    """Per strip: (first input column, end input column, first output column, end output column) of a map
    ``width`` wide in ``tiles`` equal strips with halo ``h`` (clipped to the map)."""
    if tiles < 1 or width % tiles:
        raise ValueError(f"{tiles} strips do not cut {width} columns equally")
    s = width // tiles
    return [(max(0, t * s - h), min(width, (t + 1) * s + h), t * s, (t + 1) * s) for t in range(tiles)]


def strip_widths(width: int, tiles: int, h: int) -> list[int]:
    """The input widths the strips take (one or two: edge and interior strips), widest first."""
    return sorted({hi - lo for lo, hi, _, _ in strip_columns(width, tiles, h)}, reverse=True)


def execute_strips(model, x: np.ndarray, tiles: int, run: Callable | None = None,
                   h: int | None = None) -> np.ndarray:
    """Conv body ``model`` on map ``x`` ((1, H, W, C)) strip by strip (module doc): each strip's input columns
    through the body restriped to their width, its output columns kept, the strips put side by side. ``run(graph,
    x)``: the execution (default FINN python execution, specialised layers as their abstraction); ``h``: the halo
    (default ``halo(model)``; a smaller one shows what it is for)."""
    from samfpga.hw.rolled.execute import _python, run_once

    run = run or (lambda g, v: run_once(_python(g), v))
    h = halo(model) if h is None else h
    graphs: dict[int, object] = {}
    out = []
    for lo, hi, o_lo, o_hi in strip_columns(_map_width(model), tiles, h):
        if hi - lo not in graphs:
            graphs[hi - lo] = restripe(model, hi - lo)
        y = run(graphs[hi - lo], np.ascontiguousarray(x[:, :, lo:hi, :]))
        out.append(y[:, :, o_lo - lo:o_hi - lo, :])
    return np.concatenate(out, axis=2)


def execute_loop_strips(loop, x: np.ndarray, tiles: int) -> np.ndarray:
    """A rolled loop (``samfpga.hw.rolled.graph.Loop``) whose body is a conv body, every block run in strips
    (``execute_strips``) with its iteration's parameters; each block reads the whole map the block before wrote (a
    loop buffer in DDR), so the halo does not compound over the blocks."""
    from samfpga.hw.rolled.execute import _python, run_once, set_iteration

    h = halo(loop.body)
    body = _python(loop.body)
    for i in range(loop.iterations):
        set_iteration(loop, body, i)
        x = execute_strips(body, x, tiles, run=run_once, h=h)
    return x


def strip_costs(model, board, tiles: int) -> dict:
    """Conv body ``model`` in ``tiles`` strips against the whole map, by the build's layer costs
    (``samfpga.hw.resources.layer_costs``: the project's models where registered, else FINN's estimates) and FINN's
    cycle estimates: ``full`` / ``strips`` each with ``resources`` (summed over the layers; for strips the widest
    strip's graph, the hardware every strip runs on), ``cycles`` (per frame: the slowest layer's cycles, for strips
    summed over the strips) and ``by_type`` (resources per op type)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.resources.cost import layer_costs, total

    def figures(graphs: list) -> dict:
        costs = layer_costs(graphs[0], board)
        by_type: dict[str, dict[str, float]] = {}
        for c in costs:
            t = by_type.setdefault(c.op_type, dict.fromkeys(c.resources(), 0.0))
            for r, v in c.resources().items():
                t[r] += v
        cycles = sum(max(int(getCustomOp(n).get_exp_cycles()) for n in g.graph.node) for g in graphs)
        return {"resources": total(costs), "cycles": cycles, "by_type": by_type}

    w = _map_width(model)
    h = halo(model)
    widths = [hi - lo for lo, hi, _, _ in strip_columns(w, tiles, h)]
    cache = {v: restripe(model, v) for v in set(widths)}
    return {"tiles": tiles, "halo": h, "width": w, "strip_widths": widths, "full": figures([model]),
            "strips": {**figures([cache[max(widths)]]), "cycles": figures([cache[v] for v in widths])["cycles"]}}
