"""Read and validate a video bundle (``video.json`` + ONNX graphs + ``constants.npz``, written by
``samfpga.models.export.video``); no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle, BundleError, _field, read_manifest, sha256_file

VIDEO_BUNDLE_FORMAT = "samfpga-video-bundle"
SUPPORTED_VERSIONS = (1,)
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


def load_video_bundle(path: str | Path, verify_hashes: bool = True) -> VideoBundle:
    """Load ``path`` (a video bundle directory or its ``video.json``) and validate it.

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
    for key in FILE_KEYS:
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
    return VideoBundle(
        root=meta_path.parent.resolve(), family=family, pool_memory=bool(meta.get("pool_memory", False)),
        high_res=bool(_field(meta, "high_res", bool, meta_path)),
        pixel_mean=tuple(float(v) for v in mean), pixel_std=tuple(float(v) for v in std),  # type: ignore[arg-type]
        paths=paths, source=str(meta.get("source", "")), model_config=meta.get("model_config"),
        sha256={k: str(v) for k, v in (sha or {}).items()}, **ints,
    )
