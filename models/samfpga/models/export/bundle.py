"""Write a bundle directory (atomically): ``bundle.json``, ``encoder.onnx``, ``decoder.onnx`` and the split decoder
(``decoder_image.onnx``, ``decoder_prompt.onnx``, ``decoder_masks.onnx``; see ``decoder_split``)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from samfpga.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    DECODER_FILE,
    DECODER_SPLIT_FILES,
    ENCODER_FILE,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    sha256_file,
)
from samfpga.decoder_prompts import DECODER_INPUTS, DECODER_OUTPUTS

from ..sam import Sam
from .decoder_split import export_decoder_split
from .onnx_models import DecoderOnnxModel, EncoderOnnxModel

ONNX_OPSET = 17


def _export(module: torch.nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
            dynamic_axes: dict[str, dict[int, str]] | None, opset: int) -> None:
    # The TorchScript exporter (dynamo=False) handles the dynamic prompt batch and point count through
    # dynamic_axes without onnxscript rewrites, and keeps the graph op-for-op close to the module.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )


def decoder_example_inputs(sam: Sam, batch: int = 2, points: int = 3) -> tuple[torch.Tensor, ...]:
    """Example inputs of ``DecoderOnnxModel`` (shapes as documented there)."""
    c = sam.prompt_encoder.embed_dim
    h, w = sam.prompt_encoder.image_embedding_size
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(1, c, h, w, generator=g),
        torch.rand(batch, points, 2, generator=g) * sam.img_size,
        torch.randint(-1, 4, (batch, points), generator=g).float(),
        torch.randn(1, 1, 4 * h, 4 * w, generator=g),
        torch.tensor([1.0]),
    )


def export_decoder(sam: Sam, path: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Export prompt encoder + mask decoder (``DecoderOnnxModel``) to ``path``; B, N and the mask batch are
    dynamic."""
    path = Path(path)
    model = DecoderOnnxModel(sam).eval()
    with torch.no_grad():
        _export(
            model,
            decoder_example_inputs(sam),
            path,
            list(DECODER_INPUTS),
            list(DECODER_OUTPUTS),
            {
                "point_coords": {0: "batch", 1: "num_points"},
                "point_labels": {0: "batch", 1: "num_points"},
                "mask_input": {0: "mask_batch"},
                "low_res_masks": {0: "batch"},
                "iou_predictions": {0: "batch"},
            },
            opset,
        )
    return path


def export_encoder(sam: Sam, path: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Export the float image encoder, (1,3,S,S) -> (1,C,S/16,S/16), static shapes."""
    path = Path(path)
    model = EncoderOnnxModel(sam).eval()
    x = torch.zeros(1, 3, sam.img_size, sam.img_size)
    with torch.no_grad():
        _export(model, (x,), path, list(ENCODER_INPUTS), list(ENCODER_OUTPUTS), None, opset)
    return path


def bundle_metadata(sam: Sam, config: dict[str, Any] | None, source: str, opset: int) -> dict[str, Any]:
    h, w = sam.prompt_encoder.image_embedding_size
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "image_size": int(sam.img_size),
        "embedding_shape": [int(sam.prompt_encoder.embed_dim), int(h), int(w)],
        "mask_input_size": [4 * int(h), 4 * int(w)],
        "num_mask_tokens": int(sam.mask_decoder.num_mask_tokens),
        "mask_threshold": float(sam.mask_threshold),
        "pixel_mean": [float(v) for v in sam.pixel_mean.flatten()],
        "pixel_std": [float(v) for v in sam.pixel_std.flatten()],
        "model_config": config,
        "source": source,
        "opset": int(opset),
        "files": {"encoder": ENCODER_FILE, "decoder": DECODER_FILE, **DECODER_SPLIT_FILES},
        "sha256": {},
    }


def export_bundle(
    sam: Sam, out_dir: str | Path, source: str = "", opset: int = ONNX_OPSET, overwrite: bool = False
) -> Path:
    """Export ``sam`` (eval mode, float32) as a bundle directory ``out_dir``.

    Everything is written into a temporary sibling directory and renamed into place, so an interrupted
    export leaves no half-written bundle. With ``overwrite`` an existing directory keeps its other files
    (e.g. the checkpoint the bundle was exported from); the bundle's own files are replaced.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"bundle directory {out_dir} exists (pass overwrite=True / --overwrite)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    sam = sam.float().eval()
    cfg = getattr(sam, "config", None)
    config = cfg.to_dict() if cfg is not None else None
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        meta = bundle_metadata(sam, config, source, opset)
        export_encoder(sam, tmp / ENCODER_FILE, opset)
        export_decoder(sam, tmp / DECODER_FILE, opset)
        export_decoder_split(sam, tmp, opset)
        meta["sha256"] = {k: sha256_file(tmp / name) for k, name in meta["files"].items()}
        (tmp / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bundle is an ordinary readable directory
        if out_dir.exists():
            _warn_dropped(out_dir, meta)
            # replace only the bundle's own files (the directory may also hold e.g. the source checkpoint);
            # bundle.json last, so a reader never sees new metadata with old graphs
            for name in (*meta["files"].values(), "bundle.json"):
                os.replace(tmp / name, out_dir / name)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir


def _warn_dropped(out_dir: Path, meta: dict) -> None:
    """Warn about optional parts of the manifest being replaced (e.g. the ``proposals`` head): they were made for
    the old encoder's embeddings, so a re-export does not carry them over; re-install them if still valid."""
    old = out_dir / "bundle.json"
    try:
        files = json.loads(old.read_text()).get("files", {})
    except (OSError, ValueError):
        return
    dropped = sorted(set(files) - set(meta["files"]))
    if dropped:
        warnings.warn(f"{old}: re-export drops {dropped} from the manifest (made for the previous encoder; their "
                      f"files stay in {out_dir}); re-install them, e.g. `python -m samfpga.models.proposals.install "
                      f"HEAD.onnx {out_dir}` or `make train-proposals`", stacklevel=3)
