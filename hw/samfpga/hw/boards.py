"""Target boards of the FINN flow: part, shell, clock and resource budget.

Resource figures are the device totals from the vendor product tables (AMD DS891 Zynq UltraScale+, DS190 Zynq-7000,
DS950 Versal AI Core; KV260: K26 SOM data sheet DS987). BRAM is counted in 36 Kb blocks (FINN's own platform
models in ``finn.util.platforms`` count 18 Kb halves, i.e. twice these numbers). Clocks are the defaults a FINN
Zynq build uses on these boards (PYNQ-Z2 100 MHz; UltraScale+ 200 MHz; Versal 250 MHz) and are what the fps
estimates assume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

RESOURCES = ("LUT", "FF", "BRAM36", "URAM", "DSP")


@dataclass(frozen=True)
class Board:
    """One target board. ``family`` decides which layer implementations FINN+ offers (see docs/hardware.md)."""

    name: str
    part: str
    family: str  # "zynq7", "zynq_us+", "versal"
    finn_board: str | None  # FINN's board name (finn.util.basic.part_map key), None if FINN has no entry
    shell: str  # FINN ShellFlowType value used for a bitfile build
    clock_mhz: float
    lut: int
    ff: int
    bram36: int
    uram: int
    dsp: int
    dsp_kind: str  # DSP48E1 / DSP48E2 / DSP58: decides MACs per DSP per cycle in the roofline

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    def budget(self) -> dict[str, int]:
        """Resource budget ``{LUT, FF, BRAM36, URAM, DSP}``."""
        return {"LUT": self.lut, "FF": self.ff, "BRAM36": self.bram36, "URAM": self.uram, "DSP": self.dsp}

    def macs_per_dsp(self, bits: int = 8) -> int:
        """Multiply-accumulates one DSP slice does per cycle at ``bits``-bit operands (FINN's MVU packing).

        DSP48E2 packs two 8-bit products (INT8 packing in FINN's mvu_4sx4u/mvu_8sx8u), three at 4 bit;
        DSP58 (Versal) does a 3-lane INT8 dot product; DSP48E1 (Zynq-7000) one 8-bit product.
        """
        if self.dsp_kind == "DSP58":
            return 3
        if self.dsp_kind == "DSP48E2":
            return 3 if bits <= 4 else 2
        return 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["clock_period_ns"] = self.clock_period_ns
        return d


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("kv260", "xck26-sfvc784-2LV-c", "zynq_us+", "KV260_SOM", "vivado_zynq", 200.0,
              117_120, 234_240, 144, 64, 1_248, "DSP48E2"),
        Board("zcu104", "xczu7ev-ffvc1156-2-e", "zynq_us+", "ZCU104", "vivado_zynq", 200.0,
              230_400, 460_800, 312, 96, 1_728, "DSP48E2"),
        Board("zcu102", "xczu9eg-ffvb1156-2-e", "zynq_us+", "ZCU102", "vivado_zynq", 200.0,
              274_080, 548_160, 912, 0, 2_520, "DSP48E2"),
        Board("pynq-z2", "xc7z020clg400-1", "zynq7", "Pynq-Z2", "vivado_zynq", 100.0,
              53_200, 106_400, 140, 0, 220, "DSP48E1"),
        Board("vck190", "xcvc1902-vsva2197-2MP-e-S", "versal", "VCK190", "vitis_alveo", 250.0,
              899_840, 1_799_680, 967, 463, 1_968, "DSP58"),
    )
}


def get_board(name: str) -> Board:
    """Look a board up by name (case-insensitive; ``pynq_z2``/``pynqz2`` accepted). Unknown -> ValueError, one line."""
    key = name.strip().lower().replace("_", "-")
    if key == "pynqz2":
        key = "pynq-z2"
    if key not in BOARDS:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[key]
