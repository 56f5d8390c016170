"""Where segment-everything's time goes: wall seconds per stage, accumulated over one ``generate`` call.

Stages (``STAGES``): ``encoder`` (set_image, per crop; with the split decoder this includes its image side),
``decoder`` (the mask decoder's transformer: the split decoder's prompt side, or the whole single graph),
``masks`` (the split decoder's mask side: output upscaling to the low-res logits, only for prompts with a mask
past the IoU filter), ``upscale`` (low-res logits -> image size, only for masks past the IoU filter),
``filters`` (stability score, thresholds, boxes, crop-edge test), ``rle`` (bit packing of the filtered masks,
then unpacking and run-length coding of the NMS survivors), ``nms`` (box NMS within and across crops),
``postprocess`` (small-region removal) and ``records`` (output records, COCO RLE). ``other`` is what the
generator spent outside them (bookkeeping), so the stages add up to the wall time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

STAGES = ("encoder", "decoder", "masks", "upscale", "filters", "rle", "nms", "postprocess", "records")


class StageTimes:
    """Accumulates ``perf_counter`` seconds per stage; ``with times.stage("nms"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._t0 = time.perf_counter()
        self._total: float | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if name not in self.seconds:
            raise ValueError(f"unknown stage {name!r}; one of {STAGES}")
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t

    def move(self, source: str, target: str, seconds: float) -> None:
        """Re-attribute ``seconds`` already counted in stage ``source`` to ``target`` (a sub-stage timed inside
        it, e.g. the decoder's mask side)."""
        for name in (source, target):
            if name not in self.seconds:
                raise ValueError(f"unknown stage {name!r}; one of {STAGES}")
        self.seconds[source] -= seconds
        self.seconds[target] += seconds

    def stop(self) -> None:
        """End of the timed call: fixes the wall time that ``other`` is measured against."""
        self._total = time.perf_counter() - self._t0

    def as_dict(self) -> dict[str, float]:
        """Seconds per stage plus ``other`` and ``total`` (wall)."""
        total = self._total if self._total is not None else time.perf_counter() - self._t0
        out = dict(self.seconds)
        out["other"] = max(0.0, total - sum(self.seconds.values()))
        out["total"] = total
        return out


def stage(times: StageTimes | None, name: str):
    """``times.stage(name)``, or a no-op context when ``times`` is None."""
    return nullcontext() if times is None else times.stage(name)


def format_table(times: dict[str, float]) -> str:
    """Text table of ``StageTimes.as_dict()``: seconds and share of the total per stage."""
    total = times.get("total") or 1e-12
    rows = [f"{'stage':<12} {'seconds':>9} {'share':>7}"]
    for k in (*STAGES, "other"):
        rows.append(f"{k:<12} {times.get(k, 0.0):>9.3f} {100 * times.get(k, 0.0) / total:>6.1f}%")
    rows.append(f"{'total':<12} {times.get('total', 0.0):>9.3f}")
    return "\n".join(rows)
