"""AXI4-Lite register maps of the project's own DMA / compute units, and a sync driver over a pynq-style MMIO.

One source of truth: the RTL wrapper ``hw/samfpga/hw/rtl/<unit>_axil.sv`` is generated from ``UNITS`` here
(``samfpga.hw.axil_gen``; a test checks the committed file equals the generated text), and the driver writes the
registers named here. Protocol (docs/unit_regs.md), in the spirit of Vivado HLS's ap_ctrl_hs:

* 0x00 CTRL: bit 0 ap_start (write 1: the start is pending until the unit is not busy, then one ``start`` pulse is
  issued and the bit clears itself; reads 1 while pending), bit 1 ap_done (sticky; set when a started frame ends,
  i.e. the unit is not busy after the start pulse; **clear-on-read** of CTRL, as HLS, and a done event in the
  cycle of the read is kept), bit 2 ap_idle (no start pending, no frame running, unit not busy). Bits 1, 2 RO.
* 0x04 STATUS (RO): bits [ERR_W-1:0] the unit's ``err`` (live), bit 8 the unit's ``busy``.
* 0x08, 0x0C: unmapped (reserved).
* 0x10 + 4k: one 32-bit register per ``cfg_*`` port word (RW, reset 0); a 64-bit address as a LO / HI pair. The
  unit samples its configuration at the start pulse (or its block latches it then, ``UnitMap.latched``: the engine's
  GEMM path), so the next frame's registers may be written while busy, once CTRL shows the start taken.
* Any other offset, and a write to a RO register: SLVERR (the register file is unchanged); OKAY otherwise.

Importable without torch / finn / pynq (the board runtime): only dataclasses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .base import BackendError

CTRL, STATUS, CFG0 = 0x00, 0x04, 0x10
AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4
STATUS_BUSY = 1 << 8


@dataclass(frozen=True)
class Reg:
    """One 32-bit register: ``width`` implemented bits (the rest read 0), ``access`` "RW" or "RO". Config registers
    name their unit port in ``port`` and which 32-bit word of it they hold in ``word`` (0 = LO, 1 = HI)."""

    name: str
    offset: int
    width: int
    access: str
    reset: int = 0
    port: str = ""
    word: int = 0
    doc: str = ""


@dataclass(frozen=True)
class UnitMap:
    """The registers of one unit's AXI-Lite wrapper. ``params``: the config keys in write order, each
    (key, port, bits): bits 64 makes a LO / HI pair, wider ones words ``KEY_0``, ``KEY_1``, ... (word 0 the LSBs). ``optional``: keys a config may leave out (written as 0: the
    unit ignores them in the build that does not use them)."""

    unit: str
    params: tuple[tuple[str, str, int], ...]
    err_bits: int = 2
    err_doc: str = ""
    optional: tuple[str, ...] = ()
    #: the wrapper's default CFG_LATCH (axil_regs.sv): the configuration latched when a start fires, so the next
    #: frame's registers may be written while one runs (``StepSequencer``'s overlap)
    latched: bool = False

    @property
    def regs(self) -> list[Reg]:
        out = [Reg("CTRL", CTRL, 3, "RW", doc="bit 0 ap_start (self-clearing), bit 1 ap_done (RO, clear-on-read), "
                                              "bit 2 ap_idle (RO)"),
               Reg("STATUS", STATUS, 9, "RO", doc=f"bits [{self.err_bits - 1}:0] err ({self.err_doc}), bit 8 busy")]
        off = CFG0
        for key, port, bits in self.params:
            if bits > 32:
                n = -(-bits // 32)
                for w in range(n):
                    suffix = ("LO", "HI")[w] if n == 2 else str(w)
                    out.append(Reg(f"{key.upper()}_{suffix}", off, min(32, bits - 32 * w), "RW", port=port, word=w,
                                   doc=f"{port}[{min(32 * w + 31, bits - 1)}:{32 * w}]"))
                    off += 4
            else:
                out.append(Reg(key.upper(), off, bits, "RW", port=port, doc=f"{port}[{bits - 1}:0]"))
                off += 4
        return out

    def err(self, status: int) -> int:
        """The unit's err bits of a STATUS value."""
        return status & ((1 << self.err_bits) - 1)

    @property
    def cfg_regs(self) -> list[Reg]:
        return [r for r in self.regs if r.port]

    @property
    def addr_bits(self) -> int:
        """AXI-Lite address bits of the wrapper: the smallest power-of-two window holding every register."""
        end = max(r.offset for r in self.regs) + 4
        return max(4, (end - 1).bit_length())

    def config(self, read: Callable[[int], int]) -> dict[str, int]:
        """The configuration the registers hold, the inverse of ``writes``: {key: value} from ``read(offset)`` of
        each config register (a LO / HI pair joined)."""
        out = {k: 0 for k, _, _ in self.params}
        for r in self.cfg_regs:
            key = next(k for k, p, _ in self.params if p == r.port)
            out[key] |= read(r.offset) << (32 * r.word)
        return out

    def writes(self, cfg: Mapping[str, int]) -> list[tuple[int, int]]:
        """The ordered (offset, value) writes that load ``cfg`` (every key of ``params`` but the ``optional`` ones,
        which default to 0; ints) into the config registers; raises ValueError for a missing key or a value that
        does not fit its register(s)."""
        missing = [k for k, _, _ in self.params if k not in cfg and k not in self.optional]
        if missing:
            raise ValueError(f"{self.unit}: config lacks {missing}")
        cfg = {**dict.fromkeys(self.optional, 0), **cfg}
        out = []
        for key, _, bits in self.params:
            v = int(cfg[key])
            if not 0 <= v < 1 << bits:
                raise ValueError(f"{self.unit}: {key} = {v} does not fit {bits} bits")
        for r in self.cfg_regs:
            key = next(k for k, p, _ in self.params if p == r.port)
            out.append((r.offset, (int(cfg[key]) >> (32 * r.word)) & 0xFFFF_FFFF))
        return out


STRIP_READER = UnitMap(
    "strip_reader",
    (("base", "cfg_base", 64), ("h", "cfg_h", 16), ("w", "cfg_w", 16), ("c", "cfg_c", 16),
     ("tiles", "cfg_tiles", 16), ("halo", "cfg_halo", 16)),
    err_doc="bit 0 R error response (sticky until reset), bit 1 bad configuration (frame dropped)")

STRIP_WRITER = UnitMap(
    "strip_writer",
    (("base", "cfg_base", 64), ("h", "cfg_h", 16), ("w", "cfg_w", 16), ("c", "cfg_c", 16),
     ("tiles", "cfg_tiles", 16)),
    err_doc="bit 0 B error response (sticky until reset), bit 1 bad configuration (frame dropped, no input taken)")

#: the engine's read DMA (access_reader.sv): an affine loop nest of byte runs, six levels (0 outermost); a level
#: the access does not use has count 1; strides in bytes, two's complement (``samfpga.hw.sim.access_reader``)
ACCESS_READER = UnitMap(
    "access_reader",
    (("base", "cfg_base", 64), ("run", "cfg_run", 32),
     *((f"count{k}", f"cfg_count{k}", 16) for k in range(6)), *((f"stride{k}", f"cfg_stride{k}", 32) for k in range(6))),
    err_doc="bit 0 R error response (sticky until reset), bit 1 bad configuration: run or a count 0, or (ALIGNED) "
            "base, run or a stride not on whole beats (frame dropped)")

#: the writer's tails (a writer built with TAIL = 1; ignored otherwise): after each iteration of loop level
#: tail_level (5: after every run) tail bytes of the input go to tail_addr, a scratch area (tail 0: none); what a
#: unit's outputs padded to whole folds need, their padding taken by no run
WRITER_TAIL = (("tail", "cfg_tail", 32), ("tail_addr", "cfg_tail_addr", 64), ("tail_level", "cfg_tail_level", 3))

#: the engine's write DMA (access_writer.sv): the reader's walk, its input stream written run by run
ACCESS_WRITER = UnitMap(
    "access_writer", ACCESS_READER.params + WRITER_TAIL,
    err_doc="bit 0 B error response (sticky until reset), bit 1 bad configuration: run or a count 0, or (ALIGNED) "
            "base, run or a stride not on whole beats (frame dropped, no input taken)",
    optional=tuple(k for k, _, _ in WRITER_TAIL))

#: the token-batched MVU (token_batch_mvu.sv): no start / busy of its own (it samples its configuration with the
#: first input beat of each frame), so CTRL's ap_done follows ap_start at once; base and stride are the weights'
#: DDR address and the bytes between iterations (both multiples of the unit's burst, else err[1]); sf, nf and
#: batch are the layer's shape on a run-time-shaped unit (RT_SHAPE = 1: input beats and output folds per token,
#: tokens per pass; ignored otherwise); raw = 1 sends a frame's sums unrequantised (a unit built with RAW_OUT = 1;
#: err[1] on others); unsigned = 1 clips a run-time-shaped unit's requantised outputs to the unsigned range
TOKEN_BATCH_MVU = UnitMap(
    "token_batch_mvu",
    (("base", "cfg_base", 64), ("stride", "cfg_stride", 64), ("iters", "cfg_iters", 16),
     ("tokens", "cfg_tokens", 16), ("sf", "cfg_sf", 16), ("nf", "cfg_nf", 16), ("batch", "cfg_batch", 16),
     ("raw", "cfg_raw", 1), ("unsigned", "cfg_unsigned", 1)),
    err_doc="bit 0 R error response, bit 1 base or stride not on whole bursts, or (RT_SHAPE) sf / nf / batch out "
            "of range, or raw on a unit without RAW_OUT (both sticky until reset)",
    optional=("sf", "nf", "batch", "raw", "unsigned"))


def _access(prefix: str) -> tuple[tuple[str, str, int], ...]:
    """An access DMA's configuration (``ACCESS_READER``'s) under ``prefix``."""
    return tuple((f"{prefix}_{k}", f"cfg_{prefix}_{k}", b) for k, _, b in ACCESS_READER.params)


#: the engine's GEMM path (engine_gemm_path.sv, docs/engine.md): one start for a step of the engine's program
#: (``samfpga.hw.sim.engine_gemm_path.step_config`` gives these keys): the reader (rd_*), the input's sign, the GEMM
#: unit (wt_*: TOKEN_BATCH_MVU's), the writer (wr_*), for a residual step the residual's reader (rs_*), the lanes'
#: parameter reader (pm_*) and the lanes (ln_*), for a LayerNorm step the parameter reader and the LayerNorm (nm_*:
#: beats of SIMD channels per token, tokens, clip sign, round(C'^2 eps), negated channels up to 512; raw: its input is
#: the unit's raw sums, not bytes; only: no GEMM follows, its outputs go to the writer), for a
#: depthwise step the parameter reader (its weights and lanes' parameters) and the depthwise unit (dw_*: the map's
#: height, width, strips, beats of DW_PE channels per pixel, stride 2, the lanes' clip sign, a strip's open sides
#: when a layer is launched strip by strip), for a window step (a 3 x 3 convolution on the GEMM unit) the depthwise
#: unit's window alone (window = 1, its dw_* shape) before the GEMM unit (wt_*), for an attention step the unit's
#: raw rows through the softmax (softmax = 1, its parameter set sm_set: QK^T) or as their low bytes (transpose = 1:
#: the V transpose into AV's weight image; sm_rows: the step's rows, whose last ends the writer's stream), for an
#: image step (the first convolution on the raw image) the image window (image = 1; img_h, img_w: the image's size;
#: its table from the parameter reader), and the writer's input (wr_pk_*: tokens of wr_pk_beats beats of PE bytes
#: of which the first wr_pk_keep bytes are written, the rest the unit's outputs padded to whole PE folds; beats 0:
#: every byte). Every register is written per step (the keys a step does not use as 0).
#: width of the engine's counts (its GEMM unit's iterations, tokens and shape, the lanes' and the LayerNorm's tokens:
#: CNT_BITS of engine_gemm_path.sv): vit_t at 1024² launches its stem's first conv over 512 x 512 = 2^18 tokens
ENGINE_CNT_BITS = 20
_ENGINE_COUNTS = ("iters", "tokens", "sf", "nf", "batch")

ENGINE_GEMM_PATH = UnitMap(
    "engine_gemm_path",
    (*_access("rd"), ("in_unsigned", "cfg_in_unsigned", 1),
     *((f"wt_{k}", f"cfg_wt_{k}", ENGINE_CNT_BITS if k in _ENGINE_COUNTS else b)
       for k, _, b in TOKEN_BATCH_MVU.params),
     *_access("wr"), ("residual", "cfg_residual", 1), ("res_unsigned", "cfg_res_unsigned", 1), *_access("rs"),
     *_access("pm"), ("ln_groups", "cfg_ln_groups", 16), ("ln_tokens", "cfg_ln_tokens", ENGINE_CNT_BITS),
     ("ln_unsigned", "cfg_ln_unsigned", 1), ("layernorm", "cfg_layernorm", 1), ("nm_beats", "cfg_nm_beats", 16),
     ("nm_tokens", "cfg_nm_tokens", ENGINE_CNT_BITS), ("nm_unsigned", "cfg_nm_unsigned", 1), ("nm_eps", "cfg_nm_eps", 64),
     ("nm_neg", "cfg_nm_neg", 512), ("nm_raw", "cfg_nm_raw", 1), ("nm_only", "cfg_nm_only", 1),
     ("depthwise", "cfg_depthwise", 1), ("dw_h", "cfg_dw_h", 16),
     ("dw_w", "cfg_dw_w", 16), ("dw_tiles", "cfg_dw_tiles", 16), ("dw_cb", "cfg_dw_cb", 16),
     ("dw_stride2", "cfg_dw_stride2", 1), ("dw_unsigned", "cfg_dw_unsigned", 1), ("dw_open_l", "cfg_dw_open_l", 1),
     ("dw_open_r", "cfg_dw_open_r", 1), ("window", "cfg_window", 1), ("softmax", "cfg_softmax", 1),
     ("sm_set", "cfg_sm_set", 8), ("sm_rows", "cfg_sm_rows", 32),
     ("image", "cfg_image", 1), ("img_h", "cfg_img_h", 16), ("img_w", "cfg_img_w", 16),
     ("wr_pk_beats", "cfg_wr_pk_beats", 16), ("wr_pk_keep", "cfg_wr_pk_keep", 24)),
    err_bits=8,
    err_doc="bit 0 an AXI error response on any master (sticky until reset); bits 1-5 a configuration refused by "
            "the reader, the unit (sticky), the writer, the residual reader, the parameter reader; bit 6 by the "
            "residual lanes, bit 7 by the LayerNorm or the depthwise unit (or the latter's input packets or lanes)",
    optional=tuple(k for k, _, _ in (*_access("rs"), *_access("pm")))
    + ("in_unsigned", "wt_sf", "wt_nf", "wt_batch", "wt_raw", "wt_unsigned", "residual", "res_unsigned",
       "ln_groups", "ln_tokens", "ln_unsigned", "layernorm", "nm_beats", "nm_tokens", "nm_unsigned", "nm_eps",
       "nm_neg", "nm_raw", "nm_only", "depthwise", "dw_h", "dw_w", "dw_tiles", "dw_cb", "dw_stride2", "dw_unsigned",
       "dw_open_l", "dw_open_r", "window", "softmax", "sm_set", "sm_rows", "image", "img_h", "img_w",
       "wr_pk_beats", "wr_pk_keep"),
    latched=True)

UNITS: dict[str, UnitMap] = {m.unit: m for m in (STRIP_READER, STRIP_WRITER, ACCESS_READER, ACCESS_WRITER,
                                                 TOKEN_BATCH_MVU, ENGINE_GEMM_PATH)}


def describe(m: UnitMap) -> str:
    """The register table of ``m`` as Markdown (docs/unit_regs.md holds it; a test checks they agree)."""
    rows = ["| offset | name | bits | access | reset | meaning |", "|---|---|---|---|---|---|"]
    rows += [f"| 0x{r.offset:02X} | {r.name} | {r.width} | {r.access} | {r.reset:#x} | {r.doc} |" for r in m.regs]
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------------------------
# Driver


class UnitTimeout(BackendError):
    """The unit did not report ap_done in time."""


class UnitError(BackendError):
    """The unit finished with a nonzero err (STATUS)."""


class UnitDriver:
    """Sync driver of one wrapped unit over ``mmio`` (``pynq.MMIO`` on a board, or any object with
    ``read(offset) -> int`` and ``write(offset, value)``).

    ``configure(cfg)`` writes the config registers (``UnitMap.writes``), ``start()`` sets ap_start, ``poll()`` reads
    CTRL once, ``wait()`` polls CTRL until ap_done and raises ``UnitTimeout`` (after ``timeout_s``) or
    ``UnitError`` (STATUS err nonzero: at ap_done, or read every ``status_every`` polls while the unit runs, since
    a part that refused its configuration can leave another waiting for data forever), both naming CTRL and
    STATUS. ``run(cfg)`` does all three.
    """

    def __init__(self, mmio, unit: str | UnitMap, poll_s: float = 0.0002, status_every: int = 64) -> None:
        self.mmio = mmio
        self.map = UNITS[unit] if isinstance(unit, str) else unit
        self.poll_s = poll_s
        self.status_every = status_every

    def configure(self, cfg: Mapping[str, int]) -> None:
        for off, val in self.map.writes(cfg):
            self.mmio.write(off, val)

    def start(self) -> None:
        self.mmio.write(CTRL, AP_START)

    def describe_state(self, ctrl: int) -> str:
        """CTRL (as read: ``ctrl``) and STATUS (read now) of the unit, decoded, for error messages."""
        st = self.mmio.read(STATUS)
        return (f"{self.map.unit}: CTRL(0x00)={ctrl:#x} [start={ctrl & AP_START} done={(ctrl & AP_DONE) >> 1} "
                f"idle={(ctrl & AP_IDLE) >> 2}] STATUS(0x04)={st:#x} [err={self.map.err(st):#x} "
                f"busy={(st & STATUS_BUSY) >> 8}]")

    def poll(self) -> int:
        """One read of CTRL (which clears ap_done), returned; when it shows ap_done, STATUS is read and a nonzero
        err raises ``UnitError`` naming both."""
        ctrl = self.mmio.read(CTRL)
        if ctrl & AP_DONE:
            st = self.mmio.read(STATUS)
            if self.map.err(st):
                raise UnitError(f"{self.map.unit} finished with err: CTRL(0x00)={ctrl:#x} STATUS(0x04)={st:#x} "
                                f"({self.map.err_doc})")
        return ctrl

    def wait(self, timeout_s: float = 1.0) -> int:
        """Poll until ap_done; returns the number of CTRL reads it took."""
        return self.poll_until(lambda ctrl: ctrl & AP_DONE, timeout_s, "no ap_done", self.poll)

    def poll_until(self, ok: Callable[[int], int], timeout_s: float, missing: str,
                   read: Callable[[], int] | None = None) -> int:
        """CTRL read (``read``, default a plain read) until ``ok(ctrl)``, STATUS every ``status_every`` reads
        (``UnitError`` for a nonzero err: a unit that refused its configuration may never finish); ``UnitTimeout``
        "``missing`` within ``timeout_s``" after it. Returns the number of CTRL reads."""
        read = read or (lambda: self.mmio.read(CTRL))
        deadline = time.monotonic() + timeout_s
        polls = 0
        while True:
            ctrl = read()
            polls += 1
            if ok(ctrl):
                return polls
            if polls % self.status_every == 0 and self.map.err(self.mmio.read(STATUS)):
                raise UnitError(f"err while running (it will not finish): {self.describe_state(ctrl)} "
                                f"({self.map.err_doc})")
            if time.monotonic() > deadline:
                raise UnitTimeout(f"{missing} within {timeout_s:g} s: {self.describe_state(ctrl)}")
            if self.poll_s:
                time.sleep(self.poll_s)

    def run(self, cfg: Mapping[str, int], timeout_s: float = 1.0) -> None:
        self.configure(cfg)
        self.start()
        self.wait(timeout_s)
