"""Write the tiny seeded-random bundle the board-environment tests use (tests/runtime/data/tiny_bundle).

The board environment has no torch and cannot export, so its tests read a committed bundle. This script
regenerates it deterministically, from the repository root:
``python -m samfpga.models.export.testbundle --out tests/runtime/data/tiny_bundle``.
The model is random (seed 0) and tiny (64x64 input, 16-channel embedding); it exercises the pipeline, not
segmentation quality. ``expected.npz`` next to the bundle holds the torch model's outputs (``Sam.forward``,
the official predictor path) for a fixed image and prompts, so the board tests check the ONNX runtime against
torch without torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..build import build_sam
from ..sam import Sam
from .bundle import export_bundle

SEED = 0
TINY = dict(
    image_size=64, embed_dims=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
    window_sizes=[2, 2, 2, 2], out_chans=16, prompt_embed_dim=16, mask_in_chans=4, decoder_mlp_dim=32,
    decoder_heads=2, iou_head_hidden_dim=16,
)


def tiny_model(seed: int = SEED) -> Sam:
    """The tiny random model (fixed seed) of the test bundle."""
    torch.manual_seed(seed)
    return build_sam("vit_t", **TINY)


def reference_image() -> np.ndarray:
    """A fixed non-square (48, 72, 3) uint8 test image."""
    yy, xx = np.mgrid[0:48, 0:72]
    img = np.stack([xx * 3, yy * 5, (xx * yy) % 256], axis=-1)
    img[10:30, 20:50] = [230, 40, 30]
    return img.astype(np.uint8)


# name -> (points (N, 2) or None, labels, box or None, multimask) in original-image pixels
REFERENCE_PROMPTS = {
    "point": (np.array([[30.0, 20.0]]), np.array([1]), None, True),
    "points_box": (np.array([[30.0, 20.0], [5.0, 40.0]]), np.array([1, 0]), np.array([15.0, 8.0, 55.0, 33.0]), False),
    "box": (None, None, np.array([15.0, 8.0, 55.0, 33.0]), True),
}


def reference_outputs(sam: Sam) -> dict[str, np.ndarray]:
    """Torch outputs for ``reference_image`` and ``REFERENCE_PROMPTS``: upscaled logits, IoU, low-res logits."""
    from samfpga.transforms import ResizeLongestSide

    image = reference_image()
    tf = ResizeLongestSide(sam.img_size)
    x = torch.from_numpy(np.array(tf.apply_image(image))).permute(2, 0, 1).contiguous()
    out: dict[str, np.ndarray] = {"image": image}
    for name, (pts, labels, box, multimask) in REFERENCE_PROMPTS.items():
        rec: dict = {"image": x, "original_size": image.shape[:2]}
        if pts is not None:
            rec["point_coords"] = torch.from_numpy(tf.apply_coords(pts, image.shape[:2])).float()[None]
            rec["point_labels"] = torch.from_numpy(labels)[None]
        if box is not None:
            rec["boxes"] = torch.from_numpy(tf.apply_boxes(box[None], image.shape[:2])).float()
        with torch.no_grad():
            res = sam([rec], multimask_output=multimask)[0]
            logits = sam.postprocess_masks(res["low_res_logits"], tuple(x.shape[-2:]), image.shape[:2])
        out[f"{name}_logits"] = logits[0].numpy()
        out[f"{name}_iou"] = res["iou_predictions"][0].numpy()
        out[f"{name}_low_res"] = res["low_res_logits"][0].numpy()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="bundle directory (tests/runtime/data/tiny_bundle)")
    args = p.parse_args(argv)
    sam = tiny_model()
    export_bundle(sam, args.out, source=f"tiny random test model, seed {SEED}", overwrite=True)
    np.savez_compressed(args.out.parent / "expected.npz", **reference_outputs(sam))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
