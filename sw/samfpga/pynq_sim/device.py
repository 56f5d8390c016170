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
* Token-batched units (driver.json ``token_batch``): each one's register block at its address holds what the driver
  writes; when a run starts, every unit's BASE must point at allocated memory holding the unit's bytes of the
  package's DDR image, and STRIDE / ITERS / TOKENS must be the described values, else the run is refused with a
  ``BackendError`` naming the unit and what differs (a board would compute with whatever BASE points at).
* Runtime-writeable layers (driver.json ``runtime_weights``): each one's AXI-Lite range is a word memory; when a
  run starts every word must hold the package's file, else the run is refused naming the layer (a board would
  compute with uninitialised URAM). A run that starts after such writes is counted in ``stale_runs``: on the
  board a weight memstream still delivers the words it prefetched before the writes, so the driver drops that
  frame (its flush).
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

from samfpga.backends.base import BackendError
from samfpga.backends.packing import pack, unpack
from samfpga.backends.pynq_driver import AP_DONE, AP_IDLE, AP_START, read_runtime_words
from samfpga.backends.unit_regs import TOKEN_BATCH_MVU

FAULTS = (None, "dma_hang")


class Parser:
    """What pynq reads from a .hwh: ``ips`` {instance: (type, address, range)}, nothing else."""

    def __init__(self, ips: dict[str, tuple[str, int, int]]) -> None:
        self.ip_dict = {name: {"fullpath": name, "type": vlnv, "phys_addr": addr, "addr_range": rng, "state": None,
                               "interrupts": {}, "gpio": {}, "parameters": {}, "registers": {}, "mem_id": name,
                               "bdtype": None} for name, (vlnv, addr, rng) in ips.items()}
        self.mem_dict, self.gpio_dict, self.interrupt_pins = {}, {}, {}
        self.interrupt_controllers, self.hierarchy_dict, self.clock_dict = {}, {}, {}
        self.systemgraph = None


def _parser(driver: dict) -> Parser:
    """The parser of a package's shell, built from its driver description: its two IODMAs."""
    return Parser({name: ("xilinx.com:hls:" + ("idma" if d["direction"] == "mm2s" else "odma") + ":1.0", d["base"],
                          d["range"]) for name, d in driver["dma"].items()})


class _Dma:
    def __init__(self, name: str, base: int, rng: int) -> None:
        self.name, self.base, self.range = name, base, rng
        self.regs = {0x00: AP_IDLE, 0x10: 0, 0x14: 0, 0x1C: 0}

    @property
    def address(self) -> int:
        return self.regs[0x10] | (self.regs[0x14] << 32)


class _WordMemory:
    """A runtime-writeable layer's AXI-Lite range: its words and which were written."""

    def __init__(self, entry: dict) -> None:
        self.name, self.base, self.range = entry["name"], entry["regs"], entry["range"]
        self.words = np.zeros(entry["range"] // 4, dtype=np.uint32)
        self.written = np.zeros(entry["range"] // 4, dtype=bool)

    def read(self, address: int, length: int) -> bytes:
        """``length`` bytes from bus ``address`` (in this range)."""
        i = (address - self.base) // 4
        return self.words[i:i + max(1, length // 4)].astype("<u4").tobytes()[:length]

    def write(self, address: int, data: bytes) -> None:
        """32-bit words from bus ``address``; ``MemoryError`` past the range."""
        i, words = (address - self.base) // 4, np.frombuffer(bytes(data), dtype="<u4")
        if i + words.size > self.words.size:
            raise MemoryError(f"pynq-sim: write past the AXI-Lite range of {self.name} ({address:#x}, "
                              f"{words.size} words)")
        self.words[i:i + words.size] = words
        self.written[i:i + words.size] = True

    def check(self, want: np.ndarray, entry: dict, where: str = "") -> None:
        """``BackendError`` unless the first ``want.size`` words were written and hold ``want`` (the words of
        ``entry``'s file); ``where`` prefixes the layer's name in the message."""
        n = want.size
        bad = int(np.count_nonzero(~self.written[:n] | (self.words[:n] != want)))
        if bad:
            raise BackendError(f"pynq-sim: {where}runtime-writeable layer {self.name}: {bad} of its {n} words at "
                               f"{self.base:#x} were not written as {entry['file']} holds them (a board would "
                               "compute with uninitialised URAM)")


def check_unit(name: str, cfg: dict[str, int], entry: dict, want: np.ndarray, memory, source: str,
               what: str) -> None:
    """``BackendError`` unless token-batched unit ``name``'s registers ``cfg`` (``TOKEN_BATCH_MVU.config``) hold
    ``entry``'s STRIDE, ITERS and TOKENS (described in ``source``) and its BASE points at ``want`` (``what``) in
    ``memory(address, nbytes)``."""
    for k in ("stride", "iters", "tokens"):
        if cfg[k] != entry[k]:
            raise BackendError(f"pynq-sim: token-batched unit {name}: {k.upper()} = {cfg[k]}, expected {entry[k]} "
                               f"({source})")
    try:
        have = memory(cfg["base"], want.size)
    except MemoryError as e:
        raise BackendError(f"pynq-sim: token-batched unit {name}: BASE {cfg['base']:#x}: {e}") from None
    bad = np.flatnonzero(have != want)
    if bad.size:
        raise BackendError(f"pynq-sim: token-batched unit {name}: the {want.size} bytes at BASE {cfg['base']:#x} are "
                           f"not {what} ({bad.size} differ, first at +{bad[0]})")


class SimBoard(pynq.Device):
    """A simulated board's memory: ``allocate`` gives ``PynqBuffer`` s at simulated physical addresses (one address
    space for every simulated board of the process), ``_memory`` finds an address range in them; registers go to
    the subclass's ``read_registers`` / ``write_registers`` (capability REGISTER_RW)."""

    _next_addr = 0x6000_0000

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.name = "samfpga-sim"
        self.capabilities = {"REGISTER_RW": True}
        self.buffers: dict[int, np.ndarray] = {}

    def allocate(self, shape, dtype, **kwargs) -> PynqBuffer:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        addr = SimBoard._next_addr
        SimBoard._next_addr += (nbytes + 0xFFF) & ~0xFFF
        raw = np.zeros(nbytes, dtype=np.uint8)
        buf = PynqBuffer(shape, dtype, buffer=raw.data, device_address=addr, device=self, coherent=True)
        self.buffers[addr] = raw
        return buf

    def flush(self, *args) -> None:
        pass

    def invalidate(self, *args) -> None:
        pass

    def _memory(self, address: int, nbytes: int) -> np.ndarray:
        for base, raw in self.buffers.items():
            if base <= address and address + nbytes <= base + raw.size:
                return raw[address - base: address - base + nbytes]
        raise MemoryError(f"pynq-sim: DMA access to unallocated memory {address:#x} (+{nbytes} bytes)")


def stand_in_bitfile(obj) -> Path:
    """A stand-in bitfile in a temporary directory kept by ``obj`` (pynq's Bitstream needs a path)."""
    obj._tmp = tempfile.TemporaryDirectory(prefix="samfpga-sim-")
    path = Path(obj._tmp.name) / "accel.bit"
    path.write_bytes(b"samfpga pynq-sim stand-in bitstream (no hardware)\n")
    return path


class SimDevice(SimBoard):
    """Simulated board for ``package`` (a DeployPackage)."""

    def __init__(self, package, fault: str | None = None, tag: str = "pynq-sim", accelerator=None) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {FAULTS[1:]}")
        super().__init__(tag)
        self.package, self.driver, self.fault = package, package.driver, fault
        # accelerator model: accelerator input values (normal shape) -> output values; default the integer
        # executor; an RTL simulation of the stitched design can be plugged in here
        self.accelerator = accelerator or package.intgraph().run_accelerator
        self.dmas = {n: _Dma(n, d["base"], d["range"]) for n, d in self.driver["dma"].items()}
        tb = self.driver.get("token_batch")
        self.units = {u["name"]: _Dma(u["name"], u["regs"], u["range"]) for u in (tb or {}).get("units", [])}
        self.ddr_image = (Path(package.root) / tb["image"]).read_bytes() if tb else b""
        self.runtime = {e["name"]: _WordMemory(e) for e in self.driver.get("runtime_weights") or []}
        # what each runtime-writeable layer must hold: the package's files as they are now (read once)
        self._runtime_want = {e["name"]: read_runtime_words(Path(package.root), e)
                              for e in self.driver.get("runtime_weights") or []}
        self.stale_runs = 0
        self._stale = False
        self.timings: dict[str, float] = {}
        self.downloads = 0
        self.bitfile = package.bitfile if package.bitfile is not None else stand_in_bitfile(self)

    # ---- pynq.Device API ---------------------------------------------------------------------------------
    def get_bitfile_metadata(self, bitfile_name):
        return _parser(self.driver)

    def download(self, bitstream, parser=None) -> None:
        self.downloads += 1
        for d in self.dmas.values():
            d.regs.update({0x00: AP_IDLE, 0x10: 0, 0x14: 0, 0x1C: 0})
        for u in self.units.values():
            u.regs = {}
        for m in self.runtime.values():
            m.words[:] = 0
            m.written[:] = False
        self._stale = False
        self.post_download(bitstream, parser or _parser(self.driver))

    def read_registers(self, address: int, length: int) -> bytes:
        mem = self._word_memory(address)
        if mem is not None:
            return mem.read(address, length)
        dma, off = self._dma(address)
        return int(dma.regs.get(off, 0)).to_bytes(4, "little")[:length]

    def write_registers(self, address: int, data: bytes) -> None:
        mem = self._word_memory(address)
        if mem is not None:  # AXI-Lite writes of a runtime-writeable layer's memory (32-bit words)
            mem.write(address, data)
            self._stale = True
            return
        dma, off = self._dma(address)
        value = int.from_bytes(data, "little")
        if dma.name in self.units:
            dma.regs[off] = value  # a token-batched unit's configuration register
            return
        if off == 0x00:
            if value & AP_START:
                dma.regs[0x00] = AP_START  # running: not idle, not done
                self._maybe_run()
            return
        dma.regs[off] = value

    # ---- model ---------------------------------------------------------------------------------------------
    def _dma(self, address: int) -> tuple[_Dma, int]:
        for d in (*self.dmas.values(), *self.units.values()):
            if d.base <= address < d.base + d.range:
                return d, address - d.base
        raise MemoryError(f"pynq-sim: no IP at address {address:#x} (DMAs: "
                          f"{', '.join(f'{d.name}@{d.base:#x}' for d in self.dmas.values())}"
                          + (f"; token-batched units: {', '.join(f'{d.name}@{d.base:#x}' for d in self.units.values())}"
                             if self.units else "") + ")")

    def _word_memory(self, address: int) -> _WordMemory | None:
        for m in self.runtime.values():
            if m.base <= address < m.base + m.range:
                return m
        return None

    def _check_runtime_weights(self) -> None:
        """Every runtime-writeable layer's memory holds the package's words."""
        for e in self.driver.get("runtime_weights") or []:
            self.runtime[e["name"]].check(self._runtime_want[e["name"]], e)

    def _check_token_batch(self) -> None:
        """Every token-batched unit configured as driver.json describes it, its BASE on its weights in memory."""
        for u in self.driver["token_batch"]["units"] if self.units else []:
            regs = self.units[u["name"]].regs
            want = np.frombuffer(self.ddr_image[u["ddr_offset"]:u["ddr_offset"] + u["bytes"]], dtype=np.uint8)
            check_unit(u["name"], TOKEN_BATCH_MVU.config(lambda off, r=regs: r.get(off, 0)), u, want, self._memory,
                       "driver.json", "its weights")

    def _maybe_run(self) -> None:
        inp, out = self.driver["inputs"][0], self.driver["outputs"][0]
        idma, odma = self.dmas[inp["dma"]], self.dmas[out["dma"]]
        if not (idma.regs[0x00] & AP_START and odma.regs[0x00] & AP_START):
            return
        if self.fault == "dma_hang":
            return  # the stream never reaches the output DMA: ap_done stays low
        self._check_token_batch()
        self._check_runtime_weights()
        if self._stale:  # prefetched words in a memstream: this frame is the driver's flush on a board
            self.stale_runs += 1
            self._stale = False
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
