"""The engine on a PYNQ board: its bitstream, one DDR buffer holding the program's memory and the steps run by the
host sequencer over the register block (``engine_host``'s files; docs/engine.md).

``EngineAccelerator(root, bitfile)`` checks the host files and the overlay (the engine cell where host.json puts
it), allocates the buffer (``pynq.allocate``, below the engine's AXI address width), writes what the program needs
once (``engine_host.load_regions``) and relocates the steps' addresses to the buffer; ``execute(values)`` runs one
frame, each step's registers written while the step before runs (``StepSequencer``'s overlap: the engine's block
latches them when a step starts). A failed step raises ``UnitError`` / ``UnitTimeout`` naming it; a second process driving the same board is
refused (``OverlayLock``).

Importable without torch / finn (the board runtime; pynq is imported when an accelerator is made).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .base import BackendError
from .engine_host import load_regions, read_engine_host, relocated, run_frame
from .pynq_driver import OverlayLock, check_reach, free_buffer
from .step_sequencer import StepSequencer
from .unit_regs import UNITS


class EngineAccelerator:
    """The engine described by ``root`` (an engine build's ``host/``, a package's ``engine/``) on ``device``
    (default: the board's), ``bitfile`` with its .hwh beside it. ``execute(values)``: the accelerator input
    (integers, host.json's input shape) -> its output (int64, the output shape). ``timings``: the last frame's
    ``run_s`` and ``steps_s`` (the sequencer's, launches included); ``records``: its steps' (MMIO writes and polls,
    seconds: ``StepRecord``)."""

    def __init__(self, root: str | Path, bitfile: str | Path, device=None, timeout_s: float = 10.0,
                 poll_s: float = 0.0) -> None:
        self.host = read_engine_host(root)
        spec = self.host.spec
        self.timeout_s, self.timings, self.records = timeout_s, {}, []
        import pynq

        self.device = device if device is not None else pynq.Device.active_device
        self.lock = OverlayLock(getattr(self.device, "tag", "pynq0"))
        self.ddr = None
        try:
            self.overlay = pynq.Overlay(str(bitfile), download=True, device=self.device)
            ip = self.overlay.ip_dict.get(spec["cell"])
            if ip is None:
                raise BackendError(f"{bitfile}: the overlay has no cell {spec['cell']} (host.json); it has "
                                   f"{sorted(self.overlay.ip_dict)}")
            if ip.get("phys_addr") != spec["regs"]:
                raise BackendError(f"{bitfile}: cell {spec['cell']} at {ip.get('phys_addr'):#x}, host.json has its "
                                   f"registers at {spec['regs']:#x} (host files of another build?)")
            try:
                self.ddr = pynq.allocate((self.host.ddr_bytes,), dtype=np.uint8, target=self.device)
            except (RuntimeError, MemoryError) as e:  # the kernel's contiguous memory (CMA) is too small or full
                raise BackendError(f"cannot allocate the engine's DDR buffer of {self.host.ddr_bytes:,} bytes "
                                   f"(host.json ddr_bytes) in the board's contiguous memory: {e}; give the kernel "
                                   "a larger CMA (cma= on its command line) or free other pynq buffers") from None
            self.base = int(self.ddr.device_address)
            check_reach(self.base, self.host.ddr_bytes, self.host.spec)
            load_regions(self.ddr, self.host)
            self.ddr.flush()
            self.steps = relocated(self.host, self.base)
            mmio = pynq.MMIO(spec["regs"], spec["range"], device=self.device)
            # a block that latches its configuration takes each step's registers while the one before runs
            self.seq = StepSequencer(mmio, spec["unit"], poll_s=poll_s, overlap=UNITS[spec["unit"]].latched)
        except BaseException:
            self.close()
            raise

    def execute(self, values: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        y, recs = run_frame(self.seq, self.ddr, self.host, values, self.base, self.ddr.flush, self.ddr.invalidate,
                            self.steps, self.timeout_s)
        self.timings = {"run_s": time.perf_counter() - t0, "steps_s": sum(r.seconds for r in recs)}
        self.records = recs
        return y

    def close(self) -> None:
        free_buffer(self.ddr)
        self.ddr = None
        self.lock.release()
