"""Write the bundled sample video (``sw/samfpga/assets/samples/video``): one synthetic video of a split used by
neither training (seed 0) nor evaluation (seed 1), as JPEG frames (as SAM2 users feed videos), with its first frame's
mask of one object, that object's ground-truth mask in every frame (``masks/<frame>.png``, for J&F) and their areas and
boxes, so ``samfpga track`` runs, and can be scored, on a fresh checkout.

    python -m samfpga.models.data.sample_video --out sw/samfpga/assets/samples/video
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from .synthetic import SyntheticConfig
from .video import VideoConfig, generate_video

SEED, INDEX, FRAMES, SIZE, QUALITY = 2, 0, 16, 256, 90


def _pick_object(masks: np.ndarray) -> int:
    """The object whose smallest per-frame area is largest (it stays in view): masks (T, N, H, W) bool."""
    return int(np.argmax(masks.reshape(*masks.shape[:2], -1).sum(-1).min(0)))


def _box(mask: np.ndarray) -> list[int] | None:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if len(xs) else None


def write_sample(out: Path) -> dict:
    v = generate_video(SEED, INDEX, VideoConfig(frames=FRAMES, image=SyntheticConfig(image_size=SIZE)))
    obj = _pick_object(v.masks)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "frames").mkdir(parents=True)
    for t, frame in enumerate(v.frames):
        Image.fromarray(frame).save(tmp / "frames" / f"{t:05d}.jpg", quality=QUALITY)
    Image.fromarray(v.masks[0, obj].astype(np.uint8) * 255).save(tmp / "mask_00000.png", optimize=True)
    (tmp / "masks").mkdir()
    for t, m in enumerate(v.masks[:, obj]):  # 1-bit PNGs: ~0.5 KB each
        Image.fromarray(m).save(tmp / "masks" / f"{t:05d}.png", optimize=True)
    meta = {
        "generator": "samfpga.models.data.video.generate_video", "split_seed": SEED, "index": INDEX,
        "frames": FRAMES, "image_size": SIZE, "jpeg_quality": QUALITY, "object": obj,
        "mask": "mask_00000.png", "gt_masks": "masks/<frame:05d>.png",
        "box": _box(v.masks[0, obj]),
        "gt_area": [int(a) for a in v.masks[:, obj].reshape(FRAMES, -1).sum(-1)],
        "gt_box": [_box(m) for m in v.masks[:, obj]],
        "command": "samfpga track frames --mask 0,mask_00000.png,1 --out OUT",
    }
    (tmp / "sample.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samfpga.models.data.sample_video", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    meta = write_sample(a.out)
    size = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
    print(json.dumps({"out": str(a.out), "bytes": size, "object": meta["object"], "box": meta["box"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
