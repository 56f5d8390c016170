"""FINN's parameter memstream for a layer of a rolled body: every iteration's set in one memory, the set chosen by
counting tokens inside the wrapper.

FINN's memstream (finn-rtllib/memstream) holds ``SETS`` sets of ``DEPTH`` words and streams one whole set per
index it takes on its set-select stream (``s_axis_0``), which FINN+'s MLO flow feeds from its loop's stream tap.
A layer of this project's rolled bodies counts its own passes instead (``samfpga.hw.custom_ops.looped``): the
wrapper written here feeds the set select itself, index i ``repeat`` times (once per token of a pass, for a matrix
unit's weights or a requantiser's per-channel words) and then i + 1, wrapping after the last set. The wrapper keeps
FINN's ports, so it stitches as FINN's does; its ``s_axis_0`` is ignored (tready low). The patch is a few exact,
must-match-once replacements of FINN's generated text: a changed template fails loudly.
"""

from __future__ import annotations

from pathlib import Path

_SETS = "\tparameter  SETS = 1,\n"
_SELECT = ("\t\t.s_axis_0_tready(s_axis_0_tready),\n"
           "\t\t.s_axis_0_tvalid(s_axis_0_tvalid),\n"
           "\t\t.s_axis_0_tdata(s_axis_0_tdata),\n")
_CORE = "\tmemstream_axi #(\n"


def _sequencer(repeat: int) -> str:
    return (
        "\t// samfpga (custom_ops/looped_memstream.py): this layer serves SETS blocks of a rolled body in turn; set i\n"
        "\t// is streamed REPEAT times (once per token of a pass), then set i+1, so nothing outside selects the set\n"
        f"\tlocalparam  REPEAT = {repeat};\n"
        "\tlocalparam  REP_BITS = REPEAT > 1? $clog2(REPEAT) : 1;\n"
        "\twire  seq_rdy;\n"
        "\treg [SET_BITS-1:0]  SeqSet = 0;\n"
        "\treg [REP_BITS-1:0]  SeqRep = 0;\n"
        "\talways @(posedge ap_clk) begin\n"
        "\t\tif(!ap_rst_n) begin\n"
        "\t\t\tSeqSet <= 0;\n"
        "\t\t\tSeqRep <= 0;\n"
        "\t\tend\n"
        "\t\telse if(seq_rdy) begin\n"
        "\t\t\tif(SeqRep == REPEAT-1) begin\n"
        "\t\t\t\tSeqRep <= 0;\n"
        "\t\t\t\tSeqSet <= (SeqSet == SETS-1)? 0 : SeqSet + 1;\n"
        "\t\t\tend\n"
        "\t\t\telse  SeqRep <= SeqRep + 1;\n"
        "\t\tend\n"
        "\tend\n"
        "\tassign  s_axis_0_tready = 0;\n\n"
    )


def _once(text: str, old: str, new: str, where: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"{where}: expected exactly one {old.strip()[:50]!r} in FINN's memstream wrapper; "
                         "finn-rtllib changed, revisit samfpga.hw.custom_ops.looped_memstream")
    return text.replace(old, new)


def self_counting(text: str, sets: int, repeat: int, where: str = "memstream wrapper") -> str:
    """FINN's memstream wrapper ``text`` (generated with SETS = 1) holding ``sets`` sets, set i streamed ``repeat``
    times before set i + 1."""
    if sets < 2 or repeat < 1:
        raise ValueError(f"{where}: a looped memstream needs sets >= 2 and repeat >= 1 (got {sets}, {repeat})")
    text = _once(text, _SETS, f"\tparameter  SETS = {sets},\n", where)
    text = _once(text, _SELECT, "\t\t.s_axis_0_tready(seq_rdy),\n\t\t.s_axis_0_tvalid(1'b1),\n"
                                "\t\t.s_axis_0_tdata(SeqSet),\n", where)
    return _once(text, _CORE, _sequencer(repeat) + _CORE, where)


def patch_wrapper(path: Path, sets: int, repeat: int) -> None:
    """Rewrite the generated wrapper at ``path`` in place with ``self_counting``."""
    from samfpga.hw.custom_ops.rtl_base import write_text_atomic

    write_text_atomic(path, self_counting(path.read_text(), sets, repeat, where=str(path)))


def concat_memblocks(parts: list[str]) -> str:
    """One init file from the per-iteration ``.dat`` texts (one hex word per line), iteration 0 first."""
    words = [line for text in parts for line in text.split()]
    return "\n".join(words) + "\n"
