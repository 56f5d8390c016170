"""A rolled stage's loop in RTL: the stitched HDL of a rolled FINN body (every layer holding each block's parameters,
``samfpga.hw.rolled.hdl.looped_body``) between the strip reader and the strip writer, its N blocks run through two
loop buffers in DDR, sequenced by the host (docs/rolled_stage.md). The generated top, its Verilator build and the
runner of its cocotb bench (``rolled_loop_bench``).

```
  DDR buffer i%2 --strip_reader--> body (sim_top: FINN node wrappers, FIFOs) --strip_writer--> DDR buffer (i+1)%2
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

from samfpga.hw import HW_DOMAIN
from samfpga.hw.sim.own_rtl import run_bench
from samfpga.hw.sim.rolled_stage import Pass  # a pass's stalls, as the rolled stage's bench takes them
from samfpga.hw.sim.toolchain import setup_verilator_env
from samfpga.resources import package_path

BENCH_MODULE = "samfpga.hw.sim.rolled_loop_bench"
TOP = "rolled_loop_top"
AXI_DW = 64


class LoopError(ValueError):
    """A body the loop cannot carry (its loop tensor wider than 16 bits, or its input and output differ)."""


@dataclass(frozen=True)
class LoopGeometry:
    """The loop tensor as the DDR buffers hold it: h rows of w pixels of c elements of ``elem_bytes`` bytes each;
    the element width ``bits``; the elements per beat of the body's input and output streams (``in_pe``,
    ``out_pe``) and those streams' padded widths (bits)."""

    h: int
    w: int
    c: int
    in_width: int
    out_width: int
    signed: bool
    bits: int
    in_pe: int
    out_pe: int

    @property
    def elem_bytes(self) -> int:
        return 1 if self.bits <= 8 else 2

    @property
    def nbytes(self) -> int:
        return self.h * self.w * self.c * self.elem_bytes

    @property
    def lane(self) -> int:
        """Bits per element on the strip units' streams."""
        return 8 * self.elem_bytes


def geometry(model) -> LoopGeometry:
    """The loop geometry of stitched body ``model`` (FINN HW graph, one input and one output of the same shape and
    datatype of at most 16 bits); raises ``LoopError`` otherwise."""
    from qonnx.custom_op.registry import getCustomOp

    i, o = model.graph.input[0].name, model.graph.output[0].name
    shape, oshape = model.get_tensor_shape(i), model.get_tensor_shape(o)
    dt, odt = model.get_tensor_datatype(i), model.get_tensor_datatype(o)
    if list(shape) != list(oshape) or dt != odt:
        raise LoopError(f"body input {i} {shape} {dt.name} and output {o} {oshape} {odt.name} differ: not a loop")
    if dt.bitwidth() > 16 or not dt.is_integer():
        raise LoopError(f"body loop tensor {i} is {dt.name}: the loop buffers hold integers of at most 16 bits")
    first = getCustomOp(next(n for n in model.graph.node if i in n.input))
    last = getCustomOp(next(n for n in model.graph.node if o in n.output))
    c, w = int(shape[-1]), int(shape[-2]) if len(shape) > 2 else 1
    h = int(np.prod(shape[1:-2])) if len(shape) > 3 else 1
    bits = dt.bitwidth()
    return LoopGeometry(h=h, w=w, c=c, in_width=first.get_instream_width_padded(),
                        out_width=last.get_outstream_width_padded(), signed=dt.signed(), bits=bits,
                        in_pe=first.get_instream_width() // bits, out_pe=last.get_outstream_width() // bits)


def lanes_text(g: LoopGeometry) -> str:
    """SystemVerilog between the strip units' streams (``r_tdata``: reader, ``w_tdata``: writer; ``g.lane`` bits per
    element) and the body's (``x_tdata``, ``y_tdata``: ``g.bits`` per element, FINN's packing, padded to bytes)."""
    if g.bits == g.lane:
        return "  assign x_tdata = r_tdata;\n  assign w_tdata = y_tdata;\n"
    b, lane = g.bits, g.lane
    lines = []
    if g.in_width > g.in_pe * b:
        lines.append(f"  assign x_tdata[{g.in_width - 1}:{g.in_pe * b}] = '0;")
    lines += [f"  assign x_tdata[{j * b + b - 1}:{j * b}] = r_tdata[{j * lane + b - 1}:{j * lane}];"
              for j in range(g.in_pe)]
    for j in range(g.out_pe):
        top = f"y_tdata[{j * b + b - 1}]" if g.signed else "1'b0"
        lines.append(f"  assign w_tdata[{j * lane + lane - 1}:{j * lane}] = "
                     f"{{{{{lane - b}{{{top}}}}}, y_tdata[{j * b + b - 1}:{j * b}]}};")
    return "\n".join(lines) + "\n"


#: ports of ``sim_top`` that the top wires itself; any other (a token-batched unit's ``<node>_s_axi_control_*`` and
#: ``<node>_m_axi_gmem_*``) becomes a top port of the same name
_BODY_PORTS = {"clk", "rst_n", *(f"{s}_{f}" for s in ("s_axis_0", "m_axis_0") for f in ("tdata", "tvalid", "tready"))}


def top_text(g: LoopGeometry, body_ports: list[tuple[str, str, str]] = (), max_burst: int = 16) -> str:
    """SystemVerilog of ``rolled_loop_top``: strip_reader (``m_axi_rd_*``) -> ``sim_top`` -> strip_writer
    (``m_axi_wr_*``), the units' start/config/status as ports, one active-high reset. ``body_ports``: sim_top's
    (direction, name, range); those it does not wire itself are passed through by name."""
    rd = ["arid", "araddr", "arlen", "arsize", "arburst", "arcache", "arprot", "arvalid", "arready", "rid",
          "rdata", "rresp", "rlast", "rvalid", "rready"]
    wr = ["awid", "awaddr", "awlen", "awsize", "awburst", "awcache", "awprot", "awvalid", "awready", "wdata",
          "wstrb", "wlast", "wvalid", "wready", "bid", "bresp", "bvalid", "bready"]
    outs = {"arid", "araddr", "arlen", "arsize", "arburst", "arcache", "arprot", "arvalid", "rready", "awid",
            "awaddr", "awlen", "awsize", "awburst", "awcache", "awprot", "awvalid", "wdata", "wstrb", "wlast",
            "wvalid", "bready"}
    widths = {"araddr": 32, "awaddr": 32, "arlen": 8, "awlen": 8, "arsize": 3, "awsize": 3, "arburst": 2,
              "awburst": 2, "arcache": 4, "awcache": 4, "arprot": 3, "awprot": 3, "rdata": AXI_DW, "wdata": AXI_DW,
              "wstrb": AXI_DW // 8, "rresp": 2, "bresp": 2}

    def port(prefix: str, s: str) -> str:
        rng = f" [{widths[s] - 1}:0]" if s in widths else ""
        return f"  {'output' if s in outs else 'input'} logic{rng} {prefix}_{s}"

    ports = ["  input logic clk", "  input logic rst", "  input logic [31:0] rd_base", "  input logic [31:0] wr_base",
             "  input logic [15:0] cfg_h", "  input logic [15:0] cfg_w", "  input logic [15:0] cfg_c",
             "  input logic rd_start", "  input logic wr_start", "  output logic rd_busy", "  output logic wr_busy",
             "  output logic wr_done", "  output logic [1:0] rd_err", "  output logic [1:0] wr_err",
             *(port("m_axi_rd", s) for s in rd), *(port("m_axi_wr", s) for s in wr)]
    extra = [(d, n, r) for d, n, r in body_ports if n not in _BODY_PORTS]
    ports += [f"  {d} logic{' ' + r if r else ''} {n}" for d, n, r in extra]
    body_conn = "".join(f", .{n}({n})" for _, n, _ in extra)
    rw, ww = g.in_pe * g.lane, g.out_pe * g.lane  # the strip units' stream widths
    rd_conn = ", ".join(f".m_axi_{s}(m_axi_rd_{s})" for s in rd)
    wr_conn = ", ".join(f".m_axi_{s}(m_axi_wr_{s})" for s in wr)
    return f"""// generated by samfpga.hw.sim.rolled_loop: a rolled body between the strip reader and the strip writer
`timescale 1ns/1ps
module {TOP} (
{','.join(chr(10) + p for p in ports)[1:]}
);
  logic [{rw - 1}:0] r_tdata;
  logic [{rw // 8 - 1}:0] r_tkeep;
  logic [{g.in_width - 1}:0] x_tdata;
  logic x_tlast, x_tvalid, x_tready;
  logic [{g.out_width - 1}:0] y_tdata;
  logic [{ww - 1}:0] w_tdata;
  logic y_tvalid, y_tready;
{lanes_text(g)}
  strip_reader #(.AXI_DW({AXI_DW}), .STREAM_W({rw}), .MAX_BURST({max_burst})) reader (
    .clk(clk), .rst(rst), .start(rd_start), .cfg_base(rd_base), .cfg_h(cfg_h), .cfg_w(cfg_w), .cfg_c(cfg_c),
    .cfg_tiles(16'd1), .cfg_halo(16'd0), .busy(rd_busy), .err(rd_err), {rd_conn},
    .m_axis_tdata(r_tdata), .m_axis_tkeep(r_tkeep), .m_axis_tlast(x_tlast), .m_axis_tvalid(x_tvalid),
    .m_axis_tready(x_tready));

  sim_top body (.clk(clk), .rst_n(!rst), .s_axis_0_tdata(x_tdata), .s_axis_0_tvalid(x_tvalid),
    .s_axis_0_tready(x_tready), .m_axis_0_tdata(y_tdata), .m_axis_0_tvalid(y_tvalid), .m_axis_0_tready(y_tready){body_conn});

  strip_writer #(.AXI_DW({AXI_DW}), .STREAM_W({ww}), .MAX_BURST({max_burst})) writer (
    .clk(clk), .rst(rst), .start(wr_start), .cfg_base(wr_base), .cfg_h(cfg_h), .cfg_w(cfg_w), .cfg_c(cfg_c),
    .cfg_tiles(16'd1), .busy(wr_busy), .done(wr_done), .err(wr_err), .s_axis_tdata(w_tdata),
    .s_axis_tkeep('1), .s_axis_tlast(1'b0), .s_axis_tvalid(y_tvalid), .s_axis_tready(y_tready), {wr_conn});
endmodule
"""


def build(stitched, work_dir: Path) -> tuple[LoopGeometry, float]:
    """Verilator build of ``rolled_loop_top`` around stitched body ``stitched`` (``stitched_model``'s graph) into
    ``work_dir/sim_build``; returns its geometry and the seconds taken."""
    from samfpga.hw.sim.runner import stage_hdl, verilator_build
    from samfpga.hw.sim.stitch import port_declarations

    g = geometry(stitched)
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    staged = stage_hdl(stitched, work_dir)
    for unit in ("strip_reader", "strip_writer"):
        dst = work_dir / "hdl" / f"{unit}.sv"
        dst.write_bytes(package_path("samfpga.hw", "rtl", f"{unit}.sv").read_bytes())
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


def _dtype(g: LoopGeometry) -> str:
    return ("<i" if g.signed else "<u") + str(g.elem_bytes)


def to_bytes(x: np.ndarray, g: LoopGeometry) -> bytes:
    """Loop tensor values (float array of integers of the loop datatype) as the DDR buffer holds them: two's
    complement, ``g.elem_bytes`` little-endian bytes each."""
    return np.asarray(x).astype(np.int64).astype(_dtype(g)).tobytes()


def from_bytes(data: bytes, shape, g: LoopGeometry) -> np.ndarray:
    """The inverse of ``to_bytes``: float32 values of ``shape``."""
    return np.frombuffer(data, dtype=_dtype(g)).astype(np.float32).reshape(shape)


def simulate(g: LoopGeometry, image: bytes, buffers: list[tuple[int, int]], blocks: int, passes: list[Pass],
             work_dir: Path, units: dict[str, list[tuple[int, int]]] | None = None, seed: int = 0, tag: str = "run",
             timeout_cycles: int = 5_000_000) -> LoopResult:
    """Run the bench on a design built by ``build``: each pass restores the DDR to ``image`` and runs ``blocks``
    blocks of ``len(buffers)`` maps interleaved (the body's ``loop_frames``), map k's block i reading its buffer
    ``buffers[k][i % 2]`` and writing the other; ``units``: {token-batched node: its
    register writes (offset, word)}, made once after reset (their weights are in ``image`` where the writes say);
    ``images`` holds the DDR after each pass, ``passes`` per block cycles, bytes moved and error flags."""
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    for dat in (work_dir / "run").glob("*.dat"):  # the memories' init files, read relative to the simulator's dir
        if not (run / dat.name).exists():
            (run / dat.name).write_bytes(dat.read_bytes())
    (run / "ddr.bin").write_bytes(image)
    spec = {"ddr": str(run / "ddr.bin"), "h": g.h, "w": g.w, "c": g.c * g.elem_bytes, "blocks": blocks, "buffers": [list(b) for b in buffers],
            "units": [{"name": k, "writes": [[int(a), int(w)] for a, w in v]} for k, v in (units or {}).items()],
            "passes": [vars(p) for p in passes], "seed": seed, "timeout_cycles": timeout_cycles,
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
    its schedule reads for the loop; ``expected``: per map, its input and the output of each block (python)."""

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


def run_loop_rtl(body, maps: list[np.ndarray], work_dir: Path, passes: list[Pass], seed: int = 0,
                 timeout_cycles: int = 20_000_000) -> LoopCheck:
    """``body`` (a looped HW body, ``samfpga.hw.rolled.hdl.looped_body``) run as a loop in RTL on ``maps`` (its
    input tensors, values of the loop datatype), interleaved (K = len(maps): ``looped.set_frames``), for all of its
    N blocks, against its python execution per iteration (``at_iteration``).

    The DDR (background: seeded random bytes) holds each map in buffer 0 of its own unaligned pair and each
    token-batched unit's N weight sets (``token_batch.looped_image``, 4 KiB-aligned, its registers BASE, STRIDE,
    ITERS = N, TOKENS = K x T written over AXI-Lite). Expected after the loop: map k's block N-1 output in buffer
    N % 2 of its pair, its block N-2 output (or its input, N = 1) in the other, every other byte as before.
    ``body`` is left at iteration 0 with ``loop_frames`` K."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.backends.unit_regs import TOKEN_BATCH_MVU
    from samfpga.hw.build.package import python_view
    from samfpga.hw.custom_ops.looped import at_iteration, iterations, looped_ops, set_frames
    from samfpga.hw.custom_ops.token_batch import looped_image
    from samfpga.hw.rolled.execute import run_once
    from samfpga.hw.sim import token_batch_mvu as tb
    from samfpga.hw.sim.nodes import ZYNQ_PART
    from samfpga.hw.sim.stitch import token_batch_ports
    from samfpga.hw.sim.stitched import stitched_model

    ops = looped_ops(body)
    if not ops:
        raise LoopError("the body has no looped layer: nothing selects a block's parameters")
    n_blocks, k = iterations(ops[0]), len(maps)
    expected = []
    for x in maps:
        seq = [np.asarray(x, dtype=np.float32)]
        for i in range(n_blocks):
            at_iteration(body, i)
            seq.append(run_once(python_view(body), seq[-1]))
        expected.append(seq)
    at_iteration(body, 0)
    fresh = copy.deepcopy(set_frames(body, k))
    for node in fresh.graph.node:  # HDL made afresh (loop_frames is in it), not over a build's generated code
        op = getCustomOp(node) if node.domain.startswith(HW_DOMAIN) else None
        if op is not None and "code_gen_dir_ipgen" in op.get_nodeattr_types():
            op.set_nodeattr("code_gen_dir_ipgen", "")
    sim, _, _ = stitched_model(fresh, ZYNQ_PART, 5.0)
    g, build_s = build(sim, work_dir)
    n = g.nbytes
    if any(np.asarray(x).size != g.h * g.w * g.c for x in maps):
        raise LoopError(f"maps must hold {g.h * g.w * g.c} values each (the body's input), got "
                        f"{[np.asarray(x).size for x in maps]}")
    buffers = [(0x1003 + j * (2 * n + 200), 0x1003 + j * (2 * n + 200) + n + 77) for j in range(k)]
    top = -(-(buffers[-1][1] + n) // 4096) * 4096
    units, blobs, want_bytes = {}, [], {}
    for name in token_batch_ports(sim):
        op = getCustomOp(sim.get_node_from_name(name))
        image, stride = looped_image(op, sim)
        units[name] = TOKEN_BATCH_MVU.writes({"base": top, "stride": stride, "iters": n_blocks,
                                              "tokens": k * op.tokens()})
        want_bytes[name] = tb.ddr_bytes_per_frame(op.unit_config(), n_blocks, k * op.tokens())
        blobs.append((top, image))
        top = -(-(top + len(image)) // 4096) * 4096
    img = bytearray(np.random.default_rng(seed).integers(0, 256, top + 64, dtype=np.uint8).tobytes())
    for addr, data in blobs:
        img[addr:addr + len(data)] = data
    want = bytearray(img)
    last = n_blocks % 2
    for (b0, b1), seq in zip(buffers, expected):
        img[b0:b0 + n] = to_bytes(seq[0], g)
        pair = (b0, b1)
        want[pair[last]:pair[last] + n] = to_bytes(seq[-1], g)
        want[pair[1 - last]:pair[1 - last] + n] = to_bytes(seq[-2], g)
    res = simulate(g, bytes(img), buffers, n_blocks, passes, work_dir, units=units, seed=seed,
                   timeout_cycles=timeout_cycles)
    mismatches = []
    for image in res.images:
        mismatches.append([int((from_bytes(image[p[last]:p[last] + n], seq[-1].shape, g) != seq[-1]).sum())
                           for p, seq in zip(buffers, expected)])
    return LoopCheck(geometry=g, k=k, blocks=n_blocks, equal=[im == bytes(want) for im in res.images],
                     mismatches=mismatches, passes=res.passes, want_weight_bytes=want_bytes, expected=expected,
                     build_s=round(build_s, 2), error=res.error)
