"""Load and execute a ``samfpga-intgraph``: the build's final graph as nodes over named tensors.

``graph.json``::

    {"format": "samfpga-intgraph", "version": 1,
     "input": NAME, "output": NAME,
     "tensors": {NAME: {"shape": [...], "dtype": "INT8" | "FLOAT32" | ...}},
     "nodes": [{"name", "op", "inputs", "outputs", "attrs", "on": "host" | "hw"}],
     "accelerator": {"input": NAME, "output": NAME}}

``op`` is the layer type without its implementation suffix (``MVAU``, not ``MVAU_rtl``); attributes are the
node's ONNX attributes. ``weights.npz`` holds the initializers by tensor name. The nodes with ``on: "hw"`` form
one contiguous run (the accelerator); ``run`` executes everything, ``run_host_pre`` / ``run_accelerator`` /
``run_host_post`` the three parts, so a driver can put the middle part on the FPGA.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samfpga.kernels import (
    addstreams,
    duplicate,
    float_layers,
    fmpadding,
    layernorm,
    mvau,
    requant,
    shuffle,
    softmax,
    swg,
    thresholding,
    vvau,
)

FORMAT, VERSION = "samfpga-intgraph", 1


class IntGraphError(ValueError):
    """A malformed or unsupported graph (the message names the file, node or field)."""


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict
    on: str


def _is_int(dtype: str) -> bool:
    return not dtype.startswith("FLOAT") and dtype != ""


def dtype_bits(dtype: str) -> int:
    """Bit width of a QONNX integer datatype name (INTk, UINTk; BINARY/BIPOLAR 1, TERNARY 2)."""
    if dtype.startswith("UINT"):
        return int(dtype[4:])
    if dtype.startswith("INT"):
        return int(dtype[3:])
    return {"BINARY": 1, "BIPOLAR": 1, "TERNARY": 2}[dtype]


def dtype_range(dtype: str) -> tuple[float, float]:
    """Value range of a QONNX integer datatype name (INTk, UINTk, BIPOLAR, BINARY, TERNARY)."""
    if dtype.startswith("UINT"):
        return 0.0, float(2 ** int(dtype[4:]) - 1)
    if dtype.startswith("INT"):
        b = int(dtype[3:])
        return float(-(2 ** (b - 1))), float(2 ** (b - 1) - 1)
    return {"BINARY": (0.0, 1.0), "BIPOLAR": (-1.0, 1.0), "TERNARY": (-1.0, 1.0)}[dtype]


class IntGraph:
    """An executable graph. ``tensors``: name -> {shape, dtype}; ``weights``: name -> array."""

    def __init__(self, spec: dict, weights: dict[str, np.ndarray], source: str = "<graph>") -> None:
        self.source = source
        if spec.get("format") != FORMAT or spec.get("version") != VERSION:
            raise IntGraphError(f"{source}: not a {FORMAT} v{VERSION} file (format={spec.get('format')!r}, "
                                f"version={spec.get('version')!r})")
        self.tensors: dict[str, dict] = spec["tensors"]
        self.input, self.output = spec["input"], spec["output"]
        self.nodes = [Node(n["name"], n["op"], list(n["inputs"]), list(n["outputs"]), n.get("attrs", {}),
                           n.get("on", "hw")) for n in spec["nodes"]]
        self.accel = spec.get("accelerator")
        self.weights = weights
        for n in self.nodes:
            if n.op not in _OPS:
                raise IntGraphError(f"{source}: node {n.name}: unsupported op {n.op!r}")
        hw = [i for i, n in enumerate(self.nodes) if n.on == "hw"]
        if hw and hw != list(range(hw[0], hw[-1] + 1)):
            raise IntGraphError(f"{source}: the accelerator's nodes are not one contiguous run")
        self._hw_range = (hw[0], hw[-1] + 1) if hw else (0, 0)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.tensors[name]["shape"])

    def dtype(self, name: str) -> str:
        return self.tensors[name]["dtype"]

    def _exec(self, nodes: list[Node], ctx: dict[str, np.ndarray], trace: Callable | None = None) -> None:
        for n in nodes:
            args = [ctx[t] if t in ctx else self.weights[t] for t in n.inputs]
            try:
                outs = _OPS[n.op](self, n, args)
            except (ValueError, KeyError, IndexError) as e:
                raise IntGraphError(f"{self.source}: node {n.name} ({n.op}): {e}") from e
            for t, v in zip(n.outputs, outs, strict=True):
                shp = self.shape(t)
                v = np.asarray(v)
                if v.size != int(np.prod(shp)):
                    raise IntGraphError(f"{self.source}: node {n.name} produced {v.shape} for {t}, declared {shp}")
                ctx[t] = v.reshape(shp)
                if trace is not None:
                    trace(n, t, ctx[t])

    def run(self, x: np.ndarray, trace: Callable | None = None) -> np.ndarray:
        """Whole graph: graph input (declared shape, float32) -> graph output (float32)."""
        ctx = {self.input: self._check_in(x, self.input)}
        self._exec(self.nodes, ctx, trace)
        return ctx[self.output].astype(np.float32)

    def run_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor's value (for per-node comparisons)."""
        ctx = {self.input: self._check_in(x, self.input)}
        self._exec(self.nodes, ctx)
        return ctx

    def run_host_pre(self, x: np.ndarray) -> np.ndarray:
        """Host layers before the accelerator: graph input -> accelerator input."""
        ctx = {self.input: self._check_in(x, self.input)}
        self._exec(self.nodes[: self._hw_range[0]], ctx)
        return ctx[self.accel["input"]]

    def run_accelerator(self, x: np.ndarray) -> np.ndarray:
        """What the accelerator computes: accelerator input -> accelerator output (values, not packed)."""
        ctx = {self.accel["input"]: self._check_in(x, self.accel["input"])}
        self._exec(self.nodes[self._hw_range[0]: self._hw_range[1]], ctx)
        return ctx[self.accel["output"]]

    def run_host_post(self, y: np.ndarray) -> np.ndarray:
        """Host layers after the accelerator: accelerator output -> graph output (float32)."""
        ctx = {self.accel["output"]: self._check_in(y, self.accel["output"])}
        self._exec(self.nodes[self._hw_range[1]:], ctx)
        return ctx[self.output].astype(np.float32)

    def run_between(self, x: np.ndarray, src: str, dst: str) -> np.ndarray:
        """The nodes from tensor ``src`` to tensor ``dst`` (a piece of the graph with that one input: a rolled
        accelerator's part or block, ``samfpga.pynq_sim.rolled_device``): ``x`` (``src``'s shape) -> ``dst``'s
        value. Raises ``IntGraphError`` naming both tensors when ``dst`` does not follow from ``src`` alone."""
        for t in (src, dst):
            if t not in self.tensors:
                raise IntGraphError(f"{self.source}: no tensor {t!r}")
        ctx = {src: self._check_in(x, src)}
        start = next((i for i, n in enumerate(self.nodes) if src in n.inputs), len(self.nodes))
        for n in self.nodes[start:]:
            if all(t in ctx or t in self.weights for t in n.inputs):
                self._exec([n], ctx)
                if dst in ctx:
                    return ctx[dst]
        raise IntGraphError(f"{self.source}: tensor {dst!r} does not follow from {src!r} alone")

    def _check_in(self, x: np.ndarray, name: str) -> np.ndarray:
        shp = self.shape(name)
        x = np.asarray(x)
        if x.shape != shp:
            raise IntGraphError(f"{self.source}: tensor {name} must have shape {shp}, got {x.shape}")
        return x.astype(np.float64) if _is_int(self.dtype(name)) else x.astype(np.float32)


def load_intgraph(directory: str | Path, graph: str = "graph.json", weights: str = "weights.npz") -> IntGraph:
    """Load ``directory/graph.json`` + ``directory/weights.npz``."""
    d = Path(directory)
    gp, wp = d / graph, d / weights
    for p in (gp, wp):
        if not p.is_file():
            raise IntGraphError(f"{p}: no such file")
    try:
        spec = json.loads(gp.read_text())
    except json.JSONDecodeError as e:
        raise IntGraphError(f"{gp}: not JSON ({e})") from None
    with np.load(wp, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return IntGraph(spec, arrays, str(gp))


# ---- per-op execution: fn(graph, node, input values) -> list of outputs --------------------------------------


def _a(n: Node, key: str, default=None):
    return n.attrs.get(key, default)


def _threshold(g: IntGraph, n: Node, a: list) -> list:
    y = thresholding.multithreshold(a[0], a[1], out_bias=float(_a(n, "ActVal", _a(n, "out_bias", 0.0))),
                                    out_scale=float(_a(n, "out_scale", 1.0)))
    return [y]


def _mvau(g: IntGraph, n: Node, a: list) -> list:
    mw = int(_a(n, "MW"))
    x = a[0].reshape(*list(_a(n, "numInputVectors", [1])), mw) if _a(n, "numInputVectors") else a[0]
    float_math = not (_is_int(g.dtype(n.inputs[0])) and _is_int(g.dtype(n.inputs[1])))
    thr = a[2] if int(_a(n, "noActivation", 1)) == 0 else None
    return [mvau.mvau(x, a[1], thr, float(_a(n, "ActVal", 0)), float_math=float_math)]


def _vvau(g: IntGraph, n: Node, a: list) -> list:
    kh, kw = _a(n, "Kernel")
    c = int(_a(n, "Channels"))
    w = np.asarray(a[1]).reshape(c, 1, kh, kw)
    producer = next((m for m in g.nodes if n.inputs[0] in m.outputs), None)
    from_swg = producer is not None and producer.op == "ConvolutionInputGenerator"
    thr = a[2] if int(_a(n, "noActivation", 1)) == 0 else None
    return [vvau.vvau(a[0], w, thr, float(_a(n, "ActVal", 0)), None if from_swg else int(_a(n, "PE", c)))]


def _swg(g: IntGraph, n: Node, a: list) -> list:
    return [swg.sliding_window(a[0], tuple(_a(n, "ConvKernelDim")), tuple(_a(n, "Stride")),
                               tuple(_a(n, "Dilation", [1, 1])))]


def _elementwise(g: IntGraph, n: Node, a: list) -> list:
    op = n.op[len("Elementwise"):]
    return [float_layers.elementwise(op, a[0], a[1], _is_int(g.dtype(n.inputs[0])), _is_int(g.dtype(n.inputs[1])))]


def _addstreams(g: IntGraph, n: Node, a: list) -> list:
    lo, hi = dtype_range(g.dtype(n.outputs[0])) if _is_int(g.dtype(n.outputs[0])) else (None, None)
    return [addstreams.addstreams(a[0], a[1], lo, hi)]


def _requant(g: IntGraph, n: Node, a: list) -> list:
    """FINN+'s Requant as its python execution computes it (float32 ``clip(floor(x*scale + bias + 0.5))``);
    scale and bias are the node's 2nd and 3rd (initializer) inputs."""
    odt = g.dtype(n.outputs[0])
    signed = odt.startswith("INT")
    bits = int(odt[3:] if signed else odt[4:])
    return [requant.requant_spec(a[0], a[1], a[2], bits, signed, bool(int(_a(n, "narrow", 0))))]


def _token_batch(g: IntGraph, n: Node, a: list) -> list:
    """The project's token-batched unit (samfpga.hw.custom_ops.token_batch): the MVAU (no activation) and the
    Requant it fuses, in that order, on inputs (x, weights (MW, MH), scale, bias); on the board its weights come
    from DDR (driver.json ``token_batch``), here from weights.npz."""
    mw = int(_a(n, "MW"))
    x = a[0].reshape(*list(_a(n, "numInputVectors", [1])), mw)
    acc = mvau.mvau(x, a[1], None, 0.0, float_math=False)
    odt = g.dtype(n.outputs[0])
    signed = odt.startswith("INT")
    return [requant.requant_spec(acc, a[2], a[3], dtype_bits(odt), signed, False)]


def _int_layernorm(g: IntGraph, n: Node, a: list) -> list:
    """The project's IntLayerNorm (samfpga.hw.custom_ops): the same kernel and attribute reading as its
    ``execute_node``; the output width is that of the node's (signed) output datatype."""
    p = layernorm.params_from_attrs(n.attrs, dtype_bits(g.dtype(n.outputs[0])))
    return [layernorm.int_layernorm(a[0], p).astype(np.float64)]


def _int_softmax(g: IntGraph, n: Node, a: list) -> list:
    """The project's IntSoftmax; its optional second input is the (rows, n) integer bias table."""
    p = softmax.params_from_attrs(n.attrs, dtype_bits(g.dtype(n.outputs[0])), a[1] if len(a) > 1 else None)
    return [softmax.int_softmax(a[0], p).astype(np.float64)]


def _host_binary(fn):
    def run(g: IntGraph, n: Node, a: list) -> list:
        # plain ONNX op on the host (onnxruntime semantics: float32 in, float32 out)
        return [fn(np.asarray(a[0], np.float32), np.asarray(a[1], np.float32)).astype(np.float32)]

    return run


_OPS: dict[str, Callable] = {
    "Thresholding": _threshold,
    "MultiThreshold": _threshold,
    "MVAU": _mvau,
    "VVAU": _vvau,
    "Requant": _requant,
    "TokenBatchMVU": _token_batch,  # MVAU + Requant on the project's token-batched unit (weights in DDR)
    "DepthwiseVVAU": _vvau,  # the project's own RTL of FINN's VVAU without activation (samfpga.hw.custom_ops)
    "IntLayerNorm": _int_layernorm,  # the project's integer LayerNorm / softmax (build option int_ops)
    "IntSoftmax": _int_softmax,
    "ConvolutionInputGenerator": _swg,
    "FMPadding": lambda g, n, a: [fmpadding.fmpadding(a[0], tuple(_a(n, "Padding")))],
    "AddStreams": _addstreams,
    "DuplicateStreams": lambda g, n, a: duplicate.duplicate(a[0], len(n.outputs)),
    "Reshape": lambda g, n, a: [shuffle.reshape(a[0], tuple(_a(n, "out_shape", g.shape(n.outputs[0]))))],
    "InnerShuffle": lambda g, n, a: [shuffle.inner_shuffle(a[0], tuple(_a(n, "transpose_in_shape")))],
    "OuterShuffle": lambda g, n, a: [shuffle.outer_shuffle(a[0], tuple(_a(n, "transpose_in_shape")),
                                                           tuple(_a(n, "perm")), tuple(_a(n, "out_shape")))],
    # the project's own RTL of a whole Shuffle (one buffered page, samfpga.hw.custom_ops.page_permute)
    "PagePermute": lambda g, n, a: [shuffle.outer_shuffle(a[0], tuple(_a(n, "transpose_in_shape")),
                                                          tuple(_a(n, "perm")), tuple(_a(n, "out_shape")))],
    "Shuffle": lambda g, n, a: [shuffle.outer_shuffle(a[0], tuple(_a(n, "transpose_in_shape")),
                                                      tuple(_a(n, "perm")), tuple(_a(n, "out_shape")))],
    "StreamingSplit": lambda g, n, a: shuffle.split(a[0], list(_a(n, "ChannelsPerStream"))),
    "LayerNorm": lambda g, n, a: [float_layers.layer_norm(a[0], float(_a(n, "epsilon", 1e-5)))],
    "HWSoftmax": lambda g, n, a: [float_layers.softmax(a[0])],
    "StreamingDataWidthConverter": lambda g, n, a: [a[0]],
    "StreamingFIFO": lambda g, n, a: [a[0]],
    **{f"Elementwise{k}": _elementwise for k in float_layers.ELEMENTWISE},
    # host-side ONNX ops around the accelerator
    "Transpose": lambda g, n, a: [np.transpose(a[0], _a(n, "perm"))],
    "Mul": _host_binary(np.multiply),
    "Add": _host_binary(np.add),
    "Div": _host_binary(np.divide),
    "Sub": _host_binary(np.subtract),
    "Identity": lambda g, n, a: [a[0]],
}
