"""Read and validate a video bundle (``video.json`` + ONNX graphs + ``constants.npz``, written by
``samfpga.models.export.video``); no torch.

Two layouts (format in ``samfpga.models.export.video``):

- version 1, self-contained: ``files.encoder`` names the bundle's own ``encoder.onnx``;
- version 2, encoder by reference: no ``files.encoder``; field ``image_bundle`` is the path (relative to the video
  bundle's directory) of the image bundle whose ``encoder.onnx`` the video model uses, and ``sha256.encoder`` is
  that file's hash. The video model's image encoder is frozen, so the image bundle already ships it; the reference
  saves a second copy (4.7 MB for the bundled default). Loading checks the hash against the image bundle's and
  fails naming both files when they differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle, BundleError, _field, load_bundle, read_manifest, sha256_file

VIDEO_BUNDLE_FORMAT = "samfpga-video-bundle"
SUPPORTED_VERSIONS = (1, 2)
FILE_KEYS = ("encoder", "heads", "memory_encoder", "memory_attention", "constants")
CONSTANT_SHAPES = {  # name -> shape, with C = hidden_dim, M = mem_dim, s = feat_size, K = num_maskmem
    "maskmem_tpos_enc": ("K", "M"), "no_mem_embed": ("C",), "no_obj_ptr": ("C",), "no_obj_embed_spatial": ("M",),
    "obj_ptr_tpos_proj_weight": ("M", "C"), "obj_ptr_tpos_proj_bias": ("M",), "mask_downsample_weight": (4, 4),
    "mask_downsample_bias": (), "vision_pos": ("C", "s", "s"), "memory_pos": ("M", "s", "s"),
}


@dataclass(frozen=True)
class VideoBundle:
    root: Path
    family: str
    image_size: int
    feat_size: int
    hidden_dim: int
    mem_dim: int
    num_maskmem: int
    max_obj_ptrs: int
    pool_memory: bool
    high_res: bool
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    paths: dict[str, Path]
    opset: int
    source: str = ""
    model_config: dict[str, Any] | None = None
    sha256: dict[str, str] = field(default_factory=dict)
    # the image bundle directory whose encoder.onnx this bundle uses (version 2), or None when self-contained
    image_bundle: Path | None = None

    def constants(self) -> dict[str, np.ndarray]:
        """The host-side tensors, shape-checked."""
        dims = {"C": self.hidden_dim, "M": self.mem_dim, "s": self.feat_size, "K": self.num_maskmem}
        path = self.paths["constants"]
        try:
            with np.load(path) as z:
                out = {k: z[k].astype(np.float32) for k in z.files}
        except Exception as e:
            raise BundleError(f"{path}: unreadable ({e})") from None
        for name, shape in CONSTANT_SHAPES.items():
            want = tuple(dims[d] if isinstance(d, str) else d for d in shape)
            if name not in out:
                raise BundleError(f"{path}: missing array {name!r}")
            if out[name].shape != want:
                raise BundleError(f"{path}: array {name!r} has shape {out[name].shape}, expected {want}")
        return out

    def encoder_bundle(self) -> Bundle:
        """The image-encoder part as an image ``Bundle``, so any ``EncoderBackend`` (ONNX reference, FPGA overlay,
        simulation) serves video. Its ``decoder_path`` names heads.onnx, which encoder backends never read."""
        return Bundle(root=self.root, image_size=self.image_size,
                      embedding_shape=(self.hidden_dim, self.feat_size, self.feat_size),
                      mask_input_size=(4 * self.feat_size, 4 * self.feat_size), num_mask_tokens=4,
                      mask_threshold=0.0, pixel_mean=self.pixel_mean, pixel_std=self.pixel_std,
                      encoder_path=self.paths["encoder"], decoder_path=self.paths["heads"], opset=self.opset,
                      source=self.source, model_config=self.model_config, sha256=dict(self.sha256))


def _referenced_encoder(meta: dict[str, Any], meta_path: Path, image_bundle: str | Path | None,
                        verify_hashes: bool, ints: dict[str, int]) -> tuple[Path, Path]:
    """(image bundle root, its encoder.onnx) for a version-2 bundle, checked against ``sha256.encoder``."""
    if image_bundle is None:
        rel = meta.get("image_bundle")
        if not isinstance(rel, str) or not rel:
            raise BundleError(f"{meta_path}: has no 'files.encoder', so field 'image_bundle' must name the image "
                              f"bundle directory whose encoder it uses, got {rel!r}")
        image_bundle = meta_path.parent / rel
    image_bundle = Path(image_bundle)
    try:
        img = load_bundle(image_bundle, verify_hashes=verify_hashes)
    except BundleError as e:
        raise BundleError(f"{meta_path}: the image bundle it takes its encoder from is not usable: {e}") from None
    sha = meta.get("sha256")
    want = sha.get("encoder") if isinstance(sha, dict) else None
    if not isinstance(want, str):
        raise BundleError(f"{meta_path}: field 'sha256.encoder' is missing (it pins the referenced encoder)")
    got = img.sha256.get("encoder", "")
    if got != want:
        raise BundleError(
            f"the image encoder {img.encoder_path} (sha256 {got[:12]}..., from {img.root / 'bundle.json'}) is not "
            f"the one {meta_path} was exported with (field 'sha256.encoder' {want[:12]}...); use the image bundle it "
            f"was made for, or a self-contained video bundle (python -m samfpga.video.pack)")
    emb = (ints["hidden_dim"], ints["feat_size"], ints["feat_size"])
    if img.image_size != ints["image_size"] or tuple(img.embedding_shape) != emb:
        raise BundleError(f"{img.root / 'bundle.json'}: image_size {img.image_size} / embedding_shape "
                          f"{list(img.embedding_shape)} do not match {meta_path} ({ints['image_size']}, {list(emb)})")
    return img.root, img.encoder_path


def load_video_bundle(path: str | Path, verify_hashes: bool = True,
                      image_bundle: str | Path | None = None) -> VideoBundle:
    """Load ``path`` (a video bundle directory or its ``video.json``) and validate it.

    A bundle that references its image encoder (version 2) loads it from the image bundle its ``image_bundle``
    field names, or from ``image_bundle`` when given (a bundle copied away from its image bundle); the image
    encoder's sha256 must equal the video bundle's ``sha256.encoder`` (checked on the manifests always, on the
    file's bytes when ``verify_hashes``). ``image_bundle`` is ignored for a self-contained bundle.

    Raises:
        BundleError: naming the file and the offending field.
    """
    path = Path(path)
    meta_path, meta = read_manifest(path, "video.json", "video.json and its graphs")
    if meta.get("format") != VIDEO_BUNDLE_FORMAT:
        raise BundleError(f"{meta_path}: field 'format' is {meta.get('format')!r}, expected {VIDEO_BUNDLE_FORMAT!r}")
    version = _field(meta, "version", int, meta_path)
    if version not in SUPPORTED_VERSIONS:
        raise BundleError(f"{meta_path}: field 'version' is {version}, this runtime reads {SUPPORTED_VERSIONS}")
    ints = {k: _field(meta, k, int, meta_path) for k in
            ("image_size", "feat_size", "hidden_dim", "mem_dim", "num_maskmem", "max_obj_ptrs", "opset")}
    for k, v in ints.items():
        if v <= 0:
            raise BundleError(f"{meta_path}: field {k!r} must be positive, got {v}")
    if ints["image_size"] != 16 * ints["feat_size"]:
        raise BundleError(f"{meta_path}: field 'feat_size' {ints['feat_size']} must be image_size/16")
    if ints["max_obj_ptrs"] < 2:
        raise BundleError(f"{meta_path}: field 'max_obj_ptrs' must be >= 2, got {ints['max_obj_ptrs']}")
    files = _field(meta, "files", dict, meta_path)
    sha = meta.get("sha256", {})
    paths: dict[str, Path] = {}
    image_root: Path | None = None
    keys = FILE_KEYS
    if version >= 2 and "encoder" not in files:
        image_root, paths["encoder"] = _referenced_encoder(meta, meta_path, image_bundle, verify_hashes, ints)
        keys = tuple(k for k in FILE_KEYS if k != "encoder")
    for key in keys:
        name = files.get(key)
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{meta_path}: field 'files.{key}' must be a relative file name, got {name!r}")
        p = meta_path.parent / name
        if not p.is_file():
            raise BundleError(f"{p}: no such file (named by field 'files.{key}' of {meta_path})")
        if verify_hashes:
            want = sha.get(key) if isinstance(sha, dict) else None
            if want is None:
                raise BundleError(f"{meta_path}: field 'sha256.{key}' is missing")
            if sha256_file(p) != want:
                raise BundleError(f"{p}: sha256 does not match field 'sha256.{key}' of {meta_path}; the file was "
                                  f"modified or truncated")
        paths[key] = p.resolve()
    mean = _field(meta, "pixel_mean", list, meta_path)
    std = _field(meta, "pixel_std", list, meta_path)
    if len(mean) != 3 or len(std) != 3 or any(not isinstance(v, (int, float)) for v in mean + std) or min(std) <= 0:
        raise BundleError(f"{meta_path}: fields 'pixel_mean'/'pixel_std' must be 3 numbers (std > 0)")
    family = _field(meta, "family", str, meta_path)
    if image_root is not None and meta.get("high_res"):
        raise BundleError(f"{meta_path}: a high-resolution ({family}) bundle needs its own encoder.onnx (the image "
                          f"bundle's encoder has no high-resolution outputs); field 'files.encoder' is missing")
    return VideoBundle(
        root=meta_path.parent.resolve(), family=family, pool_memory=bool(meta.get("pool_memory", False)),
        high_res=bool(_field(meta, "high_res", bool, meta_path)),
        pixel_mean=tuple(float(v) for v in mean), pixel_std=tuple(float(v) for v in std),  # type: ignore[arg-type]
        paths=paths, source=str(meta.get("source", "")), model_config=meta.get("model_config"),
        sha256={k: str(v) for k, v in (sha or {}).items()}, image_bundle=image_root, **ints,
    )
