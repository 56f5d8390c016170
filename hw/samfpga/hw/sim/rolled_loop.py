"""A rolled stage's loop in RTL: the stitched HDL of a rolled FINN body (every layer holding each block's parameters,
``samfpga.hw.rolled.hdl.looped_body``) between the strip reader and the strip writer, its N blocks run through two
loop buffers in DDR, sequenced by the host through the DMA engines' registers (docs/rolled_stage.md). A part of the
rolled graph that runs once sits in the same top and runs one block from its input buffer to its output buffer
(``samfpga.hw.sim.rolled_parts`` chains the parts). The generated top, its Verilator build and the runner of its
cocotb bench (``rolled_loop_bench``).

```
  DDR buffer i%2 --strip_reader_axil--> body (sim_top: FINN node wrappers, FIFOs) --strip_writer_axil--> buffer (i+1)%2
```

The loop tensor is the body's input and output (the roll makes them one datatype and shape): (1, ..., W, C) in
FINN's NHWC order, kept in DDR as raster HWC, each element in one byte (datatypes of up to 8 bits) or two
little-endian bytes (9 to 16 bits, sign- or zero-extended: the roll widens an MBConv stage's UINT8 input and INT8
output to INT9). FINN packs a stream beat's elements at their own width, element 0 in the low bits, so an 8-bit
stream is a byte stream; for any other width the top rewires each beat between the strip units' lanes (8 or 16 bits
per element) and the body's packing, a wiring and a sign extension, no logic that stores or waits. The body mixes
tokens (window attention), so the map is read and written as one strip (tiles = 1): raster order is then exactly
FINN's stream order.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samfpga.backends.rolled_host import BUFFER_ALIGN, align_up
from samfpga.hw import HW_DOMAIN
from samfpga.hw.sim.own_rtl import run_bench
from samfpga.hw.sim.rolled_stage import Pass  # a pass's stalls, as the rolled stage's bench takes them
from samfpga.hw.sim.toolchain import setup_verilator_env
from samfpga.resources import package_path

BENCH_MODULE = "samfpga.hw.sim.rolled_loop_bench"
TOP = "rolled_loop_top"
AXI_DW = 64
#: address bits of the strip engines' AXI masters in a part's top (the board's buffers must lie below 2**AXI_AW)
AXI_AW = 32


class LoopError(ValueError):
    """A part the loop cannot carry (a tensor wider than 16 bits, or a loop body whose input and output differ)."""


@dataclass(frozen=True)
class Side:
    """A part's input or output as a DDR buffer holds it: h rows of w pixels of c elements, each ``bits`` wide in
    ``elem_bytes`` bytes; on the part's stream ``pe`` elements per beat, ``width`` bits per beat (padded to
    bytes)."""

    h: int
    w: int
    c: int
    bits: int
    signed: bool
    pe: int
    width: int
    elem_bytes: int

    @property
    def elements(self) -> int:
        return self.h * self.w * self.c

    @property
    def nbytes(self) -> int:
        return self.elements * self.elem_bytes

    @property
    def lane(self) -> int:
        """Bits per element on the strip units' streams."""
        return 8 * self.elem_bytes

    @property
    def buffer(self):
        """The side as the host's code takes it (``samfpga.backends.rolled_host.BufferSide``)."""
        from samfpga.backends.rolled_host import BufferSide

        return BufferSide(h=self.h, w=self.w, c=self.c, bits=self.bits, signed=self.signed,
                          elem_bytes=self.elem_bytes)


@dataclass(frozen=True)
class LoopGeometry:
    """A part's input (``src``, what the strip reader moves) and output (``dst``, what the writer moves); a loop
    body's are the same tensor."""

    src: Side
    dst: Side


def elem_bytes(bits: int) -> int:
    """Bytes per element a DDR buffer needs for ``bits``-bit integers."""
    return 1 if bits <= 8 else 2


def _side(model, tensor: str, node, stream: str, nbytes: int | None) -> Side:
    from qonnx.custom_op.registry import getCustomOp

    shape, dt = model.get_tensor_shape(tensor), model.get_tensor_datatype(tensor)
    if dt.bitwidth() > 16 or not dt.is_integer():
        raise LoopError(f"{tensor} is {dt.name}: the DDR buffers hold integers of at most 16 bits")
    need = elem_bytes(dt.bitwidth())
    if nbytes is not None and nbytes not in (need, 2):
        raise LoopError(f"{tensor} ({dt.name}) cannot be kept in {nbytes} bytes per element (needs {need}; 1 or 2)")
    op = getCustomOp(node)
    width, padded = ((op.get_instream_width(), op.get_instream_width_padded()) if stream == "in"
                     else (op.get_outstream_width(), op.get_outstream_width_padded()))
    c, w = int(shape[-1]), int(shape[-2]) if len(shape) > 2 else 1
    h = int(np.prod(shape[1:-2])) if len(shape) > 3 else 1
    return Side(h=h, w=w, c=c, bits=dt.bitwidth(), signed=dt.signed(), pe=width // dt.bitwidth(), width=padded,
                elem_bytes=need if nbytes is None else nbytes)


def geometry(model, loop: bool = True, layout: tuple[int | None, int | None] = (None, None)) -> LoopGeometry:
    """The geometry of stitched part ``model`` (FINN HW graph, one input and one output of integers of at most 16
    bits); ``loop``: a loop body, whose input and output must be one shape and datatype. ``layout``: bytes per
    element of the input and output buffers where a neighbouring part needs more than the datatype (None: as few
    as the datatype needs). Raises ``LoopError``."""
    i, o = model.graph.input[0].name, model.graph.output[0].name
    if loop:
        shape, oshape = model.get_tensor_shape(i), model.get_tensor_shape(o)
        dt, odt = model.get_tensor_datatype(i), model.get_tensor_datatype(o)
        if list(shape) != list(oshape) or dt != odt:
            raise LoopError(f"body input {i} {shape} {dt.name} and output {o} {oshape} {odt.name} differ: not a loop")
    first = next(n for n in model.graph.node if i in n.input)
    last = next(n for n in model.graph.node if o in n.output)
    g = LoopGeometry(src=_side(model, i, first, "in", layout[0]), dst=_side(model, o, last, "out", layout[1]))
    if loop and g.src != g.dst:
        raise LoopError(f"a loop's buffers hold its input and output alike: layout {layout} differs")
    return g


def lanes_text(g: LoopGeometry) -> str:
    """SystemVerilog between the strip units' streams (``r_tdata``: reader, ``w_tdata``: writer; a side's ``lane``
    bits per element) and the part's (``x_tdata``, ``y_tdata``: ``bits`` per element, FINN's packing, padded to
    bytes): wires, zero padding and a sign extension."""
    s, d = g.src, g.dst
    lines = []
    if s.bits == s.lane:
        lines.append("  assign x_tdata = r_tdata;")
    else:
        if s.width > s.pe * s.bits:
            lines.append(f"  assign x_tdata[{s.width - 1}:{s.pe * s.bits}] = '0;")
        b, lane = s.bits, s.lane
        lines += [f"  assign x_tdata[{j * b + b - 1}:{j * b}] = r_tdata[{j * lane + b - 1}:{j * lane}];"
                  for j in range(s.pe)]
    if d.bits == d.lane:
        lines.append("  assign w_tdata = y_tdata;")
    else:
        b, lane = d.bits, d.lane
        for j in range(d.pe):
            top = f"y_tdata[{j * b + b - 1}]" if d.signed else "1'b0"
            lines.append(f"  assign w_tdata[{j * lane + lane - 1}:{j * lane}] = "
                         f"{{{{{lane - b}{{{top}}}}}, y_tdata[{j * b + b - 1}:{j * b}]}};")
    return "\n".join(lines) + "\n"


#: ports of ``sim_top`` that the top wires itself; any other (a token-batched unit's ``<node>_s_axi_control_*`` and
#: ``<node>_m_axi_gmem_*``) becomes a top port of the same name
_BODY_PORTS = {"clk", "rst_n", *(f"{s}_{f}" for s in ("s_axis_0", "m_axis_0") for f in ("tdata", "tvalid", "tready"))}


#: AXI4-Lite slave signals (name, width; direction from the slave's side)
_AXIL = (("awaddr", 0), ("awprot", 3), ("awvalid", 1), ("awready", -1), ("wdata", 32), ("wstrb", 4), ("wvalid", 1),
         ("wready", -1), ("bresp", -2), ("bvalid", -1), ("bready", 1), ("araddr", 0), ("arprot", 3), ("arvalid", 1),
         ("arready", -1), ("rdata", -32), ("rresp", -2), ("rvalid", -1), ("rready", 1))


def _axil_ports(prefix: str, addr_bits: int) -> list[str]:
    out = []
    for name, w in _AXIL:
        bits = addr_bits if w == 0 else abs(w)
        rng = f" [{bits - 1}:0]" if bits > 1 else ""
        out.append(f"  {'input' if w >= 0 else 'output'} logic{rng} {prefix}_{name}")
    return out


def top_text(g: LoopGeometry, body_ports: list[tuple[str, str, str]] = (), max_burst: int = 16,
             module: str = TOP, body: str = "sim_top") -> str:
    """SystemVerilog of ``module`` (default ``rolled_loop_top``), the part as the board holds it: strip_reader_axil
    (``m_axi_rd_*``, registers on ``rd_s_axil_*``) -> ``body`` (the stitched part, ``stitch.generate_top``'s
    ``sim_top``) -> strip_writer_axil (``m_axi_wr_*``, registers on ``wr_s_axil_*``), one active-high reset; the DMA
    engines' register maps are ``unit_regs.STRIP_READER`` / ``STRIP_WRITER``, as the host's driver writes them.
    ``body_ports``: the body's (direction, name, range); those it does not wire itself (a token-batched unit's
    registers and weight port, a runtime-writeable layer's AXI-Lite) are passed through by name."""
    from samfpga.backends.unit_regs import STRIP_READER, STRIP_WRITER

    rd = ["arid", "araddr", "arlen", "arsize", "arburst", "arcache", "arprot", "arvalid", "arready", "rid",
          "rdata", "rresp", "rlast", "rvalid", "rready"]
    wr = ["awid", "awaddr", "awlen", "awsize", "awburst", "awcache", "awprot", "awvalid", "awready", "wdata",
          "wstrb", "wlast", "wvalid", "wready", "bid", "bresp", "bvalid", "bready"]
    outs = {"arid", "araddr", "arlen", "arsize", "arburst", "arcache", "arprot", "arvalid", "rready", "awid",
            "awaddr", "awlen", "awsize", "awburst", "awcache", "awprot", "awvalid", "wdata", "wstrb", "wlast",
            "wvalid", "bready"}
    widths = {"araddr": AXI_AW, "awaddr": AXI_AW, "arlen": 8, "awlen": 8, "arsize": 3, "awsize": 3, "arburst": 2,
              "awburst": 2, "arcache": 4, "awcache": 4, "arprot": 3, "awprot": 3, "rdata": AXI_DW, "wdata": AXI_DW,
              "wstrb": AXI_DW // 8, "rresp": 2, "bresp": 2}

    def port(prefix: str, s: str) -> str:
        rng = f" [{widths[s] - 1}:0]" if s in widths else ""
        return f"  {'output' if s in outs else 'input'} logic{rng} {prefix}_{s}"

    ra, wa = STRIP_READER.addr_bits, STRIP_WRITER.addr_bits
    ports = ["  input logic clk", "  input logic rst", *_axil_ports("rd_s_axil", ra), *_axil_ports("wr_s_axil", wa),
             *(port("m_axi_rd", s) for s in rd), *(port("m_axi_wr", s) for s in wr)]
    extra = [(d, n, r) for d, n, r in body_ports if n not in _BODY_PORTS]
    ports += [f"  {d} logic{' ' + r if r else ''} {n}" for d, n, r in extra]
    body_conn = "".join(f", .{n}({n})" for _, n, _ in extra)
    rw, ww = g.src.pe * g.src.lane, g.dst.pe * g.dst.lane  # the strip units' stream widths
    rd_conn = ", ".join(f".m_axi_{s}(m_axi_rd_{s})" for s in rd)
    wr_conn = ", ".join(f".m_axi_{s}(m_axi_wr_{s})" for s in wr)
    rl_conn, wl_conn = (", ".join(f".s_axil_{n}({u}_s_axil_{n})" for n, _ in _AXIL) for u in ("rd", "wr"))
    return f"""// generated by samfpga.hw.sim.rolled_loop: a part of a rolled graph between the strip reader and the strip writer
`timescale 1ns/1ps
module {module} (
{','.join(chr(10) + p for p in ports)[1:]}
);
  logic [{rw - 1}:0] r_tdata;
  logic [{rw // 8 - 1}:0] r_tkeep;
  logic [{g.src.width - 1}:0] x_tdata;
  logic x_tlast, x_tvalid, x_tready;
  logic [{g.dst.width - 1}:0] y_tdata;
  logic [{ww - 1}:0] w_tdata;
  logic y_tvalid, y_tready;
{lanes_text(g)}
  strip_reader_axil #(.AXI_DW({AXI_DW}), .AXI_AW({AXI_AW}), .STREAM_W({rw}), .MAX_BURST({max_burst}), .AXIL_AW({ra})) reader (
    .clk(clk), .rst(rst), {rl_conn},
    {rd_conn},
    .m_axis_tdata(r_tdata), .m_axis_tkeep(r_tkeep), .m_axis_tlast(x_tlast), .m_axis_tvalid(x_tvalid),
    .m_axis_tready(x_tready));

  {body} body (.clk(clk), .rst_n(!rst), .s_axis_0_tdata(x_tdata), .s_axis_0_tvalid(x_tvalid),
    .s_axis_0_tready(x_tready), .m_axis_0_tdata(y_tdata), .m_axis_0_tvalid(y_tvalid), .m_axis_0_tready(y_tready){body_conn});

  strip_writer_axil #(.AXI_DW({AXI_DW}), .AXI_AW({AXI_AW}), .STREAM_W({ww}), .MAX_BURST({max_burst}), .AXIL_AW({wa})) writer (
    .clk(clk), .rst(rst), {wl_conn}, .s_axis_tdata(w_tdata),
    .s_axis_tkeep('1), .s_axis_tlast(1'b0), .s_axis_tvalid(y_tvalid), .s_axis_tready(y_tready), {wr_conn});
endmodule
"""


def build(stitched, work_dir: Path, loop: bool = True,
          layout: tuple[int | None, int | None] = (None, None)) -> tuple[LoopGeometry, float]:
    """Verilator build of ``rolled_loop_top`` around stitched part ``stitched`` (``stitched_model``'s graph; ``loop``,
    ``layout``: as ``geometry`` takes them) into ``work_dir/sim_build``; returns its geometry and the seconds
    taken. The memories of its runtime-writeable layers (URAM, which the bitstream cannot initialise) are empty,
    their AXI-Lite ports the top's ``<node>_s_axilite_*``, as the board's host must load them."""
    from samfpga.hw.build.package import runtime_writeable_nodes
    from samfpga.hw.sim.runner import stage_hdl, verilator_build
    from samfpga.hw.sim.stitch import port_declarations

    g = geometry(stitched, loop, layout)
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    staged = stage_hdl(stitched, work_dir, [n.name for n in runtime_writeable_nodes(stitched)])
    from samfpga.hw.rolled.part_hdl import OWN_TOPS
    from samfpga.hw.synth.own_rtl import own_modules

    for unit in own_modules(*OWN_TOPS):
        dst = work_dir / "hdl" / f"{unit}.sv"
        dst.write_bytes(package_path("samfpga.hw", "rtl", f"{unit}.sv").read_bytes())
        if dst not in staged:  # a token-batched unit's wrapper may have brought axil_regs already
            staged.append(dst)
    top = work_dir / "hdl" / f"{TOP}.sv"
    top.write_text(top_text(g, port_declarations((work_dir / "hdl" / "sim_top.sv").read_text(), "sim_top")))
    verilator_build([*staged, top], work_dir, toplevel=TOP)
    return g, time.monotonic() - t0


@dataclass
class LoopResult:
    passes: list[dict] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""


def to_bytes(x: np.ndarray, g: Side) -> bytes:
    """Tensor values (float array of integers of side ``g``'s datatype) as the DDR buffer holds them
    (``rolled_host.encode``, what the board's host writes)."""
    from samfpga.backends.rolled_host import encode

    return encode(x, g.buffer)


def from_bytes(data: bytes, shape, g: Side) -> np.ndarray:
    """Side ``g``'s values in a DDR buffer as its part reads them (``rolled_host.decode``); float32 of ``shape``."""
    from samfpga.backends.rolled_host import decode

    return decode(data, shape, g.buffer)


def simulate(g: LoopGeometry, image: bytes, buffers: list[tuple[int, int]], blocks: int, passes: list[Pass],
             work_dir: Path, units: dict[str, list[tuple[int, int]]] | None = None, seed: int = 0, tag: str = "run",
             timeout_cycles: int = 5_000_000, poll_cycles: int = 64,
             runtime: dict[str, list[tuple[int, int]]] | None = None) -> LoopResult:
    """Run the bench on a design built by ``build``: each pass restores the DDR to ``image`` and runs ``blocks``
    blocks of ``len(buffers)`` maps interleaved (the body's ``loop_frames``), map k's block i reading its buffer
    ``buffers[k][i % 2]`` and writing the other; ``units``: {token-batched node: its
    register writes (offset, word)}, made once after reset (their weights are in ``image`` where the writes say);
    ``runtime``: {runtime-writeable node: its AXI-Lite writes (byte address, word)}, made once after reset;
    ``poll_cycles``: cycles between the host's reads of a DMA engine's CTRL while it waits;
    ``images`` holds the DDR after each pass, ``passes`` per block cycles, bytes moved and error flags."""
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    for dat in (work_dir / "run").glob("*.dat"):  # the memories' init files, read relative to the simulator's dir
        if not (run / dat.name).exists():
            (run / dat.name).write_bytes(dat.read_bytes())
    (run / "ddr.bin").write_bytes(image)
    spec = {"ddr": str(run / "ddr.bin"), "blocks": blocks, "buffers": [list(b) for b in buffers],
            **{k: {"h": v.h, "w": v.w, "c": v.c * v.elem_bytes} for k, v in (("src", g.src), ("dst", g.dst))},
            "units": [{"name": k, "writes": [[int(a), int(w)] for a, w in v]} for k, v in (units or {}).items()],
            "runtime": [{"name": k, "writes": [[int(a), int(w)] for a, w in v]} for k, v in (runtime or {}).items()],
            "passes": [vars(p) for p in passes], "seed": seed, "timeout_cycles": timeout_cycles,
            "poll_cycles": poll_cycles,
            "result": str(run / "result.json"), "image_dir": str(run)}
    res = LoopResult()
    res.passes, res.error = run_bench(TOP, BENCH_MODULE, "SAMFPGA_ROLLED_LOOP_SPEC", spec, run,
                                      work_dir / "sim_build")
    res.images = [(run / f"ddr_{p['name']}.bin").read_bytes() for p in res.passes
                  if (run / f"ddr_{p['name']}.bin").is_file()]
    res.wall_s = round(time.monotonic() - t0, 2)
    return res


@dataclass
class LoopCheck:
    """``run_loop_rtl``'s outcome. Per pass of the bench: ``equal`` (the whole DDR image is the expected one),
    ``mismatches`` (per map, values of its last block's output that differ), and the bench's own figures
    (``passes``: done cycles, bytes moved, error flags); ``want_weight_bytes``: per token-batched unit, the bytes
    its schedule reads for the loop; ``expected``: per map, its input and the output of each block (python);
    ``outputs``: per map, the bytes of its output buffer after the last pass (what the next part would read);
    ``runtime_words``: per runtime-writeable layer, the AXI-Lite words the host wrote; ``flush_equal``: whether the
    dropped pass after those writes (``run_loop_rtl``) already gave the expected DDR image (None: no such pass)."""

    geometry: LoopGeometry
    k: int
    blocks: int
    equal: list[bool]
    mismatches: list[list[int]]
    passes: list[dict]
    want_weight_bytes: dict[str, int]
    expected: list[list[np.ndarray]]
    build_s: float
    error: str
    outputs: list[bytes] = field(default_factory=list)
    runtime_words: dict[str, int] = field(default_factory=dict)
    flush_equal: bool | None = None

    @property
    def bit_exact(self) -> bool:
        """No error, at least one pass, every pass's DDR image the expected one and no value of a map differing."""
        return not self.error and bool(self.equal) and all(self.equal) and not any(any(m) for m in self.mismatches)


def run_loop_rtl(body, maps: list[np.ndarray], work_dir: Path, passes: list[Pass], seed: int = 0,
                 timeout_cycles: int = 20_000_000, layout: tuple[int | None, int | None] = (None, None),
                 poll_cycles: int = 64) -> LoopCheck:
    """``body`` (a looped HW body, ``samfpga.hw.rolled.hdl.looped_body``) run as a loop in RTL on ``maps`` (its
    input tensors, values of the loop datatype), interleaved (K = len(maps): ``looped.set_frames``), for all of its
    N blocks, against its python execution per iteration (``at_iteration``). A part of the rolled graph that runs
    once (no looped layer) is run the same way with N = 1 on one map, its output a tensor of its own shape.

    The DDR (background: seeded random bytes) holds each map in buffer 0 of its own unaligned pair and each
    token-batched unit's N weight sets (``token_batch.looped_image``, 4 KiB-aligned, its registers BASE, STRIDE,
    ITERS = N, TOKENS = K x T written over AXI-Lite). Expected after the loop: map k's block N-1 output in buffer
    N % 2 of its pair, its block N-2 output (or its input, N = 1) in the other, every other byte as before.

    The part's runtime-writeable layers (URAM: FINN's ``runtime_writeable_weights``) start empty; after reset the
    host writes each one's words (``samfpga.hw.build.package.runtime_words``, what the package's driver writes) over
    its AXI-Lite, then runs one whole pass and drops it, as the board's driver does (a weight memstream has
    prefetched words before they were written): that pass is not among ``passes`` but ``flush_equal`` says whether
    it was already right.
    ``layout``: bytes per element of the input and output buffers (``geometry``). ``body`` is left at iteration 0
    with ``loop_frames`` K."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.backends.unit_regs import TOKEN_BATCH_MVU
    from samfpga.hw.build.package import python_view, runtime_words, runtime_writeable_nodes
    from samfpga.hw.custom_ops.looped import at_iteration, iterations, looped_ops, set_frames
    from samfpga.hw.custom_ops.token_batch import looped_image
    from samfpga.hw.rolled.execute import run_once
    from samfpga.hw.sim import token_batch_mvu as tb
    from samfpga.hw.sim.nodes import ZYNQ_PART
    from samfpga.hw.sim.stitch import token_batch_ports
    from samfpga.hw.sim.stitched import stitched_model

    ops = looped_ops(body)
    n_blocks, k = (iterations(ops[0]) if ops else 1), len(maps)
    if not ops and k != 1:
        raise LoopError(f"a part that runs once (no looped layer) takes one map, got {k}")
    expected = []
    for x in maps:
        seq = [np.asarray(x, dtype=np.float32)]
        for i in range(n_blocks):
            if ops:
                at_iteration(body, i)
            seq.append(run_once(python_view(body), seq[-1]))
        expected.append(seq)
    if ops:
        at_iteration(body, 0)
    fresh = copy.deepcopy(set_frames(body, k) if ops else body)
    for node in fresh.graph.node:  # HDL made afresh (loop_frames is in it), not over a build's generated code
        op = getCustomOp(node) if node.domain.startswith(HW_DOMAIN) else None
        if op is not None and "code_gen_dir_ipgen" in op.get_nodeattr_types():
            op.set_nodeattr("code_gen_dir_ipgen", "")
    sim, _, _ = stitched_model(fresh, ZYNQ_PART, 5.0)
    g, build_s = build(sim, work_dir, loop=bool(ops), layout=layout)
    if any(np.asarray(x).size != g.src.elements for x in maps):
        raise LoopError(f"maps must hold {g.src.elements} values each (the part's input), got "
                        f"{[np.asarray(x).size for x in maps]}")
    n = max(g.src.nbytes, g.dst.nbytes)
    buffers = [(0x1003 + j * (2 * n + 200), 0x1003 + j * (2 * n + 200) + n + 77) for j in range(k)]
    top = align_up(buffers[-1][1] + n, BUFFER_ALIGN)
    units, blobs, want_bytes = {}, [], {}
    for name in token_batch_ports(sim):
        op = getCustomOp(sim.get_node_from_name(name))
        image, stride = looped_image(op, sim)
        units[name] = TOKEN_BATCH_MVU.writes({"base": top, "stride": stride, "iters": n_blocks,
                                              "tokens": k * op.tokens()})
        want_bytes[name] = tb.ddr_bytes_per_frame(op.unit_config(), n_blocks, k * op.tokens())
        blobs.append((top, image))
        top = align_up(top + len(image), BUFFER_ALIGN)
    img = bytearray(np.random.default_rng(seed).integers(0, 256, top + 64, dtype=np.uint8).tobytes())
    for addr, data in blobs:
        img[addr:addr + len(data)] = data
    want = bytearray(img)
    last = n_blocks % 2
    before = g.src if n_blocks == 1 else g.dst  # the side of the tensor left in the other buffer
    for pair, seq in zip(buffers, expected):
        img[pair[0]:pair[0] + g.src.nbytes] = to_bytes(seq[0], g.src)
        want[pair[last]:pair[last] + g.dst.nbytes] = to_bytes(seq[-1], g.dst)
        want[pair[1 - last]:pair[1 - last] + before.nbytes] = to_bytes(seq[-2], before)
    runtime = {n.name: [(4 * i, int(w)) for i, w in enumerate(runtime_words(getCustomOp(n), sim))]
               for n in runtime_writeable_nodes(sim)}
    flush = [Pass("flush")] if runtime else []
    res = simulate(g, bytes(img), buffers, n_blocks, flush + list(passes), work_dir, units=units, seed=seed,
                   timeout_cycles=timeout_cycles, poll_cycles=poll_cycles, runtime=runtime)
    flush_equal = None
    if flush and res.passes and res.passes[0]["name"] == "flush":
        flush_equal = bool(res.images) and res.images[0] == bytes(want)
        res.passes, res.images = res.passes[1:], res.images[1:]
    mismatches = []
    for image in res.images:
        got = [from_bytes(image[p[last]:p[last] + g.dst.nbytes], seq[-1].shape, g.dst)
               for p, seq in zip(buffers, expected)]
        mismatches.append([int((y != seq[-1]).sum()) for y, seq in zip(got, expected)])
    outputs = [res.images[-1][p[last]:p[last] + g.dst.nbytes] for p in buffers] if res.images else []
    return LoopCheck(geometry=g, k=k, blocks=n_blocks, equal=[im == bytes(want) for im in res.images],
                     mismatches=mismatches, passes=res.passes, want_weight_bytes=want_bytes, expected=expected,
                     build_s=round(build_s, 2), error=res.error, outputs=outputs,
                     runtime_words={k: len(v) for k, v in runtime.items()}, flush_equal=flush_equal)
