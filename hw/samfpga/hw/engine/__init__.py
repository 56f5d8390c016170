"""The layer-sequential engine's build (``samfpga build-hw --engine``): its program compiled from an integer graph at
the plan's widths, its Vivado design, the host's files and the report (docs/engine.md)."""
