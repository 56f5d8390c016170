"""FINN build of the quantized encoder: config dataclass, named steps, fit search, runner, report.

    from samfpga.hw.build import BuildConfig, run_build
    report = run_build("enc_w8a8.onnx", BuildConfig(board="kv260", output_dir="out/hw/kv260"))
"""

from samfpga.hw.build.config import BuildConfig, BuildOptions
from samfpga.hw.build.flow import BuildError, run_build
from samfpga.hw.build.steps import DEFAULT_STEPS, PIPELINE, SOFTWARE_STEPS, VIVADO_STEPS

__all__ = ["DEFAULT_STEPS", "PIPELINE", "SOFTWARE_STEPS", "VIVADO_STEPS", "BuildConfig", "BuildError",
           "BuildOptions", "run_build"]
