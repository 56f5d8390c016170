"""An accelerator model that runs in another process, for ``SimDevice(package, accelerator=...)``.

The simulated device lives in the board environment (pynq, numpy 1.26; no cocotb, Verilator or finn), while the
RTL co-simulation of the stitched design needs the development environment. ``ExternalAccelerator`` starts the
model as a child process (e.g. ``.venv/bin/python -m samfpga.hw.sim.cosim --build BUILD --work DIR``) and talks to
it over stdin/stdout, one request per accelerator run:

    model -> client   ``COSIM ready``                          once, after the model is built
    client -> model   ``<input.npy> <output.npy>``              accelerator input values (normal shape, float32)
    model -> client   ``COSIM ok <cycles>`` | ``COSIM error <message>``
Other lines the model prints (library output) are ignored; its stderr goes to the client's stderr.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

PREFIX = "COSIM "


class ExternalAcceleratorError(RuntimeError):
    """The external model failed to start, answered with an error, or exited."""


class ExternalAccelerator:
    """``(accelerator input values) -> output values`` computed by the child process ``command``.

    ``cycles`` collects what the model reports per run (for the RTL model: clock cycles from the first input word
    to the last output word). Use as a context manager or call ``close``.
    """

    def __init__(self, command: list[str], cwd: str | Path | None = None) -> None:
        self.command = list(command)
        self._tmp = tempfile.TemporaryDirectory(prefix="samfpga-extacc-")
        self.cycles: list[int] = []
        self._n = 0
        try:
            self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                          cwd=cwd, bufsize=1)
        except OSError as e:
            raise ExternalAcceleratorError(f"cannot start the accelerator model {self.command[0]}: {e}") from None
        self._expect("ready")

    def _reply(self) -> str:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith(PREFIX):
                return line[len(PREFIX):].strip()
        code = self._proc.wait()
        raise ExternalAcceleratorError(f"accelerator model exited (status {code}): {' '.join(self.command)}")

    def _expect(self, word: str) -> str:
        reply = self._reply()
        if reply.startswith("error"):
            raise ExternalAcceleratorError(f"accelerator model: {reply[len('error'):].strip()}")
        if not reply.startswith(word):
            raise ExternalAcceleratorError(f"accelerator model: expected {word!r}, got {reply!r}")
        return reply[len(word):].strip()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self._proc.poll() is not None:
            raise ExternalAcceleratorError(f"accelerator model has exited (status {self._proc.returncode})")
        self._n += 1
        src = Path(self._tmp.name) / f"in_{self._n}.npy"
        dst = Path(self._tmp.name) / f"out_{self._n}.npy"
        np.save(src, np.asarray(x, dtype=np.float32))
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{src} {dst}\n")
        self._proc.stdin.flush()
        rest = self._expect("ok")
        self.cycles.append(int(rest.split()[0]) if rest else 0)
        return np.load(dst)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> ExternalAccelerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
