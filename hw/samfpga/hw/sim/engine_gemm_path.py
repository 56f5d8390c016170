"""The engine's GEMM path as one design (``hw/samfpga/hw/rtl/engine_gemm_path.sv``: access reader -> widened
activations -> token_batch_mvu -> access writer): which steps of an engine program it runs, their register values,
a DDR image holding the program's weights and stored tensors, and the Verilator + cocotb runner of its bench
(``engine_gemm_path_bench``).

A step runs here when its GEMM needs no table or sliding window on its input stream other than the image's
(``path_steps``) and its layer fills whole folds (no padded inputs or outputs to insert or drop); a residual step's sum is added on the
unit's PE lanes and requantised by requantiser lanes whose parameters a third reader streams from DDR
(``lane_params``); a LayerNorm step's input passes the LayerNorm and its lanes (layernorm_lanes.sv at SIMD lanes,
``norm_config``, their parameters from the same reader) before the unit. A depthwise step (a 3 x 3 depthwise layer
with its lanes: ``dw_steps``) runs on the depthwise unit beside the GEMM unit (dw_core.sv at ``DW_PE`` channels per
beat, ``dw_config``; its weights and its lanes' parameters from the same reader), the map read as one strip. A
window step (a 3 x 3 convolution: ``window_steps``) runs on the GEMM unit behind the depthwise unit's window alone
(cfg_window): the map's patches in the window's order (beat, tap, lane), the layer's weight rows permuted to match
and channels padded to whole beats of ``DW_PE`` (``window_layer``, its own weight image); a convolution after a
LayerNorm (the neck's first) has the LayerNorm and its lanes between the reader and the window. The attention's
steps (``attention_steps``) run the unit as a raw frame: QK^T's sums as rows (raw_rows.sv) through the softmax (its
parameter set per layer: ``rows_config``, ``softmax_params``); the V transpose's as their low bytes (the unit's raw
frame of low bytes) straight into AV's weight image (``av_image``, ``av_rows_write``); AV is then a plain frame over
that image. The image's
step (the first convolution on the raw image: ``image_steps``) runs on the GEMM unit behind the image window
(image_window.sv: each byte through its channel's table, which the parameter reader streams first, 3 x 3 patches
at stride 2), the image stored 4 bytes a pixel (``image_window.stored_image``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from samfpga.hw.sim import access_reader as ar
from samfpga.hw.sim import image_window as iw
from samfpga.hw.sim.access_reader import AccessFrame
from samfpga.hw.sim.dma_access import Access
from samfpga.hw.sim.lane_requant import int_dtype
from samfpga.hw.sim.own_rtl import build_own_rtl, run_bench
from samfpga.hw.sim.toolchain import setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.engine_gemm_path_bench"
AXIL_BENCH_MODULE = "samfpga.hw.sim.engine_gemm_path_axil_bench"
#: the unit's parameters the path passes through (token_batch_mvu.sv's, RQ / RT_SHAPE / A_SIGNED fixed to 1)
UNIT_PARAMS = ("MW", "MH", "SIMD", "PE", "A_BITS", "W_BITS", "ACC_BITS", "B", "AXI_DW", "AXI_AW", "MAX_BURST",
               "WFIFO_DEPTH", "CNT_BITS", "OUT_BITS", "RS_BITS", "RB_BITS", "RT_BITS", "PQ_DEPTH", "DOT", "RAW_OUT",
               "RAW_BITS")
PAGE = 4096


def plain_gemm_steps(prog) -> list:
    """The steps of ``prog`` (an ``EngineProgram``) the GEMM path runs without its residual adder, LayerNorm or
    window: kind gemm, nothing on the unit's streams, whole folds in and out."""
    return [s for s in path_steps(prog) if s.kind == "gemm" and s.residual is None and s.ln is None
            and s.window is None]


def dw_pe(prog) -> int:
    """Channels per beat of the path's depthwise unit: the program's ``lanes["dw_pe"]``, by default the GEMM unit's
    SIMD (the reader's bytes per beat)."""
    return prog.lanes.get("dw_pe", prog.unit.simd)


def ln_pe(prog) -> int:
    """Lanes of the path's LayerNorm: the program's ``lanes["ln_pe"]``, by default half the unit's SIMD (as the
    plan's engines run it narrower than the unit, ``EngineConfig.ln_lanes``; its beats re-cut from and to the
    unit's), at least 1."""
    return prog.lanes.get("ln_pe", max(1, prog.unit.simd // 2))


#: the side units' lanes a program may choose (``EngineProgram.lanes``)
LANE_KEYS = ("dw_pe", "ln_pe", "sm_pe")


def with_lanes(prog, lanes: dict[str, int]):
    """``prog`` (a copy) with its path's side units at ``lanes`` (``LANE_KEYS``; one missing keeps its default).
    ``ValueError`` for an unknown key or a value below 1, and naming the first step the path runs at the default
    lanes but not at these (channels not whole beats of ``dw_pe``), or the softmax's keys (not whole rows of
    ``sm_pe`` lanes, or ``sm_pe`` above the unit's PE) or the LayerNorm's channels (not whole beats of ``ln_pe``)."""
    from dataclasses import replace as _replace

    for k, v in lanes.items():
        if k not in LANE_KEYS or v < 1:
            raise ValueError(f"lanes {k} = {v}: expected one of {', '.join(LANE_KEYS)}, at least 1")
    out = _replace(prog, lanes={**prog.lanes, **lanes})
    before, after = {s.name for s in path_steps(prog)}, {s.name for s in path_steps(out)}
    lost = [s.name for s in prog.steps if s.name in before - after]
    if lost:
        raise ValueError(f"step {lost[0]}: the path runs it at its default lanes but not at {lanes}")
    rows_config(out)  # raises for sm_pe
    norm_config(out)  # raises for ln_pe (layernorm_lanes: channels not whole beats of its lanes)
    return out


def dw_steps(prog) -> list:
    """The program's depthwise steps the path runs: 3 x 3, padding 1, stride 1 or 2, 8-bit inputs and outputs,
    channels whole beats of ``dw_pe``, no residual."""
    return [s for s in prog.steps if s.kind == "dw" and s.residual is None and s.window["kernel"] == (3, 3)
            and s.window["pad"] == (1, 1, 1, 1) and s.window["stride"][0] == s.window["stride"][1] in (1, 2)
            and s.window["dilation"] == (1, 1) and prog.dtypes[s.input.tensor] in ("INT8", "UINT8")
            and s.rq.out_bits == 8 and s.dw_weights.shape[0] % dw_pe(prog) == 0]


def dw_frame(prog, s, fmap: np.ndarray | None = None):
    """Depthwise step ``s`` as the depthwise unit's frame (``dw_core.DwFrame``; ``fmap`` its input map (H, W, C),
    zeros when only its configuration and parameters are needed)."""
    from samfpga.hw.sim.dw_core import DwFrame

    shape = tuple(s.input.shape[-3:])
    return DwFrame(np.zeros(shape, np.int64) if fmap is None else np.asarray(fmap).reshape(shape), s.dw_weights,
                   s.rq, stride=s.window["stride"][0], in_unsigned=prog.dtypes[s.input.tensor].startswith("UINT"))


def dw_config(prog):
    """The path's depthwise unit (``dw_core.DwCoreConfig`` at ``dw_pe``, its lanes of the path's lane widths) for
    the program's depthwise steps; None when it has none."""
    from samfpga.hw.sim.dw_core import DwCoreConfig

    steps = dw_steps(prog)
    if not steps:
        return None
    cfg = DwCoreConfig.covering([dw_frame(prog, s) for s in steps]
                                + [window_frame(prog, s) for s in window_steps(prog)], dw_pe(prog))
    w = _lane_widths(prog)
    return replace(cfg, lanes=replace(cfg.lanes, s_bits=w["L_S_BITS"], b_bits=w["L_B_BITS"], t_bits=w["L_T_BITS"]))


def _window_ok(prog, s) -> bool:
    """Whether GEMM step ``s`` is a 3 x 3 convolution the path runs behind the depthwise unit's window: padding 1,
    stride 1 or 2, no table or residual, whole folds of outputs, its input read from its start and its output
    written in order, on 8-bit inputs or after a LayerNorm (on raw sums or bytes, 8-bit outputs, channels whole
    beats of both units)."""
    w = s.window
    if not (s.kind == "gemm" and w is not None and s.table is None and s.residual is None and s.write is None
            and w["kernel"] == (3, 3) and w["pad"] == (1, 1, 1, 1) and w["stride"][0] == w["stride"][1] in (1, 2)
            and w["dilation"] == (1, 1) and writer_access(prog, s) is not None and not s.input.access.loops
            and s.input.access.offset == 0):
        return False
    if s.ln is not None:  # the LayerNorm's outputs go to the window: no channels to pad
        c = s.ln.channels
        return (c % prog.unit.simd == 0 and s.ln_rq.out_bits == 8 and window_channels(c, dw_pe(prog), prog.unit.simd) == c
                and prog.dtypes[s.input.tensor].startswith("INT")
                and prog.elem_bytes(s.input.tensor) in (1, _raw_bytes(prog)))
    return prog.dtypes[s.input.tensor] in ("INT8", "UINT8")


def window_steps(prog) -> list:
    """The program's 3 x 3 convolutions the path runs on the GEMM unit behind the depthwise unit's window
    (``_window_ok``)."""
    if not dw_steps(prog):  # the window is the depthwise unit's: a path without one has none
        return []
    return [s for s in prog.steps if _window_ok(prog, s)]


def _image_ok(prog, s) -> bool:
    """Whether GEMM step ``s`` is the first convolution the path runs behind the image window: the image's table on
    its input, 3 x 3 at stride 2 and padding 1, the image (even height and width, up to 4 channels, whole beats of
    SIMD when stored 4 bytes a pixel) read from its start in order, the table's values 8 bits, the patch's
    ceil(9 C / SIMD) beats the layer's MW, no residual or LayerNorm, its outputs written in order (``writer_access``)."""
    w = s.window
    if not (s.kind == "gemm" and s.table is not None and w is not None and s.residual is None and s.ln is None
            and s.write is None and w["kernel"] == (3, 3) and w["pad"] == (1, 1, 1, 1) and w["stride"] == (2, 2)
            and w["dilation"] == (1, 1) and writer_access(prog, s) is not None and not s.input.access.loops
            and s.input.access.offset == 0 and s.table_lo == 0 and s.table.shape[1] == 256):
        return False
    h, wd, c = s.input.shape[-3:]
    simd = prog.unit.simd
    lo, hi = int(s.table.min()), int(s.table.max())
    return (h % 2 == 0 and wd % 2 == 0 and c <= iw.PIXEL_BYTES and (h * wd * iw.PIXEL_BYTES) % simd == 0
            and s.mw == 9 * c and s.layer.mw == -(-9 * c // simd) * simd
            and (-128 <= lo and hi <= 127 or 0 <= lo and hi <= 255))


def image_steps(prog) -> list:
    """The program's first convolution on the raw image, when the path runs it behind the image window
    (``_image_ok``)."""
    return [s for s in prog.steps if _image_ok(prog, s)]


def padded_consumer(prog, s):
    """The window step (without a LayerNorm) that reads step ``s``'s output as a map of more channels a pixel than
    ``s`` writes (``window_channels``: its C' padded to whole beats), or None. ``s`` then writes the padded map's
    real channels (``image_write``), its padding left as the DDR holds it (zeros: ``ddr_images``)."""
    for w in window_steps(prog):
        if w.ln is None and w.input.tensor == s.output:
            c = w.input.shape[-1]
            if window_channels(c, dw_pe(prog), prog.unit.simd) > c:
                return w
    return None


def image_write(prog, s) -> Access:
    """Image step ``s``'s writer pattern: its outputs in order, or (read by a window step as a map of padded
    channels: ``padded_consumer``) each pixel's channels at the padded map's pixel stride."""
    n = int(np.prod(s.out_shape))
    w = padded_consumer(prog, s)
    if w is None:
        return Access(0, n, ())
    c = s.out_shape[-1]
    return Access(0, c, ((n // c, window_frame(prog, w).fmap.shape[-1]),))


def image_config(prog) -> tuple[int, int] | None:
    """The image window's build (IMG_W_MAX, IMG_C): the widest image of ``image_steps`` and its channels; None
    without one."""
    st = image_steps(prog)
    if not st:
        return None
    return max(s.input.shape[-2] for s in st), max(s.input.shape[-1] for s in st)


def image_bytes(prog, s, image: np.ndarray) -> bytes:
    """Image step ``s``'s input ``image`` (the program's flat integers) as the path reads it: 4 bytes a pixel."""
    return iw.stored_image(np.asarray(image, dtype=np.int64).reshape(s.input.shape[-3:]).astype(np.uint8))


def image_table(prog, s) -> bytes:
    """Image step ``s``'s table as the parameter reader streams it (``image_window.table_bytes``), zeros to whole
    beats of the reader's stream."""
    from samfpga.hw.sim.requant_lanes import param_bytes

    t = iw.table_bytes(s.table)
    return t + bytes(-len(t) % param_bytes(lanes_config(prog)))  # whole beats of the parameter reader's stream


def window_channels(c: int, pe: int, simd: int) -> int:
    """Channels a pixel of a window step's map as the window reads it: ``c`` padded to whole beats of the depthwise
    unit's ``pe`` whose patch (9 x that) is whole beats of the GEMM unit's ``simd`` (the plan's
    ``engine.window_channels``)."""
    import math

    return -(-c // (m := math.lcm(pe, simd // math.gcd(9, simd)))) * m


def window_frame(prog, s, fmap: np.ndarray | None = None):
    """Window step ``s``'s map as the depthwise unit's window frame (``dw_core.DwFrame``, window alone): (H, W, C')
    with C' = ``window_channels`` (padded channels zero), ``fmap`` its values (H, W, C) (zeros when None); the
    input's sign is the LayerNorm's clip after one, else the stored input's."""
    from samfpga.hw.sim.dw_core import DwFrame

    h, w, c = s.input.shape[-3:]
    x = np.zeros((h, w, window_channels(c, dw_pe(prog), prog.unit.simd)), np.int64)
    if fmap is not None:
        x[..., :c] = np.asarray(fmap).reshape(h, w, c)
    unsigned = not s.ln_rq.out_signed if s.ln is not None else prog.dtypes[s.input.tensor].startswith("UINT")
    return DwFrame(x, None, None, stride=s.window["stride"][0], in_unsigned=unsigned, window=True)


def window_layer(prog, s) -> tuple:
    """Window step ``s`` on the GEMM unit: its layer (``token_batch_mvu.layer_shape`` over 9 C' inputs: the window's
    patch order, ``dw_core.patch_index``) and that layer's weight image (the program's weights, rows permuted, a
    padded channel's rows zero; the requantisation words as they were)."""
    from samfpga.hw.sim import token_batch_mvu as tb
    from samfpga.hw.sim.dw_core import patch_index

    c = s.input.shape[-1]
    idx = patch_index(c, dw_pe(prog), window_channels(c, dw_pe(prog), prog.unit.simd))
    w = tb.unpack_weights(prog.image, 1, s.layer, base=s.offset)  # (1, mh, mw): FINN's im2col order, padded
    w = np.where(idx >= 0, w[:, :, np.maximum(idx, 0)], 0)
    rq = tb.unpack_requant(prog.image, 1, s.layer, base=s.offset) if s.layer.requantises else None
    layer = replace(tb.layer_shape(prog.unit, len(idx), s.layer.mh, raw=s.layer.raw), out_bits=s.layer.out_bits,
                    out_signed=s.layer.out_signed)
    return layer, tb.pack_weights(w, layer, rq=rq)


def model_cycles(prog, s) -> int:
    """The cycles path step ``s`` is bound by: a GEMM step's unit schedule (``EngineStep.unit_cycles``, a residual
    step's drain through its lanes after it: ``residual_drain``; the V
    transpose's on the path's raw frame, ``vt_layer``); a
    depthwise step's larger of its padded input's beats (one a cycle into the window: (H + 2) (W + 2) C / DW_PE) and
    the writer's beats (PE bytes a cycle); a LayerNorm-only step's larger of its reader's beats and its rows. None
    counts the parameters or the DMAs' start."""
    if s.kind == "layernorm":  # its reader's beats, or its rows through the LayerNorm (max(C/LN_PE, 5) cycles each)
        c = s.ln.channels
        tokens = int(np.prod(s.out_shape)) // c
        return max(-(-tokens * c * prog.elem_bytes(s.input.tensor) // prog.unit.simd),
                   tokens * max(c // ln_pe(prog), 5))
    if s.kind == "gemm" and any(s is x for x in window_steps(prog)):  # the unit's schedule of the window's layer
        from samfpga.hw.sim import token_batch_mvu as tb

        return tb.schedule_cycles(window_layer(prog, s)[0], 1, s.tokens)["total"]
    if any(s is x for x in image_steps(prog)):  # the unit's schedule, or the image window's rows
        h, w, c = s.input.shape[-3:]
        return max(s.unit_cycles, iw.model_cycles(h, w, c, prog.unit.simd))
    if s.kind == "vt":  # the path's raw frame (its outputs raw_words beats a fold), not the program's identity
        from samfpga.hw.sim import token_batch_mvu as tb

        return tb.schedule_cycles(vt_layer(prog, s), s.iters, vt_tokens(prog, s))["total"]
    if s.kind != "dw":
        return s.unit_cycles + residual_drain(prog, s)
    h, w, c = s.input.shape[-3:]
    return max((h + 2) * (w + 2) * c // dw_pe(prog), -(-int(np.prod(s.out_shape)) // prog.unit.pe))


def residual_drain(prog, s) -> int:
    """Cycles a residual step takes past the unit's schedule: its last batch drains through the residual lanes
    (``res_lanes``), PE / lanes times slower than the unit sends it (the plan's term, ``engine.step_of``); 0 for
    other steps."""
    from samfpga.hw.sim import requant_lanes

    if s.residual is None:
        return 0
    return requant_lanes.residual_drain(min(s.tokens, s.layer.batch), s.mh, res_lanes(prog), prog.unit.pe)


def _layernorm_only(prog, s) -> bool:
    """A LayerNorm step no GEMM follows (the neck's last) that the path runs: on raw sums of the unit's raw words
    (or bytes), channels whole beats of SIMD, 8-bit outputs written in order."""
    return (s.kind == "layernorm" and s.residual is None and s.ln.channels % prog.unit.simd == 0
            and s.ln_rq.out_bits == 8 and s.write is None and prog.dtypes[s.input.tensor].startswith("INT")
            and prog.elem_bytes(s.input.tensor) in (1, _raw_bytes(prog)))


def _raw_bytes(prog) -> int:
    """Bytes of a raw sum as the unit stores it (its raw words; 1 for a unit without raw output)."""
    return prog.unit.raw_words if prog.unit.raw_bits else 1


def path_steps(prog) -> list:
    """Every step the GEMM path runs: the plain ones, those with a residual adder after the unit (whose 8-bit
    sums fit the adder's range: nothing to clip before the lanes), those with a LayerNorm before it (8-bit
    inputs, channels whole beats of SIMD, no residual), the depthwise steps (``dw_steps``), the 3 x 3 convolutions
    behind the window (``window_steps``), the attention's steps (``attention_steps``), the first convolution behind
    the image window (``image_steps``) and a LayerNorm no GEMM follows on raw sums (the neck's last), in program
    order."""
    from samfpga.hw.sim.lane_requant import dtype_limits
    from samfpga.kernels.requant import out_range

    out = []
    dws = dw_steps(prog) + window_steps(prog) + attention_steps(prog) + image_steps(prog)
    for s in prog.steps:
        if any(s is d for d in dws) or _layernorm_only(prog, s):
            out.append(s)
            continue
        if not (s.kind == "gemm" and s.table is None and s.window is None and s.mw == s.layer.mw
                and writer_access(prog, s) is not None and not (s.residual is not None and s.layer.raw)):
            continue
        if s.residual is not None and residual_access(prog, s) is None:
            continue
        if s.ln is not None and not (  # the LayerNorm on the path takes the reader's bytes at SIMD lanes
                s.residual is None and prog.dtypes[s.input.tensor] in ("INT8", "UINT8")
                and s.ln.channels % prog.unit.simd == 0 and s.ln_rq.out_bits == 8):
            continue
        if s.residual is not None:
            y = out_range(s.layer.out_bits, s.layer.out_signed)
            r = dtype_limits(prog.dtypes[s.residual.tensor])
            if not (s.add_range[0] <= y[0] + r[0] and y[1] + r[1] <= s.add_range[1]):
                continue
        out.append(s)
    return out


# --- the attention's steps: QK^T + softmax, the V transpose, AV ------------------------------------------------

def _block(a: Access, n: int, size: int) -> bool:
    """Whether ``a`` reads ``n`` blocks of ``size`` elements one after another (the GEMM unit's weight passes)."""
    return np.array_equal(a.indices(), a.offset + np.arange(n * size))


def _vt_of(prog, av):
    return next(v for v in prog.steps if v.kind == "vt" and v.output == av.vt_of)


def attention_steps(prog) -> list:
    """The attention's steps the path runs: QK^T (``kind`` qk: the queries read by the reader, K's rows the unit's
    weight passes, its raw sums as rows through the softmax), and a block's V transpose and AV together (vt: the
    one-hot inputs against V's rows as a raw frame of the sums' low bytes, written into AV's weight image between its
    requantisation words, ``av_image``; av: the softmax's rows against that image). QK^T when the head's dims are
    one SIMD fold, K is stored one block per window and head (``engine_program._attention_regions``), every QK^T of
    the program has the same keys (the rows' and the softmax's N are built in) and its probabilities are 8-bit
    unsigned; keys that are not whole PE folds are padded by the next block's rows (a pass reads past its block,
    ``attention_operands.qk_frame``; the qkv tensor gets that slack after it in DDR, ``layout``), whose sums
    raw_rows.sv drops (a step's rows need not be whole beats of the writer: the last one ends its stream with a
    partial beat, register sm_rows). The V transpose and AV when V is stored so too, after a QK^T on the path; AV's
    dims may be padded to whole PE folds (the pack drops them: ``writer_pattern``), its keys to whole SIMD folds (the
    bundled default's 16 keys at SIMD 32): V^T's rows then fill the first keys of each weight row, the rest zero
    (written with the image, ``av_image``), and each token's probabilities are read with what follows them
    (``av_read``: the next token's, or the tensor's slack in DDR, ``layout``), which the zero weights cancel."""
    u = prog.unit
    qks = [s for s in prog.steps if s.kind == "qk"]
    if not qks or len({s.mh for s in qks}) > 1 or not u.raw_out:
        return []
    out = [qk for qk in qks if qk.mw == u.simd == qk.layer.mw and qk.write is None
           and _block(qk.weights.access, qk.iters, qk.mh * qk.mw) and prog.dtypes[qk.output] == "UINT8"
           and (qk.mh * qk.mw) % u.burst_bytes == 0 and prog.dtypes[qk.input.tensor] in ("INT8", "UINT8")]
    for av in (s for s in prog.steps if s.kind == "av"):
        vt = _vt_of(prog, av)
        qk = next((q for q in out if q.output == av.input.tensor), None)
        keys, d = av.mw, av.mh
        if qk is not None and (av.layer.mw == -(-keys // u.simd) * u.simd and av_read(av) is not None
                               and qk.weights.tensor == vt.input.tensor and keys == qk.mh and d == qk.mw
                               and _block(vt.input.access, vt.iters, keys * d)):
            out += [vt, av]
    return [s for s in prog.steps if any(s is x for x in out)]


def av_read(av) -> Access | None:
    """AV's reader pattern over its probabilities: each token's keys, and where the unit's weight rows are padded
    to whole SIMD folds (``layer.mw`` > keys) as many values more from the token's own start (``over_padding``:
    the next token's, the zero weights cancel them; the last token's past the tensor, ``layout`` leaves that
    slack). None when the stored runs are not whole tokens."""
    return over_padding(av.input.access, av.iters * av.tokens, av.mw, av.layer.mw)


def _av_of(prog, vt):
    return next(a for a in prog.steps if a.kind == "av" and a.vt_of == vt.output)


def vt_tokens(prog, s) -> int:
    """The V transpose's one-hot inputs on the path: AV's dims d when V^T's d rows have an affine place in AV's
    image (d within one fold of PE rows, or whole folds; AV's weight rows past d are zeros the host writes with the
    image's requantisation words: ``av_image``), else AV's dims padded to whole PE folds (zero inputs past d write
    those zero rows: whole folds of rows, one affine pattern)."""
    av = _av_of(prog, s)
    return av.mh if _rows_write(prog, av, av.mh) is not None else av.layer.mh


def vt_layer(prog, s):
    """The V transpose's frame on the path (``token_batch_mvu.layer_shape``): ``vt_tokens`` one-hot inputs of d
    values against V's keys rows as a raw frame whose sums leave as their low bytes (V's values: no requantisation
    words around V; ``attention_operands.transpose_raw_shape``), straight to the writer (``writer_pattern``)."""
    from samfpga.hw.sim.attention_operands import transpose_raw_shape

    return transpose_raw_shape(s.mh, s.mw, prog.unit, vt_tokens(prog, s))


def onehot(prog, s) -> bytes:
    """The V transpose's inputs: the one-hot vectors e_0 .. e_{d-1} of the frame's MW values (the identity's rows,
    bytes; the reader reads them once per iteration)."""
    c = vt_layer(prog, s)
    return np.eye(vt_tokens(prog, s), c.mw, dtype=np.uint8).tobytes()


def av_image(prog, av, rows: np.ndarray | None = None, seed: int = 5) -> bytes:
    """AV's weight image for its iterations (``token_batch_mvu.pack_weights`` at the layer's smallest stride): each
    fold's requantisation words (``rq_params``) ahead of V^T's rows ``rows`` (iters, d, keys), zero rows past d
    (random rows when None: the image before the V transpose writes them). The host writes the image once with the
    requantisation words and the zero rows; each V transpose writes V^T's rows (``av_rows_write``)."""
    from samfpga.hw.sim import token_batch_mvu as tb

    c = av.layer
    w = np.zeros((av.iters, c.mh, c.mw), np.int64)
    w[:, :av.mh, :av.mw] = (np.random.default_rng(seed).integers(-128, 128, (av.iters, av.mh, av.mw)) if rows is None
                            else np.asarray(rows, np.int64).reshape(av.iters, av.mh, av.mw))
    return tb.pack_weights(w, c, rq=av.rq_params)


def av_rows_write(prog, av) -> Access:
    """The V transpose's writer pattern: V^T's ``vt_tokens`` rows of each iteration as its stream brings them
    (iteration, dim, key) to their places in ``av_image`` (between the requantisation words: whole SIMD runs),
    found from the image itself."""
    a = _rows_write(prog, av, vt_tokens(prog, _vt_of(prog, av)))
    if a is None:
        raise ValueError(f"step {av.name}: V^T's rows have no affine place in AV's weight image")
    return a


def _rows_write(prog, av, n_rows: int) -> Access | None:
    """``av_rows_write`` for the first ``n_rows`` rows of each iteration; None when their places are not one affine
    pattern."""
    from samfpga.hw.sim import token_batch_mvu as tb
    from samfpga.hw.sim.dma_access import factor

    c = av.layer
    n = av.iters * n_rows * av.mw
    idx = np.zeros((av.iters, c.mh, c.mw), np.int64)
    idx[:, :n_rows, :av.mw] = np.arange(n).reshape(av.iters, n_rows, av.mw)
    rows = np.zeros_like(idx)
    rows[:, :n_rows, :av.mw] = 1
    planes = [np.frombuffer(tb.pack_weights(((idx >> 8 * b) & 0xFF) - 128, c, rq=av.rq_params), np.uint8)
              for b in range(3)]
    ones = np.frombuffer(tb.pack_weights(rows, c, rq=av.rq_params), np.uint8)
    zeros = np.frombuffer(tb.pack_weights(np.zeros_like(idx), c, rq=av.rq_params), np.uint8)
    pos = np.flatnonzero(ones != zeros)  # the rows' bytes (the requantisation words are the same in both)
    elem = sum(((planes[b][pos].astype(np.int64) + 128) & 0xFF) << 8 * b for b in range(3))
    where = np.empty(n, np.int64)
    where[elem] = pos
    a = factor(where)
    return None if a is None or pos.size != n else a


def over_padding(a: Access, tokens: int, mh: int, mhp: int) -> Access | None:
    """Reader pattern ``a`` over ``tokens`` tokens of ``mh`` elements for a stream of ``mhp`` >= ``mh`` elements a
    token (a residual beside the unit's outputs padded to whole PE folds; AV's probabilities against its weight
    rows padded to whole SIMD folds): each token's ``mhp`` elements from its
    own start, the padded ones (what follows the token) read and dropped; runs of several tokens split into one
    run a token (one loop more). ``a`` itself when ``mh == mhp``; None when its runs are not whole tokens."""
    if mh == mhp:
        return a
    if a.run % mh or a.size != tokens * mh:
        return None
    return replace(_token_runs(a, mh), run=mhp)


def _token_runs(a: Access, mh: int) -> Access:
    """Pattern ``a``, whose runs are whole tokens of ``mh`` elements, as one run a token (a run of several tokens
    split by one loop more, or two where their count exceeds the walk's counters: vit_t's 512 x 512 stem map).
    ValueError when no two counts that fit make it."""
    k = a.run // mh
    return Access(a.offset, mh, (*a.loops, *_counted(k, mh)) if k > 1 else a.loops)


def _counted(k: int, stride: int) -> tuple[tuple[int, int], ...]:
    """A loop of ``k`` iterations ``stride`` apart as the walk's counters take it: one loop, or two (k / d at
    d x stride, d at stride) where ``k`` exceeds a counter (vit_t at 1024²: 65,536 tokens of stage 0 or of a block's
    windows). ValueError when no two counts that fit make ``k``."""
    top = (1 << ar.COUNT_BITS) - 1
    if k <= top:
        return ((k, stride),)
    d = next((d for d in range(top, 1, -1) if k % d == 0 and k // d <= top), None)
    if d is None:
        raise ValueError(f"a loop of {k} iterations: no two counts of at most {top} make it")
    return (k // d, d * stride), (d, stride)


@dataclass(frozen=True)
class WriterPattern:
    """A step's writer configuration: ``access`` over its tensor's elements, and what token_pack.sv keeps of the
    unit's stream before it: tokens of ``beats`` beats of PE bytes, of which the first ``keep`` bytes are written
    (the rest the unit's outputs padded to whole PE folds); beats 0: every byte."""

    access: Access
    beats: int = 0
    keep: int = 0


def packed_writer(prog, a: Access, mh: int, mhp: int, elem_bytes: int) -> WriterPattern | None:
    """Writer pattern ``a`` (tokens of ``mh`` elements of ``elem_bytes`` bytes, in stream order) for a stream of
    ``mhp`` elements a token, the last ``mhp - mh`` the unit's padding, which token_pack.sv drops: ``a`` with tokens
    of ``mhp * elem_bytes / PE`` beats keeping ``mh * elem_bytes`` bytes. ``a`` alone when ``mh == mhp``. None when
    the kept bytes are not a multiple of G = gcd(PE, the port's bytes), as the pack needs (such a step is not on the
    path: ``path_steps``)."""
    if mh == mhp:
        return WriterPattern(a)
    pe, port = prog.unit.pe, prog.unit.axi_dw // 8
    keep = mh * elem_bytes
    if keep % math.gcd(pe, port) or (mhp * elem_bytes) % pe:
        return None
    return WriterPattern(a, mhp * elem_bytes // pe, keep)


def _stored_write(prog, s) -> Access:
    """Step ``s``'s writer pattern over its tensor's elements, outputs unpadded: AV's stored pattern, the image
    step's (``image_write``), the program's store pattern, or in order."""
    if s.table is not None:  # the image step (only it reads through a table)
        return image_write(prog, s)
    return s.write if s.write is not None else Access(0, int(np.prod(s.out_shape)), ())


def writer_pattern(prog, s) -> WriterPattern | None:
    """Step ``s``'s writer: ``_stored_write``, and where the unit's outputs are padded to whole PE folds
    (``layer.mh`` > ``mh``: a GEMM step's or AV's; zero weights and requantisers, so the padded outputs are 0) the
    padding dropped before the writer (``packed_writer``). A V transpose's: V^T's rows into AV's image
    (``av_rows_write``), its keys padded to whole PE folds (the next block's V values) dropped. None where the
    padding cannot be dropped (``packed_writer``)."""
    if s.kind == "vt":
        return packed_writer(prog, av_rows_write(prog, _av_of(prog, s)), s.mh, vt_layer(prog, s).mh, 1)
    if s.kind in ("gemm", "av"):
        return packed_writer(prog, _stored_write(prog, s), s.mh, s.layer.mh, prog.elem_bytes(s.output))
    return WriterPattern(_stored_write(prog, s))


def writer_access(prog, s) -> Access | None:
    """GEMM or AV step ``s``'s writer pattern (``writer_pattern``'s access; None: none)."""
    w = writer_pattern(prog, s)
    return None if w is None else w.access


def residual_access(prog, s) -> Access | None:
    """Residual step ``s``'s residual reader pattern: its operand's, over the unit's padded outputs
    (``over_padding``; the lanes zero the padded channels whatever they read there); None when it does not
    compose."""
    return over_padding(s.residual.access, s.iters * s.tokens, s.mh, s.layer.mh)


def rows_config(prog) -> dict | None:
    """The attention's rows on the path (raw_rows.sv + int_softmax.sv): keys N, folds of PE sums, lanes (the
    largest divisor of N up to PE), the raw sums' width, and the softmax's parameter sets, one per QK^T step in
    program order (its sm_set). None when the path runs no attention step."""
    qks = [s for s in attention_steps(prog) if s.kind == "qk"]
    if not qks:
        return None
    u, n = prog.unit, qks[0].mh
    pe = prog.lanes.get("sm_pe", max(k for k in range(1, u.pe + 1) if n % k == 0))
    if n % pe or pe > u.pe:
        raise ValueError(f"softmax lanes sm_pe = {pe}: must divide the attention's {n} keys and be at most the "
                         f"unit's PE {u.pe}")
    return {"n": n, "nf": qks[0].layer.mh // u.pe, "pe": pe,
            "in_bits": u.raw_bits, "sets": [s.softmax for s in qks], "names": [s.name for s in qks]}


def _lane_rq(s):
    """The requantiser lanes' parameters of path step ``s``: its residual's, its LayerNorm's or its depthwise
    unit's (None: none of them)."""
    if s.kind == "dw":
        return s.rq
    if s.residual is None:
        return s.ln_rq
    pad = s.layer.mh - s.add_rq.channels  # the unit's padded outputs: zero parameters, so 0 whatever is added
    if pad <= 0:
        return s.add_rq
    from samfpga.hw.sim.lane_requant import LaneRequant

    r = s.add_rq
    return LaneRequant(*(np.concatenate([a, np.zeros(pad, np.int64)]) for a in (r.scale, r.bias, r.shift)),
                       r.out_bits, r.out_signed)


def _lane_widths(prog) -> dict[str, int]:
    """requant_lanes.sv's widths for every residual, LayerNorm and depthwise step's lanes (at least the unit's
    requantiser widths; the three sets of lanes take their parameters from one reader, so in one format); the
    residual lanes' entries."""
    from samfpga.hw.sim.lane_requant import signed_bits

    u = prog.unit
    steps = path_steps(prog)
    rqs = [_lane_rq(s) for s in steps if _lane_rq(s) is not None]
    rl = res_lanes(prog)
    return {"L_S_BITS": max([u.rq_scale_bits] + [signed_bits(r.scale) for r in rqs]),
            "L_B_BITS": max([u.rq_bias_bits] + [signed_bits(r.bias) for r in rqs]),
            "L_T_BITS": max([u.rq_shift_bits] + [int(r.shift.max()).bit_length() for r in rqs]),
            "L_DEPTH": max([1] + [_lane_rq(s).channels // rl for s in steps if s.residual is not None])}


def res_lanes(prog) -> int:
    """The residual adder's lanes on the path (``requant_lanes.residual_lanes``: the fewest that keep up with the
    unit on every residual step it runs, a divisor of PE); PE when it runs none."""
    from samfpga.hw.sim.requant_lanes import residual_lanes
    from samfpga.hw.sim.token_batch_mvu import whole_folds

    u = prog.unit
    sf = [whole_folds(s.mw, u.simd) // u.simd for s in path_steps(prog) if s.residual is not None]
    return residual_lanes(u.pe, min(sf)) if sf else u.pe


def norm_config(prog):
    """The LayerNorm on the path (``layernorm_lanes.LayerNormLanesConfig`` at ``ln_pe`` lanes, the unit's activations or
    a LayerNorm-only step's raw sums as its inputs, whichever is wider) for the program's LayerNorm steps on it;
    None when it has none."""
    from samfpga.hw.sim.layernorm_lanes import LayerNormLanesConfig
    from samfpga.hw.sim.requant_lanes import LanesConfig

    steps = [s for s in path_steps(prog) if s.ln is not None]
    if not steps:
        return None
    u, w = prog.unit, _lane_widths(prog)
    in_bits = max([u.a_bits] + [int_dtype(prog.dtypes[s.input.tensor])[0] for s in steps])  # bytes fit a_bits
    return LayerNormLanesConfig.for_layers(_widest_outputs(steps), ln_pe(prog), in_bits, LanesConfig(
        lanes=ln_pe(prog), out_bits=8, s_bits=w["L_S_BITS"], b_bits=w["L_B_BITS"], t_bits=w["L_T_BITS"]))


def _widest_outputs(steps: list) -> list:
    """The LayerNorm steps' kernels at the widest output width among them (one build has one). A narrower layer
    (vit_t's 13-bit LayerNorms beside the last stage's 14-bit ones, the bundled default's 12-bit ones of 64
    channels beside 13-bit ones of 128: ``layernorm.out_bits_for``) runs at the wider width when its clip never
    acts (``layernorm.max_abs_output``: no input reaches it), or when its requantiser makes the difference vanish:
    per channel the same output at the narrow clip limit and at the wide one, so (the requantiser being monotone)
    every value the narrow clip would have cut maps to the same output. ValueError naming the step otherwise."""
    from samfpga.kernels.layernorm import max_abs_output

    ob = max(s.ln.out_bits for s in steps)
    for s in steps:
        n = s.ln.out_bits
        if n == ob or max_abs_output(s.ln) < 1 << n - 1:
            continue
        c = s.ln_rq.channels
        lim = np.array([[-(1 << n - 1)], [(1 << n - 1) - 1], [-(1 << ob - 1)], [(1 << ob - 1) - 1]]).repeat(c, 1)
        y = s.ln_rq.apply(lim)
        if not (np.array_equal(y[0], y[2]) and np.array_equal(y[1], y[3])):
            raise ValueError(f"step {s.name}: its LayerNorm's {n}-bit outputs differ from {ob}-bit ones after its "
                             "requantiser: one build has one LayerNorm output width")
    return [replace(s.ln, out_bits=ob) for s in steps]


def _on_beats(c: dict[str, int], p: str, beat: int) -> bool:
    """Whether DMA ``p``'s frame in step registers ``c`` (none: True) is one the ALIGNED access_reader.sv / writer takes:
    base, run and every stride on whole beats of ``beat`` bytes (access_walk.sv checks each level's stride)."""
    if not c.get(f"{p}_count0"):
        return True
    return all(c[f"{p}_{k}"] % beat == 0 for k in ("base", "run", *(f"stride{i}" for i in range(6))))


@dataclass
class StepConfigs:
    """The program's DDR layout and every path step's registers (``step_config``), computed once: at vit_t's
    1024² they take minutes (the build's program step computes them for its design and host files)."""

    layout: DdrLayout
    regs: list[dict[str, int]]


def step_configs(prog) -> StepConfigs:
    """``prog``'s path steps laid out (``layout``) and each one's registers."""
    steps = path_steps(prog)
    lay = layout(prog, steps)
    return StepConfigs(lay, [step_config(prog, s, lay) for s in steps])


def dma_aligned(prog, configs: StepConfigs | None = None) -> bool:
    """Whether every frame of the input and residual readers in ``prog``'s path steps (``configs``, computed when
    None), laid out by ``layout`` (tensors on pages), is on whole AXI beats, so the path is built with DMA_ALIGNED =
    1: those readers without a realignment buffer, as the engine's plan prices them (``engine.dma_on_whole_beats``).
    The parameter reader's frames always are (``stored_params``)."""
    beat = prog.unit.axi_dw // 8
    regs = (configs or step_configs(prog)).regs
    return all(_on_beats(c, p, beat) for c in regs for p in ("rd", "rs"))


def wr_aligned(prog, configs: StepConfigs | None = None) -> bool:
    """Whether every frame of the writer in ``prog``'s path steps (``configs``, computed when None) is on whole AXI
    beats (the unit's padded outputs are dropped before it), so the path is built with WR_ALIGNED = 1: the writer
    without a realignment buffer, as the engine's plan prices it (``engine.dma_on_whole_beats``)."""
    beat = prog.unit.axi_dw // 8
    regs = (configs or step_configs(prog)).regs
    return all(_on_beats(c, "wr", beat) for c in regs)


def rtl_params(prog, dma_burst: int = 16, configs: StepConfigs | None = None) -> dict[str, int]:
    """engine_gemm_path.sv's numeric parameters for ``prog`` (``configs``: its step registers, for DMA_ALIGNED and
    WR_ALIGNED)."""
    u = prog.unit
    if not (u.requant and u.rt_shape and u.a_signed and u.a_bits >= 8):
        raise ValueError("the GEMM path needs a requantising, run-time-shaped unit with signed activations of at "
                         f"least 8 bits (got requant={u.requant}, rt_shape={u.rt_shape}, a_bits={u.a_bits})")
    p = u.rtl_params()
    out = {**{k: p[k] for k in UNIT_PARAMS}, "DMA_BURST": dma_burst, "DMA_ALIGNED": int(dma_aligned(prog, configs)),
           "WR_ALIGNED": int(wr_aligned(prog, configs)),
           **_lane_widths(prog), "RES_LANES": res_lanes(prog)}
    nc = norm_config(prog)
    if nc is not None:
        out.update({"LN_C": nc.channels, "LN_BITS": nc.ln_bits, "LN_T": nc.lut_bits, "LN_RB": nc.r_bits,
                    "LN_SHIFT_BIAS": nc.shift_bias, "LN_SB": nc.stats_bits, "LN_IN_BITS": nc.in_bits,
                    "LN_PE": nc.pe})
        if any(s.ln is not None and prog.elem_bytes(s.input.tensor) > 1 for s in path_steps(prog)):
            out["LN_RAW_B"] = _raw_bytes(prog)
    dc = dw_config(prog)
    if dc is not None:
        out.update({"DW_PE": dc.pe, "DW_W_MAX": dc.w_max, "DW_CB_MAX": dc.cb_max, "DW_W_BITS": dc.w_bits})
    rc = rows_config(prog)
    if rc is not None:
        out.update({"SM_N": rc["n"], "SM_NF": rc["nf"], "SM_PE": rc["pe"], "SM_IN_BITS": rc["in_bits"]})
    ic = image_config(prog)
    if ic is not None:
        out.update({"IMG_W_MAX": ic[0], "IMG_C": ic[1]})
    return out


def softmax_params(prog, hdl: Path) -> dict[str, int | str]:
    """The path's softmax parameters (int_softmax.sv's, prefixed SM_: ``intsoftmax.rtl_parameters`` of the QK^T
    steps' sets, pipelined, compact bias tables in block RAM), its tables written to ``hdl`` (absolute file names);
    empty when the path runs no attention step."""
    from samfpga.hw.custom_ops.intsoftmax import quote_table_files, rtl_parameters

    rc = rows_config(prog)
    if rc is None:
        return {}
    p = quote_table_files(rtl_parameters(rc["sets"], pe=rc["pe"], in_bits=rc["in_bits"], in_signed=True, out_bits=8,
                                         code_dir=hdl, name="path_sm", pipelined=1, bias_ram=1), hdl)
    keep = ("ITERS", "MULT", "MB", "P", "ROWS", "BB", "SIDE", "G", "E", "W", "K", "KB", "UB", "EXP_FILE", "BIAS_FILE",
            "BIAS_RAM", "SET_HEADS", "DSB")
    return {f"SM_{k}": p[k] for k in keep}


def lanes_config(prog):
    """The residual lanes as ``requant_lanes.LanesConfig`` (LANES = ``res_lanes``, 10-bit sums)."""
    from samfpga.hw.sim.requant_lanes import LanesConfig

    w = _lane_widths(prog)
    return LanesConfig(lanes=res_lanes(prog), in_bits=prog.unit.out_bits + 2, out_bits=prog.unit.out_bits,
                       s_bits=w["L_S_BITS"], b_bits=w["L_B_BITS"], t_bits=w["L_T_BITS"], depth=w["L_DEPTH"])


def lane_params(prog, s) -> bytes:
    """The bytes the parameter reader streams for residual, LayerNorm or depthwise step ``s``: the residual's
    lanes', or the LayerNorm's (one channel per p_axis beat), or the depthwise unit's weights and then its lanes'
    (``dw_core.param_stream``)."""
    from samfpga.hw.sim.requant_lanes import param_stream

    if s.kind == "dw":
        from samfpga.hw.sim import dw_core

        return dw_core.param_stream(dw_frame(prog, s), dw_config(prog))
    return param_stream(_lane_rq(s), lanes_config(prog) if s.residual is not None else norm_config(prog).lanes)


def stored_params(prog, stream: bytes) -> bytes:
    """The parameter reader's ``stream`` (``lane_params`` or ``image_table``: beats of the lanes' ``param_bytes``) as
    the program stores it: each beat in an AXI beat of its own, zeros above it, so the reader moves whole beats
    (ALIGNED: no realignment buffer, no gearbox; the path takes each beat's low bits). The bytes it adds are few: one
    beat per channel's parameters or depthwise tap group, read once per step."""
    from samfpga.hw.sim.requant_lanes import param_bytes

    pb, beat = param_bytes(lanes_config(prog)), prog.unit.axi_dw // 8
    if pb > beat:
        raise ValueError(f"a parameter beat of {pb} bytes does not fit one AXI beat of {beat}")
    if len(stream) % pb:
        raise ValueError(f"parameter stream of {len(stream)} bytes: not whole beats of {pb}")
    return b"".join(stream[i:i + pb] + bytes(beat - pb) for i in range(0, len(stream), pb))


def _params_of(prog, s) -> bytes:
    """Step ``s``'s parameter frame as stored (``stored_params``): an image step's table, else its lanes'."""
    if any(s is x for x in image_steps(prog)):
        return stored_params(prog, image_table(prog, s))
    return stored_params(prog, lane_params(prog, s))


@dataclass
class DdrLayout:
    """Where the program lives in DDR: its weight image at ``image_base``, each stored tensor at ``bases[name]``
    (every one on its own 4 KiB page)."""

    image_base: int
    bases: dict[str, int]
    size: int


def layout(prog, steps: list) -> DdrLayout:
    """The weight image at 0, then the steps' tensors one after another, each on a new page, for each residual
    or LayerNorm step its lanes' parameters (``<step>.lanes``), for each window step its weight image
    (``<step>.weights``; its input map holds C' channels a pixel, ``window_frame``)."""
    off = -(-len(prog.image) // PAGE) * PAGE
    bases = {}
    names = [t for s in steps for t in (s.input.tensor, *([s.residual.tensor] if s.residual else []), s.output)
             if not t.endswith(".vt")]  # a V transpose's output: AV's weight image (below)
    sizes = {t: _tensor_bytes(prog, t) for t in names}
    sizes.update({f"{s.name}.lanes": len(_params_of(prog, s)) for s in steps if _lane_rq(s) is not None})
    for s in steps:
        if any(s is x for x in image_steps(prog)):  # the image 4 bytes a pixel, the table
            sizes[f"{s.name}.image"] = iw.stored_bytes(*s.input.shape[-3:-1])
            sizes[f"{s.name}.table"] = len(_params_of(prog, s))
            continue
        if s.kind == "gemm" and s.window is not None:  # its weight image; its map with C' channels a pixel
            sizes[f"{s.name}.weights"] = len(window_layer(prog, s)[1])
            if s.ln is None:
                sizes[s.input.tensor] = window_frame(prog, s).fmap.size
        if s.kind == "vt":  # its one-hot inputs (its output is AV's weight image); the last block's pass reads
            sizes[f"{s.name}.onehot"] = len(onehot(prog, s))  # its padded keys' rows past V's region
            sizes[s.input.tensor] = sizes.get(s.input.tensor, _tensor_bytes(prog, s.input.tensor)) + (
                vt_layer(prog, s).mh - s.mh) * s.mw
        if s.kind == "av":  # its weight image; its probabilities read past their last token (keys padded)
            sizes[s.vt_of] = len(av_image(prog, s))
            t = s.input.tensor
            sizes[t] = max(sizes[t], _extent(av_read(s)) * prog.elem_bytes(t))
    for s in steps:  # outputs padded to whole PE folds: a residual read past its tensor
        if s.kind == "gemm" and s.layer.mh > s.mh and s.residual is not None:
            r = s.residual.tensor
            sizes[r] = max(sizes[r], _extent(residual_access(prog, s)) * prog.elem_bytes(r))
    for t, n in sizes.items():
        bases[t] = off
        off += -(-n // PAGE) * PAGE
    return DdrLayout(0, bases, off)


def _extent(a: Access) -> int:
    """One past the last element pattern ``a`` touches (non-negative strides)."""
    return a.offset + sum((c - 1) * st for c, st in a.loops) + a.run


def place(buf: bytearray, lay: DdrLayout, name: str, data: bytes) -> None:
    """Write ``data`` at ``name``'s base in the DDR image ``buf``."""
    buf[lay.bases[name]:lay.bases[name] + len(data)] = data


def constant_writes(prog, steps: list, lay: DdrLayout) -> list[tuple[str, int, bytes]]:
    """What the host writes into the program's DDR once, before its first frame, as (name, address, bytes): the
    program's weight image at 0, each step's lanes' parameters, an image step's table, a window step's weight image,
    a V transpose's one-hot inputs, AV's weight image (its requantisation words; V^T's rows zero until the V
    transpose writes them). Every other byte the program reads is written by a step first, or is padding it must
    read as zero, or is read only for outputs the writer's pack drops (the last block's padded keys past V's
    region) or against zero weights (AV's last probabilities' padded keys): the host zeroes the rest (``samfpga.backends.engine_host``)."""
    out = [("weights", 0, bytes(prog.image))]
    for s in steps:
        if _lane_rq(s) is not None:
            out.append((f"{s.name}.lanes", lay.bases[f"{s.name}.lanes"], _params_of(prog, s)))
        if any(s is x for x in image_steps(prog)):
            out.append((f"{s.name}.table", lay.bases[f"{s.name}.table"], _params_of(prog, s)))
            continue
        if s.kind == "gemm" and s.window is not None:
            out.append((f"{s.name}.weights", lay.bases[f"{s.name}.weights"], window_layer(prog, s)[1]))
        if s.kind == "vt":
            out.append((f"{s.name}.onehot", lay.bases[f"{s.name}.onehot"], onehot(prog, s)))
        if s.kind == "av":
            out.append((s.vt_of, lay.bases[s.vt_of], av_image(prog, s, np.zeros((s.iters, s.mh, s.mw), np.int64))))
    return out


def ddr_images(prog, mem: dict, steps: list, lay: DdrLayout, seed: int = 4) -> tuple[bytearray, bytearray]:
    """The DDR image ``steps`` start from (``constant_writes``, their inputs and residuals from ``mem``,
    ``run_program``'s stored tensors; random bytes elsewhere) and the image they must leave (their outputs stored
    too, every other byte as it was). AV's weight image holds random V^T rows where the V transpose is among
    ``steps`` (a row it leaves unwritten shows), else the rows ``mem`` holds."""
    from samfpga.hw.sim.engine_program import _read

    rng = np.random.default_rng(seed)
    img = bytearray(rng.integers(0, 256, lay.size, dtype=np.uint8).tobytes())
    for _, at, data in constant_writes(prog, steps, lay):
        img[at:at + len(data)] = data
    for s in steps:
        for o in (s.input, s.residual):
            if o is not None:
                place(img, lay, o.tensor, prog.stored(o.tensor, mem[o.tensor]))
        if any(s is x for x in image_steps(prog)):
            place(img, lay, f"{s.name}.image", image_bytes(prog, s, _read(mem, s.input)))
            continue
        if s.kind == "gemm" and s.window is not None and s.ln is None:
            # the map with its channels padded (a producer on the path writes it so)
            place(img, lay, s.input.tensor, _bytes(window_frame(prog, s, _read(mem, s.input)).fmap))
        if s.kind == "av":
            vt = _vt_of(prog, s)
            place(img, lay, s.vt_of, av_image(prog, s, None if any(v is vt for v in steps) else _vt_rows(mem, s)))
    want = bytearray(img)
    for s in steps:
        place(want, lay, s.output, output_bytes(prog, mem, s))
    return img, want


def output_bytes(prog, mem: dict, s) -> bytes:
    """The bytes path step ``s`` leaves at its output's base: the program's stored tensor, or for a V transpose AV's
    weight image with V^T's rows (``av_image``)."""
    if s.kind == "vt":
        av = _av_of(prog, s)
        return av_image(prog, av, _vt_rows(mem, av))
    w = padded_consumer(prog, s) if any(s is x for x in image_steps(prog)) else None
    if w is not None:  # the padded map its consumer reads, the padding zero (``image_write``)
        from samfpga.hw.sim.engine_program import _read

        out = _bytes(window_frame(prog, w, _read(mem, w.input)).fmap)
    else:
        out = prog.stored(s.output, mem[s.output])
    return out


def written_bytes(prog, s) -> int:
    """The bytes path step ``s``'s writer writes (a V transpose: V^T's rows only, not AV's requantisation words)."""
    if s.kind == "vt":  # V^T's rows, their keys (the pack drops the padded ones)
        return s.iters * vt_tokens(prog, s) * s.mh
    return int(np.prod(s.out_shape)) * prog.elem_bytes(s.output)


def _vt_rows(mem: dict, av) -> np.ndarray:
    """V^T's rows (iters, d, keys) as the program's V transpose stored them (keys padded to whole PE folds)."""
    return mem[av.vt_of].reshape(av.iters, av.mh, -1)[:, :, :av.mw]


def _bytes(values: np.ndarray) -> bytes:
    """8-bit values as stored bytes (two's complement)."""
    return (np.asarray(values, np.int64) & 0xFF).astype(np.uint8).tobytes()


def _tensor_bytes(prog, t: str) -> int:
    for s in prog.steps:
        if s.output == t:
            return int(np.prod(s.out_shape)) * prog.elem_bytes(t)
    for s in prog.steps:
        for o in (s.input, s.residual, s.weights):
            if o is not None and o.tensor == t:
                return (int(o.access.indices().max()) + 1) * prog.elem_bytes(t)
    raise KeyError(t)


def step_config(prog, s, lay: DdrLayout) -> dict[str, int]:
    """The path's configuration for step ``s``, keyed as its registers (``unit_regs.ENGINE_GEMM_PATH``; port
    ``cfg_<key>``): the reader's (``rd_*``, its input's address pattern), the input's sign, the unit's (``wt_*``:
    the layer's weights in the program's image, its shape, raw or requantised, the clip's sign), the writer's
    (``wr_*``, the output's pattern), and what a residual step (``rs_*``, ``pm_*``, ``ln_*``), a LayerNorm step
    (``pm_*``, ``nm_*``) or a depthwise step (``pm_*``, ``dw_*``) needs besides."""
    if not any(s is p for p in path_steps(prog)):
        raise ValueError(f"step {s.name} ({s.kind}): not a GEMM step of whole folds without a table (or its "
                         "residual sum needs a clip, or its LayerNorm is not on 8-bit inputs, or its window is not "
                         "3 x 3 at padding 1), nor the image's 3 x 3 convolution at stride 2 on an image of even "
                         "size, nor a 3 x 3 depthwise step; the path runs path_steps only")
    if any(s is x for x in image_steps(prog)):
        return _image_config(prog, s, lay)
    # the image window's flag off (the direct bench sets only the keys given; the sequencer writes the rest as 0)
    if s.kind == "gemm" and s.window is not None:
        return {**_window_config(prog, s, lay), "image": 0}
    if s.kind in ("qk", "vt", "av"):
        return {**_attention_config(prog, s, lay), "image": 0}
    return {**_config(prog, s, lay), "image": 0}


def _attention_config(prog, s, lay: DdrLayout) -> dict[str, int]:
    """An attention step's registers: QK^T (the queries, K's blocks as the unit's weight passes, the softmax at its
    set), the V transpose (the one-hot inputs once per iteration, V's blocks as weights, a raw frame of low bytes
    to AV's image at ``av_rows_write``, the padded keys dropped: ``writer_pattern``), AV (the softmax's rows against
    AV's image, its padded dims dropped); each step's writer its ``writer_pattern`` (QK^T's probabilities in
    order: ``attention_steps`` takes only those stored so)."""
    if s.kind == "vt":
        c, n = vt_layer(prog, s), vt_tokens(prog, s)
        rd = Access(0, n * c.mw, ((s.iters, 0),))  # the same one-hot vectors each iteration
        rd_base = lay.bases[f"{s.name}.onehot"]
        unit = _unit_regs(c, lay.bases[s.input.tensor] + s.input.access.offset, s.iters, n)
        unit["wt_stride"] = s.mh * s.mw  # one block of V per iteration
    elif s.kind == "qk":
        rd, rd_base = s.input.access, lay.bases[s.input.tensor]
        unit = _unit_regs(s.layer, lay.bases[s.weights.tensor] + s.weights.access.offset, s.iters, s.tokens)
        unit["wt_stride"] = s.mh * s.mw  # one block of K per iteration
    else:
        rd, rd_base = av_read(s), lay.bases[s.input.tensor]
        unit = _unit_regs(s.layer, lay.bases[s.vt_of], s.iters, s.tokens)
    rdc = ar.frame_config(AccessFrame(rd, rd_base, 1))
    sets = rows_config(prog)["names"]
    return {**{f"rd_{k}": v for k, v in rdc.items()},
            "in_unsigned": int(s.kind != "vt" and prog.dtypes[s.input.tensor].startswith("UINT")),
            **_writer_regs(prog, s, lay), **unit,
            "residual": 0, "layernorm": 0, "depthwise": 0, "nm_raw": 0, "nm_only": 0, "window": 0,
            "softmax": int(s.kind == "qk"), "sm_set": sets.index(s.name) if s.kind == "qk" else 0,
            "sm_rows": s.iters * s.tokens if s.kind == "qk" else 0}


#: the depthwise unit's shape registers (dw_<key>) a depthwise or window step sets from ``dw_core.frame_config``
DW_SHAPE = ("h", "w", "tiles", "cb", "stride2", "open_l", "open_r")


def _writer_regs(prog, s, lay: DdrLayout) -> dict[str, int]:
    """The writer's registers (wr_*) of step ``s``: its ``writer_pattern`` (the pack's tokens where the unit's outputs
    are padded)."""
    w = writer_pattern(prog, s)
    cfg = ar.frame_config(AccessFrame(w.access, lay.bases[s.output], prog.elem_bytes(s.output)))
    return {**{f"wr_{k}": v for k, v in cfg.items()}, "wr_pk_beats": w.beats, "wr_pk_keep": w.keep}


def _unit_regs(c, base: int, iters: int, tokens: int) -> dict[str, int]:
    """The GEMM unit's registers (wt_*) for layer ``c`` (a ``TokenBatchConfig``) with its weight image at ``base``."""
    unit = {"base": base, "stride": c.min_stride, "iters": iters, "tokens": tokens, "sf": c.sf, "nf": c.nf,
            "batch": c.batch, "raw": int(c.raw), "unsigned": c.unsigned_flag}
    return {f"wt_{k}": v for k, v in unit.items()}


def _param_reader(prog, s, lay: DdrLayout) -> dict[str, int]:
    """The parameter reader's registers (pm_*) over step ``s``'s lanes' parameters (``lane_params`` as stored)."""
    pm = ar.frame_config(AccessFrame(Access(0, len(_params_of(prog, s)), ()), lay.bases[f"{s.name}.lanes"]))
    return {f"pm_{k}": v for k, v in pm.items()}


def _window_config(prog, s, lay: DdrLayout) -> dict[str, int]:
    """Window step ``s``'s registers: the reader over its map (C' channels a pixel; after a LayerNorm its raw sums
    or bytes, through the LayerNorm), the depthwise unit's window alone over it, the unit on the window's layer
    (``window_layer``), the writer."""
    from samfpga.hw.sim.dw_core import frame_config

    f = window_frame(prog, s)
    rd = ar.frame_config(AccessFrame(Access(0, f.fmap.size, ()), lay.bases[s.input.tensor],
                                     prog.elem_bytes(s.input.tensor)))
    dw = frame_config(f, dw_config(prog))
    out = {**{f"rd_{k}": v for k, v in rd.items()}, "in_unsigned": int(prog.dtypes[s.input.tensor].startswith("UINT")),
           **_writer_regs(prog, s, lay),
           **_unit_regs(window_layer(prog, s)[0], lay.bases[f"{s.name}.weights"], 1, s.tokens),
           "residual": 0, "layernorm": int(s.ln is not None), "depthwise": 0,
           "nm_raw": int(s.ln is not None and prog.elem_bytes(s.input.tensor) > 1), "nm_only": 0,
           **{f"dw_{k}": dw[k] for k in DW_SHAPE}, "window": 1, "dw_unsigned": 0}
    if s.ln is not None:  # the LayerNorm on the map's pixels before the window, its lanes' parameters
        out.update(_window_norm(prog, s, lay, f.fmap.shape[0] * f.fmap.shape[1]))
    return out


def _image_config(prog, s, lay: DdrLayout) -> dict[str, int]:
    """Image step ``s``'s registers: the reader over the image stored 4 bytes a pixel, the parameter reader over its
    table, the image window's size, the unit on the layer (its inputs the table's values, of their sign), the
    writer."""
    h, w, _ = s.input.shape[-3:]
    rd = ar.frame_config(AccessFrame(Access(0, iw.stored_bytes(h, w), ()), lay.bases[f"{s.name}.image"], 1))
    pm = ar.frame_config(AccessFrame(Access(0, len(_params_of(prog, s)), ()), lay.bases[f"{s.name}.table"]))
    return {**{f"rd_{k}": v for k, v in rd.items()}, "in_unsigned": int(s.table.min() >= 0 and s.table.max() > 127),
            **_writer_regs(prog, s, lay), **{f"pm_{k}": v for k, v in pm.items()},
            **_unit_regs(s.layer, lay.image_base + s.offset, s.iters, s.tokens),
            "residual": 0, "layernorm": 0, "depthwise": 0, "nm_raw": 0, "nm_only": 0, "window": 0,
            "image": 1, "img_h": h, "img_w": w}


def _window_norm(prog, s, lay: DdrLayout, pixels: int) -> dict[str, int]:
    """A window step's LayerNorm registers (nm_*) over ``pixels`` pixels (a strip's columns and halos, or the map)
    and its lanes' parameter reader (pm_*)."""
    from samfpga.hw.sim.layernorm_lanes import frame_config

    nm = frame_config(s.ln, s.ln_rq, np.zeros((pixels, s.ln.channels)), norm_config(prog))
    return {**{f"nm_{k}": v for k, v in nm.items()}, **_param_reader(prog, s, lay)}


def _config(prog, s, lay: DdrLayout) -> dict[str, int]:
    """``step_config`` of a step that is not a window step."""
    rd = ar.frame_config(AccessFrame(s.input.access, lay.bases[s.input.tensor], prog.elem_bytes(s.input.tensor)))
    n = int(np.prod(s.out_shape))
    out = {**{f"rd_{k}": v for k, v in rd.items()},
           "in_unsigned": int(prog.dtypes[s.input.tensor].startswith("UINT")),
           **_writer_regs(prog, s, lay),
           "residual": int(s.residual is not None), "layernorm": int(s.ln is not None), "depthwise": int(s.kind == "dw"),
           # a LayerNorm no GEMM follows (its outputs to the writer), on raw sums or bytes
           "nm_raw": int(s.kind == "layernorm" and prog.elem_bytes(s.input.tensor) > 1),
           "nm_only": int(s.kind == "layernorm"), "window": 0}
    if s.kind == "gemm":
        out.update(_unit_regs(s.layer, lay.image_base + s.offset, s.iters, s.tokens))
    else:  # the GEMM unit takes no input in a depthwise or LayerNorm-only step: its registers stay 0
        out.update({f"wt_{k}": 0 for k in ("base", "stride", "iters", "tokens")})
    if _lane_rq(s) is not None:
        out.update(_param_reader(prog, s, lay))
    if s.kind == "dw":
        from samfpga.hw.sim.dw_core import frame_config

        dw = frame_config(dw_frame(prog, s), dw_config(prog))
        out.update({**{f"dw_{k}": dw[k] for k in DW_SHAPE}, "dw_unsigned": dw["unsigned"]})
    if s.ln is not None:
        from samfpga.hw.sim.layernorm_lanes import frame_config

        if s.kind == "gemm" and s.in_dtype != ("INT8" if s.ln_rq.out_signed else "UINT8"):
            raise ValueError(f"step {s.name}: the unit takes {s.in_dtype} after a LayerNorm clipped to "
                             f"{'signed' if s.ln_rq.out_signed else 'unsigned'} 8 bits")
        rows = s.tokens if s.kind == "gemm" else n // s.ln.channels  # the LayerNorm's tokens: the unit's, or its own
        nm = frame_config(s.ln, s.ln_rq, np.zeros((rows, s.ln.channels)), norm_config(prog))
        out.update({f"nm_{k}": v for k, v in nm.items()})
    if s.residual is not None:
        rs = ar.frame_config(AccessFrame(residual_access(prog, s), lay.bases[s.residual.tensor],
                                         prog.elem_bytes(s.residual.tensor)))
        out.update({**{f"rs_{k}": v for k, v in rs.items()},
                    "res_unsigned": int(prog.dtypes[s.residual.tensor].startswith("UINT")),
                    "ln_groups": _lane_rq(s).channels // res_lanes(prog), "ln_tokens": s.tokens,
                    "ln_unsigned": int(not s.add_rq.out_signed)})
    return out


def strip_configs(prog, s, lay: DdrLayout, tiles: int) -> list[dict[str, int]]:
    """Depthwise or window step ``s`` launched strip by strip, as a host runs a map too wide for the window's banks:
    per strip of W / ``tiles`` columns, the reader's pattern over its columns and halos (rows of (hi - lo) C bytes
    at a row's stride), the unit's shape with its interior sides open (``dw_core.strip_frames``), the writer's
    pattern over its output columns (a window step: the GEMM unit's tokens, the strip's outputs; after a LayerNorm,
    the LayerNorm's tokens, the strip's columns and halos). For a step whose input and output are stored in order
    (no address pattern to compose)."""
    from samfpga.hw.sim.dw_core import frame_config, strip_frames
    from samfpga.hw.sim.strip_reader import strip_columns

    win = any(s is x for x in window_steps(prog))
    if not (s.kind == "dw" or win) or s.input.access.loops or s.write is not None:
        raise ValueError(f"step {s.name}: strip launches need a depthwise or window step whose input and output are "
                         "stored in order")
    if win and s.layer.mh > s.mh:  # a strip's last pixel of a row would pad over a pixel another strip wrote
        raise ValueError(f"step {s.name}: strip launches of a window step whose outputs are padded to whole PE "
                         f"folds ({s.mh} of {s.layer.mh})")
    base = step_config(prog, s, lay)
    f = window_frame(prog, s) if win else dw_frame(prog, s)
    h, w, c = f.fmap.shape
    off, ib = s.input.access.offset, prog.elem_bytes(s.input.tensor)
    oh, ow, oc = s.out_shape[-3:]
    eb = prog.elem_bytes(s.output)
    out = []
    for i, ((lo, hi), fs) in enumerate(zip(strip_columns(w, tiles, 1), strip_frames(f, tiles), strict=True)):
        olo, ohi = i * (w // tiles) // f.stride, (i + 1) * (w // tiles) // f.stride
        rd = ar.frame_config(AccessFrame(Access(off + lo * c, (hi - lo) * c, ((h, w * c),)),
                                         lay.bases[s.input.tensor], ib))
        wr = ar.frame_config(AccessFrame(Access(olo * oc, (ohi - olo) * oc, ((oh, ow * oc),)), lay.bases[s.output],
                                         eb))
        dw = frame_config(fs, dw_config(prog))
        out.append({**base, **{f"rd_{k}": v for k, v in rd.items()}, **{f"wr_{k}": v for k, v in wr.items()},
                    **{f"dw_{k}": dw[k] for k in ("h", "w", "tiles", "open_l", "open_r")},
                    **({"wt_tokens": oh * (ohi - olo)} if win else {}),
                    **(_window_norm(prog, s, lay, h * (hi - lo)) if win and s.ln is not None else {})})
    return out


@dataclass
class PathResult:
    passes: list[dict] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    wall_s: float = 0.0
    error: str = ""


def build(prog, work_dir: Path, dma_burst: int = 16, top: str = "engine_gemm_path", extra: dict | None = None
          ) -> float:
    """Verilator build of the path (``top``: it, or its AXI-Lite block) for ``prog``'s unit (and LayerNorm, its
    rsqrt table written to ``work_dir/hdl``) into ``work_dir/sim_build``; returns seconds."""
    return build_own_rtl(top, {**hdl_params(prog, Path(work_dir) / "hdl", dma_burst), **(extra or {})}, work_dir)


def hdl_params(prog, hdl: Path, dma_burst: int = 16, configs: StepConfigs | None = None) -> dict[str, int | str]:
    """engine_gemm_path.sv's parameters for ``prog`` (``rtl_params``, ``softmax_params``), its memory init files
    (the LayerNorm's rsqrt table, the softmax's tables) written to folder ``hdl`` and named by absolute path;
    strings and wide values as Verilog literals."""
    params: dict[str, int | str] = dict(rtl_params(prog, dma_burst, configs))
    if "LN_C" in params:
        from samfpga.hw.custom_ops.intlayernorm import write_hex_table

        ln = next(s.ln for s in path_steps(prog) if s.ln is not None)
        table = Path(hdl).resolve() / "rsqrt.dat"
        table.parent.mkdir(parents=True, exist_ok=True)
        write_hex_table(table, ln.table, ln.r_bits)
        params["LN_RSQRT_FILE"] = f'"{table}"'
    params.update(softmax_params(prog, Path(hdl)))
    return params


def build_axil(prog, work_dir: Path, dma_burst: int = 16, cfg_read: bool = True) -> float:
    """Verilator build of the path behind its AXI-Lite block (engine_gemm_path_axil.sv) for ``prog``, its
    configuration registers readable or not (``cfg_read``: CFG_READ, axil_regs.sv); returns seconds."""
    return build(prog, work_dir, dma_burst, top="engine_gemm_path_axil", extra={"CFG_READ": int(cfg_read)})


def _run_path(top: str, bench_module: str, spec_env: str, ddr: bytes, spec: dict, work_dir: Path, tag: str
              ) -> PathResult:
    """Write ``ddr`` and ``spec`` (plus the ddr, image_dir and result paths) under ``work_dir/tag``, run cocotb
    ``bench_module`` on ``top`` built in ``work_dir/sim_build``; the passes, each pass's DDR image afterwards."""
    setup_verilator_env(fast_compile=True)
    t0 = time.monotonic()
    run = work_dir / tag
    run.mkdir(parents=True, exist_ok=True)
    (run / "ddr.bin").write_bytes(ddr)
    spec = {"ddr": str(run / "ddr.bin"), **spec, "image_dir": str(run), "result": str(run / "result.json")}
    res = PathResult()
    res.passes, res.error = run_bench(top, bench_module, spec_env, spec, run, work_dir / "sim_build")
    res.images = [(run / f"ddr_{p['name']}.bin").read_bytes() for p in res.passes
                  if (run / f"ddr_{p['name']}.bin").is_file()]
    res.wall_s = round(time.monotonic() - t0, 2)
    return res


def simulate_axil(steps: list[dict], names: list[str], ddr: bytes, passes: list[dict], work_dir: Path,
                  bad_steps: list[dict] = (), seed: int = 0, tag: str = "axil") -> PathResult:
    """Run the steps through the AXI-Lite block by the board's host sequencer (``StepSequencer``) on a design built
    by ``build_axil``: every pass ({"name", "ar_pause", ..., "axil_pause", "only_changed"}) from reset and ``ddr``,
    then each of ``bad_steps`` (expected to raise). Per pass: each step's cycles, MMIO writes and polls; the bad
    steps' error messages; the DDR image afterwards in ``images``."""
    spec = {"steps": steps, "names": names, "bad_steps": list(bad_steps), "passes": passes, "seed": seed,
            "timeout_cycles": 20 * len(ddr) + 200 * 110 * len(steps) + 50000}
    return _run_path("engine_gemm_path_axil", AXIL_BENCH_MODULE, "SAMFPGA_GEMM_PATH_AXIL_SPEC", ddr, spec, work_dir,
                     tag)


def simulate(steps: list[dict], ddr: bytes, passes: list[dict], work_dir: Path, seed: int = 0, tag: str = "run"
             ) -> PathResult:
    """Run the bench on a design built by ``build``: every pass ({"name", "ar_pause", "r_pause", "aw_pause",
    "w_pause", "b_pause"}) starts from ``ddr`` and runs ``steps`` (``step_config`` of each) in order."""
    spec = {"steps": steps, "passes": passes, "seed": seed, "timeout_cycles": 20 * len(ddr) + 50000}
    return _run_path("engine_gemm_path", BENCH_MODULE, "SAMFPGA_GEMM_PATH_SPEC", ddr, spec, work_dir, tag)
