"""What both sides of the GPU bench measure, the same way (bench.py starts each side in its own process):

- seconds per step: wall clock between the ends of successive steps, the device synchronised at each end, so
  a step's time holds all of its work (the optimiser's kernels included), after `warm_up` steps;
- FLOPs per step: torch.utils.flop_counter.FlopCounterMode around the last warm-up step, the real step with
  its forward, backward (and the recomputed forward under gradient checkpointing); that step is not timed;
- peak memory: torch.cuda.max_memory_allocated (and max_memory_reserved) over the whole run on CUDA, the peak
  resident set on CPU.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

# The training captions of both sides (the paper's caption template puts the token first).
CAPTIONS = (
    "<SAR> image of farmland with crop fields",
    "<SAR> image of a harbour with ships",
    "<SAR> image of a dense urban area",
    "<SAR> image of a forest crossed by a road",
)


class StepClock:
    """Told the end of each step (`ended(done)`, steps counted from 1); says when the last one has ended."""

    def __init__(self, device: torch.device, warm_up: int, measured: int) -> None:
        if warm_up < 2:
            raise ValueError(f"warm_up {warm_up}: needs at least 2 (the first warms the device up, the last is the counted step)")
        self.device = device
        self.warm_up = warm_up
        self.total = warm_up + measured
        self.counter: FlopCounterMode | None = None
        self.flops: int | None = None
        self.seconds: list[float] = []
        self.last = time.perf_counter()

    def ended(self, done: int) -> bool:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if done > self.warm_up:
            self.seconds.append(now - self.last)
        if done == self.warm_up - 1:
            self.counter = FlopCounterMode(display=False)
            self.counter.__enter__()
        elif done == self.warm_up and self.counter is not None:
            self.counter.__exit__(None, None, None)
            self.flops = int(self.counter.get_total_flops())
            self.counter = None
        self.last = time.perf_counter()
        print(f"  step {done}/{self.total}" + (f" {self.seconds[-1]:.3f} s" if done > self.warm_up else " (warm-up)"), file=sys.stderr, flush=True)
        return done >= self.total

    def result(self, loss: float | None) -> dict[str, Any]:
        return {
            "status": "ok",
            "secondsPerStep": self.seconds,
            "flops": self.flops,
            "peakBytes": peak_bytes(self.device),
            # What the caching allocator held at its peak (allocated plus its slack; the CUDA context is apart).
            "peakReservedBytes": int(torch.cuda.max_memory_reserved(self.device)) if self.device.type == "cuda" else None,
            "memory": "torch.cuda.max_memory_allocated" if self.device.type == "cuda" else "peak resident set (getrusage)",
            # The worker always asks for deterministic algorithms (and cuDNN without autotuning); a bare loop does not.
            "deterministicAlgorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnnBenchmark": torch.backends.cudnn.benchmark,
            "loss": loss,
        }


def peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def chosen_device() -> torch.device:
    """SARDINE_TORCH_DEVICE when set, else the first CUDA device, else the CPU (as the worker chooses)."""
    chosen = os.environ.get("SARDINE_TORCH_DEVICE")
    return torch.device(chosen if chosen else "cuda" if torch.cuda.is_available() else "cpu")


def write_result(path: str, value: dict[str, Any]) -> None:
    """The side's result, written under a temporary name then renamed (bench.py reads only finished files)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.partial")
    temporary.write_text(json.dumps(value, allow_nan=False), encoding="utf-8")
    os.replace(temporary, target)


def run_side(main: Any) -> None:
    """`python <side>.py <spec.json> <result.json>`: runs main(spec) and writes its result; a CUDA out-of-memory
    error becomes {"status": "OOM"} (bench.py records it and goes on)."""
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    try:
        value = main(spec)
    except torch.OutOfMemoryError as error:
        value = {"status": "OOM", "message": str(error).splitlines()[0], "peakBytes": peak_bytes(chosen_device())}
    write_result(sys.argv[2], value)
