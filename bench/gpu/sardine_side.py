"""sardine's side of the GPU bench: the torch engine's worker (adapters/torch/worker/sardine_torch) driven from
Python with the request the TypeScript engine sends it (adapters/torch/torch-engine.ts), without Node.

  python bench/gpu/sardine_side.py prepare <spec.json> <result.json>
      the worker's init-model (the architecture's configs, weights seeded) and encode-latents (the latent cache
      the train step reads) on synthetic prepared data (framework/steps/prepared-dataset.ts's files);
  python bench/gpu/sardine_side.py train <spec.json> <result.json>
      the worker's train operation (training.train: its session, data loading, draws, losses, optimiser),
      with a channel that times each step (measure.StepClock) and ends the run after the last measured step,
      before the end-of-run checkpoint and model files (30 GB for a full SDXL UNet with AdamW: writing them is
      not the step being measured).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from measure import CAPTIONS, StepClock, chosen_device, run_side

class AllStepsMeasured(Exception):
    """Raised by the channel after the last measured step: ends the worker's train loop there."""


class BenchChannel:
    """The worker's Channel (sardine_torch/protocol.py) as the train operation uses it, messages kept here:
    progress marks the end of each step for the clock; metrics keep the last loss."""

    def __init__(self, clock: StepClock | None = None) -> None:
        self.clock = clock
        self.loss: float | None = None
        self.stop_requested: str | None = None

    def send(self, kind: str, **fields: Any) -> None:
        if kind == "log":
            print(f"  worker: {fields['message']}", file=sys.stderr, flush=True)

    def log(self, message: str) -> None:
        self.send("log", message=message)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.loss = values["loss"]

    def progress(self, done: int, total: int, unit: str) -> None:
        if self.clock is not None and unit == "steps" and self.clock.ended(done):
            raise AllStepsMeasured()

    def check_stop(self) -> None:
        pass


def write_prepared_data(folder: Path, count: int, side: int, seed: int) -> None:
    """`count` single-band samples of side × side pixels in [-1, 1] (seeded), as prepare-data writes them."""
    pixels = folder / "pixels"
    pixels.mkdir(parents=True)
    generator = np.random.default_rng(seed)
    samples = []
    for n in range(count):
        file = f"pixels/{n:07d}.f32"
        generator.uniform(-1, 1, size=(side, side, 1)).astype("<f4").tofile(folder / file)
        samples.append({"id": f"s{n}", "source": f"synthetic/{n}", "caption": CAPTIONS[n % len(CAPTIONS)], "file": file})
    from sardine_torch.files import write_json

    write_json(folder / "index.json", {"width": side, "height": side, "channels": 1, "samples": samples, "skipped": []})


def prepare(spec: dict[str, Any]) -> dict[str, Any]:
    from sardine_torch.encode import encode_latents
    from sardine_torch.environment import configure
    from sardine_torch.files import read_json, write_json
    from sardine_torch.init_model import init_model

    configure()
    work = Path(spec["work"])
    index_file = work / "latents" / "latents.json"
    if index_file.exists():
        # A work folder kept from an earlier run (--work): its pipeline and caches are complete (the index is written last).
        return described(read_json(index_file)["shape"])
    for unfinished in ("base", "data", "latents"):
        shutil.rmtree(work / unfinished, ignore_errors=True)
    channel = BenchChannel()
    init_model({"architecture": spec["architecture"], "out": str(work / "base"), "family": "sdxl", "seed": spec["seed"]}, channel)
    write_prepared_data(work / "data", spec["samples"], spec["resolution"], spec["seed"])
    index = encode_latents({"dataDir": str(work / "data"), "base": str(work / "base"), "outDir": str(work / "latents")}, channel)
    write_json(index_file, index)
    return described(index["shape"])


def described(latent_shape: list[int]) -> dict[str, Any]:
    device = chosen_device()
    return {
        "status": "ok",
        "latentShape": latent_shape,
        "deviceKind": device.type,
        "deviceName": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cuda": torch.version.cuda,
    }


def train(spec: dict[str, Any]) -> dict[str, Any]:
    from sardine_torch.environment import configure
    from sardine_torch.training import train as train_operation

    configure()
    work = Path(spec["work"])
    # Each run starts from the seeded base: nothing to resume from a kept --work folder.
    shutil.rmtree(spec["runDir"], ignore_errors=True)
    clock = StepClock(chosen_device(), spec["warmUp"], spec["steps"])
    channel = BenchChannel(clock)
    request = {
        "base": str(work / "base"),
        "adaptation": spec["adaptation"],
        "train": {**spec["train"], "steps": clock.total, "validationEvery": spec["train"]["checkpointEvery"]},
        "dataDir": str(work / "data"),
        "latentsDir": str(work / "latents"),
        "workDir": spec["runDir"],
        "processes": 1,
    }
    try:
        train_operation(request, channel)
    except AllStepsMeasured:
        pass
    if len(clock.seconds) != spec["steps"]:
        raise RuntimeError(f"the worker ended after {len(clock.seconds)} measured steps of {spec['steps']}")
    return clock.result(channel.loss)


if __name__ == "__main__":
    operation = sys.argv.pop(1)
    run_side({"prepare": prepare, "train": train}[operation])
