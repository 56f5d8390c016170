"""Maps the top-level folders onto one import package.

    sw/      -> samfpga          board runtime: numpy + onnxruntime + Pillow, no torch
    models/  -> samfpga.models   PyTorch model, training, quantization, export (needs torch)
    hw/      -> samfpga.hw       FINN build flow, own RTL, cocotb simulation (needs finn-plus)
"""

from setuptools import find_packages, setup

ROOTS = {"samfpga": "sw", "samfpga.models": "models", "samfpga.hw": "hw"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for package, folder in ROOTS.items():
    package_dir[package] = folder
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"samfpga": ["assets/**/*"], "samfpga.hw": ["rtl/**/*", "**/*.yaml", "**/*.json"]},
    include_package_data=True,
)
