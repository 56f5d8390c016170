"""Real-data loaders: COCO-format instance annotations and SA-1B per-image annotation files.

Both yield the sample format of the synthetic data: ``image`` (3, S, S) uint8 and ``masks`` (N, S, S) bool,
resized so the long side is ``image_size`` (SAM's ResizeLongestSide; nearest for masks) and zero-padded
bottom/right to a square. Segmentations may be polygons, uncompressed RLE or compressed RLE (pycocotools).

- COCO: ``COCOSegmentation(annotation_json, image_dir)`` (e.g. ``instances_val2017.json``, ``val2017/``);
  crowd annotations are skipped.
- SA-1B: ``SA1BSegmentation(directory)``: pairs ``sa_*.jpg`` with ``sa_*.json`` (``{"image": {...},
  "annotations": [{"segmentation": {"size": [h, w], "counts": "..."}, ...}]}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset


def decode_segmentation(seg: Any, height: int, width: int) -> np.ndarray:
    """A COCO / SA-1B segmentation (polygon list, RLE with list or string counts) -> (H, W) bool."""
    if isinstance(seg, list):
        rles = mask_utils.frPyObjects(seg, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(seg, dict) and "counts" in seg:
        rle = mask_utils.frPyObjects(seg, height, width) if isinstance(seg["counts"], list) else dict(seg)
        if isinstance(rle.get("counts"), str):
            rle["counts"] = rle["counts"].encode("ascii")
    else:
        raise ValueError(f"unsupported segmentation of type {type(seg).__name__}")
    m = mask_utils.decode(rle)
    if m.shape[:2] != (height, width):
        raise ValueError(f"segmentation decodes to {m.shape[:2]}, image is {(height, width)}")
    return m.astype(bool)


def resize_pad(image: np.ndarray, masks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(H,W,3) uint8 and (N,H,W) bool -> long side ``size`` (bilinear / nearest), zero-padded to (size, size)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    img = np.zeros((size, size, 3), dtype=np.uint8)
    img[:nh, :nw] = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
    out = np.zeros((len(masks), size, size), dtype=bool)
    for i, m in enumerate(masks):
        out[i, :nh, :nw] = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((nw, nh), Image.NEAREST)) > 0
    return img, out


def _to_item(image: np.ndarray, masks: np.ndarray, size: int, index: int, min_area: int) -> dict[str, Any]:
    img, ms = resize_pad(image, masks, size)
    ms = ms[ms.reshape(len(ms), -1).sum(1) >= min_area] if len(ms) else ms
    return {"image": torch.from_numpy(img.transpose(2, 0, 1).copy()), "masks": torch.from_numpy(ms), "index": index}


class COCOSegmentation(Dataset):
    """Images of a COCO-format annotation file with their (non-crowd) instance masks."""

    def __init__(self, annotation_json: str | Path, image_dir: str | Path, image_size: int = 256,
                 min_area: int = 16) -> None:
        path = Path(annotation_json)
        if not path.is_file():
            raise FileNotFoundError(f"COCO annotations {path}: no such file")
        data = json.loads(path.read_text())
        for key in ("images", "annotations"):
            if key not in data:
                raise ValueError(f"COCO annotations {path}: no '{key}' list")
        self.image_dir = Path(image_dir)
        self.size, self.min_area = image_size, min_area
        self.images = sorted(data["images"], key=lambda d: d["id"])
        self.anns: dict[int, list[dict]] = {}
        for a in data["annotations"]:
            if not a.get("iscrowd", 0):
                self.anns.setdefault(a["image_id"], []).append(a)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        info = self.images[index]
        image = np.asarray(Image.open(self.image_dir / info["file_name"]).convert("RGB"))
        h, w = image.shape[:2]
        segs = [decode_segmentation(a["segmentation"], h, w) for a in self.anns.get(info["id"], [])]
        masks = np.stack(segs) if segs else np.zeros((0, h, w), dtype=bool)
        return _to_item(image, masks, self.size, index, self.min_area)


class SA1BSegmentation(Dataset):
    """SA-1B tiles: every ``*.jpg`` with a ``*.json`` of the same stem in ``directory``."""

    def __init__(self, directory: str | Path, image_size: int = 256, min_area: int = 16) -> None:
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise FileNotFoundError(f"SA-1B directory {self.dir}: no such directory")
        self.items = sorted(p for p in self.dir.glob("*.jpg") if p.with_suffix(".json").is_file())
        if not self.items:
            raise ValueError(f"SA-1B directory {self.dir}: no image with a matching .json annotation")
        self.size, self.min_area = image_size, min_area

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        p = self.items[index]
        image = np.asarray(Image.open(p).convert("RGB"))
        h, w = image.shape[:2]
        anns = json.loads(p.with_suffix(".json").read_text()).get("annotations", [])
        segs = [decode_segmentation(a["segmentation"], h, w) for a in anns]
        masks = np.stack(segs) if segs else np.zeros((0, h, w), dtype=bool)
        return _to_item(image, masks, self.size, index, self.min_area)
