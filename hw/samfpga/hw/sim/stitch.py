"""Generate the SystemVerilog top that wires the RTL of a FINN HW graph into one bench DUT.

The top (module ``sim_top``) exposes ``clk``, ``rst_n`` (active low, like FINN's ``ap_rst_n``), one AXI-Stream
slave ``s_axis_<i>`` per graph input and one master ``m_axis_<i>`` per graph output (lower-case
``tdata/tvalid/tready``, as cocotbext-axi expects). Inside, each node's generated wrapper is instantiated and its
``in<k>_V`` / ``out<k>_V`` streams connect to the neighbour that produces/consumes the same ONNX tensor, exactly
as FINN's stitched IP connects them. A node's weight input that is an initializer is fed by FINN's memstream
(``<node>_memstream_wrapper``, initialised from the generated ``memblock.dat``), which is what FINN instantiates for
``mem_mode=internal_decoupled``. A streamed weight input (``mem_mode=dynamic``, the attention matmuls) passes
through FINN's dynamic loader (``<node>_dynamic_load_wrapper``: buffers one matrix, replays it for every vector),
as in FINN's IP hierarchy for that mode. A Requant in ``internal_decoupled`` mode takes its per-channel
parameters (scale, shift, bias words) on ``s_params_V`` from its own memstream
(``<node>_params_memstream_wrapper``, ``params_memblock.dat``), as FINN's IPI hierarchy for it wires them.
A token-batched node (``TokenBatchMVU_rtl``) has its register block ``s_axi_control`` and its weight read master
``m_axi_gmem`` exposed as top ports ``<node>_s_axi_control_*`` / ``<node>_m_axi_gmem_*`` (the bench puts an AXI
RAM with the DDR image and an AXI-Lite master there, ``token_batch_ports``). Remaining inputs (AXI-Lite, set
selectors) are tied to zero.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_PORT_RE = re.compile(r"^\s*(input|output)\b.*?(\w+)\s*,?\s*$")
_STREAM_RE = re.compile(r"^(in|out)(\d+)_V_(TDATA|TVALID|TREADY)$")
_PARAMS_RE = re.compile(r"^s_params_V_(TDATA|TVALID|TREADY)$")


@dataclass
class Stream:
    """One AXI-Stream in the top: wire/port name prefix and padded data width (bits)."""

    prefix: str
    width: int


def port_declarations(text: str, module: str) -> list[tuple[str, str, str]]:
    """(direction, name, range) of the ports of ``module`` declared in Verilog ``text`` (ANSI style, one per line);
    range is the declaration's ``[N:0]``, '' for a 1-bit port."""
    m = re.search(rf"\bmodule\s+{re.escape(module)}\b", text)
    if m is None:
        raise ValueError(f"module {module} not found in generated HDL")
    end = re.search(r"^\s*\);", text[m.end():], re.MULTILINE)
    header = text[m.end(): m.end() + (end.start() if end else len(text))]
    ports = []
    for line in header.splitlines():
        line = re.sub(r"\(\*.*?\*\)|//.*", "", line)
        d = _PORT_RE.match(line)
        if d:
            rng = re.search(r"\[[^\]]+\]", line)
            ports.append((d.group(1), d.group(2), rng.group(0) if rng else ""))
    return ports


def module_ports(text: str, module: str) -> list[tuple[str, str]]:
    """(direction, name) of the ports of ``module`` declared in Verilog ``text`` (ANSI style, one per line)."""
    return [(d, n) for d, n, _ in port_declarations(text, module)]


#: port prefixes of a TokenBatchMVU_rtl wrapper that become top-level ports (custom_ops.token_batch)
TOKEN_BATCH_PORTS = ("s_axi_control_", "m_axi_gmem_")


def token_batch_ports(model) -> list[str]:
    """Names of the token-batched nodes of ``model`` whose AXI ports ``generate_top`` exposes (graph order)."""
    return [n.name for n in model.graph.node if n.op_type == "TokenBatchMVU_rtl"]


def _top_module_file(op) -> tuple[str, Path]:
    name = op.get_verilog_top_module_name()
    for f in op.get_rtl_file_list(abspath=True):
        p = Path(f)
        if p.suffix in (".v", ".sv") and re.search(rf"\bmodule\s+{re.escape(name)}\b", p.read_text()):
            return name, p
    raise ValueError(f"no generated HDL file declares module {name} of node {op.onnx_node.name}")


def _decoupled(op) -> bool:
    """Whether the node's weights come from a separate memstream (FINN's ``internal_decoupled``)."""
    return "mem_mode" in op.get_nodeattr_types() and op.get_nodeattr("mem_mode") == "internal_decoupled"


def _dynamic(op) -> bool:
    """Whether the node's second input is a streamed matrix fed through FINN's dynamic loader (``dynamic``)."""
    return "mem_mode" in op.get_nodeattr_types() and op.get_nodeattr("mem_mode") == "dynamic"


def _conn(port: str, signal: str) -> str:
    return f"    .{port}({signal})"


# widths of the AXI-Lite signals exposed on the top (addresses wider than a node needs are truncated there)
_AXILITE_WIDTHS = {"awaddr": 32, "araddr": 32, "wdata": 32, "rdata": 32, "wstrb": 4, "bresp": 2, "rresp": 2,
                   "awprot": 3, "arprot": 3}


def generate_top(model, out_path: Path, axilite_nodes: Sequence[str] = ()) -> tuple[list[Stream], list[Stream]]:
    """Write ``sim_top`` for ``model`` (a FINN HW graph after PrepareIP) to ``out_path``.

    axilite_nodes: names of the nodes whose ``s_axilite`` interface is exposed as the top's
        ``<node>_s_axilite_*`` ports (runtime-writeable weights/thresholds, programmed by the bench as the board's
        driver does); other AXI-Lite interfaces are tied off.
    Returns the external input and output streams (in graph input/output order).
    """
    top = _TopBuilder(model, axilite_nodes)
    top.output_wires()
    for node in model.graph.node:
        top.instance(node)
    if None in top.ext_in or None in top.ext_out:
        raise ValueError("a graph input/output is not connected to any node stream")
    missing = sorted(set(axilite_nodes) - top.axilite_exposed)
    if missing:
        raise ValueError(f"nodes without an s_axilite interface to expose: {missing}")
    out_path.write_text(top.render())
    return top.ext_in, top.ext_out


class _TopBuilder:
    """Collects the top's declarations, instances and external ports while walking the graph's nodes."""

    def __init__(self, model, axilite_nodes: Sequence[str]) -> None:
        self.model = model
        self.axilite_nodes = set(axilite_nodes)
        self.axilite_exposed: set[str] = set()
        self.ginputs = [t.name for t in model.graph.input]
        self.goutputs = [t.name for t in model.graph.output]
        self.producers = {}
        for node in model.graph.node:
            for k, t in enumerate(node.output):
                self.producers[t] = (node, k)
        self.ext_in: list[Stream | None] = [None] * len(self.ginputs)
        self.ext_out: list[Stream | None] = [None] * len(self.goutputs)
        self.decls: list[str] = []
        self.insts: list[str] = []
        self.axilite_ports: list[str] = []
        self.mm_ports: list[str] = []  # token-batched nodes' AXI-Lite and AXI4 master ports

    def wire(self, prefix: str, width: int) -> None:
        self.decls.append(f"  logic [{width - 1}:0] {prefix}_tdata;\n  logic {prefix}_tvalid, {prefix}_tready;")

    def source(self, t: str, op, k: int, field: str) -> str | None:
        """Signal carrying ``field`` of tensor ``t`` (a node output or a graph input, which becomes a port)."""
        if t in self.producers:
            pn, pk = self.producers[t]
            return f"{pn.name}_out{pk}_{field}"
        if t in self.ginputs:
            i = self.ginputs.index(t)
            width = op.get_instream_width_padded(k) if k else op.get_instream_width_padded()
            self.ext_in[i] = Stream(f"s_axis_{i}", width)
            return f"s_axis_{i}_{field}"
        return None

    def output_wires(self) -> None:
        """Every node output is a wire named after the producing node; graph outputs are assigned to ports."""
        from qonnx.custom_op.registry import getCustomOp

        for node in self.model.graph.node:
            op = getCustomOp(node)
            for k, t in enumerate(node.output):
                width = op.get_outstream_width_padded(k) if k else op.get_outstream_width_padded()
                self.wire(f"{node.name}_out{k}", width)
                if t in self.goutputs:
                    i = self.goutputs.index(t)
                    self.ext_out[i] = Stream(f"m_axis_{i}", width)
                    self.insts.append(
                        f"  assign m_axis_{i}_tdata = {node.name}_out{k}_tdata;\n"
                        f"  assign m_axis_{i}_tvalid = {node.name}_out{k}_tvalid;\n"
                        f"  assign {node.name}_out{k}_tready = m_axis_{i}_tready;"
                    )

    def instance(self, node) -> None:
        """The node's wrapper instance, plus its memstream or dynamic loader when its weights need one."""
        from qonnx.custom_op.registry import getCustomOp

        op = getCustomOp(node)
        module, path = _top_module_file(op)
        conns = [_conn("ap_clk", "clk"), _conn("ap_rst_n", "rst_n")]
        decls = port_declarations(path.read_text(), module)
        ports = [(d, n) for d, n, _ in decls]
        ranges = {n: r for _, n, r in decls}
        if "ap_clk2x" in {n for _, n in ports}:
            conns.append(_conn("ap_clk2x", "clk"))  # no pumped compute/memory in these benches
        for direction, pname in ports:
            if pname in ("ap_clk", "ap_clk2x", "ap_rst_n"):
                continue
            if node.op_type == "TokenBatchMVU_rtl" and pname.startswith(TOKEN_BATCH_PORTS):
                self.mm_ports.append(f"  {direction} logic {ranges[pname]} {node.name}_{pname}")
                conns.append(_conn(pname, f"{node.name}_{pname}"))
                continue
            conns.append(_conn(pname, self._port_signal(node, op, direction, pname)))
        if any(c.endswith("_wstrm_tdata)") for c in conns):
            self.wire(f"{node.name}_wstrm", op.get_instream_width_padded(1))
            # a runtime-writeable weight memory (URAM on Zynq) is programmed through its memstream's AXI-Lite
            axilite = self.axilite_ports if node.name in self.axilite_nodes else None
            self.insts.append(_memstream_instance(node.name, path.parent, axilite=axilite))
            if axilite is not None:
                self.axilite_exposed.add(node.name)
        if any(c.endswith("_pstrm_tdata)") for c in conns):
            wrapper = path.parent / f"{node.name}_params_memstream_wrapper.v"
            if not wrapper.is_file():
                raise FileNotFoundError(f"params memstream wrapper of {node.name} not generated: {wrapper}")
            w = re.search(r"parameter\s+WIDTH\s*=\s*(\d+)", wrapper.read_text())
            if w is None:
                raise ValueError(f"{wrapper}: no WIDTH parameter")
            self.wire(f"{node.name}_pstrm", (int(w.group(1)) + 7) // 8 * 8)
            self.insts.append(_memstream_instance(node.name, path.parent, "params_memstream_wrapper", "pstrm"))
        if _dynamic(op):
            wbits = op.get_input_datatype(1).bitwidth()
            # the loader's output (= the MVU's weight port): PE x SIMD weights per word, padded to bytes
            self.wire(f"{node.name}_wdyn", (op.get_nodeattr("PE") * op.get_nodeattr("SIMD") * wbits + 7) // 8 * 8)
            feed = {f: self.source(node.input[1], op, 1, f) for f in ("tdata", "tvalid", "tready")}
            if None in feed.values():
                raise ValueError(f"streamed weight input of {node.name} has no producer")
            self.insts.append(_dynload_instance(node.name, path.parent, feed))
        self.insts.append(f"  {module} {node.name}_i (\n" + ",\n".join(conns) + "\n  );")

    def _port_signal(self, node, op, direction: str, pname: str) -> str:
        """What drives (or reads) port ``pname`` of ``node``'s wrapper: a stream wire, a top port, or a tie-off."""
        m = _STREAM_RE.match(pname)
        sig = None
        pm = _PARAMS_RE.match(pname)
        if pm:
            sig = f"{node.name}_pstrm_{pm.group(1).lower()}"  # from the params memstream (instance())
        if m:
            kind, k, field = m.group(1), int(m.group(2)), m.group(3).lower()
            if kind == "out":
                sig = f"{node.name}_out{k}_{field}"
            elif k == 1 and _dynamic(op):
                sig = f"{node.name}_wdyn_{field}"  # from the dynamic loader, instantiated by instance()
            elif k < len(node.input):
                t = node.input[k]
                if self.model.get_initializer(t) is not None and _decoupled(op):
                    sig = f"{node.name}_wstrm_{field}"
                else:
                    sig = self.source(t, op, k, field)
        if sig is None and node.name in self.axilite_nodes and pname.startswith("s_axilite_"):
            sig = _axilite_port(node.name, pname, direction, self.axilite_ports)
            self.axilite_exposed.add(node.name)
        if sig is None:
            sig = "'0" if direction == "input" else ""
        return sig

    def render(self) -> str:
        ports = ["  input logic clk", "  input logic rst_n", *self.axilite_ports, *self.mm_ports]
        for s in self.ext_in:
            ports += [f"  input logic [{s.width - 1}:0] {s.prefix}_tdata", f"  input logic {s.prefix}_tvalid",
                      f"  output logic {s.prefix}_tready"]
        for s in self.ext_out:
            ports += [f"  output logic [{s.width - 1}:0] {s.prefix}_tdata", f"  output logic {s.prefix}_tvalid",
                      f"  input logic {s.prefix}_tready"]
        return (
            "// generated by samfpga.hw.sim.stitch: FINN node wrappers wired by their ONNX tensors\n"
            "`timescale 1ns/1ps\nmodule sim_top (\n" + ",\n".join(ports) + "\n);\n"
            + "\n".join(self.decls) + "\n" + "\n".join(self.insts) + "\nendmodule\n"
        )


def _axilite_port(node_name: str, pname: str, direction: str, ports: list[str]) -> str:
    """The top's port ``<node>_s_axilite_<field>`` for a node's (or its memstream's) port ``pname``: its
    declaration appended to ``ports``, its name returned."""
    sig = f"{node_name}_{pname.lower()}"
    width = _AXILITE_WIDTHS.get(pname.lower()[len("s_axilite_"):], 1)
    ports.append(f"  {direction} logic [{width - 1}:0] {sig}")
    return sig


def _memstream_instance(node_name: str, code_dir: Path, kind: str = "memstream_wrapper", wire: str = "wstrm",
                        axilite: list[str] | None = None) -> str:
    """FINN's memstream ``<node>_<kind>`` of ``node_name`` driving the wire ``<node>_<wire>``; with ``axilite`` (the
    top's AXI-Lite port declarations, appended to) its ``s_axilite`` interface becomes the top's
    ``<node>_s_axilite_*``."""
    module = f"{node_name}_{kind}"
    wrapper = code_dir / f"{module}.v"
    if not wrapper.is_file():
        raise FileNotFoundError(f"memstream wrapper of {node_name} not generated: {wrapper}")
    conns = [_conn("ap_clk", "clk"), _conn("ap_clk2x", "clk"), _conn("ap_rst_n", "rst_n")]
    for direction, pname in module_ports(wrapper.read_text(), module):
        if pname in ("ap_clk", "ap_clk2x", "ap_rst_n"):
            continue
        if pname.startswith("m_axis_0_"):
            conns.append(_conn(pname, f"{node_name}_{wire}_{pname[len('m_axis_0_'):]}"))
        elif axilite is not None and pname.startswith("s_axilite_"):
            conns.append(_conn(pname, _axilite_port(node_name, pname, direction, axilite)))
        else:
            conns.append(_conn(pname, "'0" if direction == "input" else ""))
    return f"  {module} {node_name}_{wire}_i (\n" + ",\n".join(conns) + "\n  );"


def _dynload_instance(node_name: str, code_dir: Path, feed: dict[str, str]) -> str:
    """FINN's dynamic loader of ``node_name``: ``feed`` signals (tdata/tvalid/tready) in, ``<node>_wdyn`` out."""
    module = f"{node_name}_dynamic_load_wrapper"
    wrapper = code_dir / f"{module}.v"
    if not wrapper.is_file():
        raise FileNotFoundError(f"dynamic load wrapper of {node_name} not generated: {wrapper}")
    conns = [_conn("ap_clk", "clk"), _conn("ap_rst_n", "rst_n")]
    for direction, pname in module_ports(wrapper.read_text(), module):
        if pname in ("ap_clk", "ap_rst_n"):
            continue
        if pname.startswith("s_axis_0_"):
            conns.append(_conn(pname, feed[pname[len("s_axis_0_"):].lower()]))
        elif pname.startswith("m_axis_0_"):
            conns.append(_conn(pname, f"{node_name}_wdyn_{pname[len('m_axis_0_'):].lower()}"))
        else:
            conns.append(_conn(pname, "'0" if direction == "input" else ""))
    return f"  {module} {node_name}_wdynld_i (\n" + ",\n".join(conns) + "\n  );"
