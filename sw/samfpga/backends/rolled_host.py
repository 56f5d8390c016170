"""The host's side of a rolled accelerator (docs/rolled_stage.md): the sequence of one part, its N blocks through two
DDR buffers per map driven through the strip reader's and the strip writer's registers only (``unit_regs``,
``run_loop``), and the chain of parts, each reading the buffer the part before it wrote (``run_parts``).

A part (a loop body, or a piece of the rolled graph that runs once: N = 1) sits between a strip reader and a strip
writer. For K maps interleaved (the body's ``loop_frames``) the jobs are block after block and, within a block, map
after map: job (i, k) reads map k's buffer ``i % 2`` and writes its buffer ``(i + 1) % 2``. The host runs them as
one thread on a board's CPU would, one register access at a time:

* the writer's jobs one after the other: configure, start, poll CTRL until ap_done (its last B response: the
  block is in DDR), check STATUS err;
* the reader's job (i, k) once the writer has finished (i - 1, k) and the reader has no start pending (the unit
  samples its registers at the start pulse, so the next job's registers may be written while it runs one); so the
  reader streams map k + 1 while the body still drains map k.

The same code runs on the board (``pynq.MMIO`` objects) and in the RTL simulation of the part
(``samfpga.hw.sim.rolled_loop_bench`` calls it from a cocotb bridge thread, each register access an AXI-Lite
transaction), so what the simulation checks bit-exactly is this sequence.

A buffer holds its tensor as raster HWC integers, each element in ``elem_bytes`` little-endian bytes (two's
complement; a narrower datatype sign- or zero-extended), which both neighbouring parts agree on
(``samfpga.hw.sim.rolled_parts.layouts``): ``encode`` / ``decode``.

Importable without torch / finn / pynq (the board runtime).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import BackendError
from .unit_regs import AP_DONE, AP_START, CTRL, STATUS, UnitDriver, UnitError, UnitTimeout

Job = tuple[int, int]  # (block i, map k)

#: DDR buffers start on 4 KiB pages (the DMA engines' bursts never cross one)
BUFFER_ALIGN = 4096


def align_up(n: int, to: int) -> int:
    """``n`` rounded up to a multiple of ``to`` (addresses and sizes of DDR regions, buffers and register windows)."""
    return -(-n // to) * to


@dataclass(frozen=True)
class BufferSide:
    """A part's input or output as its DDR buffer holds it: ``h`` rows of ``w`` pixels of ``c`` elements, each a
    ``bits``-bit (``signed``) integer in ``elem_bytes`` bytes."""

    h: int
    w: int
    c: int
    bits: int
    signed: bool
    elem_bytes: int

    @property
    def nbytes(self) -> int:
        return self.h * self.w * self.c * self.elem_bytes

    def strip_cfg(self) -> dict[str, int]:
        """The strip units' h, w, c (bytes per pixel) of this buffer."""
        return {"h": self.h, "w": self.w, "c": self.c * self.elem_bytes}


@dataclass(frozen=True)
class PartSpec:
    """One part of a rolled accelerator as the host runs it: ``blocks`` passes (N; 1 for a piece that runs once)
    from ``src`` to ``dst``; ``in_shape`` / ``out_shape``: its tensors' shapes (FINN's NHWC order)."""

    name: str
    blocks: int
    src: BufferSide
    dst: BufferSide
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


HOST_FORMAT = "samfpga-rolled-host"


def parts_to_json(parts: Sequence[PartSpec]) -> dict:
    """The description of a rolled accelerator's parts for the host (``rolled/host.json`` of a rolled build):
    format, version, each part's ``PartSpec`` and the DDR region ``plan_buffers`` needs."""
    return {"format": HOST_FORMAT, "version": 1, "ddr_bytes": plan_buffers(parts)[1],
            "parts": [{"name": p.name, "blocks": p.blocks, "src": vars(p.src), "dst": vars(p.dst),
                       "in_shape": list(p.in_shape), "out_shape": list(p.out_shape)} for p in parts]}


def part_slaves(part: Mapping) -> list[tuple[str, str, Mapping]]:
    """Each AXI-Lite slave of a host.json part with its address map (``samfpga.hw.rolled.board``): (what: "reader",
    "writer" or the unit's or layer's name, its port on the part's top, its entry with ``regs`` and ``range``)."""
    return [("reader", part["reader"]["port"], part["reader"]), ("writer", part["writer"]["port"], part["writer"]),
            *((e["name"], e["axilite_port"], e) for e in (*part.get("token_batch", []),
                                                          *part.get("runtime_weights", [])))]


def read_parts(desc: Mapping | str | Path, where: str = "") -> list[PartSpec]:
    """``PartSpec`` s from ``parts_to_json``'s dict or the JSON file holding it; raises ``BackendError`` naming the
    file (``where`` for a dict) and the field for a wrong format, a missing or malformed field, or neighbours that
    disagree on a buffer."""
    if not isinstance(desc, Mapping):
        where = str(desc)
        try:
            desc = json.loads(Path(desc).read_text())
        except (OSError, ValueError) as e:
            raise BackendError(f"{where}: cannot read the rolled parts' description ({e})") from None
    where = where or "rolled parts description"
    if desc.get("format") != HOST_FORMAT or desc.get("version") != 1:
        raise BackendError(f"{where}: not a {HOST_FORMAT} version 1 description (format={desc.get('format')!r}, "
                           f"version={desc.get('version')!r})")
    out = []
    for j, p in enumerate(desc.get("parts") or []):
        try:
            sides = {k: BufferSide(**{f: p[k][f] for f in ("h", "w", "c", "bits", "signed", "elem_bytes")})
                     for k in ("src", "dst")}
            spec = PartSpec(name=str(p["name"]), blocks=int(p["blocks"]), src=sides["src"], dst=sides["dst"],
                            in_shape=tuple(int(v) for v in p["in_shape"]),
                            out_shape=tuple(int(v) for v in p["out_shape"]))
        except (KeyError, TypeError, ValueError) as e:
            raise BackendError(f"{where}: part {j} lacks or mangles {e}") from None
        if spec.blocks < 1 or spec.src.elem_bytes not in (1, 2) or spec.dst.elem_bytes not in (1, 2):
            raise BackendError(f"{where}: part {spec.name}: blocks {spec.blocks} (>= 1) or bytes per element "
                               f"{spec.src.elem_bytes}/{spec.dst.elem_bytes} (1 or 2) out of range")
        out.append(spec)
    if not out:
        raise BackendError(f"{where}: no parts")
    try:
        plan_buffers(out)
    except ValueError as e:
        raise BackendError(f"{where}: {e}") from None
    return out


def encode(x: np.ndarray, side: BufferSide) -> bytes:
    """Tensor values (any numeric array of integers of ``side``'s datatype) as the buffer holds them (module doc).
    Raises ``ValueError`` naming the side when a value is not an integer of that datatype."""
    v = np.asarray(x)
    lo, hi = (-(1 << (side.bits - 1)), (1 << (side.bits - 1)) - 1) if side.signed else (0, (1 << side.bits) - 1)
    if v.size != side.h * side.w * side.c:
        raise ValueError(f"{v.size} values for a buffer of {side.h} x {side.w} x {side.c}")
    if v.size and (np.any(v != np.round(v)) or v.min() < lo or v.max() > hi):
        raise ValueError(f"values outside the {'INT' if side.signed else 'UINT'}{side.bits} of the buffer "
                         f"(range {v.min()}..{v.max()}, or not integers)")
    return v.astype(np.int64).astype(f"<i{side.elem_bytes}").tobytes()


def decode(data: bytes, shape: Sequence[int], side: BufferSide) -> np.ndarray:
    """``side``'s values in a buffer as the reading part takes them: the low ``bits`` bits of each element,
    sign-extended for a signed datatype; float32 of ``shape``."""
    v = np.frombuffer(data, dtype=f"<u{side.elem_bytes}").astype(np.int64) & ((1 << side.bits) - 1)
    if side.signed:
        v = np.where(v >= 1 << (side.bits - 1), v - (1 << side.bits), v)
    return v.astype(np.float32).reshape(tuple(shape))


def plan_buffers(parts: Sequence[PartSpec], align: int = BUFFER_ALIGN) -> tuple[list[tuple[int, int]], int]:
    """Byte offsets of each part's buffer pair in one DDR region, and the region's size. Part j reads the first
    buffer of its pair and its block i writes buffer (i + 1) % 2, so its output ends in buffer N % 2; the next
    part's first buffer is that one, its second a fresh one. Raises ``ValueError`` when neighbours disagree on the
    buffer between them (shape or bytes per element)."""
    pairs: list[tuple[int, int]] = []
    top = 0

    def fresh(nbytes: int) -> int:
        nonlocal top
        off = top
        top += align_up(nbytes, align)
        return off

    first = fresh(max(parts[0].src.nbytes, parts[0].dst.nbytes)) if parts else 0
    for j, p in enumerate(parts):
        if j:
            prev = parts[j - 1]
            if (prev.dst.h * prev.dst.w * prev.dst.c, prev.dst.elem_bytes) != (p.src.h * p.src.w * p.src.c,
                                                                                 p.src.elem_bytes):
                raise ValueError(f"{prev.name} writes {prev.dst} but {p.name} reads {p.src}")
            first = output_buffer(prev, pairs[-1])
        pairs.append((first, fresh(max(p.src.nbytes, p.dst.nbytes))))
    return pairs, top


def output_buffer(part: PartSpec, pair: tuple[int, int]) -> int:
    """Where ``part`` leaves its output: buffer N % 2 of its pair."""
    return pair[part.blocks % 2]


def loop_jobs(blocks: int, maps: int) -> list[Job]:
    """The jobs of ``blocks`` blocks of ``maps`` maps in the order the host issues them: block after block, map
    after map within a block. Raises ``ValueError`` for fewer than one of either."""
    if blocks < 1 or maps < 1:
        raise ValueError(f"a loop needs at least one block and one map, got blocks={blocks}, maps={maps}")
    return [(i, k) for i in range(blocks) for k in range(maps)]


def run_loop(reader: UnitDriver, writer: UnitDriver, blocks: int, buffers: Sequence[tuple[int, int]],
             src: Mapping[str, int], dst: Mapping[str, int], wait: Callable[[], None] | None = None,
             timeout_s: float | None = 10.0, on_written: Callable[[Job], None] | None = None) -> list[Job]:
    """Run a part's ``blocks`` blocks on ``len(buffers)`` maps (module doc). ``buffers[k]``: map k's two buffer
    addresses (block 0 reads the first); ``src``, ``dst``: the part's input and output as the strip units take them
    ({"h", "w", "c"}: rows, pixels, bytes per pixel); ``wait``: called between polls (default: sleep the writer's
    ``poll_s``); ``on_written``: called with each job once its block is in DDR. Returns the jobs in the order they
    finished (the writer's, ``loop_jobs``).

    Raises ``UnitError`` when the writer finishes a job with a nonzero err, or the reader holds one at the end (R
    error response, bad configuration), and ``UnitTimeout`` when the writer's job has not finished ``timeout_s``
    after it was started (None: no limit); both name the job and the units' CTRL and STATUS."""
    jobs = loop_jobs(blocks, len(buffers))
    if wait is None:
        def wait() -> None:
            time.sleep(writer.poll_s)
    rd_cfg = {"tiles": 1, "halo": 0, **src}
    wr_cfg = {"tiles": 1, **dst}
    maps = len(buffers)
    written = 0  # the writer finishes the jobs in order: jobs[:written] are in DDR
    r, started = 0, None
    while written < len(jobs):
        job = jobs[written]
        if started is None:
            i, k = job
            writer.configure({**wr_cfg, "base": buffers[k][(i + 1) % 2]})
            writer.start()
            started = time.monotonic()
        if r < len(jobs):
            i, k = jobs[r]
            if (i == 0 or (i - 1) * maps + k < written) and not reader.mmio.read(CTRL) & AP_START:
                reader.configure({**rd_cfg, "base": buffers[k][i % 2]})
                reader.start()
                r += 1
                continue
        try:
            ctrl = writer.poll()
        except UnitError as e:
            raise UnitError(f"block {job[0]} of map {job[1]}: {e}") from None
        if ctrl & AP_DONE:
            written += 1
            started = None
            if on_written is not None:
                on_written(job)
            continue
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise UnitTimeout(f"block {job[0]} of map {job[1]} not written within {timeout_s:g} s "
                              f"({r} of {len(jobs)} reads issued): writer {writer.describe_state(ctrl)}; reader "
                              f"{reader.describe_state(reader.mmio.read(CTRL))}")
        wait()
    status = reader.mmio.read(STATUS)
    if reader.map.err(status):
        raise UnitError(f"strip_reader holds err after the loop: STATUS(0x04)={status:#x} ({reader.map.err_doc})")
    return jobs


def run_parts(parts: Sequence[PartSpec], drivers: Sequence[tuple[UnitDriver, UnitDriver]], ddr: np.ndarray,
              ddr_base: int, x: np.ndarray, wait: Callable[[], None] | None = None,
              timeout_s: float | None = 10.0) -> np.ndarray:
    """One frame through every part in turn (module doc): ``x`` (the first part's input values, ``in_shape``) is
    encoded into the first buffer of ``ddr`` (a uint8 array of at least ``plan_buffers``' size at physical
    address ``ddr_base``: a ``pynq.allocate`` buffer on the board, whose ``flush`` / ``invalidate`` are called
    around the run), each part runs its blocks with its (reader, writer) ``drivers`` (``run_loop``), and the last
    part's output is decoded (float32 of its ``out_shape``). Raises ``BackendError`` for a region too small or a
    drivers count that differs, and what ``run_loop`` raises, naming the part."""
    pairs, size = plan_buffers(parts)
    if len(drivers) != len(parts):
        raise BackendError(f"{len(parts)} parts but {len(drivers)} (reader, writer) driver pairs")
    if ddr.dtype != np.uint8 or ddr.ndim != 1 or ddr.size < size:
        raise BackendError(f"the DDR region must be a uint8 vector of at least {size:,} bytes, got {ddr.dtype} "
                           f"{ddr.shape}")
    data = encode(x, parts[0].src)
    ddr[pairs[0][0]:pairs[0][0] + len(data)] = np.frombuffer(data, dtype=np.uint8)
    if hasattr(ddr, "flush"):
        ddr.flush()
    for p, pair, (reader, writer) in zip(parts, pairs, drivers):
        try:
            run_loop(reader, writer, p.blocks, [(ddr_base + pair[0], ddr_base + pair[1])], p.src.strip_cfg(),
                     p.dst.strip_cfg(), wait=wait, timeout_s=timeout_s)
        except BackendError as e:
            raise type(e)(f"part {p.name}: {e}") from None
    if hasattr(ddr, "invalidate"):
        ddr.invalidate()
    last, out = parts[-1], output_buffer(parts[-1], pairs[-1])
    return decode(bytes(ddr[out:out + last.dst.nbytes]), last.out_shape, last.dst)
