"""Export a video model (``samfpga.models.video.VideoSam``) as a video bundle the host runtime reads without torch.

Bundle format ``samfpga-video-bundle`` version 1 (self-contained; version 2 is the same without ``encoder.onnx``:
``files`` has no ``encoder``, field ``image_bundle`` is the relative path of the image bundle whose encoder.onnx the
model uses, ``sha256.encoder`` that file's hash; written when ``image_bundle=`` / ``--encoder-from`` is given and the
image bundle's encoder computes this model's encoder, see ``samfpga.video.pack``)::

    video.json             {"format", "version", "family", "image_size", "feat_size", "hidden_dim", "mem_dim",
                            "num_maskmem", "max_obj_ptrs", "pool_memory", "high_res", "pixel_mean", "pixel_std",
                            "model_config", "source", "opset", "files": {...}, "sha256": {...}}
    encoder.onnx           image (1,3,S,S) float32 normalised (square resize, no padding) -> image_embeddings
                           (1,C,s,s) [, high_res_0 (1,C/8,4s,4s), high_res_1 (1,C/4,2s,2s) after conv_s0/s1]
    heads.onnx             pix_feat (B,C,s,s), point_coords (B,N,2) in S-pixels, point_labels (B,N) float (-1 pad,
                           0/1 points, 2/3 box corners; the host appends SAM2's padding point), mask_input
                           (B,1,4s,4s), has_mask_input (1,) [, high_res_0, high_res_1 (B,...)]
                           -> masks (B,4,4s,4s), iou (B,4), obj_ptr (B,4,C) (obj_ptr_proj of each mask token),
                           object_score (B,1)
    memory_encoder.onnx    pix_feat (B,C,s,s), mask_for_mem (B,1,S,S) (sigmoid·20−10 already applied)
                           -> maskmem (B,mem_dim,s,s) (before no_obj_embed_spatial, which the host adds)
    memory_attention.onnx  curr, curr_pos (B,s*s,C), memory, memory_pos (B,F*s*s,mem_dim), ptr, ptr_pos
                           (B,P,mem_dim) -> conditioned (B,s*s,C); F ≥ 1 and P ≥ 0 dynamic
    constants.npz          maskmem_tpos_enc (num_maskmem,mem_dim), no_mem_embed (C,), no_obj_ptr (C,),
                           no_obj_embed_spatial (mem_dim,), obj_ptr_tpos_proj_weight (mem_dim,C) / _bias,
                           mask_downsample_weight (4,4) / _bias (), vision_pos (C,s,s), memory_pos (mem_dim,s,s)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..video.model import VideoSam

VIDEO_BUNDLE_FORMAT = "samfpga-video-bundle"
VIDEO_BUNDLE_VERSION = 1  # self-contained (samfpga.video.pack writes version 2, the encoder by reference)
ONNX_OPSET = 17
FILES = {"encoder": "encoder.onnx", "heads": "heads.onnx", "memory_encoder": "memory_encoder.onnx",
         "memory_attention": "memory_attention.onnx", "constants": "constants.npz"}


class EncoderOnnx(nn.Module):
    def __init__(self, model: VideoSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.model.image_encoder(image)
        if not self.model.cfg.high_res:
            return (feats,)
        dec = self.model.sam_mask_decoder
        return feats[-1], dec.conv_s0(feats[0]), dec.conv_s1(feats[1])


class HeadsOnnx(nn.Module):
    """SAM2 prompt encoder + mask decoder + object-pointer projection of every mask token."""

    def __init__(self, model: VideoSam) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("image_pe", model.sam_prompt_encoder.get_dense_pe().detach().clone(), persistent=False)

    def forward(self, pix_feat: torch.Tensor, point_coords: torch.Tensor, point_labels: torch.Tensor,
                mask_input: torch.Tensor, has_mask_input: torch.Tensor,
                *high_res: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pe = self.model.sam_prompt_encoder
        emb = pe.pe_layer._pe_encoding((point_coords + 0.5) / self.model.cfg.image_size)
        lab = point_labels.unsqueeze(-1)
        emb = emb * (lab != -1).to(emb.dtype) + pe.not_a_point_embed.weight * (lab == -1).to(emb.dtype)
        for i in range(4):
            emb = emb + pe.point_embeddings[i].weight * (lab == i).to(emb.dtype)
        dense = has_mask_input * pe.mask_downscaling(mask_input) + (1 - has_mask_input) * pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        out = self.model.sam_mask_decoder.predict_all(pix_feat, self.image_pe, emb, dense,
                                                      tuple(high_res) if high_res else None)
        return out.masks, out.iou, self.model.obj_ptr_proj(out.mask_tokens), out.object_score


class MemoryEncoderOnnx(nn.Module):
    def __init__(self, model: VideoSam) -> None:
        super().__init__()
        self.memory_encoder = model.memory_encoder

    def forward(self, pix_feat: torch.Tensor, mask_for_mem: torch.Tensor) -> torch.Tensor:
        return self.memory_encoder(pix_feat, mask_for_mem)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]] | None, opset: int) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=opset, input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True)


def example_inputs(model: VideoSam, batch: int = 2) -> dict[str, tuple[torch.Tensor, ...]]:
    """Example inputs of each exported graph (shapes as in the module docstring)."""
    c, m, s, big = model.cfg.hidden_dim, model.cfg.mem_dim, model.cfg.feat_size, model.cfg.image_size
    g = torch.Generator().manual_seed(0)
    hr = (torch.randn(batch, c // 8, 4 * s, 4 * s, generator=g), torch.randn(batch, c // 4, 2 * s, 2 * s, generator=g))
    return {
        "encoder": (torch.randn(1, 3, big, big, generator=g),),
        "heads": (torch.randn(batch, c, s, s, generator=g), torch.rand(batch, 3, 2, generator=g) * big,
                  torch.tensor([[1.0, 2.0, 3.0]] * batch), torch.randn(batch, 1, 4 * s, 4 * s, generator=g),
                  torch.tensor([1.0]), *(hr if model.cfg.high_res else ())),
        "memory_encoder": (torch.randn(batch, c, s, s, generator=g), torch.randn(batch, 1, big, big, generator=g)),
        "memory_attention": (torch.randn(batch, s * s, c, generator=g), torch.randn(batch, s * s, c, generator=g),
                             torch.randn(batch, 2 * s * s, m, generator=g), torch.randn(batch, 2 * s * s, m, generator=g),
                             torch.randn(batch, 8, m, generator=g), torch.randn(batch, 8, m, generator=g)),
    }


def export_graphs(model: VideoSam, out: Path, opset: int = ONNX_OPSET) -> None:
    ex = example_inputs(model)
    with torch.no_grad():
        got = EncoderOnnx(model)(ex["encoder"][0])[0].shape[1:]
    want = (model.cfg.hidden_dim, model.cfg.feat_size, model.cfg.feat_size)
    if tuple(got) != want:
        raise ValueError(f"the image encoder gives {tuple(got)} features, the video model needs {want} (stride 16)")
    hr_in = ["high_res_0", "high_res_1"] if model.cfg.high_res else []
    trunk = getattr(model.image_encoder, "trunk", None)
    if trunk is not None:  # Hiera: its bicubic position-table resize becomes a constant (ONNX's cubic Resize differs)
        with torch.no_grad():
            trunk.fixed_pos = trunk.pos_embed_at(model.cfg.image_size // 4, model.cfg.image_size // 4).detach()
    try:
        _export(EncoderOnnx(model), ex["encoder"], out / FILES["encoder"], ["image"],
                ["image_embeddings", *hr_in], None, opset)
    finally:
        if trunk is not None:
            trunk.fixed_pos = None
    b = {0: "batch"}
    _export(HeadsOnnx(model), ex["heads"], out / FILES["heads"],
            ["pix_feat", "point_coords", "point_labels", "mask_input", "has_mask_input", *hr_in],
            ["masks", "iou", "obj_ptr", "object_score"],
            {"pix_feat": b, "point_coords": {0: "batch", 1: "num_points"}, "point_labels": {0: "batch", 1: "num_points"},
             "mask_input": b, "masks": b, "iou": b, "obj_ptr": b, "object_score": b, **{k: b for k in hr_in}}, opset)
    _export(MemoryEncoderOnnx(model), ex["memory_encoder"], out / FILES["memory_encoder"],
            ["pix_feat", "mask_for_mem"], ["maskmem"], {"pix_feat": b, "mask_for_mem": b, "maskmem": b}, opset)
    mem = {0: "batch", 1: "memory_tokens"}
    ptr = {0: "batch", 1: "pointer_tokens"}
    _export(model.memory_attention, ex["memory_attention"], out / FILES["memory_attention"],
            ["curr", "curr_pos", "memory", "memory_pos", "ptr", "ptr_pos"], ["conditioned"],
            {"curr": b, "curr_pos": b, "memory": mem, "memory_pos": mem, "ptr": ptr, "ptr_pos": ptr,
             "conditioned": b}, opset)


def constants(model: VideoSam) -> dict[str, np.ndarray]:
    """The small tensors the host applies itself (see the module docstring)."""
    s = model.cfg.feat_size

    def a(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy().astype(np.float32)

    return {
        "maskmem_tpos_enc": a(model.maskmem_tpos_enc.reshape(model.cfg.num_maskmem, -1)),
        "no_mem_embed": a(model.no_mem_embed.reshape(-1)),
        "no_obj_ptr": a(model.no_obj_ptr.reshape(-1)),
        "no_obj_embed_spatial": a(model.no_obj_embed_spatial.reshape(-1)),
        "obj_ptr_tpos_proj_weight": a(model.obj_ptr_tpos_proj.weight),
        "obj_ptr_tpos_proj_bias": a(model.obj_ptr_tpos_proj.bias),
        "mask_downsample_weight": a(model.mask_downsample.weight.reshape(4, 4)),
        "mask_downsample_bias": a(model.mask_downsample.bias.reshape(())),
        "vision_pos": a(model.vision_pos()[0]),
        "memory_pos": a(model.memory_encoder.position(s, s)[0]),
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_video_bundle(model: VideoSam, out_dir: str | Path, source: str = "", opset: int = ONNX_OPSET,
                        overwrite: bool = False, image_bundle: str | Path | None = None) -> Path:
    """Write ``model`` (float32, eval) as a video bundle directory, atomically (a temporary sibling renamed
    into place; an interrupted export leaves nothing). With ``image_bundle`` (an image bundle whose encoder.onnx
    computes this model's encoder, checked by ``samfpga.video.pack.write_referencing``) the bundle references that
    encoder instead of holding a copy (version 2; the relative path from ``out_dir`` is stored, so keep the two
    side by side). Raises BundleError (a ValueError) when the image bundle's encoder is another one."""
    from samfpga.video.pack import write_referencing

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"video bundle directory {out_dir} exists (pass overwrite=True / --overwrite)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().eval()
    cfg = model.cfg
    made = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    ref = made.with_name(made.name + ".ref")  # a sibling of out_dir: the stored relative path is the same
    try:
        export_graphs(model, made, opset)
        np.savez(made / FILES["constants"], **constants(model))
        meta = {
            "format": VIDEO_BUNDLE_FORMAT, "version": VIDEO_BUNDLE_VERSION, "family": cfg.family,
            "image_size": cfg.image_size, "feat_size": cfg.feat_size, "hidden_dim": cfg.hidden_dim,
            "mem_dim": cfg.mem_dim, "num_maskmem": cfg.num_maskmem, "max_obj_ptrs": cfg.max_obj_ptrs_in_encoder,
            "pool_memory": cfg.pool_memory, "high_res": cfg.high_res,
            "pixel_mean": [float(v) for v in model.pixel_mean.flatten()],
            "pixel_std": [float(v) for v in model.pixel_std.flatten()],
            "model_config": cfg.to_dict(), "source": source, "opset": opset, "files": dict(FILES),
            "sha256": {k: _sha256(made / f) for k, f in FILES.items()},
        }
        (made / "video.json").write_text(json.dumps(meta, indent=2) + "\n")
        tmp = made if image_bundle is None else write_referencing(made, ref, image_bundle)
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            for name in os.listdir(tmp):
                os.replace(tmp / name, out_dir / name)
            if image_bundle is not None:  # a copy left by an earlier self-contained export would mislead
                (out_dir / FILES["encoder"]).unlink(missing_ok=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        for d in (made, ref):
            if d.exists():
                shutil.rmtree(d)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """``python -m samfpga.models.export.video --checkpoint FILE --out DIR [--image-size S]``: an official
    ``sam2.1_hiera_tiny.pt`` or a samfpga video checkpoint to a video bundle."""
    import argparse

    from ..checkpoint import CheckpointError
    from ..video.checkpoint import load_official_sam2, load_video_checkpoint

    p = argparse.ArgumentParser(prog="samfpga.models.export.video", description=main.__doc__)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--image-size", type=int, default=None,
                   help="input side for an official checkpoint (default 1024; 256/512 for edge boards)")
    p.add_argument("--encoder-from", type=Path, default=None, metavar="IMAGE_BUNDLE",
                   help="reference this image bundle's encoder.onnx (checked to be the model's encoder) instead of "
                        "writing a copy; default: a self-contained bundle")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    try:
        if a.image_size is not None:
            model = load_official_sam2(a.checkpoint, image_size=a.image_size)
        else:
            model = load_video_checkpoint(a.checkpoint)
    except (CheckpointError, OSError) as e:  # VideoCheckpointError is one, as is the strict-load check
        print(f"samfpga.models.export.video: error: {e}")
        return 2
    try:
        out = export_video_bundle(model, a.out, source=f"checkpoint {a.checkpoint.name}", overwrite=a.overwrite,
                                  image_bundle=a.encoder_from)
    except (ValueError, FileExistsError) as e:  # BundleError is a ValueError
        print(f"samfpga.models.export.video: error: {e}")
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
