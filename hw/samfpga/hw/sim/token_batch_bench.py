"""cocotb test run inside the simulator for ``token_batch_mvu``: DDR = cocotbext-axi's AxiRamRead, activations in and
accumulators out through AXI-Stream source / sink, every output word compared (tolerance 0).

The runner (``samfpga.hw.sim.token_batch_runner``) passes a JSON spec through ``SAMFPGA_TB_MVU_SPEC``:
    ddr:      path of the DDR image (bytes loaded at address 0 of the AXI RAM)
    frames:   [{"n", "t", "base", "stride", "sf", "nf", "batch", "inputs": [word, ...], "expected": [word, ...]},
              ...] (words as decimal strings; sf / nf / batch: the layer's shape, used by a run-time-shaped unit; raw: the
              frame's sums unrequantised, a unit with RAW_OUT)
    passes:   [{"name", "pause", "ar_pause", "r_pause"}, ...]: each pass streams every frame; ``pause`` is the
              probability that the input source withholds / the output sink refuses a beat, ``ar_pause`` that the
              RAM refuses a read request, ``r_pause`` that it withholds a read beat, per cycle
    in_bits, out_bits, seed, timeout_cycles, result
The configuration ports are set before each frame whose configuration differs from the previous frame's, once the
previous frame's input has been accepted (the unit samples them with a frame's first beat). Per pass the result has
the words compared, mismatches, the cycle at which each frame's last output word arrived (from the pass start),
the DDR bytes read and the read bursts.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiReadBus, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from samfpga.hw.sim.bench_common import (
    CLK_NS,
    CountingRam,
    ar_monitor,
    now,
    set_pause,
    timed_out_within,
    write_result,
)


async def _collect(sink: AxiStreamSink, counts: list[int], done: list[int], start: int, words: list[int]) -> None:
    total = sum(counts)
    bounds = [sum(counts[:k + 1]) for k in range(len(counts))]
    while len(words) < total:
        frame = await sink.recv(compact=False)
        words.extend(int(w) for w in frame.tdata)
        while len(done) < len(bounds) and len(words) >= bounds[len(done)]:
            done.append(now() - start)


def _configure(dut, f: dict) -> None:
    dut.cfg_base.value = int(f["base"])
    dut.cfg_stride.value = int(f["stride"])
    dut.cfg_iters.value = int(f["n"])
    dut.cfg_tokens.value = int(f["t"])
    dut.cfg_sf.value = int(f["sf"])
    dut.cfg_nf.value = int(f["nf"])
    dut.cfg_batch.value = int(f["batch"])
    dut.cfg_raw.value = int(f.get("raw", 0))
    dut.cfg_unsigned.value = int(f.get("unsigned", 0))


@cocotb.test()
async def token_batch_bench(dut):
    """Every pass of the spec streams every frame; output words compared with the numpy reference."""
    spec = json.loads(Path(os.environ["SAMFPGA_TB_MVU_SPEC"]).read_text())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst.value = 1
    _configure(dut, spec["frames"][0])
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst, byte_size=int(spec["in_bits"]))
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst, byte_size=int(spec["out_bits"]))
    ddr = Path(spec["ddr"]).read_bytes()
    ram = CountingRam(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=max(4096, len(ddr)))
    ram.write(0, ddr)
    bursts: list = []
    cocotb.start_soon(ar_monitor(dut, bursts))
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)

    frames = spec["frames"]
    results = []
    failed = 0
    for p in spec["passes"]:
        for chan in (src, sink):
            set_pause(chan, rng, float(p["pause"]))
        set_pause(ram.ar_channel, rng, float(p["ar_pause"]))
        set_pause(ram.r_channel, rng, float(p["r_pause"]))
        ram.bytes_read = 0
        ram.beats_read = 0
        bursts.clear()
        words: list[int] = []
        done: list[int] = []
        start = now()
        collector = cocotb.start_soon(_collect(sink, [len(f["expected"]) for f in frames], done, start, words))
        prev = None
        for f in frames:
            key = (f["n"], f["t"], f["base"], f["stride"], f["sf"], f["nf"], f["batch"], f.get("raw", 0),
                   f.get("unsigned", 0))
            if key != prev:
                await src.wait()  # the previous frame's input is in: its configuration has been sampled
                _configure(dut, f)
                prev = key
            await src.send(AxiStreamFrame([int(w) for w in f["inputs"]]))
        timed_out = await timed_out_within(collector, spec["timeout_cycles"])
        expected = [int(w) for f in frames for w in f["expected"]]
        mask = (1 << int(spec["out_bits"])) - 1
        mism = [i for i, (g, e) in enumerate(zip(words, expected)) if (g & mask) != (e & mask)]
        mism_n = len(mism) + abs(len(words) - len(expected))
        failed += mism_n
        results.append({"name": p["name"], "words_compared": min(len(words), len(expected)), "mismatches": mism_n,
                        "first_mismatches": [{"index": i, "got": hex(words[i]), "expected": hex(expected[i])}
                                             for i in mism[:5]],
                        "frame_done_cycles": done, "cycles": now() - start, "ddr_bytes": ram.bytes_read,
                        "ddr_beats": ram.beats_read, "bursts": list(bursts), "err": int(dut.err.value), "timed_out": timed_out})
        if timed_out:
            break  # the unit is stuck: later passes would only time out too
        await ClockCycles(dut.clk, 4)
    write_result(spec, results)
    assert failed == 0, f"{failed} output words differ from the reference: {[r['first_mismatches'] for r in results]}"
    assert all(r["err"] == 0 for r in results), f"err flags raised: {[r['err'] for r in results]}"
