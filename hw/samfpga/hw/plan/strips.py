"""Column strips: a unit processes its feature map as ``tiles`` vertical strips, one after the other (own model).

At 1024² the on-chip memories a dataflow unit needs grow with the width of its feature map: the sliding-window
line buffers of every k x k conv hold k - 1 rows, the window-partition buffers of an attention block a band of
``window`` rows. Cutting the map into vertical strips makes every one of them a strip wide. A strip is an ordinary
narrower image for the hardware (FINN's sliding-window generator at a smaller IFMDim, the window buffers at a
narrower band): only the DMA that reads the unit's input changes, reading each strip with the **halo** columns its
neighbours contribute, and writing the output strip where it belongs.

The halo is what the strips cost, and it is counted:

* every k x k conv (stride s) needs (k - 1) / 2 more input columns on each interior side, and every layer before
  it in the unit computes those columns too (the halo walks back through the unit: h_in = h_out * s + (k - 1)/2);
* windowed attention computes whole windows: a halo inside an attention block is rounded up to whole windows
  (TinyViT's ``local_conv`` after the attention needs 1 column, which costs one window column of attention on each
  interior side); strips are multiples of the window so that windows never straddle two strips;
* the unit's input is read from a frame buffer with its halo columns (more read traffic when it is in DDR), and
  the unit's input and output cross a frame buffer at every tiled boundary (the producer writes strips, the
  consumer reads raster or strips of another width: no direct stream).

A rolled unit's body reads each block's input from its loop buffer (a whole feature map), so the halo does not
compound over blocks; in an unrolled unit it does (each block's halo adds to the next's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from samfpga.hw.plan.layers import Layer, Unit


@dataclass(frozen=True)
class StripLayer:
    """One layer under strips: ``factor`` = output columns it computes (all strips, halos included) over the
    model's columns (>= 1; its vectors and cycles scale with it); ``in_width`` = input columns of its widest strip,
    halos included (its line buffer's row length)."""

    factor: float
    in_width: int


@dataclass(frozen=True)
class Strips:
    """A unit's strips: ``tiles`` strips of ``out_width / tiles`` output columns; per layer (in the order given)
    its ``StripLayer``; ``in_factor`` = input columns read (halos included) over the model's input columns;
    ``band`` = columns of the widest attention band (window buffers), 0 without attention; ``in_halo`` = halo
    columns on each interior side of the unit's input."""

    tiles: int
    layers: tuple[StripLayer, ...]
    in_factor: float
    band: int
    in_halo: int = 0
    in_width: int = 0  # columns of the unit's input map

    @property
    def tiled(self) -> bool:
        return self.tiles > 1


def out_width(layer: Layer) -> int:
    """Output columns of a layer of a square feature map (batch 1): conv/linear vectors are pixels/tokens."""
    return math.isqrt(layer.vectors)


def _is_attention(layer: Layer) -> bool:
    return ".attn." in f".{layer.name}." and layer.kind in ("linear", "matmul")


def unit_out_width(unit: Unit) -> int:
    return out_width(unit.blocks[-1][-1])


def allowed_tiles(unit: Unit, requested: int, min_strip: int) -> int:
    """The most strips <= ``requested`` the unit can take: equal strips of >= ``min_strip`` output columns, and
    whole windows in an attention unit."""
    w = unit_out_width(unit)
    for t in range(max(1, requested), 1, -1):
        s = w // t
        if w % t == 0 and s >= min_strip and (not unit.window or s % unit.window == 0):
            return t
    return 1


def _columns(w: int, tiles: int, h: int) -> tuple[int, int]:
    """(all strips' columns, widest strip's columns) of a ``w``-column map in ``tiles`` strips with ``h`` halo
    columns on each side, clipped to the map (edge strips have a halo on one side only)."""
    s = w // tiles
    widths = [min(w, (i + 1) * s + h) - max(0, i * s - h) for i in range(tiles)]
    return sum(widths), max(widths)


def strips(layers: Sequence[Layer], width_out: int, tiles: int, window: int = 0) -> Strips:
    """Strips of a chain of ``layers`` (execution order) whose last output is ``width_out`` columns wide, cut into
    ``tiles`` strips; ``window`` > 0 for a unit with windowed attention."""
    if tiles <= 1:
        return Strips(1, tuple(StripLayer(1.0, x.in_width) for x in layers), 1.0, width_out if window else 0, 0,
                      layers[0].in_width if layers and layers[0].in_width else width_out)
    if width_out % tiles:
        raise ValueError(f"{width_out} columns do not split into {tiles} equal strips")
    strip = width_out // tiles
    h = 0  # halo columns on each interior side at the current point, in the current point's columns
    w = width_out  # model columns at the current point
    band = 0
    rows: list[StripLayer] = []
    for x in reversed(layers):
        if window and _is_attention(x):
            h = math.ceil(h / window) * window  # whole windows
            band = max(band, _columns(w, tiles, h)[1])
        factor = _columns(w, tiles, h)[0] / w
        if x.kind in ("conv", "dwconv"):
            s = max(1, x.in_width // w)
            h = h * s + (x.kernel - 1) // 2
            w = x.in_width
        rows.append(StripLayer(factor, _columns(w, tiles, h)[1] if x.in_width else 0))
    if window and not band:
        band = strip
    return Strips(tiles, tuple(reversed(rows)), _columns(w, tiles, h)[0] / w, band, h, w)


def read_bytes(rows: int, width: int, pixel_bytes: int, tiles: int, halo: int, beat: int) -> int:
    """Bytes a strip reader (hw/samfpga/hw/rtl/strip_reader.sv) moves over AXI to read a raster (rows, width,
    pixel_bytes) map at a beat-aligned base as ``tiles`` strips with ``halo`` columns: every row segment of every
    strip rounded out to whole ``beat``-byte beats (the columns read, ``_columns``, times pixel_bytes, plus the
    partial first and last beats of segments that do not start or end on a beat boundary)."""
    s = width // tiles
    spans = [(max(0, i * s - halo) * pixel_bytes, min(width, (i + 1) * s + halo) * pixel_bytes) for i in range(tiles)]
    row = width * pixel_bytes
    period = beat // math.gcd(row, beat)  # rows after which the segments' alignment repeats

    def one_row(y: int) -> int:
        return sum(-(-(y * row + hi) // beat) - (y * row + lo) // beat for lo, hi in spans) * beat

    full, rest = divmod(rows, period)
    return full * sum(one_row(y) for y in range(period)) + sum(one_row(y) for y in range(rest))


def unit_strips(unit: Unit, hw_layers: Sequence[Layer], tiles: int) -> Strips:
    """Strips of ``unit`` run as ``hw_layers`` (one block's layers for a rolled body, every layer unrolled)."""
    return strips(hw_layers, unit_out_width(unit), tiles, unit.window)
