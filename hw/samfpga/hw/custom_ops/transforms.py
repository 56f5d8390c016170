"""Graph transformations mapping the encoder's layers onto the project's own RTL (for Zynq UltraScale+).

``UseOwnRTL()`` on a FINN HW graph after ``convert_to_hw``, before ``specialize_layers``:
    ElementwiseAdd with two streamed integer inputs of equal shape (the residual add)  -> AddStreams
    DuplicateStreams, StreamingSplit                                                 -> preferred_impl_style rtl
``UseOwnRTL(after_folding=True)`` on the folded, specialised graph (after FINN's folding and
``transpose_decomposition``), then ``SpecializeLayers`` again:
    VVAU(_hls) without fused thresholds, integer inputs and weights (depthwise conv) -> DepthwiseVVAU, FINN's
                                                                                     folding (PE, SIMD) kept
    OuterShuffle(_hls)                                                               -> InnerShuffle chain
                                                                                     (``OuterShuffleToInnerShuffles``)
The VVAU waits for folding because FINN's ``SetFolding`` folds only its own op types: mapped earlier, a depthwise
layer would keep PE = Channels (one multiplier per channel). FINN's specialisation then picks the own ``_rtl``
variants (registered by importing ``samfpga.hw.custom_ops``) instead of HLS. Other ElementwiseAdd nodes
(broadcast, constant operand, float) and VVAUs the own RTL cannot implement are left to FINN. On a Versal part
(``fpgapart`` given) VVAUs stay FINN's, whose VVAU_rtl uses DSP58 there.
"""

from __future__ import annotations

from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

import samfpga.hw.custom_ops  # noqa: F401  (registers AddStreams / *_rtl with FINN)
from samfpga.hw import HW_DOMAIN
from samfpga.hw.custom_ops.addstreams import sum_datatype
from samfpga.hw.custom_ops.depthwise_vvau import unsupported_reason

#: FINN ops whose own RTL variant only needs the preference set
PREFER_RTL = ("DuplicateStreams", "StreamingSplit")


def _residual_add(model, node) -> bool:
    if node.op_type != "ElementwiseAdd" or node.domain != HW_DOMAIN:
        return False
    op = getCustomOp(node)
    if op.get_nodeattr("lhs_style") != "input" or op.get_nodeattr("rhs_style") != "input":
        return False
    if any(model.get_initializer(t) is not None for t in node.input):
        return False
    lhs, rhs = list(op.get_nodeattr("lhs_shape")), list(op.get_nodeattr("rhs_shape"))
    dts = [DataType[op.get_nodeattr("lhs_dtype")], DataType[op.get_nodeattr("rhs_dtype")]]
    return lhs == rhs == list(op.get_nodeattr("out_shape")) and all(d.is_integer() for d in dts)


def _add_streams(model, node):
    op = getCustomOp(node)
    a, b = DataType[op.get_nodeattr("lhs_dtype")], DataType[op.get_nodeattr("rhs_dtype")]
    # the smallest type holding every sum (FINN's ElementwiseAdd says INT32): the following layers (thresholds)
    # then compare on the real width; the RTL never wraps
    odt = sum_datatype(a, b)
    shape = list(op.get_nodeattr("out_shape"))
    model.set_tensor_datatype(node.output[0], odt)
    return helper.make_node(
        "AddStreams", list(node.input), list(node.output), domain=HW_DOMAIN, backend="fpgadataflow",
        name=node.name, NumChannels=shape[-1], PE=op.get_nodeattr("PE"), inputDataTypes=[a.name, b.name],
        outputDataType=odt.name, numInputVectors=shape[:-1], preferred_impl_style="rtl",
    )


def _depthwise_vvau(node):
    """The same node as a DepthwiseVVAU (FINN's VVAU attributes are its attributes, those of an HLS variant are
    dropped; the weights become constants of the RTL wrapper: ``mem_mode=internal_embedded``)."""
    from samfpga.hw.custom_ops.depthwise_vvau import DepthwiseVVAU

    new = helper.make_node("DepthwiseVVAU", list(node.input), list(node.output), domain=HW_DOMAIN, name=node.name)
    known = set(DepthwiseVVAU(new).get_nodeattr_types()) - {"preferred_impl_style", "mem_mode"}
    new.attribute.extend(a for a in node.attribute if a.name in known)
    new.attribute.append(helper.make_attribute("preferred_impl_style", "rtl"))
    new.attribute.append(helper.make_attribute("mem_mode", "internal_embedded"))
    return new


class UseOwnRTL(Transformation):
    """Map the encoder's stream ops onto the project's own RTL (see the module doc)."""

    def __init__(self, fpgapart: str | None = None, after_folding: bool = False) -> None:
        super().__init__()
        self.versal = bool(fpgapart) and fpgapart.lower().startswith("xcv")
        self.after_folding = after_folding

    def apply(self, model):
        if self.after_folding:
            return self._after_folding(model)
        graph = model.graph
        for i, node in enumerate(list(graph.node)):
            if node.domain != HW_DOMAIN:
                continue
            if node.op_type in PREFER_RTL:
                op = getCustomOp(node)
                if op.get_nodeattr("preferred_impl_style") != "rtl":
                    op.set_nodeattr("preferred_impl_style", "rtl")
            elif _residual_add(model, node):
                new = _add_streams(model, node)
                graph.node.remove(node)
                graph.node.insert(i, new)
        return model, False

    def _after_folding(self, model):
        graph = model.graph
        if not self.versal:
            for i, node in enumerate(list(graph.node)):
                if (node.op_type in ("VVAU", "VVAU_hls") and node.domain.startswith(HW_DOMAIN)
                        and not unsupported_reason(getCustomOp(node))):
                    graph.node.remove(node)
                    graph.node.insert(i, _depthwise_vvau(node))
        return model.transform(OuterShuffleToInnerShuffles()), False


def block_swaps(perm: list[int]) -> list[tuple[int, int]]:
    """A permutation as a sequence of block swaps: each (pos, k) turns the current axis order
    ``a[:pos] + X + Y`` with ``X = a[pos:k]``, ``Y = a[k:]`` into ``a[:pos] + Y + X`` (an InnerShuffle of the view
    ``(a[:pos], prod X, prod Y)``, since a row-major stream can be regrouped freely). At most ``len(perm) - 1``."""
    cur = list(range(len(perm)))
    steps = []
    for pos, target in enumerate(perm):
        if cur[pos] == target:
            continue
        k = cur.index(target)
        steps.append((pos, k))
        cur = cur[:pos] + cur[k:] + cur[pos:k]
    if cur != list(perm):
        raise AssertionError(f"block swaps did not reach {perm}: {cur}")
    return steps


class OuterShuffleToInnerShuffles(Transformation):
    """Replace each OuterShuffle (FINN+ has it as HLS only) by a chain of FINN's InnerShuffle (RTL on every part).

    FINN+'s ``ShuffleDecomposition`` works at the tensor's rank (swap of the two innermost axes, pairwise swaps of
    outer axes), so an outer permutation always needs an OuterShuffle. Regrouping axes (free for a row-major
    stream) makes every permutation a chain of at most rank-1 InnerShuffles on 2-D views (``block_swaps``): e.g.
    the head split (1, N, h, d) -> (1, h, N, d) = (N, h*d) -> (h*d, N), then per head (d, N) -> (N, d). Each
    InnerShuffle buffers one view page (double-buffered: 2 x the tensor for a whole-tensor view), where FINN's HLS
    OuterShuffle keeps a smaller reorder window; the area model must count that. Run after
    ``InferInnerOuterShuffles`` and before ``SpecializeLayers``, or on a specialised graph (``OuterShuffle_hls``
    nodes, e.g. after FINN's ``step_transpose_decomposition``) followed by ``SpecializeLayers`` again. When the last view groups the output axes
    differently from the declared output shape, a HW Reshape (pass-through) follows. A node is left alone when its
    SIMD does not divide both sides of every view.
    """

    def apply(self, model):
        import numpy as np

        graph = model.graph
        for node in list(graph.node):
            if node.op_type not in ("OuterShuffle", "OuterShuffle_hls") or not node.domain.startswith(HW_DOMAIN):
                continue
            chain = self._chain(model, node, np)
            if chain is None:
                continue
            i = list(graph.node).index(node)
            graph.node.remove(node)
            for j, new in enumerate(chain):
                graph.node.insert(i + j, new)
        return model, False

    @staticmethod
    def _chain(model, node, np):
        op = getCustomOp(node)
        shape = list(op.get_nodeattr("transpose_in_shape"))
        perm = list(op.get_nodeattr("perm"))
        simd = op.get_nodeattr("SIMD")
        dt = op.get_nodeattr("data_type")
        if perm[-1] != len(perm) - 1:
            return None
        cur, views = list(range(len(perm))), []
        for pos, k in block_swaps(perm):
            batch = [shape[a] for a in cur[:pos]] or [1]
            i_dim = int(np.prod([shape[a] for a in cur[pos:k]]))
            j_dim = int(np.prod([shape[a] for a in cur[k:]]))
            if i_dim % simd or j_dim % simd:
                return None
            views.append([*batch, i_dim, j_dim])
            cur = cur[:pos] + cur[k:] + cur[pos:k]
        if not views:
            return None
        out_shape = list(model.get_tensor_shape(node.output[0]))
        # the last view's output groups axes differently from the declared output: a Reshape (FINN's Reshape_rtl,
        # a pass-through of the same row-major stream) restores the declared shape
        regroup = [*views[-1][:-2], views[-1][-1], views[-1][-2]] != out_shape
        if regroup and (out_shape[-1] % simd or views[-1][-2] % simd):
            return None
        chain, src = [], node.input[0]
        in_shape = list(model.get_tensor_shape(src))
        for j, view in enumerate(views):
            last = j == len(views) - 1 and not regroup
            dst = node.output[0] if last else f"{node.output[0]}_inner{j}"
            n = len(view)
            chain.append(helper.make_node(
                "InnerShuffle", [src], [dst], domain=HW_DOMAIN, backend="fpgadataflow",
                name=f"{node.name}_inner{j}", in_shape=in_shape, transpose_in_shape=view, data_type=dt,
                perm=[*range(n - 2), n - 1, n - 2], SIMD=simd, I=view[-2], J=view[-1],
                original_node_name=op.get_nodeattr("original_node_name") or node.name,
                original_simd=op.get_nodeattr("original_simd") or simd, preferred_impl_style="rtl",
            ))
            in_shape = [*view[:-2], view[-1], view[-2]]
            if not last:
                from onnx import TensorProto

                model.graph.value_info.append(helper.make_tensor_value_info(dst, TensorProto.FLOAT, in_shape))
                model.set_tensor_datatype(dst, DataType[dt])
            src = dst
        if regroup:
            chain.append(helper.make_node(
                "Reshape", [src], [node.output[0]], domain=HW_DOMAIN, backend="fpgadataflow",
                name=f"{node.name}_regroup", inp_shape=in_shape, out_shape=out_shape, dtype=dt, PE=simd,
                preferred_impl_style="rtl",
            ))
        return chain


class ShuffleToPagePermute(Transformation):
    """Replace each FINN ``Shuffle`` (a Transpose with its Reshapes, before FINN+'s ``ShuffleDecomposition``) by
    one ``PagePermute`` (own RTL: hw/samfpga/hw/rtl/page_permute.sv) where ``page_view`` accepts its permutation at
    its SIMD: one buffered page (in place for power-of-two page axes, else two) instead of FINN's 2-3
    double-buffered InnerShuffles. Left to FINN: a Shuffle whose innermost axis moves at SIMD > 1.
    ``ram_style`` is set on the new nodes: the style the fit search chose for that Shuffle
    (``samfpga.hw.build.memory.shuffle_styles``), else this one (default "auto": LUTRAM when small, else BRAM). Run
    after folding (the Shuffle's SIMD is kept), then ``SpecializeLayers``."""

    def __init__(self, ram_style: str = "auto") -> None:
        super().__init__()
        self.ram_style = ram_style

    def apply(self, model):
        from samfpga.hw.build.memory import shuffle_styles
        from samfpga.hw.custom_ops.page_permute import page_view

        chosen = shuffle_styles(model)
        graph = model.graph
        for node in list(graph.node):
            if node.op_type != "Shuffle" or not node.domain.startswith(HW_DOMAIN):
                continue
            op = getCustomOp(node)
            try:
                page_view(op.get_nodeattr("transpose_in_shape"), op.get_nodeattr("perm"), op.get_nodeattr("SIMD"))
            except ValueError:
                continue
            new = helper.make_node(
                "PagePermute", list(node.input), list(node.output), domain=HW_DOMAIN, backend="fpgadataflow",
                name=f"PagePermute_{node.name}", in_shape=list(op.get_nodeattr("in_shape")),
                transpose_in_shape=list(op.get_nodeattr("transpose_in_shape")), perm=list(op.get_nodeattr("perm")),
                out_shape=list(op.get_nodeattr("out_shape")), data_type=op.get_nodeattr("data_type"),
                SIMD=op.get_nodeattr("SIMD"), ram_style=chosen.get(node.output[0], self.ram_style),
                preferred_impl_style="rtl",
                original_node_name=op.get_nodeattr("original_node_name") or node.name,
            )
            idx = list(graph.node).index(node)
            graph.node.remove(node)
            graph.node.insert(idx, new)
        return model, False
