"""FINN build of the quantized encoder: config dataclass, named steps, runner, report.

    from samfpga.hw.build import BuildConfig, run_build
    report = run_build("enc_w8a8.onnx", BuildConfig(board="kv260", output_dir="out/hw/kv260"))
"""

from samfpga.hw.build.config import DEFAULT_STEPS, SOFTWARE_STEPS, VIVADO_STEPS, BuildConfig
from samfpga.hw.build.flow import BuildError, run_build

__all__ = ["DEFAULT_STEPS", "SOFTWARE_STEPS", "VIVADO_STEPS", "BuildConfig", "BuildError", "run_build"]
