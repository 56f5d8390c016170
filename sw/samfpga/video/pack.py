"""Convert a video bundle between its two layouts (``samfpga.video.bundle``); no torch.

- self-contained (version 1): a bundle that references its image encoder becomes one directory holding its own
  ``encoder.onnx``, for users who ship a single directory::

      python -m samfpga.video.pack SRC --out DIR [--image-bundle IMG]

- encoder by reference (version 2): drop the bundle's ``encoder.onnx`` and use an image bundle's instead, after
  checking on seeded random images that the two graphs compute the same features (``ENCODER_MATCH_TOL``)::

      python -m samfpga.video.pack SRC --out DIR --encoder-from IMG
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..backends.ort_session import make_session
from ..bundle import BundleError, load_bundle, read_manifest
from .bundle import load_video_bundle

ENCODER_FILE = "encoder.onnx"
ENCODER_MATCH_TOL = 1e-4  # max |difference| / max |feature| (the export's check uses the same bound)


def _write_atomically(out: Path, overwrite: bool, fill: Callable[[Path], None]) -> Path:
    """``fill(tmp)`` a temporary sibling of ``out``, then rename it into place (nothing half-written is left)."""
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def encoder_difference(a: str | Path, b: str | Path, image_size: int, inputs: int = 2) -> float:
    """Largest |difference| between two encoder graphs' first outputs on ``inputs`` seeded random (1,3,S,S)
    inputs, relative to the largest |feature| of ``a``. Raises BundleError when the shapes differ."""
    sa, sb = make_session(a, 1), make_session(b, 1)
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(inputs):
        x = rng.standard_normal((1, 3, image_size, image_size)).astype(np.float32)
        ya = sa.run(None, {sa.get_inputs()[0].name: x})[0]
        yb = sb.run(None, {sb.get_inputs()[0].name: x})[0]
        if ya.shape != yb.shape:
            raise BundleError(f"{a} gives features {ya.shape}, {b} gives {yb.shape}")
        worst = max(worst, float(np.abs(ya - yb).max() / max(np.abs(ya).max(), 1e-12)))
    return worst


def write_self_contained(src: str | Path, out: str | Path, image_bundle: str | Path | None = None,
                         overwrite: bool = False) -> Path:
    """Copy the video bundle ``src`` (hashes verified; a referenced encoder resolved as ``load_video_bundle``
    does) to ``out`` with its encoder inside. Written to a temporary sibling and renamed, so an interrupted copy
    leaves nothing. Raises BundleError (bad source) or FileExistsError (``out`` exists, no ``overwrite``)."""
    out = Path(out)
    bundle = load_video_bundle(src, image_bundle=image_bundle)
    _, meta = read_manifest(src, "video.json", "video.json and its graphs")
    files = dict(meta["files"])
    files["encoder"] = files.get("encoder", ENCODER_FILE)
    meta.update(version=1, files=files)
    meta.pop("image_bundle", None)

    def fill(tmp: Path) -> None:
        for key, name in files.items():
            shutil.copyfile(bundle.paths[key], tmp / name)
        (tmp / "video.json").write_text(json.dumps(meta, indent=2) + "\n")
        load_video_bundle(tmp)  # the copy verifies before it replaces anything

    return _write_atomically(out, overwrite, fill)


def write_referencing(src: str | Path, out: str | Path, image_bundle: str | Path, overwrite: bool = False) -> Path:
    """Copy the video bundle ``src`` to ``out`` without its encoder.onnx, referencing ``image_bundle``'s encoder
    (the relative path from ``out`` is stored: keep the two side by side). Raises BundleError when the image
    bundle's encoder does not compute ``src``'s (relative difference over ``ENCODER_MATCH_TOL``), or either
    bundle is invalid."""
    out = Path(out)
    bundle = load_video_bundle(src)
    img = load_bundle(image_bundle)
    if bundle.high_res:
        raise BundleError(f"{bundle.root}: the {bundle.family} family needs its own high-resolution encoder outputs")
    emb = (bundle.hidden_dim, bundle.feat_size, bundle.feat_size)
    if img.image_size != bundle.image_size or tuple(img.embedding_shape) != emb:
        raise BundleError(f"{img.root / 'bundle.json'}: image_size {img.image_size} / embedding_shape "
                          f"{list(img.embedding_shape)}, the video model needs {bundle.image_size} / {list(emb)}: "
                          f"not the same image encoder")
    diff = encoder_difference(bundle.paths["encoder"], img.encoder_path, bundle.image_size)
    if diff > ENCODER_MATCH_TOL:
        raise BundleError(f"{img.encoder_path} does not compute the features of {bundle.paths['encoder']} "
                          f"(relative difference {diff:.2e} > {ENCODER_MATCH_TOL:g}): not the same image encoder")
    _, meta = read_manifest(src, "video.json", "video.json and its graphs")
    files = {k: v for k, v in meta["files"].items() if k != "encoder"}
    sha = {k: v for k, v in meta["sha256"].items() if k != "encoder"}
    out_abs = out.resolve()
    meta.update(version=2, files=files, image_bundle=os.path.relpath(img.root, out_abs.parent / out_abs.name),
                sha256={"encoder": img.sha256["encoder"], **sha})

    def fill(tmp: Path) -> None:
        for key, name in files.items():
            shutil.copyfile(bundle.paths[key], tmp / name)
        (tmp / "video.json").write_text(json.dumps(meta, indent=2) + "\n")
        load_video_bundle(tmp)  # a sibling of out, so the relative path resolves the same

    return _write_atomically(out, overwrite, fill)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m samfpga.video.pack", description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="video bundle directory")
    p.add_argument("--out", type=Path, required=True, help="the self-contained copy (a new directory)")
    p.add_argument("--image-bundle", type=Path, default=None,
                   help="image bundle holding SRC's referenced encoder (default: the one its video.json names)")
    p.add_argument("--encoder-from", type=Path, default=None, metavar="IMAGE_BUNDLE",
                   help="write a bundle that references this image bundle's encoder instead of a self-contained one")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    try:
        if a.encoder_from is not None:
            out = write_referencing(a.src, a.out, a.encoder_from, a.overwrite)
        else:
            out = write_self_contained(a.src, a.out, a.image_bundle, a.overwrite)
    except (BundleError, FileExistsError, OSError) as e:
        print(f"samfpga.video.pack: error: {e}")
        return 2
    size = sum(f.stat().st_size for f in out.iterdir())
    kind = f"encoder from {a.encoder_from}" if a.encoder_from is not None else "self-contained"
    print(f"{out} ({size} bytes, {kind})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
