"""cocotb test run inside the simulator: drive ``sim_top``'s streams, compare every output word, count cycles.

The runner passes a JSON spec through the environment variable ``SAMFPGA_BENCH_SPEC``:
    inputs:   {"s_axis_0": [word, ...], ...}   words as decimal strings (arbitrary width)
    expected: {"m_axis_0": [word, ...], ...}   FINN's python execution packed the same way
    masks:    {"m_axis_0": mask}               meaningful bits of a word (padding bits are not compared)
    pause:    probability that a source withholds / a sink refuses a beat in the backpressure pass
    axilite_writes: optional [[byte address, 32-bit word], ...] written through the AXI-Lite ports ``axilite_port``
              (``<node>_s_axilite``) before streaming
    ddr:      optional [{"ram", "axil", "image", "writes"}]: per token-batched node an AXI RAM (cocotbext-axi's
              AxiRamRead) on the ``ram`` prefix holding the ``image`` file at address 0, and the ``writes`` (register
              offset, word) made through an AXI-Lite master on the ``axil`` prefix before streaming
    frames:   optional number of frames the words hold (default 1), streamed back to back in the free-running pass
    bp_frames: optional number of frames (from the first) the backpressure pass streams (default all)
    probes:   optional {label: "instance.signal"} read after both passes (e.g. a FIFO's ``maxcount``)
    stall_cycles, stall_probes: optional deadlock watch: when for ``stall_cycles`` no input beat was seen accepted
              (sampled every 256 cycles) and no output word arrived, the run stops and the result holds
              ``stalled`` with the values of ``stall_probes`` ({label: "instance.signal"}, e.g. FIFO fill counts)
    capture:  optional {"m_axis_0": word count, ...} instead of ``expected``: one free-running pass whose output
              words are written to the result (``outputs``) without comparison (co-simulation: the RTL computes)
    seed, timeout_cycles, result: where to write the result JSON
Two passes run on the same input: one with random backpressure on every input and output (checks correctness
under stalls) and one without (the cycle count compared with FINN's estimate). Both are compared word by word.
The free pass records the cycle at which each output frame's last word arrived: ``cycles`` is the first frame's
(latency incl. streaming the input in), ``frame_interval`` the mean spacing of later frames (steady state).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Combine, First, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiRamRead,
    AxiReadBus,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from samfpga.hw.sim.bench_common import program_registers

CLK_NS = 10


class Cycles:
    """Clock cycles since time 0, from the simulation time (no coroutine woken on every edge)."""

    @property
    def now(self) -> int:
        return int(get_sim_time(unit="ns")) // CLK_NS


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


async def _collect(sink: AxiStreamSink, n: int, per_frame: int, cycles: Cycles, done: list[int],
                   words: list[int]) -> list[int]:
    """``n`` words from ``sink`` into ``words``; appends to ``done`` the cycle at which each ``per_frame`` were in."""
    while len(words) < n:
        frame = await sink.recv(compact=False)
        words.extend(int(w) for w in frame.tdata)
        while len(done) < len(words) // per_frame:
            done.append(cycles.now)
    return words


def _first_frames(spec: dict, frames: int) -> dict:
    """``spec`` with inputs and expected words cut to the first ``frames`` frames."""
    total = int(spec.get("frames", 1))
    if frames >= total:
        return spec
    cut = {k: {n: w[: len(w) // total * frames] for n, w in spec[k].items()} for k in ("inputs", "expected")}
    return {**spec, **cut, "frames": frames}


class Stalled(Exception):
    """No progress for ``stall_cycles``: the design deadlocked."""


def _read(dut, path: str) -> int:
    h = dut
    for part in path.split("."):
        h = getattr(h, part)
    return int(h.value)


async def _watch(dut, spec: dict, cycles: Cycles, outputs: list[list[int]]) -> None:
    """Return when neither an input handshake (sampled) nor an output word was seen for ``stall_cycles``."""
    limit = int(spec["stall_cycles"])
    last, seen = cycles.now, -1
    while True:
        await ClockCycles(dut.clk, 256)
        n = sum(len(w) for w in outputs)
        hs = any(int(getattr(dut, f"{s}_tvalid").value) and int(getattr(dut, f"{s}_tready").value)
                 for s in spec["inputs"])
        if hs or n != seen:
            last, seen = cycles.now, n
        elif cycles.now - last > limit:
            return


async def _run_pass(dut, sources, sinks, spec, pause: float, rng: random.Random, cycles: Cycles):
    """Stream the spec's inputs, collect its outputs; returns (words per output, cycles, frame completion cycles
    of the first output relative to the pass start)."""
    for s in [*sources.values(), *sinks.values()]:
        s.set_pause_generator(_pauses(rng, pause) if pause > 0 else None)
        if pause == 0:
            # removing the generator leaves the last drawn pause state in place; a stuck pause would hang
            s.pause = False
    start = cycles.now
    frames = int(spec.get("frames", 1))
    counts = spec.get("capture") or {n: len(w) for n, w in spec["expected"].items()}
    done: dict[str, list[int]] = {n: [] for n in counts}
    outputs: dict[str, list[int]] = {n: [] for n in counts}
    tasks = [cocotb.start_soon(_collect(sinks[n], k, max(1, k // frames), cycles, done[n], outputs[n]))
             for n, k in counts.items()]
    for name, words in spec["inputs"].items():
        await sources[name].send(AxiStreamFrame([int(w) for w in words]))
    got = {}
    if spec.get("stall_cycles"):
        watch = cocotb.start_soon(_watch(dut, spec, cycles, list(outputs.values())))
        await with_timeout(First(Combine(*tasks), watch), spec["timeout_cycles"] * 10, "ns")
        if not all(t.done() for t in tasks):
            raise Stalled(f"no progress for {spec['stall_cycles']} cycles at cycle {cycles.now} "
                          f"({ {n: len(w) for n, w in outputs.items()} } output words of {counts})")
        watch.cancel()
    else:
        await with_timeout(Combine(*tasks), spec["timeout_cycles"] * 10, "ns")
    for name, task in zip(counts, tasks):
        got[name] = task.result()
    first = next(iter(done.values()))
    return got, cycles.now - start, [c - start for c in first]


def _compare(got: dict, spec: dict) -> tuple[int, int, list]:
    compared = mismatches = 0
    first = []
    for name, words in spec["expected"].items():
        mask = int(spec["masks"][name])
        for i, (g, e) in enumerate(zip(got[name], words)):
            compared += 1
            if (g & mask) != (int(e) & mask):
                mismatches += 1
                if len(first) < 5:
                    first.append({"stream": name, "index": i, "got": hex(g & mask), "expected": hex(int(e) & mask)})
        mismatches += abs(len(got[name]) - len(words))
    return compared, mismatches, first


def _write_result(spec: dict, result: dict) -> None:
    tmp = spec["result"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, spec["result"])


@cocotb.test()
async def stream_bench(dut):
    """Random-backpressure pass then free-running pass; every output word compared with FINN's execution."""
    spec = json.loads(open(os.environ["SAMFPGA_BENCH_SPEC"]).read())
    rng = random.Random(spec["seed"])
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    cycles = Cycles()

    async def progress():
        while True:
            await ClockCycles(dut.clk, 100_000)
            dut._log.info(f"cycle {cycles.now}")  # progress of long (whole-design) runs in sim.log

    cocotb.start_soon(progress())
    dut.rst_n.value = 0
    sources = {n: AxiStreamSource(AxiStreamBus.from_prefix(dut, n), dut.clk, dut.rst_n, reset_active_level=False,
                                  byte_size=int(spec["widths"][n])) for n in spec["inputs"]}
    sinks = {n: AxiStreamSink(AxiStreamBus.from_prefix(dut, n), dut.clk, dut.rst_n, reset_active_level=False,
                              byte_size=int(spec["widths"][n])) for n in spec.get("capture") or spec["expected"]}
    rams = []
    for d in spec.get("ddr") or []:
        image = open(d["image"], "rb").read()
        ram = AxiRamRead(AxiReadBus.from_prefix(dut, d["ram"]), dut.clk, dut.rst_n, reset_active_level=False,
                         size=max(4096, len(image) + 4096))
        ram.write(0, image)
        ram.log.setLevel("WARNING")
        rams.append(ram)
    await ClockCycles(dut.clk, 8)
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 4)
    for d in spec.get("ddr") or []:
        await program_registers(dut, d["axil"], d["writes"], dut.rst_n, reset_active_level=False)
    axilite = spec.get("axilite_writes") or []
    readback_mismatches = 0
    if axilite:
        # program runtime-writeable parameters over AXI-Lite as FINN's driver does, before any data
        master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, spec["axilite_port"]), dut.clk, dut.rst_n,
                               reset_active_level=False)
        for addr, word in axilite:
            await master.write_dword(int(addr), int(word))
        for addr, word in axilite[:: max(1, len(axilite) // 8)]:
            if await master.read_dword(int(addr)) != int(word) & 0xFFFFFFFF:
                readback_mismatches += 1
    for _ in range(int(spec.get("flush_frames") or 0)):
        # as the driver after programming: one frame whose output is dropped drains what a weight memstream had
        # prefetched before the writes (FINN's driver: load_runtime_weights(flush_accel=True))
        await _run_pass(dut, sources, sinks, _first_frames(spec, 1), 0.0, rng, cycles)

    if spec.get("capture"):
        got, _, done = await _run_pass(dut, sources, sinks, spec, 0.0, rng, cycles)
        _write_result(spec, {"outputs": {n: [str(w) for w in ws] for n, ws in got.items()},
                             "cycles": done[0] if done else 0, "frame_done_cycles": done})
        return
    bp_spec = _first_frames(spec, int(spec.get("bp_frames", spec.get("frames", 1))))
    try:
        got_bp, cycles_bp, _ = await _run_pass(dut, sources, sinks, bp_spec, spec["pause"], rng, cycles)
        await ClockCycles(dut.clk, 4)
        got_free, _, done = await _run_pass(dut, sources, sinks, spec, 0.0, rng, cycles)
    except Stalled as e:
        _write_result(spec, {"words_compared": 0, "mismatches": -1, "first_mismatches": [], "cycles": 0,
                             "cycles_backpressure": 0, "stalled": str(e),
                             "stall_probes": {k: _read(dut, v) for k, v in (spec.get("stall_probes") or {}).items()}})
        raise
    c1, m1, f1 = _compare(got_bp, bp_spec)
    c2, m2, f2 = _compare(got_free, spec)
    gaps = [b - a for a, b in zip(done, done[1:])]
    probes = {}
    for label, path in (spec.get("probes") or {}).items():
        probes[label] = _read(dut, path)
    result = {"words_compared": c1 + c2, "mismatches": m1 + m2, "first_mismatches": f1 + f2,
              "cycles": done[0] if done else 0, "cycles_backpressure": cycles_bp, "axilite_writes": len(axilite),
              "frame_done_cycles": done, "frame_interval": sum(gaps) / len(gaps) if gaps else 0.0,
              "probes": probes, "axilite_readback_mismatches": readback_mismatches}
    _write_result(spec, result)
    assert m1 + m2 == 0, f"{m1 + m2} of {c1 + c2} output words differ from FINN's execution: {f1 + f2}"
    assert readback_mismatches == 0, f"{readback_mismatches} AXI-Lite read-backs differ from the written words"
