"""The worker's side of the protocol (docs/torch-worker.md): one request, then JSON lines.

The TypeScript engine (adapters/torch/worker-process.ts) writes one JSON request line on stdin and keeps
stdin open; the worker answers with JSON lines on its stdout, one message each, ending with exactly one
of `result`, `error` or `stopped`. Anything else the libraries print goes to stderr: fd 1 is pointed at
stderr as soon as the worker starts, and the messages go to a private duplicate of the original stdout.

Stopping: SIGTERM, SIGINT (Ctrl-C in a terminal reaches the worker too) and end of stdin (the engine's
process died) set `stop`; long operations call `check_stop()` between units of work (training checkpoints
first), which raises `Stopped`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import traceback
from typing import Any

PROTOCOL = 1


class Stopped(Exception):
    """The operation was asked to stop (signal or closed stdin) and stopped cleanly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Channel:
    """The message side of stdout, and the stop requests."""

    def __init__(self) -> None:
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()
        self._stop_reason: str | None = None

    def send(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"type": kind, **fields}, allow_nan=False, default=_plain)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def log(self, message: str) -> None:
        self.send("log", message=message)

    def progress(self, done: int, total: int, unit: str) -> None:
        self.send("progress", done=done, total=total, unit=unit)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        # JSON has no NaN or infinity: a diverged loss is sent as null and named in the log.
        finite = {k: (v if math.isfinite(v) else None) for k, v in values.items()}
        self.send("metrics", step=step, values=finite)

    def request_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason

    @property
    def stop_requested(self) -> str | None:
        return self._stop_reason

    def check_stop(self) -> None:
        if self._stop_reason is not None:
            raise Stopped(self._stop_reason)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays in messages."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def read_request() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        raise ValueError("no request on stdin")
    request = json.loads(line)
    if request.get("protocol") != PROTOCOL:
        raise ValueError(f"protocol {request.get('protocol')} requested; this worker speaks {PROTOCOL}")
    return request


def watch_for_signals(channel: Channel) -> None:
    """SIGTERM and SIGINT become stop requests (the operation then stops at its next check)."""

    def on_signal(number: int, _frame: Any) -> None:
        channel.request_stop(signal.Signals(number).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def watch_for_stop(channel: Channel) -> None:
    """Signals and the end of stdin become stop requests."""
    watch_for_signals(channel)

    def watch_stdin() -> None:
        while sys.stdin.readline():
            pass
        channel.request_stop("stdin closed (the engine's process is gone)")

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()


def error_message(error: BaseException) -> dict[str, Any]:
    """An exception as the engine reports it: qualified type, message, the innermost frames."""
    kind = type(error)
    module = kind.__module__
    name = kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    frames = traceback.extract_tb(error.__traceback__)[-8:]
    return {
        "exception": name,
        "message": str(error),
        "frames": [{"file": f.filename, "line": f.lineno or 0, "function": f.name, "code": f.line or ""} for f in frames],
    }
