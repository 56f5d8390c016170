"""Collect a FINN node's HDL into a build folder and apply the documented, minimal Verilator patches.

Sources are copied (never edited in site-packages). Each patch is a pure text transform that must match
exactly once, so a FINN update that changes the source fails loudly instead of silently skipping the patch.
Patches (see docs/simulation.md):
    add_multi.sv   constant function ``init_leaf_loads`` hoisted from a generate block to module scope
                   (Verilator 5.48: "Constant function may not be declared under generate")
    memstream.sv   the same for ``INIT_OFFSET_TABLE`` of the multi-set path (SETS > 1: a rolled body's layer,
                   samfpga.hw.custom_ops.looped_memstream)
    fifo.sv        ``typedef struct`` -> ``typedef struct packed`` for ``abits_t`` (Verilator 5.48 cannot
                   evaluate an unpacked struct inside a constant function)
    *StreamingFIFO wrapper  keeps the real ``fifo`` under FINN_SIMULATION instead of the unbounded
                   ``fifo_gauge`` FIFO-sizing model, so the bench simulates the FIFO that is synthesised
    skid.sv        (InnerShuffle_rtl) the ``$error`` of the SRL-capacity check formats ``%0d`` without an argument
                   (Verilator 5.48: "Missing arguments for $display-like format"); ``FEED_STAGES`` is passed
    inner_shuffle.sv  (InnerShuffle_rtl) the two bit-stream casts between the unpacked read-pattern array and its
                   packed form (Verilator 5.48: "Unsupported: static cast ... from 'logic[..]$[..]'") are written as
                   the streaming concatenations ``{>>{...}}`` that IEEE 1800 defines those casts to be
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path


class PatchError(RuntimeError):
    """A patch's anchor text was not found exactly once in the source."""


def _replace_once(text: str, old: str, new: str, name: str) -> str:
    count = text.count(old)
    if count != 1:
        raise PatchError(f"{name}: expected the patch anchor exactly once, found {count}: {old[:60]!r}")
    return text.replace(old, new)


def _hoist(text: str, start_anchor: str, end_anchor: str, anchor: str, name: str) -> str:
    """Move the lines from ``start_anchor`` to ``end_anchor`` (each found exactly once; a generate block's
    declarations) one indentation level out, to just after ``anchor`` at module scope."""
    if text.count(start_anchor) != 1 or text.count(end_anchor) != 1:
        raise PatchError(f"{name}: block {start_anchor.strip()[:40]!r} not found exactly once")
    i = text.index(start_anchor)
    j = text.index(end_anchor) + len(end_anchor)
    block = text[i:j]
    text = text[:i] + text[j:]
    hoisted = "".join(line[1:] + "\n" for line in block.splitlines())
    return _replace_once(text, anchor, anchor + hoisted, name)


def patch_add_multi(text: str) -> str:
    """Move the ``init_leaf_loads`` constant function out of the ``genTree`` generate block (it depends only on the
    module parameter N, so module scope is equivalent)."""
    return _hoist(text, "\t\t// Compute the count of decendents for all nodes in the reduction trees.\n",
                  "\t\tendfunction : init_leaf_loads\n",
                  "\tlocalparam int unsigned  L = $clog2(N);  // Number of levels with reductions\n\n", "add_multi.sv")


def patch_memstream(text: str) -> str:
    """Move the set offset table (type, constant function, localparam) out of the ``genMultiSets`` block (it
    depends only on the parameters SETS, DEPTH and the module-scope addr_t, so module scope is equivalent)."""
    return _hoist(text, "\t\t// Stream Offsets through Lookup Table\n",
                  "\t\tlocalparam offset_table_t  OFFSET_TABLE = INIT_OFFSET_TABLE();\n",
                  "\ttypedef logic [ADDR_WIDTH-1:0]  addr_t;\n", "memstream.sv")


def patch_fifo(text: str) -> str:
    """Make ``abits_t`` a packed struct (two 32-bit fields; same values, constant-evaluable)."""
    return _replace_once(text, "\ttypedef struct {\n\t\tint unsigned  lo;", "\ttypedef struct packed {\n\t\tint unsigned  lo;",
                         "fifo.sv")


def patch_fifo_wrapper(text: str) -> str:
    """Simulate the synthesised ``fifo`` rather than the FIFO-sizing gauge that FINN_SIMULATION selects."""
    return _replace_once(text, "`ifdef FINN_SIMULATION", "`ifdef SAMFPGA_FIFO_GAUGE", "StreamingFIFO wrapper")


def patch_skid(text: str) -> str:
    """Give the elaboration-time ``$error`` in skid.sv the argument its ``%0d`` refers to (message only)."""
    return _replace_once(text, 'exceeds SRL capacity.");', 'exceeds SRL capacity.", FEED_STAGES);', "skid.sv")


def patch_inner_shuffle(text: str) -> str:
    """Replace ``packed_rotidx_vec_t'(RdPat)`` and ``rotidx_vec_t'(rd_pat_forwarded_packed)`` (bit-stream casts,
    unsupported by Verilator) by the equivalent left-to-right streaming concatenations (IEEE 1800-2017 6.24.3:
    a bit-stream cast packs/unpacks as ``{>>{...}}``)."""
    text = _replace_once(text, "\t\t.idat(packed_rotidx_vec_t'(RdPat)),", "\t\t.idat(rd_pat_packed),",
                         "inner_shuffle.sv")
    text = _replace_once(text, "\t//=======================================================================\n\tskid #(\n"
                         "\t\t.DATA_WIDTH($bits(packed_rotidx_vec_t))",
                         "\tuwire packed_rotidx_vec_t  rd_pat_packed;\n\tassign  rd_pat_packed = {>>{RdPat}};\n"
                         "\t//=======================================================================\n\tskid #(\n"
                         "\t\t.DATA_WIDTH($bits(packed_rotidx_vec_t))", "inner_shuffle.sv")
    return _replace_once(text, "\tassign rd_pat_forwarded = rotidx_vec_t'(rd_pat_forwarded_packed);",
                         "\tassign {>>{rd_pat_forwarded}} = rd_pat_forwarded_packed;", "inner_shuffle.sv")


def patch_requant(text: str) -> str:
    """requant.sv under Verilator: its three ``typedef struct`` -> ``typedef struct packed`` (all members 2-state
    integral; Verilator 5.48 cannot constant-evaluate the elaboration functions derive_MUL_WIDTHS, derive_PARAMS,
    derive_SHIFT_MINMAX that assign members of an unpacked struct), ``$shortrealtobits`` replaced and a zero-width
    part select of an elaboration warning masked (below)."""
    if text.count("\ttypedef struct {") != 3:
        raise ValueError("requant.sv: expected 3 unpacked struct typedefs; finn-rtllib changed, revisit the patch")
    text = text.replace("\ttypedef struct {", "\ttypedef struct packed {")
    # the parameter matrix packed as well (an element assignment of an unpacked 2-d array is not constant-evaluable)
    text = _replace_once(text, "\ttypedef params_t  params_mat_t[PE][CF];",
                         "\ttypedef params_t [PE-1:0][CF-1:0]  params_mat_t;", "requant.sv")
    # Verilator promotes shortreal to real, and its $shortrealtobits returns the 64-bit pattern of the real:
    # a constant function rebuilds the IEEE single fields from it (exact for float32-representable parameters,
    # which the build's Requant parameters are; samfpga.hw.build.requant checks it)
    f32 = ("\tfunction automatic bit [31:0] samfpga_f32bits(input real v);\n"
           "\t\tautomatic bit [63:0] b = $realtobits(v);\n"
           "\t\tif(v == 0.0)  return { b[63], 31'b0 };\n"
           "\t\treturn { b[63], 8'(int'(b[62:52]) - 1023 + 127), b[51:29] };\n"
           "\tendfunction\n")
    text = _replace_once(text, "\tlocalparam int unsigned  CF = C/PE;", "\tlocalparam int unsigned  CF = C/PE;\n" + f32,
                         "requant.sv")
    # the elaboration warning about a truncated scale mantissa selects a zero-width range when inputs fit the
    # DSP port (K <= 18: S_WIDTH 25), which Verilator rejects even in the untaken branch: same test as a mask
    text = _replace_once(text, "if(sm[0+:25-MUL_WIDTHS.s] != 0)",
                         "if((sm & ((25'(1) << (25-MUL_WIDTHS.s)) - 25'(1))) != 0)", "requant.sv")
    return text.replace("$shortrealtobits(", "samfpga_f32bits(")


PATCHES: dict[str, Callable[[str], str]] = {
    "requant.sv": patch_requant,
    "inner_shuffle.sv": patch_inner_shuffle,
    "add_multi.sv": patch_add_multi,
    "memstream.sv": patch_memstream,
    "fifo.sv": patch_fifo,
    "skid.sv": patch_skid,
}
_WRAPPER_PATCHES: list[tuple[re.Pattern[str], Callable[[str], str]]] = [
    (re.compile(r"StreamingFIFO_rtl_\w*\.v$"), patch_fifo_wrapper),
]


def patch_for(path: Path) -> Callable[[str], str] | None:
    """The patch that applies to a source file name, or None."""
    if path.name in PATCHES:
        return PATCHES[path.name]
    if path.name.endswith("_requant.sv"):  # a node's copy of requant.sv with its ROM style (custom_ops.requant_rom)
        return PATCHES["requant.sv"]
    for pattern, fn in _WRAPPER_PATCHES:
        if pattern.search(path.name):
            return fn
    return None


def stage_sources(files: list[str | Path], dest: Path) -> list[Path]:
    """Copy ``files`` into ``dest`` (patching where needed), keeping order and dropping duplicates.

    Returns the staged paths. Files of the same name must be identical (FINN's library has unique names).
    """
    dest.mkdir(parents=True, exist_ok=True)
    staged: list[Path] = []
    seen: dict[str, Path] = {}
    for f in files:
        src = Path(f)
        if not src.is_file():
            raise FileNotFoundError(f"HDL source not found: {src}")
        if src.name in seen:
            if seen[src.name].resolve() != src.resolve() and seen[src.name].read_bytes() != src.read_bytes():
                raise ValueError(f"two different HDL sources named {src.name}: {seen[src.name]} and {src}")
            continue
        seen[src.name] = src
        out = dest / src.name
        fn = patch_for(src)
        if fn is None:
            shutil.copyfile(src, out)
        else:
            out.write_text(fn(src.read_text()))
        staged.append(out)
    return staged


def finn_rtllib() -> Path:
    """Folder of FINN+'s bundled RTL library."""
    import finn

    return Path(finn.__file__).parent / "finn-rtllib"


def memstream_sources() -> list[Path]:
    """Sources of FINN's weight-stream memory (used by MVAU_rtl in mem_mode internal_decoupled)."""
    lib = finn_rtllib()
    return [lib / "axi/hdl/axilite.sv", lib / "memstream/hdl/memstream.sv", lib / "memstream/hdl/memstream_axi.sv"]


def dynload_sources() -> list[Path]:
    """Source of FINN's dynamic weight loader (MVAU_rtl in mem_mode dynamic: the attention matmuls)."""
    return [finn_rtllib() / "dynload/hdl/dynamic_load.sv"]
