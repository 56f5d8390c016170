"""Graph rewrites of exported ONNX decoders for onnxruntime's CPU kernels.

``fuse_skip_layer_norm``: the split decoder's prompt side ends every two-way layer with
``norm4(keys + (attn_out @ W_o + b_o))`` over the per-prompt image tokens (B, hw, C). As exported that is three
passes over a (B, hw, C) tensor (bias add, residual add, layer norm); onnxruntime's contrib op
``com.microsoft.SkipLayerNormalization`` (CPU kernel in every onnxruntime build since 1.16, including the board's
1.23) computes ``LayerNorm(input + skip + bias)`` in one. Its graph optimiser does not make this fusion from the
opset-17 ``LayerNormalization`` the exporter writes, so it is done here.
"""

from __future__ import annotations

import onnx
from onnx import helper

CONTRIB_DOMAIN = "com.microsoft"


def fuse_skip_layer_norm(model: onnx.ModelProto) -> int:
    """Rewrite ``LayerNormalization(Add(x, Add(y, bias)))`` (either operand order, bias a 1-D initializer, layer
    norm over the last axis with initializer scale and shift, the two Adds used by nothing else; initializers
    also through Identity nodes) into
    ``SkipLayerNormalization(y, x, scale, shift, bias)`` in place; returns the number of fusions."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    for o in g.output:
        consumers[o.name] = consumers.get(o.name, 0) + 1
    inits = {t.name: t for t in g.initializer}

    def constant(name: str) -> onnx.TensorProto | None:
        """The initializer behind ``name``, through the Identity nodes the exporter writes for shared weights."""
        while name not in inits and name in producer and producer[name].op_type == "Identity":
            name = producer[name].input[0]
        return inits.get(name)

    def attr(node: onnx.NodeProto, name: str, default):
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    replace: dict[str, onnx.NodeProto] = {}
    drop: set[str] = set()
    for ln in g.node:
        if ln.op_type != "LayerNormalization" or ln.domain not in ("", "ai.onnx") or len(ln.input) < 3:
            continue
        if attr(ln, "axis", -1) != -1 or len([o for o in ln.output if o]) != 1:
            continue
        if constant(ln.input[1]) is None or constant(ln.input[2]) is None:
            continue
        outer = producer.get(ln.input[0])
        if outer is None or outer.op_type != "Add" or consumers.get(outer.output[0]) != 1:
            continue
        for xi, yi in ((0, 1), (1, 0)):
            inner = producer.get(outer.input[yi])
            if inner is None or inner.op_type != "Add" or consumers.get(inner.output[0]) != 1:
                continue
            for vi, bi in ((0, 1), (1, 0)):
                bias = constant(inner.input[bi])
                if bias is None or len(bias.dims) != 1:
                    continue
                fused = helper.make_node(
                    "SkipLayerNormalization",
                    [inner.input[vi], outer.input[xi], ln.input[1], ln.input[2], inner.input[bi]],
                    [ln.output[0]], name=f"{ln.name}/skip_fused", domain=CONTRIB_DOMAIN,
                    epsilon=float(attr(ln, "epsilon", 1e-5)))
                replace[ln.name] = fused
                drop |= {outer.name, inner.name}
                break
            if ln.name in replace:
                break
    if not replace:
        return 0
    nodes = [replace.get(n.name, n) for n in g.node if n.name not in drop]
    del g.node[:]
    g.node.extend(nodes)
    if not any(o.domain == CONTRIB_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    return len(replace)
