"""TokenBatchMVU: a FINN MVAU (no activation) and the Requant after it as one node of the project's token-batched
unit (``hw/samfpga/hw/rtl/token_batch_mvu.sv`` with RQ = 1), whose weights and requantisation parameters stay in
DDR and cross the AXI read port once per batch of ``batch`` tokens.

Inputs: 0 the activation stream (``numInputVectors + [MW]``), 1 the MVAU's weights (MW, MH) initializer, 2 and 3
the Requant's scale and bias initializers (per channel or scalar). Output: the Requant's (``numInputVectors +
[MH]``). Python execution is the unit's own arithmetic (``samfpga.hw.sim.token_batch_mvu.reference``: the exact sum,
then ``clip((acc * S + B) >> T)`` with FINN+'s fixed-point decomposition of scale and bias,
``samfpga.kernels.requant.fixed_point_params``), which equals MVAU + Requant wherever that decomposition is exact
(power-of-two scales, the only ones ``samfpga.hw.build.requant.InferExactRequant`` creates); tests compare the two
graphs at tolerance 0.

``UseTokenBatchMVU`` makes these nodes; ``ddr_image`` packs their weights and parameters into one DDR image (each
node at its ``ddr_offset``, see ``assign_ddr_offsets``), the file the board loads next to the bitstream.
"""

from __future__ import annotations

import json

import numpy as np
from finn.custom_op.fpgadataflow import register_custom_op as register_hw_op
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from finn.custom_op.fpgadataflow.rtl import register_custom_op as register_rtl_op
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation

from samfpga.backends.rolled_host import align_up
from samfpga.hw.custom_ops import looped
from samfpga.hw.custom_ops.rtl_base import WRAPPER, OwnRTLBackend, initializer, stream_ports, write_wrapper
from samfpga.hw.sim import token_batch_mvu as tb

#: the datapaths the node may ask for (token_batch_mvu.sv's DOT parameter; "pack" needs an even PE)
DOTS = ("tree", "chain", "pack")


@register_hw_op
class TokenBatchMVU(looped.LoopedAttrs, HWCustomOp):
    """MVAU (no activation) + Requant on the token-batched unit; see the module doc. In a rolled body
    (``samfpga.hw.custom_ops.looped``) its weights, scale, bias and DDR offset may differ per iteration: the unit
    reads iteration i at BASE + i x STRIDE (its ITERS / STRIDE registers, ``looped_image``)."""

    LOOP_ATTRS = ("ddr_offset",)
    LOOP_INPUTS = {"weights": 1, "scale": 2, "bias": 3}

    def get_nodeattr_types(self) -> dict:
        attrs = {
            "MW": ("i", True, 0),
            "MH": ("i", True, 0),
            "SIMD": ("i", True, 0),
            "PE": ("i", True, 0),
            "batch": ("i", True, 0),
            "numInputVectors": ("ints", False, [1]),
            "inputDataType": ("s", True, ""),
            "weightDataType": ("s", True, ""),
            "accDataType": ("s", True, ""),
            "outputDataType": ("s", True, ""),
            "dot": ("s", False, "chain", set(DOTS)),
            "axi_dw": ("i", False, 128),
            "axi_aw": ("i", False, 40),
            "max_burst": ("i", False, 16),
            # byte offset of the node's weights in the DDR image (assign_ddr_offsets)
            "ddr_offset": ("i", False, 0),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    # --- the unit's configuration -----------------------------------------------------------------------------
    def tokens(self) -> int:
        return int(np.prod(self.get_nodeattr("numInputVectors")))

    def unit_config(self) -> tb.TokenBatchConfig:
        """The unit's parameters (``TokenBatchConfig``: its RTL parameters and DDR layout)."""
        adt, wdt = self.get_input_datatype(0), self.get_input_datatype(1)
        odt, acc = self.get_output_datatype(), DataType[self.get_nodeattr("accDataType")]
        return tb.TokenBatchConfig(
            self.get_nodeattr("MW"), self.get_nodeattr("MH"), self.get_nodeattr("SIMD"), self.get_nodeattr("PE"),
            self.get_nodeattr("batch"), a_bits=adt.bitwidth(), w_bits=wdt.bitwidth(), acc_bits=acc.bitwidth(),
            a_signed=adt.signed(), w_signed=wdt.signed(), axi_dw=self.get_nodeattr("axi_dw"),
            axi_aw=self.get_nodeattr("axi_aw"), max_burst=self.get_nodeattr("max_burst"), requant=True,
            out_bits=odt.bitwidth(), out_signed=odt.signed(), dot=self.get_nodeattr("dot"))

    def weights(self, graph) -> np.ndarray:
        """(MH, MW) integers: the transposed MVAU initializer."""
        w = initializer(graph, self.onnx_node.input[1])
        mw, mh = self.get_nodeattr("MW"), self.get_nodeattr("MH")
        if w is None or w.shape != (mw, mh):
            raise ValueError(f"{self.onnx_node.name}: weight initializer {self.onnx_node.input[1]!r} "
                             f"{'missing' if w is None else f'of shape {w.shape}'}, expected (MW, MH) = ({mw}, {mh})")
        return w.T.astype(np.int64)

    def requant(self, graph) -> tb.RequantParams:
        """The unit's parameters (one iteration) from the Requant's float scale and bias; raises (naming the node)
        where the unit cannot compute what FINN+'s requant.sv computes."""
        from samfpga.kernels.requant import fixed_point_params

        mh = self.get_nodeattr("MH")
        sb = []
        for k, what in ((2, "scale"), (3, "bias")):
            v = initializer(graph, self.onnx_node.input[k])
            if v is None:
                raise ValueError(f"{self.onnx_node.name}: {what} initializer {self.onnx_node.input[k]!r} missing")
            v = np.asarray(v, np.float32).ravel()
            sb.append(np.broadcast_to(v, (mh,)) if v.size == 1 else v)
        cfg = self.unit_config()
        try:
            return tb.from_finn_requant([fixed_point_params(sb[0], sb[1], cfg.acc_bits, cfg.out_bits)], cfg)
        except ValueError as e:
            raise ValueError(f"{self.onnx_node.name}: {e}") from e

    def ddr_bytes(self, graph) -> bytes:
        """The node's weights and parameters as the unit reads them (``pack_weights``, one iteration)."""
        return tb.pack_weights(self.weights(graph)[None], self.unit_config(), rq=self.requant(graph))

    # --- shapes and streams -------------------------------------------------------------------------------------
    def get_input_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("inputDataType" if ind == 0 else "weightDataType")]

    def get_output_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("outputDataType")]

    def get_normal_input_shape(self, ind: int = 0) -> tuple[int, ...]:
        return (*self.get_nodeattr("numInputVectors"), self.get_nodeattr("MW"))

    def get_folded_input_shape(self, ind: int = 0) -> tuple[int, ...]:
        simd = self.get_nodeattr("SIMD")
        return (*self.get_nodeattr("numInputVectors"), self.get_nodeattr("MW") // simd, simd)

    def get_normal_output_shape(self, ind: int = 0) -> tuple[int, ...]:
        return (*self.get_nodeattr("numInputVectors"), self.get_nodeattr("MH"))

    def get_folded_output_shape(self, ind: int = 0) -> tuple[int, ...]:
        pe = self.get_nodeattr("PE")
        return (*self.get_nodeattr("numInputVectors"), self.get_nodeattr("MH") // pe, pe)

    def get_instream_width(self, ind: int = 0) -> int:
        return self.get_nodeattr("SIMD") * self.get_input_datatype().bitwidth()

    def get_outstream_width(self, ind: int = 0) -> int:
        return self.get_nodeattr("PE") * self.get_output_datatype().bitwidth()

    def get_number_output_values(self) -> int:
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def get_exp_cycles(self) -> int:
        """The unit's schedule for one frame of ``numInputVectors`` tokens (``schedule_cycles``: MAC cycles,
        parameter words, passes bound by the AXI port, fill and drain; checked cycle for cycle in RTL simulation)."""
        return tb.schedule_cycles(self.unit_config(), 1, self.tokens())["total"]

    def make_shape_compatible_op(self, model):
        return super().make_const_shape_op(self.get_normal_output_shape())

    def infer_node_datatype(self, model) -> None:
        model.set_tensor_datatype(self.onnx_node.output[0], self.get_output_datatype())

    def verify_node(self) -> list[str]:
        try:
            self.unit_config()
        except ValueError as e:
            return [f"TokenBatchMVU: {e}"]
        return []

    def execute_node(self, context, graph) -> None:
        node = self.onnx_node
        cfg = self.unit_config()
        x = np.asarray(context[node.input[0]]).reshape(1, self.tokens(), cfg.mw)
        if not np.array_equal(x, np.round(x)):
            raise ValueError(f"{node.name}: non-integer input")
        y = tb.reference(x.astype(np.int64), self.weights(graph)[None], cfg, self.requant(graph))
        context[node.output[0]] = y[0].astype(np.float32).reshape(self.get_normal_output_shape())


@register_rtl_op
class TokenBatchMVU_rtl(TokenBatchMVU, OwnRTLBackend):
    """RTL variant: hw/samfpga/hw/rtl/token_batch_mvu_axil.sv (the unit behind its AXI-Lite registers) with an AXI4
    read master ``m_axi_gmem`` for the weights and ``s_axi_control`` for the configuration (docs/unit_regs.md).
    The names are those FINN's ``CreateStitchedIP`` handles for a generic AXI-MM master (it renames the external
    ``m_axi_gmem_0`` port to ``m_axi_gmem<k>``) and an AXI-Lite slave (external ``s_axi_control_<k>``)."""

    RTL_SOURCES = ("axil_regs.sv", "mac_slice.sv", "dot_chain.sv", "dot_pack.sv", "token_batch_mvu.sv",
                   "token_batch_mvu_axil.sv")

    def num_stream_inputs(self) -> int:
        return 1

    def get_verilog_top_module_intf_names(self) -> dict:
        intf = super().get_verilog_top_module_intf_names()
        intf["axilite"] = ["s_axi_control"]
        intf["aximm"] = [("m_axi_gmem", self.get_nodeattr("axi_dw"))]
        return intf

    def generate_hdl(self, model, fpgapart: str, clk: float) -> None:
        from samfpga.backends.unit_regs import TOKEN_BATCH_MVU

        cfg = self.unit_config()
        widths = {"ADDR": TOKEN_BATCH_MVU.addr_bits, "AW": cfg.axi_aw, "DW": cfg.axi_dw}
        ports = stream_ports("in", 0, self.get_instream_width_padded()) + \
            stream_ports("out", 0, self.get_outstream_width_padded())
        conns = ["\t\t.clk(ap_clk), .rst(!ap_rst_n)",
                 "\t\t.s_axis_tdata(in0_V_TDATA), .s_axis_tvalid(in0_V_TVALID), .s_axis_tready(in0_V_TREADY)",
                 "\t\t.m_axis_tdata(out0_V_TDATA), .m_axis_tvalid(out0_V_TVALID), .m_axis_tready(out0_V_TREADY)"]
        for core, wrapper, signals in (("s_axil", "s_axi_control", _AXIL_SIGNALS), ("m_axi", "m_axi_gmem", _AXI_RD_SIGNALS)):
            for d, name, width in signals:
                ports.append(f"\t{d:<6} [{widths.get(width, width) - 1}:0] {wrapper}_{name},")
                conns.append(f"\t\t.{core}_{name}({wrapper}_{name})")
        ports[-1] = ports[-1].rstrip(",")
        params = ", ".join(f".{k}({v})" for k, v in cfg.rtl_params().items())
        body = f"\ttoken_batch_mvu_axil #({params}) core (\n" + ",\n".join(conns) + "\n\t);\n"
        write_wrapper(self, WRAPPER.substitute(node=self.onnx_node.name, top=self.get_verilog_top_module_name(),
                                               ports="\n".join(ports), body=body))


#: the wrapper's AXI-Lite slave and AXI4 read-master signals: (direction, name, width or a key of the widths)
_AXIL_SIGNALS = (("input", "awaddr", "ADDR"), ("input", "awprot", 3), ("input", "awvalid", 1),
                 ("output", "awready", 1), ("input", "wdata", 32), ("input", "wstrb", 4), ("input", "wvalid", 1),
                 ("output", "wready", 1), ("output", "bresp", 2), ("output", "bvalid", 1), ("input", "bready", 1),
                 ("input", "araddr", "ADDR"), ("input", "arprot", 3), ("input", "arvalid", 1),
                 ("output", "arready", 1), ("output", "rdata", 32), ("output", "rresp", 2), ("output", "rvalid", 1),
                 ("input", "rready", 1))
_AXI_RD_SIGNALS = (("output", "arid", 1), ("output", "araddr", "AW"), ("output", "arlen", 8),
                   ("output", "arsize", 3), ("output", "arburst", 2), ("output", "arcache", 4),
                   ("output", "arprot", 3), ("output", "arvalid", 1), ("input", "arready", 1), ("input", "rid", 1),
                   ("input", "rdata", "DW"), ("input", "rresp", 2), ("input", "rlast", 1), ("input", "rvalid", 1),
                   ("output", "rready", 1))


# ---------------------------------------------------------------------------------------------------------------
# Graph transformations

KEPT_KEY = "samfpga_token_batch_kept"


def _mvau_reason(model, node) -> str:
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    if op.get_nodeattr("noActivation") != 1:
        return "fused thresholds (noActivation=0)"
    if model.get_initializer(node.input[1]) is None:
        return "weights are not an initializer"
    for i in (0, 1):
        dt = op.get_input_datatype(i)
        if not dt.is_integer() or dt.name == "BIPOLAR":
            return f"input {i} datatype {dt.name} is not a plain integer type"
    return ""


class UseTokenBatchMVU(Transformation):
    """Fuse each MVAU(_rtl) (no activation, integer weights) whose only consumer is a Requant(_rtl) into one
    ``TokenBatchMVU_rtl`` node (``names``: only the MVAUs of these names; default all). A pair the unit cannot
    compute exactly (a requantiser that drops accumulator LSBs, parameters wider than the unit's, narrow range)
    stays as it is, the reason recorded in the model's metadata key ``samfpga_token_batch_kept`` (node: reason)."""

    def __init__(self, batch: int, dot: str = "chain", axi_dw: int = 128, names: tuple[str, ...] | None = None
                 ) -> None:
        super().__init__()
        if dot not in DOTS:
            raise ValueError(f"dot {dot!r}: one of {DOTS}")
        self.batch, self.dot, self.axi_dw, self.names = batch, dot, axi_dw, names

    def apply(self, model):
        kept = kept_pairs(model)
        for node in list(model.graph.node):
            if node.op_type not in MVAU_TYPES or (self.names is not None and node.name not in self.names):
                continue
            pair = fused_pair(model, node, self.batch, self.dot, self.axi_dw)
            if pair is None:
                continue
            new, rq_node, reason = pair
            if reason:
                kept[node.name] = reason
                continue
            idx = list(model.graph.node).index(node)
            model.graph.node.insert(idx, new)
            model.graph.node.remove(node)
            model.graph.node.remove(rq_node)
        model.set_metadata_prop(KEPT_KEY, json.dumps(kept, sort_keys=True))
        return model, False


#: the MVAU op types a token-batched node replaces
MVAU_TYPES = ("MVAU", "MVAU_rtl", "MVAU_hls")


def fused_pair(model, node, batch: int, dot: str = "chain", axi_dw: int = 128):
    """The ``TokenBatchMVU_rtl`` node that would replace MVAU ``node`` and the Requant after it, at their present
    folding: (new node, the Requant node, '' or why the unit cannot compute the pair); None when ``node`` is not
    followed by a Requant alone. ``model`` is not changed (the fit search prices the node before it exists)."""
    from qonnx.custom_op.registry import getCustomOp

    consumers = model.find_consumers(node.output[0]) or []
    if len(consumers) != 1 or consumers[0].op_type not in ("Requant", "Requant_rtl"):
        return None
    rq_node = consumers[0]
    reason = _mvau_reason(model, node)
    mv, rq = getCustomOp(node), getCustomOp(rq_node)
    if not reason and rq.get_nodeattr("narrow"):
        reason = "narrow-range requantiser"
    if not reason and dot == "pack" and mv.get_nodeattr("PE") % 2:
        reason = f"dot 'pack' needs an even PE (PE = {mv.get_nodeattr('PE')})"
    new = helper.make_node(
        "TokenBatchMVU_rtl", [node.input[0], node.input[1], rq_node.input[1], rq_node.input[2]],
        [rq_node.output[0]], domain="finn.custom_op.fpgadataflow.rtl", backend="fpgadataflow",
        name=f"TokenBatchMVU_rtl_{node.name}", MW=mv.get_nodeattr("MW"), MH=mv.get_nodeattr("MH"),
        SIMD=mv.get_nodeattr("SIMD"), PE=mv.get_nodeattr("PE"), batch=batch,
        numInputVectors=list(mv.get_nodeattr("numInputVectors")),
        inputDataType=mv.get_nodeattr("inputDataType"), weightDataType=mv.get_nodeattr("weightDataType"),
        accDataType=mv.get_nodeattr("outputDataType"), outputDataType=rq.get_nodeattr("outputDataType"),
        dot=dot, axi_dw=axi_dw)
    if not reason:
        try:
            op = getCustomOp(new)
            op.requant(model.graph)
            op.unit_config()
        except ValueError as e:
            reason = str(e)
    return new, rq_node, reason


def kept_pairs(model) -> dict[str, str]:
    """{MVAU name: why it was not fused} that ``UseTokenBatchMVU`` recorded in ``model``'s metadata."""
    return json.loads(model.get_metadata_prop(KEPT_KEY) or "{}")


def unit_summary(op) -> dict:
    """What the build report and the driver description say of one token-batched node ``op``: its offset and bytes
    in the DDR image, the register values of an unrolled layer (STRIDE, ITERS = 1, TOKENS), its batch, datapath
    and DDR bytes read per frame."""
    cfg = op.unit_config()
    return {"ddr_offset": int(op.get_nodeattr("ddr_offset")), "bytes": cfg.pass_bytes, "stride": cfg.min_stride,
            "iters": 1, "tokens": op.tokens(), "batch": cfg.batch, "dot": cfg.dot,
            "ddr_bytes_per_frame": tb.ddr_bytes_per_frame(cfg, 1, op.tokens())}


def looped_image(op, model) -> tuple[bytes, int]:
    """(DDR bytes from iteration 0's offset, STRIDE) of a token-batched node serving N iterations of a rolled body:
    iteration i's weights and parameters (``ddr_bytes`` of its initializers) at i x STRIDE, STRIDE the spacing of
    its per-iteration ``ddr_offset`` values (refused unless even and on whole bursts)."""
    n = looped.iterations(op)
    offs = [int(v) for v in looped.loop_values(op).get("ddr_offset", [op.get_nodeattr("ddr_offset")] * n)]
    stride = offs[1] - offs[0] if n > 1 else op.unit_config().min_stride
    cfg = op.unit_config()
    if any(b - a != stride for a, b in zip(offs, offs[1:])) or stride < cfg.pass_bytes or stride % cfg.burst_bytes:
        raise ValueError(f"{op.onnx_node.name}: per-iteration DDR offsets {offs} are not one stride apart on whole "
                         f"bursts of {cfg.burst_bytes} bytes, at least {cfg.pass_bytes} bytes")
    image = bytearray(stride * (n - 1) + cfg.pass_bytes)
    for i in range(n):
        with looped.iteration_of(op, model, i):
            data = op.ddr_bytes(model.graph)
        image[i * stride:i * stride + len(data)] = data
    return bytes(image), stride


def assign_ddr_offsets(model, align: int = 4096):
    """Give every TokenBatchMVU node a byte offset in one DDR image (graph order, each at a multiple of ``align``,
    a multiple of every node's burst size); returns (model, image size in bytes)."""
    from qonnx.custom_op.registry import getCustomOp

    off = 0
    for node in model.graph.node:
        if node.op_type.startswith("TokenBatchMVU"):
            op = getCustomOp(node)
            cfg = op.unit_config()
            if align % cfg.burst_bytes:
                raise ValueError(f"align {align}: not a multiple of {node.name}'s burst size {cfg.burst_bytes}")
            op.set_nodeattr("ddr_offset", off)
            off += align_up(cfg.pass_bytes, align)
    return model, off


def ddr_image(model) -> bytes:
    """The DDR image of every TokenBatchMVU node's weights and parameters at its ``ddr_offset``."""
    from qonnx.custom_op.registry import getCustomOp

    img = bytearray()
    for node in model.graph.node:
        if node.op_type.startswith("TokenBatchMVU"):
            op = getCustomOp(node)
            data = op.ddr_bytes(model.graph)
            off = op.get_nodeattr("ddr_offset")
            img += bytes(max(0, off + len(data) - len(img)))
            if any(img[off:off + len(data)]):
                raise ValueError(f"{node.name}: ddr_offset {off} overlaps another node's weights")
            img[off:off + len(data)] = data
    return bytes(img)
