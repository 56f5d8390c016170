"""Hardware side of samfpga (needs finn-plus): FINN build flow, own RTL, cocotb simulation."""
