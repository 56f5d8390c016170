"""An image bundle around a video bundle's encoder (no torch), for tests of video bundles that reference their
encoder (``samfpga.video.pack``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from samfpga.bundle import sha256_file


def image_bundle_from(video: Path, out: Path, encoder: Path | None = None) -> Path:
    """An image bundle whose encoder.onnx is ``encoder`` (default: the video bundle's own); its decoder file is
    the video heads graph, which nothing here runs (the loader checks only that it exists and its hash)."""
    meta = json.loads((video / "video.json").read_text())
    out.mkdir(parents=True)
    shutil.copyfile(encoder or video / "encoder.onnx", out / "encoder.onnx")
    shutil.copyfile(video / "heads.onnx", out / "decoder.onnx")
    c, s = meta["hidden_dim"], meta["feat_size"]
    files = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
    (out / "bundle.json").write_text(json.dumps({
        "format": "samfpga-bundle", "version": 1, "image_size": meta["image_size"], "embedding_shape": [c, s, s],
        "mask_input_size": [4 * s, 4 * s], "num_mask_tokens": 4, "mask_threshold": 0.0,
        "pixel_mean": meta["pixel_mean"], "pixel_std": meta["pixel_std"], "opset": meta["opset"], "files": files,
        "sha256": {k: sha256_file(out / f) for k, f in files.items()}}))
    return out
