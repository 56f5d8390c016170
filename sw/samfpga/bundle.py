"""Read and validate an exported model bundle (``bundle.json`` + ONNX graphs); no torch.

Bundle format ``samfpga-bundle`` version 1 (written by ``samfpga.models.export``)::

    bundle.json   {"format": "samfpga-bundle", "version": 1, "image_size": S,
                   "embedding_shape": [C, h, w], "mask_input_size": [4h, 4w], "num_mask_tokens": 4,
                   "mask_threshold": 0.0, "pixel_mean": [3], "pixel_std": [3], "model_config": {...} | null,
                   "source": str, "opset": 17, "files": {"encoder": "encoder.onnx", "decoder": "decoder.onnx"},
                   "sha256": {"encoder": hex, "decoder": hex}}
    encoder.onnx  image (1,3,S,S) float32 normalised + zero-padded -> image_embeddings (1,C,h,w)
    decoder.onnx  image_embeddings (1,C,h,w), point_coords (B,N,2), point_labels (B,N), mask_input (1|B,1,4h,4w),
                  has_mask_input (1,) -> low_res_masks (B,num_mask_tokens,4h,4w), iou_predictions (B,num_mask_tokens)

Optional (bundles exported since issue 16; a bundle without them loads and runs ``decoder.onnx`` alone): the same
decoder split so the prompt-independent work runs once per image (``samfpga.models.export.decoder_split``),
named by ``files`` / ``sha256`` keys ``decoder_image``, ``decoder_prompt``, ``decoder_masks`` (all three or none)::

    decoder_image.onnx   image_embeddings (1,C,h,w) -> src (1,hw,C), l0_k, l0_v, l0_q (1,hw,Ci)
    decoder_prompt.onnx  src, l0_k, l0_v, l0_q, point_coords (B,N,2), point_labels (B,N)
                         -> iou_predictions (B,T), hyper_in (B,T,C/8), image_tokens (B,hw,C)
    decoder_masks.onnx   image_tokens (B,hw,C), hyper_in (B,T',C/8) -> low_res_masks (B,T',4h,4w)

Runtimes that predate the split ignore these keys and run ``decoder.onnx`` (the same function).

Optional ``calibration`` object (``samfpga.calibration``): post-hoc maps of the IoU predictions and mask logits,
applied by ``samfpga.decoder.OnnxDecoder``; without it the outputs are the graphs' own.

Optional (issue 16): the proposal head of ``samfpga everything --mode proposals``, key ``proposals``
(``samfpga.models.proposals.install`` adds it to a bundle)::

    proposals.onnx       image_embeddings (1,C,h,w) -> proposals (1,7,h,w)  (layout: samfpga.everything.proposals)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .calibration import IDENTITY, Calibration, CalibrationError

# The format is defined here, by its reader; the writer (``samfpga.models.export``) imports these names.
BUNDLE_FORMAT = "samfpga-bundle"
BUNDLE_VERSION = 1  # the version the exporter writes
SUPPORTED_VERSIONS = (1,)
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
ENCODER_INPUTS = ("image",)
ENCODER_OUTPUTS = ("image_embeddings",)
# the split decoder (optional): manifest key -> file name, and each graph's tensor names
DECODER_SPLIT_FILES = {"decoder_image": "decoder_image.onnx", "decoder_prompt": "decoder_prompt.onnx",
                       "decoder_masks": "decoder_masks.onnx"}
IMAGE_SIDE_OUTPUTS = ("src", "l0_k", "l0_v", "l0_q")
PROMPT_SIDE_INPUTS = (*IMAGE_SIDE_OUTPUTS, "point_coords", "point_labels")
PROMPT_SIDE_OUTPUTS = ("iou_predictions", "hyper_in", "image_tokens")
MASK_SIDE_INPUTS = ("image_tokens", "hyper_in")
MASK_SIDE_OUTPUTS = ("low_res_masks",)


class BundleError(ValueError):
    """A bundle is missing, malformed or inconsistent; the message names the file and the field."""


@dataclass(frozen=True)
class Bundle:
    """A validated bundle. Paths are absolute; shapes are ints."""

    root: Path
    image_size: int
    embedding_shape: tuple[int, int, int]
    mask_input_size: tuple[int, int]
    num_mask_tokens: int
    mask_threshold: float
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    encoder_path: Path
    decoder_path: Path
    opset: int
    source: str = ""
    model_config: dict[str, Any] | None = None
    sha256: dict[str, str] = field(default_factory=dict)
    # the split decoder's graphs by ``DECODER_SPLIT_FILES`` key, or None when the bundle has only decoder.onnx
    decoder_split: dict[str, Path] | None = None
    # post-hoc output calibration (field ``calibration``); IDENTITY when the bundle has none
    calibration: Calibration = IDENTITY
    # the proposal head of everything mode (file key ``proposals``), or None
    proposals_path: Path | None = None


def _field(meta: dict[str, Any], name: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if name not in meta:
        raise BundleError(f"{where}: missing field {name!r}")
    value = meta[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BundleError(f"{where}: field {name!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _int_list(meta: dict[str, Any], name: str, length: int, where: Path) -> tuple[int, ...]:
    value = _field(meta, name, list, where)
    if len(value) != length or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise BundleError(f"{where}: field {name!r} must be {length} positive ints, got {value!r}")
    return tuple(value)


def _float_list(meta: dict[str, Any], name: str, length: int, where: Path) -> tuple[float, ...]:
    value = _field(meta, name, list, where)
    if len(value) != length or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise BundleError(f"{where}: field {name!r} must be {length} numbers, got {value!r}")
    return tuple(float(v) for v in value)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: str | Path, name: str, holds: str) -> tuple[Path, dict[str, Any]]:
    """``(manifest path, parsed JSON object)`` of a bundle directory ``path`` (or of ``path`` itself when it is
    the manifest ``name``). ``holds`` names the directory's files for the error message. Raises BundleError."""
    path = Path(path)
    meta_path = path if path.name == name else path / name
    if not meta_path.is_file():
        raise BundleError(f"{meta_path}: no such file (a bundle directory holds {holds})")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{meta_path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_path}: top level must be a JSON object")
    return meta_path, meta


def load_bundle(path: str | Path, verify_hashes: bool = True) -> Bundle:
    """Load ``path`` (a bundle directory or its ``bundle.json``) and validate every field.

    Raises:
        BundleError: naming the file and the offending field.
    """
    meta_path, meta = read_manifest(path, "bundle.json", "bundle.json, encoder.onnx, decoder.onnx")
    fmt = _field(meta, "format", str, meta_path)
    if fmt != BUNDLE_FORMAT:
        raise BundleError(f"{meta_path}: field 'format' is {fmt!r}, expected {BUNDLE_FORMAT!r}")
    version = _field(meta, "version", int, meta_path)
    if version not in SUPPORTED_VERSIONS:
        raise BundleError(f"{meta_path}: field 'version' is {version}, this runtime reads {SUPPORTED_VERSIONS}")
    image_size = _field(meta, "image_size", int, meta_path)
    if image_size <= 0:
        raise BundleError(f"{meta_path}: field 'image_size' must be positive, got {image_size}")
    emb = _int_list(meta, "embedding_shape", 3, meta_path)
    mask_in = _int_list(meta, "mask_input_size", 2, meta_path)
    if mask_in != (4 * emb[1], 4 * emb[2]):
        raise BundleError(f"{meta_path}: field 'mask_input_size' {list(mask_in)} must be 4x the embedding grid {list(emb[1:])}")
    num_tokens = _field(meta, "num_mask_tokens", int, meta_path)
    if num_tokens < 1:
        raise BundleError(f"{meta_path}: field 'num_mask_tokens' must be >= 1, got {num_tokens}")
    threshold = float(_field(meta, "mask_threshold", (int, float), meta_path))
    mean = _float_list(meta, "pixel_mean", 3, meta_path)
    std = _float_list(meta, "pixel_std", 3, meta_path)
    if any(s <= 0 for s in std):
        raise BundleError(f"{meta_path}: field 'pixel_std' must be positive, got {list(std)}")
    opset = _field(meta, "opset", int, meta_path)
    files = _field(meta, "files", dict, meta_path)
    split_keys = [k for k in DECODER_SPLIT_FILES if k in files]
    if split_keys and len(split_keys) != len(DECODER_SPLIT_FILES):
        raise BundleError(f"{meta_path}: field 'files' names {split_keys} of the split decoder; it needs all of "
                          f"{list(DECODER_SPLIT_FILES)} or none")
    paths: dict[str, Path] = {}
    for key in ("encoder", "decoder", *split_keys, *(["proposals"] if "proposals" in files else [])):
        name = files.get(key)
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{meta_path}: field 'files.{key}' must be a relative file name, got {name!r}")
        p = meta_path.parent / name
        if not p.is_file():
            raise BundleError(f"{p}: no such file (named by field 'files.{key}' of {meta_path})")
        paths[key] = p.resolve()
    sha = meta.get("sha256", {})
    if not isinstance(sha, dict):
        raise BundleError(f"{meta_path}: field 'sha256' must be an object")
    if verify_hashes:
        for key, p in paths.items():
            want = sha.get(key)
            if want is None:
                raise BundleError(f"{meta_path}: field 'sha256.{key}' is missing")
            got = sha256_file(p)
            if got != want:
                raise BundleError(f"{p}: sha256 {got[:12]}... does not match field 'sha256.{key}' of {meta_path} "
                                  f"({str(want)[:12]}...); the file was modified or truncated")
    cfg = meta.get("model_config")
    if cfg is not None and not isinstance(cfg, dict):
        raise BundleError(f"{meta_path}: field 'model_config' must be an object or null")
    calibration = IDENTITY
    if "calibration" in meta:
        try:
            calibration = Calibration.from_json(meta["calibration"], f"{meta_path}: field 'calibration'")
        except CalibrationError as err:
            raise BundleError(str(err)) from None
    return Bundle(
        root=meta_path.parent.resolve(),
        image_size=image_size,
        embedding_shape=emb,  # type: ignore[arg-type]
        mask_input_size=mask_in,  # type: ignore[arg-type]
        num_mask_tokens=num_tokens,
        mask_threshold=threshold,
        pixel_mean=mean,  # type: ignore[arg-type]
        pixel_std=std,  # type: ignore[arg-type]
        encoder_path=paths["encoder"],
        decoder_path=paths["decoder"],
        opset=opset,
        source=str(meta.get("source", "")),
        model_config=cfg,
        sha256={k: str(v) for k, v in sha.items()},
        decoder_split={k: paths[k] for k in split_keys} or None,
        calibration=calibration,
        proposals_path=paths.get("proposals"),
    )
