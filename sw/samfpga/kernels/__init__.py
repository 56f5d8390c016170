"""Integer reference kernels: numpy models of what each accelerator layer computes, bit for bit.

One home for each layer's arithmetic. The FINN custom ops of ``samfpga.hw`` call these in their
``execute_node``; the host's ``quant`` encoder backend runs the build's final graph with them; the RTL benches
compare the simulated hardware against them. Everything here imports with numpy alone (board runtime).
One module per layer type (``thresholding``, ``mvau``, ``layernorm``, ``softmax``, ``requant``, ...); this file
imports none of them, so a module can be added without touching it.
"""
