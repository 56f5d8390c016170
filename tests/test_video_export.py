"""ONNX export of the video graphs: each graph of a video bundle against its torch module (FPGA family with
2×2-pooled memory; dynamic object batch, memory length and pointer count), and the video checkpoint round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch

from samfpga.bundle import BundleError
from samfpga.models.export.video import (
    EncoderOnnx,
    HeadsOnnx,
    MemoryEncoderOnnx,
    example_inputs,
    export_video_bundle,
)
from samfpga.models.video import VideoConfig, VideoSam
from samfpga.models.video.checkpoint import load_video_checkpoint, save_video_checkpoint
from samfpga.video.bundle import load_video_bundle
from tests.support.image_bundle_from import image_bundle_from
from tests.support.tiny_video_bundle import TINY, tiny_video_model

TOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_video_model(seed=3)
    cfg = dataclasses.replace(model.cfg, pool_memory=True)
    pooled = VideoSam(cfg).eval()
    pooled.load_state_dict(model.state_dict())
    out = export_video_bundle(pooled, tmp_path_factory.mktemp("vb") / "bundle")
    return pooled, out


def _run(path, args):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {i.name: a.numpy() for i, a in zip(s.get_inputs(), args)})


@torch.no_grad()
def test_graphs_match_torch(exported):
    model, out = exported
    ex = example_inputs(model)
    mem_args = ex["memory_attention"]
    cases = {
        "encoder": (EncoderOnnx(model), [ex["encoder"]]),
        "heads": (HeadsOnnx(model), [ex["heads"], (ex["heads"][0][:1], ex["heads"][1][:1, :1], ex["heads"][2][:1, :1],
                                                   ex["heads"][3][:1], torch.tensor([0.0]))]),
        "memory_encoder": (MemoryEncoderOnnx(model), [ex["memory_encoder"]]),
        "memory_attention": (model.memory_attention, [
            mem_args,
            (mem_args[0][:1], mem_args[1][:1], torch.cat([mem_args[2][:1]] * 4, 1), torch.cat([mem_args[3][:1]] * 4, 1),
             mem_args[4][:1, :0], mem_args[5][:1, :0]),  # 8 memory frames, no pointers
        ]),
    }
    for name, (module, arg_sets) in cases.items():
        for args in arg_sets:
            ref = module(*args)
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = _run(out / f"{name}.onnx", args)
            for g, r in zip(got, ref):
                assert g.shape == tuple(r.shape), name
                err = float(np.abs(g - r.numpy()).max())
                assert err <= TOL, f"{name}: {err:.3g}"


def test_bundle_reads_back(exported):
    model, out = exported
    b = load_video_bundle(out)
    assert (b.family, b.pool_memory, b.high_res, b.hidden_dim, b.mem_dim) == ("fpga", True, False, 32, 16)
    c = b.constants()
    np.testing.assert_allclose(c["no_obj_ptr"], model.no_obj_ptr.detach().numpy()[0])
    assert b.encoder_bundle().embedding_shape == (32, 8, 8)


def test_video_checkpoint_round_trip(tmp_path):
    model = tiny_video_model(seed=4)
    save_video_checkpoint(model, tmp_path / "v.pt")
    back = load_video_checkpoint(tmp_path / "v.pt")
    assert back.cfg == VideoConfig(**TINY)
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k


@pytest.mark.slow
def test_export_referencing_an_image_bundles_encoder(exported, tmp_path):
    model, out = exported
    img = image_bundle_from(out, tmp_path / "image")  # another export of the same encoder: other bytes, same function
    ref = export_video_bundle(model, tmp_path / "video", image_bundle=img)
    b = load_video_bundle(ref)
    assert not (ref / "encoder.onnx").exists() and b.paths["encoder"] == (img / "encoder.onnx").resolve()
    # the self-contained export's other graphs are the ones referenced bundles hold
    for key in ("heads", "memory_encoder", "memory_attention"):
        np.testing.assert_array_equal(_run(b.paths[key], example_inputs(model)[key])[0],
                                      _run(out / f"{key}.onnx", example_inputs(model)[key])[0])
    # overwriting a self-contained export in place leaves no stale encoder.onnx behind
    export_video_bundle(model, tmp_path / "video", overwrite=True)
    assert (ref / "encoder.onnx").is_file()
    export_video_bundle(model, tmp_path / "video", overwrite=True, image_bundle=img)
    assert not (ref / "encoder.onnx").exists() and load_video_bundle(ref).image_bundle == img.resolve()
    # a model with other encoder weights refuses that image bundle, and writes nothing
    other = tiny_video_model(seed=4)
    with pytest.raises(BundleError, match="does not compute the features"):
        export_video_bundle(other, tmp_path / "other", image_bundle=img)
    assert not (tmp_path / "other").exists() and not list(tmp_path.glob(".other*"))
