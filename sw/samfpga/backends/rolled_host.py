"""The host's sequence of one part of a rolled accelerator: its N blocks through two DDR buffers per map, driven
through the strip reader's and the strip writer's registers only (``unit_regs``; docs/rolled_stage.md).

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

Importable without torch / finn / pynq (the board runtime).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from .unit_regs import AP_DONE, AP_START, CTRL, STATUS, UnitDriver, UnitError, UnitTimeout

Job = tuple[int, int]  # (block i, map k)


def loop_jobs(blocks: int, maps: int) -> list[Job]:
    """The jobs of ``blocks`` blocks of ``maps`` maps in the order the host issues them: block after block, map
    after map within a block. Raises ``ValueError`` for fewer than one of either."""
    if blocks < 1 or maps < 1:
        raise ValueError(f"a loop needs at least one block and one map, got blocks={blocks}, maps={maps}")
    return [(i, k) for i in range(blocks) for k in range(maps)]


def _err(d: UnitDriver, status: int) -> int:
    return status & ((1 << d.map.err_bits) - 1)


def run_loop(reader: UnitDriver, writer: UnitDriver, blocks: int, buffers: Sequence[tuple[int, int]],
             src: Mapping[str, int], dst: Mapping[str, int], wait: Callable[[], None] | None = None,
             timeout_s: float | None = 10.0, on_written: Callable[[Job], None] | None = None) -> list[Job]:
    """Run a part's ``blocks`` blocks on ``len(buffers)`` maps (module doc). ``buffers[k]``: map k's two buffer
    addresses (block 0 reads the first); ``src``, ``dst``: the part's input and output as the strip units take them
    ({"h", "w", "c"}: rows, pixels, bytes per pixel); ``wait``: called between polls (default: sleep the writer's
    ``poll_s``); ``on_written``: called with each job once its block is in DDR. Returns the jobs in the order they
    finished.

    Raises ``UnitError`` when the writer finishes a job with a nonzero err, or the reader holds one at the end (R
    error response, bad configuration), and ``UnitTimeout`` when the writer's job has not finished ``timeout_s``
    after it was started (None: no limit); both name the job and the units' CTRL and STATUS."""
    jobs = loop_jobs(blocks, len(buffers))
    if wait is None:
        def wait() -> None:
            time.sleep(writer.poll_s)
    rd_cfg = {"tiles": 1, "halo": 0, **src}
    wr_cfg = {"tiles": 1, **dst}
    done: list[Job] = []
    written: set[Job] = set()
    r, started = 0, None
    while len(done) < len(jobs):
        job = jobs[len(done)]
        if started is None:
            i, k = job
            writer.configure({**wr_cfg, "base": buffers[k][(i + 1) % 2]})
            writer.start()
            started = time.monotonic()
        if r < len(jobs):
            i, k = jobs[r]
            if (i == 0 or (i - 1, k) in written) and not reader.mmio.read(CTRL) & AP_START:
                reader.configure({**rd_cfg, "base": buffers[k][i % 2]})
                reader.start()
                r += 1
                continue
        ctrl = writer.mmio.read(CTRL)  # clears ap_done
        if ctrl & AP_DONE:
            status = writer.mmio.read(STATUS)
            if _err(writer, status):
                raise UnitError(f"block {job[0]} of map {job[1]}: strip_writer finished with err: CTRL(0x00)="
                                f"{ctrl:#x} STATUS(0x04)={status:#x} ({writer.map.err_doc})")
            written.add(job)
            done.append(job)
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
    if _err(reader, status):
        raise UnitError(f"strip_reader holds err after the loop: STATUS(0x04)={status:#x} ({reader.map.err_doc})")
    return done
