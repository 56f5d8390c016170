"""The widest of several QONNX datatypes: what one loop body carries where blocks differ in a datatype."""

from __future__ import annotations


def widest(names: list[str]) -> str | None:
    """The smallest integer datatype holding every value of the integer datatypes ``names``; the name itself when
    all are equal; None when they differ and one is not an integer type (or is bipolar)."""
    from qonnx.core.datatype import DataType

    if len(set(names)) == 1:
        return names[0]
    dts = [DataType[n] for n in names]
    if not all(d.is_integer() for d in dts) or any(n in ("BIPOLAR", "TERNARY") for n in names):
        return None
    lo, hi = min(int(d.min()) for d in dts), max(int(d.max()) for d in dts)
    if lo >= 0:
        return "BINARY" if hi <= 1 else f"UINT{max(hi.bit_length(), 1)}"
    bits = max(hi.bit_length(), (-lo - 1).bit_length()) + 1
    return f"INT{bits}"
