"""One distribution, ``samfpga``, whose package is spread over the three top-level folders of the design:

    sw/samfpga/                 samfpga          board runtime: numpy + onnxruntime + Pillow, no torch
    models/samfpga/models/      samfpga.models   PyTorch model, training, quantization, export (needs torch)
    hw/samfpga/hw/              samfpga.hw       FINN build flow, own RTL, cocotb simulation (needs finn-plus)

Every file's path ends in its import path. In the wheel the three folders merge into one ``samfpga``
directory; in a checkout ``sw``, ``models`` and ``hw`` are import roots and ``samfpga/__init__.py`` extends its
``__path__`` over them (pkgutil-style), so ``PYTHONPATH=sw:models:hw`` works without installing anything.
Generated reports (hw/reports/) are not package data.
"""

from setuptools import find_packages, setup

ROOTS = {"sw": "samfpga", "models": "samfpga.models", "hw": "samfpga.hw"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder, top in ROOTS.items():
    base = f"{folder}/{top.replace('.', '/')}"
    package_dir[top] = base
    packages.append(top)
    packages += [f"{top}.{sub}" for sub in find_packages(base)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "samfpga.assets": ["default/*", "video_default/*", "samples/*", "samples/video/*", "samples/video/frames/*",
                           "samples/video/masks/*"],
        "samfpga.models.training": ["configs/*.yaml"],
        "samfpga.hw": ["rtl/*.sv"],
    },
    include_package_data=False,
)
