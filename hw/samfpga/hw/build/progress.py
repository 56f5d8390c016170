"""What a person sees during a build: one line per step on screen, library chatter in ``DIR/build.log``.

FINN and qonnx log through Python ``logging`` (FINN's ``finn_logger`` has no handler of its own, so its warnings
would reach stderr through logging's last-resort handler: 'Skipping near match' per node, 'XILINX_VIVADO is not set'
per OuterShuffle), issue ``warnings.warn`` and ``print``. ``BuildLog`` sends all of that to the log file while a
build runs and counts it; the screen gets only ``say``'s lines (progress, verdict), which also go to the file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from pathlib import Path
from typing import TextIO


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.warnings += 1


class BuildLog:
    """Context manager routing library output to ``path`` for the duration of a build.

    ``say(line)`` prints to the screen (``screen``, default: the stdout in effect when the context is entered)
    and to the file. ``warnings``: library log records at WARNING or above plus ``warnings.warn`` calls so far;
    ``lines``: lines printed by libraries to stdout/stderr so far.
    """

    def __init__(self, path: str | Path, screen: TextIO | None = None) -> None:
        self.path = Path(path)
        self._screen = screen
        self._stack = contextlib.ExitStack()
        self._counter = _Counter()
        self._stream: _LineCounter | None = None
        self.t0 = time.time()

    @property
    def warnings(self) -> int:
        return self._counter.warnings

    @property
    def lines(self) -> int:
        return self._stream.lines if self._stream else 0

    def __enter__(self) -> BuildLog:
        self.screen = self._screen or sys.stdout
        f = self._stack.enter_context(open(self.path, "a", encoding="utf-8"))  # noqa: SIM115
        self._file = f
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.addHandler(self._counter)
        self._stack.callback(root.removeHandler, handler)
        self._stack.callback(root.removeHandler, self._counter)
        logging.captureWarnings(True)
        self._stack.callback(logging.captureWarnings, False)
        self._stream = _LineCounter(f)
        self._stack.enter_context(contextlib.redirect_stdout(self._stream))
        self._stack.enter_context(contextlib.redirect_stderr(self._stream))
        self.t0 = time.time()
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def say(self, line: str) -> None:
        """One line to the screen and to the log file."""
        print(line, file=self.screen, flush=True)
        if not self._file.closed:
            self._file.write(f"--- {line}\n")
            self._file.flush()


class _LineCounter(io.TextIOBase):
    """A text stream that writes to ``f`` and counts the lines written."""

    def __init__(self, f: TextIO) -> None:
        self._f = f
        self.lines = 0

    def write(self, s: str) -> int:
        self.lines += s.count("\n")
        return self._f.write(s)

    def flush(self) -> None:
        self._f.flush()


def step_line(i: int, n: int, name: str, seconds: float, total_seconds: float, hw_nodes: int, nodes: int,
              warnings: int) -> str:
    """``[ 3/12] streamline                  41.2 s (total 1m 05s)  HW 0/320 nodes  12 warnings -> build.log``"""
    w = f"  {warnings} library warning{'s' if warnings != 1 else ''} -> build.log" if warnings else ""
    return (f"[{i:2d}/{n}] {name:<27s}{seconds:7.1f} s (total {_mmss(total_seconds)})  "
            f"HW {hw_nodes}/{nodes} nodes{w}")


def _mmss(s: float) -> str:
    m, sec = divmod(int(round(s)), 60)
    return f"{m}m {sec:02d}s"
