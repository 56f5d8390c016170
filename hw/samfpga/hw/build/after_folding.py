"""The HW layers as they are built once the folding is known, and the price of a layer as what it becomes.

After folding, ``step_transpose_decomposition`` turns each ``Shuffle`` (FINN+ has no implementation of it) into one
own ``PagePermute_rtl`` where ``page_view`` accepts it, else FINN+'s InnerShuffle/OuterShuffle chain, and on Zynq maps
depthwise VVAUs and OuterShuffles to own RTL (``UseOwnRTL(after_folding=True)``). ``after_folding`` is that
conversion, written once: the build step runs it on the graph, the fit search runs it on each layer it prices
(``priced_as_built``) and on a copy of the folded graph for the FIFOs and width converters it reserves, so that what
the search counts is what the report will count.
"""

from __future__ import annotations

import json

from samfpga.hw import HW_DOMAIN

#: op types whose hardware is decided only after folding (``after_folding`` replaces them)
CHANGES_AFTER_FOLDING = ("Shuffle", "VVAU", "VVAU_hls", "VVAU_rtl", "OuterShuffle", "OuterShuffle_hls")


def after_folding(model, part: str, own_rtl: bool = True):
    """``model`` (folded, specialised) with the layers decided after folding converted (see the module doc);
    a new ModelWrapper, nodes renamed as FINN's hw_codegen will name them when anything changed."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from finn.transformation.fpgadataflow.transpose_decomposition import (
        InferInnerOuterShuffles,
        ShuffleDecomposition,
    )
    from finn.transformation.qonnx.give_unique_node_names_recursive import GiveUniqueNodeNamesRecursive
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    versal = part.lower().startswith("xcv")
    if own_rtl:
        from samfpga.hw.custom_ops.transforms import ShuffleToPagePermute

        model = model.transform(ShuffleToPagePermute()).transform(SpecializeLayers(part))
    if model.get_nodes_by_op_type("Shuffle"):
        # FINN+'s step_transpose_decomposition (its transforms, for a graph without loops)
        model = model.transform(ShuffleDecomposition()).transform(InferInnerOuterShuffles())
        model = model.transform(SpecializeLayers(part)).transform(InferShapes()).transform(InferDataTypes())
        model = model.transform(GiveUniqueNodeNamesRecursive())
    if own_rtl and not versal:
        from samfpga.hw.custom_ops.transforms import UseOwnRTL

        # own RTL for what FINN+ leaves to HLS on Zynq once folding is known: depthwise VVAUs (mapped after
        # SetFolding, which folds only FINN's own op types) and OuterShuffles as InnerShuffles on regrouped views
        model = model.transform(UseOwnRTL(after_folding=True)).transform(SpecializeLayers(part))
        # the names hw_codegen will give (it renames first): estimates and the report must use the same ones
        model = model.transform(GiveUniqueNodeNamesRecursive())
    return model


def single_node_model(model, node):
    """A ModelWrapper holding only ``node`` of ``model``: its inputs and outputs with shapes and datatypes, the
    initializers it reads, and its attributes (a copy)."""
    import copy

    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper

    def info(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, model.get_tensor_shape(name))

    inits = [i for i in node.input if model.get_initializer(i) is not None]
    graph = helper.make_graph([copy.deepcopy(node)], f"{node.name}_alone",
                              [info(i) for i in node.input if i not in inits], [info(o) for o in node.output])
    one = ModelWrapper(helper.make_model(graph))
    from samfpga.hw.build.memory import SHUFFLE_STYLE_KEY, shuffle_styles

    style = shuffle_styles(model).get(node.output[0]) if node.output else None
    if style is not None:
        one.set_metadata_prop(SHUFFLE_STYLE_KEY, json.dumps({node.output[0]: style}))
    for i in inits:
        one.set_initializer(i, model.get_initializer(i))
    for t in [*node.input, *node.output]:
        dt = model.get_tensor_datatype(t)
        if dt is not None:
            one.set_tensor_datatype(t, dt)
        layout = model.get_tensor_layout(t)
        if layout is not None:
            one.set_tensor_layout(t, layout)
    return one


def priced_as_built(model, node, board, own_rtl: bool = True) -> dict[str, float]:
    """Summed resources of what ``node`` (of the folded ``model``) becomes after folding, each layer priced by
    ``samfpga.hw.resources.layer_costs`` (e.g. a Shuffle: the PagePermute_rtl ``ShuffleToPagePermute`` makes of it,
    or FINN+'s InnerShuffle chain)."""
    from samfpga.hw.boards import RESOURCES
    from samfpga.hw.resources import layer_costs

    built = after_folding(single_node_model(model, node), board.part, own_rtl)
    tot = dict.fromkeys(RESOURCES, 0.0)
    for c in layer_costs(built, board):
        for r, v in c.resources().items():
            tot[r] += v
    return tot


def changes_after_folding(node) -> bool:
    """True for a HW node that ``after_folding`` may replace."""
    return node.domain.startswith(HW_DOMAIN) and node.op_type in CHANGES_AFTER_FOLDING
