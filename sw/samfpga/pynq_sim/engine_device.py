"""``EngineSimDevice``: a ``pynq.Device`` whose PL is a model of the engine's register protocol (an engine build's
``host/`` files, ``samfpga.backends.engine_host``), computing with ``body``.

* The overlay's ``ip_dict`` holds the engine cell at host.json's register address; its register block holds what
  the driver writes (``unit_regs.ENGINE_GEMM_PATH``); CTRL's ap_start runs a step, whose ap_done the next CTRL read
  returns (and clears), STATUS reads 0.
* Each step started must be the program's next one with every register as host.json gives it, its DDR addresses
  relocated to one buffer (the base the first step implies): else ``BackendError`` naming the step and the
  registers that differ (a board would run whatever the registers say).
* When a frame's first step starts, the buffer must be allocated memory of host.json's size, and hold every
  region host.json names (``ddr.bin``'s bytes, or zeros): else ``BackendError`` naming the region (a board would
  compute with whatever is there). The frame's input is read from the buffer as the engine reads it (the image
  window's pixels, or the stored tensor).
* When its last step starts, ``body(input) -> output`` (the accelerator part of the package's integer graph,
  ``IntGraph.run_accelerator``, or any numpy function in a test) and the output is stored where the engine's
  program leaves it (host.json ``output``: its elements, their index, byte width and sign).

What this models is the host's side: the registers of every step in order, the buffer's regions, the input's and
the output's places and formats. That the engine's RTL computes the integer graph from those registers is what
tests/test_sim_engine_gemm_path.py checks, bit-exactly (and that this same host code drives it there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from samfpga.backends.base import BackendError
from samfpga.backends.engine_host import le_bytes, le_values, read_engine_host, relocated
from samfpga.backends.unit_regs import AP_DONE, AP_IDLE, AP_START, CTRL, STATUS, UNITS

from .device import Parser, SimBoard, stand_in_bitfile

Body = Callable[[np.ndarray], np.ndarray]


class EngineSimDevice(SimBoard):
    """Simulated board of the engine described by ``root`` (host.json), its frames computed by ``body`` (module
    doc). ``frames``: frames run; ``timings``: the last frame's ``body_s``."""

    def __init__(self, root: str | Path, body: Body, tag: str = "pynq-sim-engine") -> None:
        super().__init__(tag)
        self.host = read_engine_host(root)
        self.spec = self.host.spec
        self.unit = UNITS[self.spec["unit"]]
        self.body = body
        self.bitfile = stand_in_bitfile(self)
        self.regs: dict[int, int] = {}
        self.done = False
        self.next_step, self.frames, self.base = 0, 0, None
        self.timings: dict[str, float] = {}
        self._x: np.ndarray | None = None
        self._want: list[dict[str, int]] = []

    # ---- pynq.Device API ---------------------------------------------------------------------------------
    def _parser(self) -> Parser:
        return Parser({self.spec["cell"]: ("samfpga:engine:gemm_path:1.0", self.spec["regs"], self.spec["range"])})

    def get_bitfile_metadata(self, bitfile_name):
        return self._parser()

    def download(self, bitstream, parser=None) -> None:
        self.post_download(bitstream, parser or self._parser())

    def read_registers(self, address: int, length: int) -> bytes:
        off = self._offset(address)
        if off == CTRL:
            v = AP_IDLE | (AP_DONE if self.done else 0)
            self.done = False  # clear-on-read
        elif off == STATUS:
            v = 0
        else:
            v = self.regs.get(off, 0)
        return int(v).to_bytes(4, "little")[:length]

    def write_registers(self, address: int, data: bytes) -> None:
        off, val = self._offset(address), int.from_bytes(data, "little")
        if off == CTRL:
            if val & AP_START:
                self._step()
            return
        self.regs[off] = val

    # ---- model ---------------------------------------------------------------------------------------------
    def _offset(self, address: int) -> int:
        base, rng = self.spec["regs"], self.spec["range"]
        if not base <= address < base + rng:
            raise MemoryError(f"pynq-sim: no AXI-Lite slave at {address:#x} (the engine's block is at {base:#x})")
        return address - base

    def _step(self) -> None:
        k, steps = self.next_step, self.host.steps
        cfg = self.unit.config(lambda off: self.regs.get(off, 0))
        name = f"step {k} ({steps[k]['name']})"
        if k == 0:  # the buffer: where the first step's reader reads, less its offset in the buffer
            self.base = cfg["rd_base"] - steps[0]["regs"]["rd_base"]
            self._want = relocated(self.host, self.base)
        want = self._want[k]
        off = sorted(key for key in want if cfg.get(key) != want[key])
        if off:
            raise BackendError(f"pynq-sim engine: {name} started with registers unlike host.json's (buffer at "
                               f"{self.base:#x}): " + ", ".join(f"{key} {cfg.get(key)} (want {want[key]})"
                                                                for key in off[:6]))
        if k == 0:
            self._start_frame(name)
        if k == len(steps) - 1:
            t0 = time.perf_counter()
            self._store_output(np.asarray(self.body(self._x)))
            self.timings = {"body_s": time.perf_counter() - t0}
            self.frames += 1
        self.next_step = (k + 1) % len(steps)
        self.done = True

    def _buffer(self) -> np.ndarray:
        try:
            return self._memory(self.base, self.host.ddr_bytes)
        except MemoryError:
            raise BackendError(f"pynq-sim engine: the buffer at {self.base:#x} (+{self.host.ddr_bytes:,} bytes, "
                               "host.json ddr_bytes) is not allocated memory") from None

    def _start_frame(self, name: str) -> None:
        buf = self._buffer()
        img = np.frombuffer(self.host.image, dtype=np.uint8)
        for r in self.spec["regions"]:
            got = buf[r["at"]:r["at"] + r["bytes"]]
            want = 0 if r["file_at"] is None else img[r["file_at"]:r["file_at"] + r["bytes"]]
            if not np.array_equal(got, np.broadcast_to(want, got.shape)):
                raise BackendError(f"pynq-sim engine: {name} started with region {r['name']} of the buffer not as "
                                   "host.json gives it (the program's memory was not loaded)")
        inp = self.spec["input"]
        w = inp["writes"][0]
        if w["format"] == "image":
            h, wd, c = w["shape"]
            px = buf[w["at"]:w["at"] + h * wd * w["pixel_bytes"]].reshape(h, wd, w["pixel_bytes"])
            x = px[:, :, :c].astype(np.int64)
        else:
            n, e = int(np.prod(inp["shape"])), w["elem_bytes"]
            x = le_values(buf[w["at"]:w["at"] + n * e], e, inp["dtype"].startswith("INT"))
        self._x = x.reshape(inp["shape"])

    def _store_output(self, y: np.ndarray) -> None:
        out, buf = self.spec["output"], self._buffer()
        n, e = out["elements"], out["elem_bytes"]
        if y.size != int(np.prod(out["shape"])):
            raise BackendError(f"pynq-sim engine: body gave {y.shape}, the output is {tuple(out['shape'])}")
        region = buf[out["at"]:out["at"] + n * e]
        stored = le_values(region, e, out["signed"])
        if self.host.index is None:
            stored[:y.size] = y.ravel()
        else:
            stored[self.host.index] = y.ravel()
        region[:] = le_bytes(stored, e)

