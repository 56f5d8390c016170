"""Shared fixtures. Tests under tests/runtime run in the board-like environment (no torch); the rest in .venv."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

# Tests longer than ~30 s on the 2-core machine in files that other branches are editing now, marked here rather
# than with @pytest.mark.slow in the file (elsewhere tests carry the decorator themselves). Measured with
# pytest --durations=0 under load average ~15-25: test_finn_chain's stem fixture 249 s, ViT-block chain 103 s,
# build 67 s; test_finn_streamline's block fixture 400 s, FastStreamline vs Streamline 89 s; test_quant's
# whole-encoder QONNX check 85 s. Every test sharing a slow module fixture is listed, so that -m "not slow"
# does not run the fixture for the others.
SLOW: dict[str, set[str]] = {
    "test_finn_chain.py": {"test_each_stage_bit_exact", "test_slice_on_hw_layers", "test_vit_block_chain",
                           "test_build_cli_on_slice"},
    "test_finn_streamline.py": {"test_fast_streamline_is_finns_streamline", "test_integer_streams_into_integer_layers",
                                "test_flow_bit_exact"},
    "test_quant.py": {"test_qonnx_full_encoder_matches_brevitas"},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.originalname in SLOW.get(item.path.name, ()):
            item.add_marker(pytest.mark.slow)


# ---- the chain tests' 64² tiny encoder (tests/support/tiny_encoder.py), exported once per session ----
# Its QONNX export (Brevitas through torch.export, then qonnx cleanup) takes 45-75 s on the loaded 2-core machine
# (measured: 54 s at load average 2.9) and is deterministic (seeded weights, PTQ on seeded images); ten test files
# exported one of these two models each for themselves (test_backends_quant twice, test_quant a copy calibrated on
# 8 images). A test must not write to these files: the fixture checks at session end that each is unchanged
# (running as root, file permissions would not stop it).


class TinyExport(NamedTuple):
    """A quantized tiny encoder (Brevitas, (B,3,64,64) -> (B,32,4,4)) and its QONNX export (input (1,3,64,64))."""

    model: object  # the quantized TinyViT; tests that run or change it get a copy.deepcopy
    qonnx: Path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny_export(tmp_path_factory: pytest.TempPathFactory, int_norm: bool):
    from samfpga.models.quant import export_qonnx
    from tests.support.tiny_encoder import tiny_quant_encoder

    model = tiny_quant_encoder(int_norm=int_norm)
    path = export_qonnx(model, tmp_path_factory.mktemp("tiny_int_norm" if int_norm else "tiny") / "enc.onnx",
                        (1, 3, 64, 64))
    digest = _digest(path)
    yield TinyExport(model, path)
    assert _digest(path) == digest, f"{path}: a test changed the shared export"


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory):
    """``tiny_quant_encoder()`` (W8A8, float LayerNorm/softmax) and ``tiny_encoder_qonnx()``'s file of it."""
    yield from _tiny_export(tmp_path_factory, int_norm=False)


@pytest.fixture(scope="session")
def tiny_int_norm_export(tmp_path_factory: pytest.TempPathFactory):
    """``tiny_quant_encoder(int_norm=True)`` and ``tiny_encoder_qonnx(int_norm=True)``'s file of it."""
    yield from _tiny_export(tmp_path_factory, int_norm=True)


@pytest.fixture(scope="session")
def tiny_qonnx(tiny_export: TinyExport) -> Path:
    """The QONNX file of ``tiny_encoder_qonnx()`` (read only: slice or load it, do not write to it)."""
    return tiny_export.qonnx


@pytest.fixture(scope="session")
def tiny_int_norm_qonnx(tiny_int_norm_export: TinyExport) -> Path:
    """The QONNX file of ``tiny_encoder_qonnx(int_norm=True)`` (read only)."""
    return tiny_int_norm_export.qonnx


@pytest.fixture(scope="session")
def tiny_int_ops_build(tiny_qonnx: Path, tmp_path_factory: pytest.TempPathFactory):
    """(build dir, bundle dir): ``tests.support.tiny_deploy.build(int_ops=True)`` of ``tiny_qonnx``, the whole tiny
    encoder through ``samfpga build-hw --int-ops --pixel-input`` (every software step but HDL generation; ~2 min).
    Read by test_backends_quant (its int_ops case) and test_fit_memory (the report); neither writes into it: the
    report and the final graph are checked unchanged at session end."""
    from samfpga.hw.build.package import final_model_path
    from tests.support.tiny_deploy import build

    build_dir, bundle = build(tmp_path_factory.mktemp("tiny_int_ops_build"), int_ops=True, qonnx=tiny_qonnx)
    kept = [build_dir / "report.json", final_model_path(build_dir)]
    digests = [_digest(p) for p in kept]
    yield build_dir, bundle
    assert [_digest(p) for p in kept] == digests, f"{build_dir}: a test changed the shared build"


@pytest.fixture
def meta_nonzero():
    """Models on torch's meta device stand in for a GPU in tests/test_*_device.py (arithmetic with a CPU tensor raises
    there as with a CUDA one); the meta device refuses data-dependent ops such as nonzero unless told to assume every
    element is set."""
    import torch.fx.experimental._config as fx_config

    old = fx_config.meta_nonzero_assume_all_nonzero
    fx_config.meta_nonzero_assume_all_nonzero = True
    yield
    fx_config.meta_nonzero_assume_all_nonzero = old
