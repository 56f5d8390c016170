"""Helpers shared by the test modules (imported as ``tests.support.*``; test files never import each other).

- ``official``: the official SAM / MobileSAM oracles built around samfpga parts, seeded weights, a test image;
- ``training``: a tiny model and training config for the training / DDP / evaluation tests;
- ``tiny_encoder``: the chain tests' tiny quantized encoder and the tensor names of its slices;
- ``everything_eager``: the everything generators with the pre-issue-16 order (RLE before NMS), for the
  RLE-after-NMS identity test (numpy only: both environments);
- ``prompts``: Hypothesis strategies for predictor inputs and the refusal rule (numpy only: both environments).
"""
