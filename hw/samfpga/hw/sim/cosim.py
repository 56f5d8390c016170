"""Host-to-RTL co-simulation: the stitched RTL of a build, in Verilator, as the accelerator model of the simulated
PYNQ device (``samfpga.pynq_sim.SimDevice(..., accelerator=RtlAccelerator(...))``).

The driver (``samfpga.backends.pynq_driver``, unmodified) packs the input into a ``pynq.allocate`` buffer and
starts the IODMAs; the simulated DMA reads the buffer and unpacks it to the accelerator's input values; this model
streams them, packed as FINN's stitched IP receives them, into ``sim_top`` (``samfpga.hw.sim.stitched``: every
node's RTL, the build's FIFOs, DWCs) and unpacks the words the RTL streams out; the simulated output DMA packs them
into the driver's buffer. Nothing here compares: the values returned are what the RTL computed.

Development environment only (cocotb, Verilator, finn-plus); ``samfpga.pynq_sim`` itself does not import it.
The design is built once (``__init__``); each call is one simulator run (``axis_bench`` in capture mode).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from samfpga.hw.sim.finn_boot import boot_finn
from samfpga.hw.sim.toolchain import setup_verilator_env


class RtlAccelerator:
    """``(accelerator input values, normal shape) -> output values`` by Verilator simulation of the stitched RTL
    of the build in ``build_dir`` (all-RTL HW graph; see ``samfpga.hw.sim.stitched``). ``work_dir``: design build
    and run folders (created). ``runs`` and ``cycles`` record the calls (cycles from the first input word to the
    last output word of each). ``reuse``: keep the simulator an earlier instance built in ``work_dir`` (its memory
    init files, referenced by absolute path, must still be there); for reruns of the same build only."""

    def __init__(self, build_dir: str | Path, work_dir: str | Path, log=print, reuse: bool = False) -> None:
        from qonnx.custom_op.registry import getCustomOp

        from samfpga.hw.sim.runner import finn_estimated_cycles, stage_hdl, verilator_build
        from samfpga.hw.sim.stitched import hw_graph, stitched_model

        self.work = Path(work_dir).resolve()
        build = Path(build_dir).resolve()
        boot_finn(self.work / "finn_build")
        setup_verilator_env(fast_compile=True)
        report = json.loads((build / "report.json").read_text())
        model, self.fifos, self.dwcs = stitched_model(hw_graph(build), report["board"]["part"],
                                                      1000.0 / float(report["clock_mhz"]))
        self.model = model
        t = model.graph.input[0].name
        self._in = (getCustomOp(model.find_consumer(t)), list(model.find_consumer(t).input).index(t))
        o = model.graph.output[0].name
        producer = model.find_producer(o)
        self._out = (getCustomOp(producer), list(producer.output).index(o))
        latency, _ = finn_estimated_cycles(model)
        self._timeout = 20 * latency + 100_000
        t0 = time.monotonic()
        if reuse and (self.work / "sim_build" / "sim_top").is_file():
            log(f"[cosim] reusing the simulator built in {self.work / 'sim_build'}")
        else:
            log(f"[cosim] Verilator build of {len(model.graph.node)} nodes in {self.work} ...")
            verilator_build(stage_hdl(model, self.work), self.work)
        self.build_s = round(time.monotonic() - t0, 1)
        log(f"[cosim] ready after {self.build_s} s")
        self.runs = 0
        self.cycles: list[int] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from finn.util.data_packing import npy_to_rtlsim_input, rtlsim_output_to_npy

        from samfpga.hw.sim.runner import cocotb_run

        op, k = self._in
        shape = tuple(op.get_normal_input_shape(k))
        x = np.asarray(x, dtype=np.float32)
        if x.size != int(np.prod(shape)):
            raise ValueError(f"RtlAccelerator: input of {x.size} values, the design takes {shape}")
        words = npy_to_rtlsim_input(x.reshape(op.get_folded_input_shape(k)), op.get_input_datatype(k),
                                    op.get_instream_width_padded(k))
        oop, ok = self._out
        n_out = int(np.prod(oop.get_folded_output_shape(ok)[:-1]))
        self.runs += 1
        result = self.work / f"cosim_{self.runs}.json"
        spec = {"inputs": {"s_axis_0": [str(int(w)) for w in words]}, "capture": {"m_axis_0": n_out},
                "widths": {"s_axis_0": op.get_instream_width_padded(k), "m_axis_0": oop.get_outstream_width_padded(ok)},
                "pause": 0.0, "seed": 0, "timeout_cycles": self._timeout, "result": str(result)}
        spec_path = self.work / f"cosim_{self.runs}_spec.json"
        spec_path.write_text(json.dumps(spec))
        cocotb_run(self.work, spec_path)
        if not result.is_file():
            raise RuntimeError(f"RTL co-simulation wrote no result (logs in {self.work / 'sim.log'})")
        r = json.loads(result.read_text())
        out_words = [int(w) for w in r["outputs"]["m_axis_0"]]
        if len(out_words) != n_out:
            raise RuntimeError(f"RTL co-simulation returned {len(out_words)} words, expected {n_out}")
        self.cycles.append(int(r["cycles"]))
        dt = oop.get_output_datatype(ok)
        y = rtlsim_output_to_npy(out_words, None, dt, tuple(oop.get_folded_output_shape(ok)),
                                 oop.get_outstream_width_padded(ok), dt.bitwidth())
        return y.reshape(oop.get_normal_output_shape(ok)).astype(np.float32)


def serve(acc: RtlAccelerator, stdin=None, stdout=None) -> int:
    """Answer ``samfpga.pynq_sim.external.ExternalAccelerator`` requests with ``acc`` until stdin closes."""
    import sys

    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    print("COSIM ready", file=stdout, flush=True)
    for line in stdin:
        parts = line.split()
        if len(parts) != 2:
            print(f"COSIM error expected '<input.npy> <output.npy>', got {line.strip()!r}", file=stdout, flush=True)
            continue
        try:
            y = acc(np.load(parts[0]))
            np.save(parts[1], y)
            print(f"COSIM ok {acc.cycles[-1]}", file=stdout, flush=True)
        except Exception as e:  # noqa: BLE001 - reported to the client, which raises
            print(f"COSIM error {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", file=stdout,
                  flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m samfpga.hw.sim.cosim --build BUILD --work DIR``: build the stitched RTL of BUILD, then serve
    accelerator runs on stdin/stdout (the protocol of ``samfpga.pynq_sim.external``)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m samfpga.hw.sim.cosim", description=main.__doc__)
    ap.add_argument("--build", required=True, type=Path, help="samfpga build dir (all-RTL HW graph, report.json)")
    ap.add_argument("--work", required=True, type=Path, help="design build and run folder (created)")
    ap.add_argument("--reuse", action="store_true", help="keep a simulator already built in --work")
    args = ap.parse_args(argv)
    try:
        boot_finn(args.work.resolve() / "finn_build")  # FINN reads its build folder once per process
        acc = RtlAccelerator(args.build, args.work, log=lambda m: print(m, file=sys.stderr, flush=True),
                             reuse=args.reuse)
    except Exception as e:  # noqa: BLE001 - one line to the client, details on stderr
        import traceback

        traceback.print_exc()
        print(f"COSIM error {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
        return 1
    return serve(acc)


if __name__ == "__main__":
    raise SystemExit(main())
