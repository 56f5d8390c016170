"""``SimDevice``: a ``pynq.Device`` whose PL is a model of FINN's Zynq shell (two IODMAs + the accelerator).

* Registers (capability REGISTER_RW: every MMIO access of pynq's DefaultIP lands in ``read_registers`` /
  ``write_registers``): per DMA ctrl 0x00 (ap_start 0x1, ap_done 0x2, ap_idle 0x4), buffer address 0x10/0x14,
  repetitions 0x1C, at the addresses of the package's driver description.
* Memory: ``allocate`` returns ``PynqBuffer`` s at simulated physical addresses; the DMA model reads and writes
  them by address.
* When both DMAs have been started, the model reads the packed input from memory (``dma_in``), unpacks it, runs
  the accelerator model (the integer executor of the package's graph), packs the result into the output
  buffer (``dma_out``) and sets the output DMA's ap_done. ``timings`` records the three stages.
* Metadata: the bitstream's ip_dict is built from driver.json (the package's hwh, when present, is checked
  against it by the package loader). Without a bitfile in the package, a stand-in file in a temporary
  directory plays the bitfile (pynq's Bitstream needs a path).
* ``fault="dma_hang"``: the output DMA never completes (for the driver's timeout path).
* ``accelerator=fn``: another accelerator model (values in -> values out, normal shapes), e.g. an RTL simulation.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pynq
from pynq.buffer import PynqBuffer

from samfpga.backends.packing import pack, unpack
from samfpga.backends.pynq_driver import AP_DONE, AP_IDLE, AP_START

FAULTS = (None, "dma_hang")


class _Parser:
    """What pynq reads from a .hwh, built from the driver description."""

    def __init__(self, driver: dict) -> None:
        self.ip_dict = {}
        for name, d in driver["dma"].items():
            self.ip_dict[name] = {
                "fullpath": name, "type": "xilinx.com:hls:" + ("idma" if d["direction"] == "mm2s" else "odma")
                + ":1.0", "phys_addr": d["base"], "addr_range": d["range"], "state": None, "interrupts": {},
                "gpio": {}, "parameters": {}, "registers": {}, "mem_id": name, "bdtype": None}
        self.mem_dict, self.gpio_dict, self.interrupt_pins = {}, {}, {}
        self.interrupt_controllers, self.hierarchy_dict, self.clock_dict = {}, {}, {}
        self.systemgraph = None


class _Dma:
    def __init__(self, name: str, base: int, rng: int) -> None:
        self.name, self.base, self.range = name, base, rng
        self.regs = {0x00: AP_IDLE, 0x10: 0, 0x14: 0, 0x1C: 0}

    @property
    def address(self) -> int:
        return self.regs[0x10] | (self.regs[0x14] << 32)


class SimDevice(pynq.Device):
    """Simulated board for ``package`` (a DeployPackage)."""

    _next_addr = 0x6000_0000

    def __init__(self, package, fault: str | None = None, tag: str = "pynq-sim", accelerator=None) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {FAULTS[1:]}")
        super().__init__(tag)
        self.name = "samfpga-sim"
        self.capabilities = {"REGISTER_RW": True}
        self.package, self.driver, self.fault = package, package.driver, fault
        # accelerator model: accelerator input values (normal shape) -> output values; default the integer
        # executor; an RTL simulation of the stitched design can be plugged in here
        self.accelerator = accelerator or package.intgraph().run_accelerator
        self.dmas = {n: _Dma(n, d["base"], d["range"]) for n, d in self.driver["dma"].items()}
        self.buffers: dict[int, np.ndarray] = {}
        self.timings: dict[str, float] = {}
        self.downloads = 0
        if package.bitfile is not None:
            self.bitfile = package.bitfile
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="samfpga-sim-")
            self.bitfile = Path(self._tmp.name) / "accel.bit"
            self.bitfile.write_bytes(b"samfpga pynq-sim stand-in bitstream (no hardware)\n")

    # ---- pynq.Device API ---------------------------------------------------------------------------------
    def get_bitfile_metadata(self, bitfile_name):
        return _Parser(self.driver)

    def download(self, bitstream, parser=None) -> None:
        self.downloads += 1
        for d in self.dmas.values():
            d.regs.update({0x00: AP_IDLE, 0x10: 0, 0x14: 0, 0x1C: 0})
        self.post_download(bitstream, parser or _Parser(self.driver))

    def allocate(self, shape, dtype, **kwargs) -> PynqBuffer:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        addr = SimDevice._next_addr
        SimDevice._next_addr += (nbytes + 0xFFF) & ~0xFFF
        raw = np.zeros(nbytes, dtype=np.uint8)
        buf = PynqBuffer(shape, dtype, buffer=raw.data, device_address=addr, device=self, coherent=True)
        self.buffers[addr] = raw
        return buf

    def flush(self, *args) -> None:
        pass

    def invalidate(self, *args) -> None:
        pass

    def read_registers(self, address: int, length: int) -> bytes:
        dma, off = self._dma(address)
        return int(dma.regs.get(off, 0)).to_bytes(4, "little")[:length]

    def write_registers(self, address: int, data: bytes) -> None:
        dma, off = self._dma(address)
        value = int.from_bytes(data, "little")
        if off == 0x00:
            if value & AP_START:
                dma.regs[0x00] = AP_START  # running: not idle, not done
                self._maybe_run()
            return
        dma.regs[off] = value

    # ---- model ---------------------------------------------------------------------------------------------
    def _dma(self, address: int) -> tuple[_Dma, int]:
        for d in self.dmas.values():
            if d.base <= address < d.base + d.range:
                return d, address - d.base
        raise MemoryError(f"pynq-sim: no IP at address {address:#x} (DMAs: "
                          f"{', '.join(f'{d.name}@{d.base:#x}' for d in self.dmas.values())})")

    def _memory(self, address: int, nbytes: int) -> np.ndarray:
        for base, raw in self.buffers.items():
            if base <= address and address + nbytes <= base + raw.size:
                return raw[address - base: address - base + nbytes]
        raise MemoryError(f"pynq-sim: DMA access to unallocated memory {address:#x} (+{nbytes} bytes)")

    def _maybe_run(self) -> None:
        inp, out = self.driver["inputs"][0], self.driver["outputs"][0]
        idma, odma = self.dmas[inp["dma"]], self.dmas[out["dma"]]
        if not (idma.regs[0x00] & AP_START and odma.regs[0x00] & AP_START):
            return
        if self.fault == "dma_hang":
            return  # the stream never reaches the output DMA: ap_done stays low
        reps = max(1, idma.regs[0x1C])
        t0 = time.perf_counter()
        nin = int(np.prod(inp["shape_packed"]))
        raw = self._memory(idma.address, nin * reps).reshape(inp["shape_packed"])
        x = unpack(raw, inp["dtype"], inp["shape_folded"][-1]).reshape(inp["shape_normal"])
        idma.regs[0x00] = AP_IDLE | AP_DONE
        t1 = time.perf_counter()
        y = self.accelerator(x)
        t2 = time.perf_counter()
        packed = pack(np.asarray(y).reshape(out["shape_folded"]), out["dtype"])
        nout = int(np.prod(out["shape_packed"]))
        self._memory(odma.address, nout)[:] = packed.reshape(-1)
        odma.regs[0x00] = AP_IDLE | AP_DONE
        self.timings = {"dma_in_s": t1 - t0, "accelerator_s": t2 - t1, "dma_out_s": time.perf_counter() - t2}
