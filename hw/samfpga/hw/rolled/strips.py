"""Column strips of a rolled body in the FINN graph: the body built at a strip's width, and the python execution
of a feature map as strips with their halo columns (docs/loop_rolling.md, "Column strips of a rolled body").

The planner's column strips (``samfpga.hw.plan.strips``, docs/plan.md) make every line buffer and window band a
strip wide instead of a map wide. In the FINN graph a strip is an ordinary narrower image: ``restripe`` copies a
body (an MBConv block: maps (1, H, W, C); a TinyViT block: tokens (1, H * W, C), windows (nW, ...) between its
window partition and reverse, a map around its local conv) and follows each tensor's layout from the input
through the graph: every shape is set for the strip, and every layer's shape attributes from its new input and
output shapes (``numInputVectors``; ``ImgDim`` / ``IFMDim`` / ``OFMDim`` / ``Dim``; a shuffle's views, whose window
axes are known by position since H = W; a reshape's shapes), then checked against FINN's own shape inference.
Attention over a whole map (no window partition in the body) is refused: every token sees every column.

``execute_strips`` runs a map through such a body strip by strip: strip t computes output columns
[t * S, (t + 1) * S) (S = W / tiles) from the input columns [t * S - h, (t + 1) * S + h) clipped to the map, where
the halo h (``halo``) is the sum of (k - 1) / 2 over the body's convolutions, rounded up to whole windows where
the body has windowed attention (strips are whole windows, so no window straddles two); each strip's own zero
padding then lands at the map's edge (the image's padding, as the unrolled body pads) or beyond the halo on an
interior side, where it changes only halo columns, which are dropped. Edge strips have one halo, interior strips
two, so a body in strips takes at most two strip widths; the hardware for both is the wider (the
strip padding unit pads the image-edge side at run time, docs/strip_pad.md). Not built: strips in the build's fit,
the parts' HDL, host.json and the driver.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from samfpga.backends.rolled_host import align_up
from samfpga.hw.rolled.blocks import base_op

#: HW layers a body in strips may hold
BODY_OPS = frozenset({"MVAU", "VVAU", "DepthwiseVVAU", "Requant", "Thresholding", "FMPadding",
                      "ConvolutionInputGenerator", "AddStreams", "DuplicateStreams", "StreamingDataWidthConverter",
                      "StreamingFIFO", "ChannelwiseOp", "IntLayerNorm", "IntSoftmax", "StreamingSplit", "Reshape",
                      "Shuffle", "PagePermute", "TokenBatchMVU"})
#: shuffles (a Shuffle before the build's conversion, the PagePermute it becomes after): the same shape attributes
SHUFFLES = frozenset({"Shuffle", "PagePermute"})
#: image attributes: from the input's (1, H, W, C) map, or the output's
_IN_IMAGE, _OUT_IMAGE = ("ImgDim", "IFMDim"), ("OFMDim", "Dim")

# tensor layouts of a body: tokens (1, H * W, C) in raster order, a map (1, H, W + 2p, C), windows (nW, ...) with
# nW = (H / ws) (W / ws) windows first
TOKENS, MAP, WINDOWS = "tokens", "map", "windows"


@dataclass(frozen=True)
class Geometry:
    """A body's map: ``h`` x ``w`` (its input), ``window`` (0 without windowed attention)."""

    h: int
    w: int
    window: int = 0


def geometry(model) -> Geometry:
    """The body's map from its input ((1, H, W, C), or (1, H * W, C) tokens of a square map) and its window size
    (from a window partition's (1, H / ws, ws, W / ws, ws, C) view, else 0)."""
    from qonnx.custom_op.registry import getCustomOp

    name = model.graph.input[0].name
    shape = list(model.get_tensor_shape(name))
    if len(shape) == 4 and shape[0] == 1:
        h, w = shape[1], shape[2]
    elif len(shape) == 3 and shape[0] == 1 and math.isqrt(shape[1]) ** 2 == shape[1]:
        h = w = math.isqrt(shape[1])
    else:
        raise ValueError(f"{name}: a body in strips takes a (1, H, W, C) map or (1, H * W, C) tokens of a square map, "
                         f"got {shape}")
    windows = set()
    for n in model.graph.node:
        if base_op(n.op_type) in SHUFFLES:
            t = list(getCustomOp(n).get_nodeattr("transpose_in_shape"))
            if len(t) == 6 and t[0] == 1 and t[1] * t[2] == h and t[3] * t[4] == w and t[2] == t[4]:
                windows.add(t[2])
    if len(windows) > 1:
        raise ValueError(f"window partitions of sizes {sorted(windows)} in one body")
    return Geometry(h, w, windows.pop() if windows else 0)


def halo(model) -> int:
    """Halo columns one side of a strip needs: the sum of (k - 1) / 2 over the body's sliding windows (each a
    stride-1, dilation-1, odd k x k window with its own "same" padding, else ``ValueError`` naming the node),
    rounded up to whole attention windows in a body with windowed attention (windows never straddle strips)."""
    from qonnx.custom_op.registry import getCustomOp

    h = 0
    for n in model.graph.node:
        if base_op(n.op_type) != "ConvolutionInputGenerator":
            continue
        op = getCustomOp(n)
        k, s, d = (list(op.get_nodeattr(a)) for a in ("ConvKernelDim", "Stride", "Dilation"))
        ifm, ofm = list(op.get_nodeattr("IFMDim")), list(op.get_nodeattr("OFMDim"))
        if s != [1, 1] or d != [1, 1] or k[1] % 2 == 0 or ifm[1] - ofm[1] != k[1] - 1:
            raise ValueError(f"{n.name}: strips take stride-1, dilation-1, odd windows with 'same' padding; it has "
                             f"kernel {k}, stride {s}, dilation {d}, IFMDim {ifm}, OFMDim {ofm}")
        h += (k[1] - 1) // 2
    ws = geometry(model).window
    return align_up(h, ws) if ws else h


def _shuffle(op, name: str, kind: str, g: Geometry, width: int) -> str:
    """Set a Shuffle's shapes for strips ``width`` wide; returns its output's layout. A window partition (tokens
    -> windows), a window reverse (windows -> tokens) or a shuffle within windows (window axis first, kept)."""
    t_in, perm = list(op.get_nodeattr("transpose_in_shape")), list(op.get_nodeattr("perm"))
    in_shape, out_shape = list(op.get_nodeattr("in_shape")), list(op.get_nodeattr("out_shape"))
    ws = g.window
    nw = (g.h // ws) * (width // ws) if ws else 0
    part = [1, g.h // ws, ws, g.w // ws, ws, t_in[-1]] if ws else None
    if kind == TOKENS and t_in == part:
        t_in[3] = width // ws
        out_kind, new_in, new_out = WINDOWS, [1, g.h * width, in_shape[-1]], [nw, *out_shape[1:]]
    elif kind == WINDOWS and ws and len(t_in) == 6 and t_in[:3] == [1, g.h // ws, g.w // ws] and \
            out_shape == [1, g.h * g.w, out_shape[-1]]:
        t_in[2] = width // ws
        out_kind, new_in, new_out = TOKENS, [nw, *in_shape[1:]], [1, g.h * width, out_shape[-1]]
    elif kind == WINDOWS and perm[0] == 0 and t_in[0] == in_shape[0] == out_shape[0]:
        t_in[0] = nw
        out_kind, new_in, new_out = WINDOWS, [nw, *in_shape[1:]], [nw, *out_shape[1:]]
    else:
        raise ValueError(f"{name}: a shuffle strips cannot cut ({kind} {in_shape} -> {out_shape}, view {t_in}, "
                         f"perm {perm})")
    op.set_nodeattr("in_shape", new_in)
    op.set_nodeattr("transpose_in_shape", t_in)
    if "transpose_out_shape" in op.get_nodeattr_types():  # a Shuffle's (its PagePermute derives it)
        op.set_nodeattr("transpose_out_shape", [t_in[i] for i in perm])
    op.set_nodeattr("out_shape", new_out)
    return out_kind


def _kind_of_reshape(shape: list[int], g: Geometry) -> str:
    if len(shape) == 4 and shape[0] == 1 and shape[1] == g.h and shape[2] >= g.w:
        return MAP
    if len(shape) == 3 and shape[0] == 1 and shape[1] == g.h * g.w:
        return TOKENS
    if g.window and shape[0] == (g.h // g.window) * (g.w // g.window):
        return WINDOWS
    raise ValueError(f"a reshape to {shape}: not tokens, a map or windows of the {g.h} x {g.w} map")


def _strip_shape(shape: list[int], kind: str, g: Geometry, width: int) -> list[int]:
    if kind == TOKENS:
        return [1, g.h * width, *shape[2:]]
    if kind == MAP:
        return [1, shape[1], width + shape[2] - g.w, shape[3]]
    return [(g.h // g.window) * (width // g.window), *shape[1:]]


def restripe(model, width: int):
    """A copy of body ``model`` whose layers take strips ``width`` wide (module doc): every tensor's layout
    (tokens, map or windows) followed from the input through the graph, its shape set for the strip, every
    layer's shape attributes set from its new input and output shapes (``numInputVectors`` = input shape but the
    channels; images from the maps; shuffles' views and reshapes' shapes), checked against FINN's shape inference.
    ``ValueError`` names a layer outside ``BODY_OPS``, an attribute that is not what its shapes say, a shuffle or
    reshape that is not of the map, or a strip that is not whole windows."""
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.infer_shapes import InferShapes

    g = geometry(model)
    halo(model)  # refuses windows that strips cannot cut
    attention = [n.name for n in model.graph.node if base_op(n.op_type) == "IntSoftmax"]
    if attention and not g.window:
        raise ValueError(f"{attention[0]}: attention over the whole map (no window partition of it in the body): every "
                         f"token sees every column, strips cannot cut it")
    if g.window and width % g.window:
        raise ValueError(f"strips of a body with {g.window}-wide attention windows must be whole windows, got {width}")
    m = copy.deepcopy(model)
    name = m.graph.input[0].name
    kinds = {name: TOKENS if len(m.get_tensor_shape(name)) == 3 else MAP}
    old = {t: list(m.get_tensor_shape(t)) for n in m.graph.node for t in [*n.input, *n.output]
           if m.get_initializer(t) is None}
    for n in m.graph.node:
        if base_op(n.op_type) not in BODY_OPS:
            raise ValueError(f"{n.name}: {n.op_type} is not a layer strips can cut ({', '.join(sorted(BODY_OPS))})")
        op = getCustomOp(n)
        kind = kinds[n.input[0]]
        base = base_op(n.op_type)
        if base in SHUFFLES:
            out_kind = _shuffle(op, n.name, kind, g, width)
        elif base == "Reshape":
            out_kind = _kind_of_reshape(old[n.output[0]], g)
        else:
            out_kind = kind
        for t in n.output:
            kinds[t] = out_kind
        new_in = _strip_shape(old[n.input[0]], kind, g, width)
        new_out = _strip_shape(old[n.output[0]], out_kind, g, width)
        if base == "Reshape":
            op.set_nodeattr("inp_shape", new_in)
            op.set_nodeattr("out_shape", new_out)
        attrs = {a.name for a in n.attribute}  # set on the node (defaults carry no map)
        if "numInputVectors" in attrs:
            v = list(op.get_nodeattr("numInputVectors"))
            if v != old[n.input[0]][:-1]:
                raise ValueError(f"{n.name}: numInputVectors {v} is not its input {old[n.input[0]]} but the channels")
            op.set_nodeattr("numInputVectors", new_in[:-1])
        for a, src, dst in [*((a, old[n.input[0]], new_in) for a in _IN_IMAGE),
                            *((a, old[n.output[0]], new_out) for a in _OUT_IMAGE)]:
            if a in attrs:
                if list(op.get_nodeattr(a)) != src[1:3]:
                    raise ValueError(f"{n.name}: {a} {list(op.get_nodeattr(a))} is not the map {src}")
                op.set_nodeattr(a, dst[1:3])
    maps = [t for t in [*m.graph.input, *m.graph.output, *m.graph.value_info] if m.get_initializer(t.name) is None]
    for t in maps:
        m.set_tensor_shape(t.name, _strip_shape(list(m.get_tensor_shape(t.name)), kinds[t.name], g, width))
    # FINN's shape inference from the set attributes must give the same shapes
    inferred = copy.deepcopy(m).transform(InferShapes())
    for t in maps:
        if inferred.get_tensor_shape(t.name) != m.get_tensor_shape(t.name):
            raise ValueError(f"tensor {t.name}: {m.get_tensor_shape(t.name)} at strip width {width}, FINN infers "
                             f"{inferred.get_tensor_shape(t.name)}")
    return m


def strip_widths(model, tiles: int) -> list[int]:
    """Input columns of each of ``tiles`` strips of body ``model`` (its halo included, clipped to the map);
    ``ValueError`` when the strips do not cut the map equally into whole attention windows."""
    g, h = geometry(model), halo(model)
    if tiles >= 1 and g.w % tiles == 0 and g.window and (g.w // tiles) % g.window:
        raise ValueError(f"{tiles} strips of the {g.w}-wide map are not whole {g.window}-wide attention windows")
    return [hi - lo for lo, hi, _, _ in strip_columns(g.w, tiles, h)]


def strip_columns(width: int, tiles: int, h: int) -> list[tuple[int, int, int, int]]:
    """Per strip: (first input column, end input column, first output column, end output column) of a map
    ``width`` wide in ``tiles`` equal strips with halo ``h`` (clipped to the map)."""
    if tiles < 1 or width % tiles:
        raise ValueError(f"{tiles} strips do not cut {width} columns equally")
    s = width // tiles
    return [(max(0, t * s - h), min(width, (t + 1) * s + h), t * s, (t + 1) * s) for t in range(tiles)]


def execute_strips(model, x: np.ndarray, tiles: int, run: Callable | None = None,
                   h: int | None = None) -> np.ndarray:
    """Body ``model`` on ``x`` (its input: a (1, H, W, C) map or (1, H * W, C) tokens, and the same output)
    strip by strip (module doc): each strip's input columns through the body restriped to their width, its output
    columns kept, the strips put side by side. ``run(graph, x)``: the execution (default FINN python execution,
    specialised layers as their abstraction); ``h``: the halo (default ``halo(model)``; a smaller one shows what it
    is for)."""
    from samfpga.hw.rolled.execute import _python, run_once

    run = run or (lambda g, v: run_once(_python(g), v))
    h = halo(model) if h is None else h
    g = geometry(model)
    tokens = x.ndim == 3
    xm = x.reshape(1, g.h, g.w, x.shape[-1]) if tokens else x
    graphs: dict[int, object] = {}
    out = []
    for lo, hi, o_lo, o_hi in strip_columns(g.w, tiles, h):
        if hi - lo not in graphs:
            graphs[hi - lo] = restripe(model, hi - lo)
        v = np.ascontiguousarray(xm[:, :, lo:hi, :])
        y = run(graphs[hi - lo], v.reshape(1, -1, v.shape[-1]) if tokens else v)
        y = y.reshape(1, g.h, hi - lo, y.shape[-1]) if tokens else y
        out.append(y[:, :, o_lo - lo:o_hi - lo, :])
    y = np.concatenate(out, axis=2)
    return y.reshape(1, g.h * g.w, y.shape[-1]) if tokens else y


def execute_loop_strips(loop, x: np.ndarray, tiles: int) -> np.ndarray:
    """A rolled loop (``samfpga.hw.rolled.graph.Loop``), every block run in strips
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
    """Body ``model`` in ``tiles`` strips against the whole map, after the build's shuffle conversion
    (``after_folding``: page permutes / decomposed shuffles, specialised, own RTL), by the build's layer costs
    (``samfpga.hw.resources.layer_costs``: the project's models where registered, else FINN's estimates) and FINN's
    cycle estimates: ``full`` / ``strips`` each with ``resources`` (summed over the layers; for strips the widest
    strip's graph, the hardware every strip runs on), ``cycles`` (per frame: the slowest layer's cycles, for strips
    summed over the strips) and ``by_type`` (resources per op type)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.after_folding import after_folding
    from samfpga.hw.resources.cost import layer_costs, total

    def figures(g) -> dict:  # as the build prices it: after its shuffle conversion (step_transpose_decomposition)
        g = after_folding(copy.deepcopy(g), board.part, True)
        costs = layer_costs(g, board)
        by_type: dict[str, dict[str, float]] = {}
        for c in costs:
            t = by_type.setdefault(c.op_type, dict.fromkeys(c.resources(), 0.0))
            for r, v in c.resources().items():
                t[r] += v
        cycles = max(int(getCustomOp(n).get_exp_cycles()) for n in g.graph.node)
        return {"resources": total(costs), "cycles": cycles, "by_type": by_type}

    w = geometry(model).w
    h = halo(model)
    widths = strip_widths(model, tiles)
    each = {v: figures(restripe(model, v)) for v in set(widths)}  # one graph per width the strips take
    return {"tiles": tiles, "halo": h, "width": w, "strip_widths": widths, "full": figures(model),
            "strips": {**each[max(widths)], "cycles": sum(each[v]["cycles"] for v in widths)}}
