"""The accelerator driver on PYNQ: overlay, DMA buffers, FINN's IODMA register protocol, packing.

Follows FINN's ``FINNExampleOverlay`` / finn-plus-driver ``FINNDMAOverlay`` (platform ``zynq-iodma``): one
input and one output IODMA, per DMA the buffer address at 0x10/0x14, the repetition count at 0x1C, start by
writing 1 to 0x00 (ap_start); the output DMA must be idle (bit 0x4 of 0x00) before a run, and the run is done
when bit 0x2 (ap_done) of the output DMA's 0x00 is set. Buffers come from ``pynq.allocate``; data is packed with
FINN's convention (``samfpga.backends.packing``).

Where this departs from finn-plus-driver: the I/O description comes from the package's ``driver.json`` (not
FINN's settings.json; it carries the same io shapes/datatypes plus DMA names and addresses, which are checked
against the overlay's ip_dict); waiting for ap_done has a timeout and raises ``DmaTimeout`` naming both DMAs and
their status registers instead of spinning forever (finn#659); the overlay is locked against a second process;
only numpy 1.26 / pynq 3.0.1 APIs are used (finn-plus-driver pulls its own dependency pins).

A build with token-batched layers (driver.json ``token_batch``) has their weights in DDR: the driver copies the
package's DDR image into one ``pynq.allocate`` buffer and writes each unit's registers (BASE = buffer address +
the unit's offset, STRIDE, ITERS, TOKENS; ``unit_regs.TOKEN_BATCH_MVU``) at its AXI-Lite address before any run.

Runtime-writeable layers (driver.json ``runtime_weights``: memories in URAM, which the bitstream cannot initialise)
get their words (the package's ``runtime_weights/<node>.dat``, FINN's ``decoupled_runtime`` format) written over
AXI-Lite from their base address; then one frame of zeros is run and its output dropped, because a weight
memstream prefetches words before they are written (FINN's driver: ``load_runtime_weights(flush_accel=True)``;
the ``mvau_axilite`` bench shows the first frame differs without it).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .base import BackendError
from .packing import pack, unpack

CTRL, ADDR_LO, ADDR_HI, REPS = 0x00, 0x10, 0x14, 0x1C
AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4


def read_runtime_words(root: Path, entry: dict) -> np.ndarray:
    """The 32-bit words of runtime-writeable layer ``entry`` (driver.json ``runtime_weights``) from its file under
    the package ``root``, checked against the described count."""
    path = Path(root) / entry["file"]
    if not path.is_file():
        raise BackendError(f"{path}: missing (runtime weights of {entry['name']}, driver.json)")
    try:
        words = np.array([int(w, 16) for w in path.read_text().split()], dtype=np.uint32)
    except ValueError as e:
        raise BackendError(f"{path}: not hex words, one per line ({e})") from None
    if words.size != entry["words"]:
        raise BackendError(f"{path}: {words.size} words, driver.json says {entry['words']} for {entry['name']}")
    return words


def free_buffer(buf) -> None:
    """Give a ``pynq.allocate`` buffer back (None, or a simulated board's buffer without ``freebuffer``: nothing)."""
    if buf is not None and hasattr(buf, "freebuffer"):
        buf.freebuffer()


#: address bits of a host.json without ``master_addr_bits`` (every rolled design before the key had 32-bit masters)
DEFAULT_ADDR_BITS = 32


def check_reach(address: int, nbytes: int, host: Mapping) -> None:
    """``BackendError`` when the DDR region ``[address, address + nbytes)`` is not below 2**``master_addr_bits``
    (a rolled build's or the engine's host.json): the design's AXI masters would drop the address's high bits and
    read or write other memory."""
    bits = int(host.get("master_addr_bits", DEFAULT_ADDR_BITS))
    if address + nbytes > 1 << bits:
        raise BackendError(f"the DDR region pynq.allocate gave ({address:#x} + {nbytes:,} bytes) reaches past the "
                           f"{bits}-bit addresses of the design's AXI masters (host.json master_addr_bits): they "
                           f"would read and write other memory; give the board's contiguous memory (CMA) a range "
                           f"below {1 << bits:#x}")


class DmaTimeout(BackendError):
    """The output DMA did not report ap_done in time."""


class OverlayBusy(BackendError):
    """Another process holds the overlay."""


def lock_dir() -> Path:
    return Path(os.environ.get("SAMFPGA_LOCK_DIR", Path(tempfile.gettempdir()) / "samfpga-locks"))


class OverlayLock:
    """An exclusive advisory lock (flock) per device: one process drives an overlay at a time."""

    def __init__(self, device_tag: str) -> None:
        d = lock_dir()
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / f"{device_tag.replace('/', '_')}.lock"
        self._f = open(self.path, "a+")  # noqa: SIM115 - held for the overlay's lifetime
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.seek(0)
            holder = self._f.read().strip() or "unknown"
            self._f.close()
            raise OverlayBusy(f"the overlay on device {device_tag!r} is in use by another process (pid {holder}; "
                              f"lock {self.path}); close that process first") from None
        self._f.seek(0)
        self._f.truncate()
        self._f.write(str(os.getpid()))
        self._f.flush()

    def release(self) -> None:
        if not self._f.closed:
            fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()


class AcceleratorOverlay:
    """Loads ``bitfile`` (with its .hwh) on ``device`` and runs the accelerator described by ``driver`` (dict).

    ``execute(values)`` takes the accelerator input (normal shape, float values of the input datatype) and
    returns the output (normal shape). ``timings`` holds the last run's pack_s, run_s (DMA in + compute + DMA
    out, as seen by the host), unpack_s.
    """

    def __init__(self, bitfile: Path, driver: dict, device=None, timeout_s: float = 10.0,
                 ddr_image: bytes | None = None, runtime_words: dict[str, np.ndarray] | None = None) -> None:
        import pynq

        self.device = device if device is not None else pynq.Device.active_device
        self.lock = OverlayLock(getattr(self.device, "tag", "pynq0"))
        try:
            self.driver = driver
            self.timeout_s = timeout_s
            self.overlay = pynq.Overlay(str(bitfile), download=True, device=self.device)
            self.inp, self.out = driver["inputs"][0], driver["outputs"][0]
            self.dmas = {}
            for io in (self.inp, self.out):
                name = io["dma"]
                if name not in self.overlay.ip_dict:
                    raise BackendError(f"{bitfile}: overlay has no DMA {name!r} (driver.json); IPs: "
                                       f"{sorted(self.overlay.ip_dict)}")
                addr = self.overlay.ip_dict[name]["phys_addr"]
                if addr != driver["dma"][name]["base"]:
                    raise BackendError(f"{bitfile}: DMA {name} at {addr:#x}, driver.json says "
                                       f"{driver['dma'][name]['base']:#x}")
                self.dmas[name] = getattr(self.overlay, name)
            self.idma, self.odma = self.dmas[self.inp["dma"]], self.dmas[self.out["dma"]]
            self.ibuf = pynq.allocate(tuple(self.inp["shape_packed"]), dtype=np.uint8, target=self.device)
            self.obuf = pynq.allocate(tuple(self.out["shape_packed"]), dtype=np.uint8, target=self.device)
            self.wbuf = self._load_token_batch(driver.get("token_batch"), ddr_image)
            self.timings: dict[str, float] = {}
            self._write_runtime_weights(driver.get("runtime_weights") or [], runtime_words or {})
        except BaseException:
            self.close()
            raise

    def _load_token_batch(self, tb: dict | None, image: bytes | None):
        """The token-batched units' weights into DDR and their registers written (see the module doc); None when
        the build has none."""
        if not tb:
            return None
        import pynq

        from .unit_regs import TOKEN_BATCH_MVU, UnitDriver

        if image is None:
            raise BackendError(f"driver.json lists {len(tb['units'])} token-batched units; their DDR image "
                               f"({tb['image']}) is needed")
        for u in tb["units"]:
            if u["ddr_offset"] + u["bytes"] > len(image):
                raise BackendError(f"{tb['image']}: {len(image)} bytes, unit {u['name']} needs bytes "
                                   f"{u['ddr_offset']}..{u['ddr_offset'] + u['bytes']}")
        buf = pynq.allocate((len(image),), dtype=np.uint8, target=self.device)
        buf[:] = np.frombuffer(image, dtype=np.uint8)
        buf.flush()
        for u in tb["units"]:
            UnitDriver(pynq.MMIO(u["regs"], u["range"], device=self.device), TOKEN_BATCH_MVU).configure(
                {"base": buf.device_address + u["ddr_offset"], "stride": u["stride"], "iters": u["iters"],
                 "tokens": u["tokens"]})
        return buf

    def _write_runtime_weights(self, entries: list[dict], words: dict[str, np.ndarray]) -> None:
        """Each runtime-writeable layer's words over AXI-Lite from its base, then one dropped frame (module doc)."""
        if not entries:
            return
        import pynq

        for e in entries:
            w = words.get(e["name"])
            if w is None:
                raise BackendError(f"driver.json lists runtime weights for {e['name']} ({e['file']}); they are needed")
            if w.size != e["words"] or 4 * w.size > e["range"]:
                raise BackendError(f"runtime weights of {e['name']}: {w.size} words for {e['words']} described "
                                   f"(range {e['range']} bytes)")
            pynq.MMIO(e["regs"], e["range"], device=self.device).write(0, np.ascontiguousarray(w, "<u4").tobytes())
        self.execute(np.zeros(self.inp["shape_normal"], dtype=np.float32))
        self.timings = {}

    def _status(self) -> str:
        regs = []
        for name, dma in self.dmas.items():
            ctrl = dma.read(CTRL)
            addr = dma.read(ADDR_LO) | (dma.read(ADDR_HI) << 32)
            regs.append(f"{name} @ {self.driver['dma'][name]['base']:#x}: ctrl(0x00)={ctrl:#x} "
                        f"[start={ctrl & AP_START} done={(ctrl & AP_DONE) >> 1} idle={(ctrl & AP_IDLE) >> 2}] "
                        f"addr(0x10)={addr:#x} reps(0x1C)={dma.read(REPS)}")
        return "; ".join(regs)

    def execute(self, values: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        folded = np.asarray(values).reshape(self.inp["shape_folded"])
        self.ibuf[:] = pack(folded, self.inp["dtype"]).reshape(self.inp["shape_packed"])
        self.ibuf.flush()
        t1 = time.perf_counter()
        if not self.odma.read(CTRL) & AP_IDLE:
            raise BackendError(f"output DMA is not idle before the run: {self._status()}")
        batch = int(self.driver.get("batch_size", 1))
        for dma, buf in ((self.odma, self.obuf), (self.idma, self.ibuf)):  # sink first, as FINN's driver
            dma.write(ADDR_LO, buf.device_address & 0xFFFF_FFFF)
            dma.write(ADDR_HI, (buf.device_address >> 32) & 0xFFFF_FFFF)
            dma.write(REPS, batch)
            dma.write(CTRL, AP_START)
        deadline = time.monotonic() + self.timeout_s
        while not self.odma.read(CTRL) & AP_DONE:
            if time.monotonic() > deadline:
                raise DmaTimeout(f"accelerator did not finish within {self.timeout_s:g} s (output DMA "
                                 f"{self.out['dma']} never set ap_done): {self._status()}")
            time.sleep(0.0002)
        t2 = time.perf_counter()
        self.obuf.invalidate()
        y = unpack(np.asarray(self.obuf), self.out["dtype"], self.out["shape_folded"][-1])
        self.timings = {"pack_s": t1 - t0, "run_s": t2 - t1, "unpack_s": time.perf_counter() - t2}
        return y.reshape(self.out["shape_normal"])

    def close(self) -> None:
        for b in ("ibuf", "obuf", "wbuf"):
            free_buffer(getattr(self, b, None))
        self.lock.release()
