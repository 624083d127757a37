"""`train.validationLoss` on the torch engine: the held-out split (or dataset) and the held-out diffusion loss at fixed
timesteps and noise, exactly as adapters/tfjs/training/validation-loss.ts defines them (that file is the
specification: split, timesteps, latents, noise and loss)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from . import batches, draws
from .files import PreparedData


def held_out_split(seed: int, count: int, fraction: float, index_file: str) -> tuple[list[int], list[int]]:
    """(held out, training): sample indices, ascending; refused when it holds out none or leaves none."""
    # JavaScript's Math.round: halves go up (Python's round() goes to even).
    low = math.floor(fraction * count)
    held = low + (1 if fraction * count - low >= 0.5 else 0)
    if held < 1:
        refused = f"holds out none; declare at least {math.ceil(0.5 / count * 1000) / 1000:g} or prepare more samples"
    elif held >= count:
        refused = "leaves none to train on; prepare more samples"
    else:
        refused = None
    if refused is not None:
        raise ValueError(f"{index_file}: train.validationLoss.fraction {fraction:g} of its {count} samples {refused}")
    order = draws.permutation(draws.TrainingDraws(seed, draws.VALIDATION_SPLIT), count)
    held_out = sorted(int(i) for i in order[:held])
    out = set(held_out)
    return held_out, [i for i in range(count) if i not in out]


def held_out_data(request: dict[str, Any], training: PreparedData) -> PreparedData:
    """`train.validationLoss.data`, prepared: every sample held out, of the training data's shape."""
    if request.get("validation") is None:
        raise ValueError("train.validationLoss.data: the train step was given no prepared held-out data")
    index_file = f"{request['validation']['dataDir']}/index.json"
    held_out = PreparedData(request["validation"]["dataDir"])
    if not held_out.samples:
        raise ValueError(f"{index_file}: train.validationLoss.data holds no sample")

    def shape(d: PreparedData) -> str:
        return f"{d.width}×{d.height}×{d.channels}"
    if shape(held_out) != shape(training):
        raise ValueError(f"{index_file}: train.validationLoss.data's samples are {shape(held_out)}, the training data's {shape(training)}")
    return held_out


def validation_timesteps(count: int, total: int) -> list[int]:
    """The midpoints of `count` equal parts of a schedule of `total` training timesteps."""
    return [(2 * k + 1) * total // (2 * count) for k in range(count)]


class ValidationLoss:
    """Measures the held-out loss with the weights being trained: `loss_of` is the session's unweighted
    diffusion loss of a micro-batch, `encode_live` its VAE encoder (when no latent cache is used)."""

    def __init__(self, declared: dict[str, Any], seed: int, held_out: list[int], sources: batches.Sources,
                 encode_live: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], index_file: str) -> None:
        if declared["timesteps"] > sources.num_train_timesteps:
            raise ValueError(f"{index_file}: train.validationLoss.timesteps {declared['timesteps']}: the schedule has only "
                             f"{sources.num_train_timesteps} training timesteps")
        self.seed = seed
        self.held_out = held_out
        self.sources = sources
        self.encode_live = encode_live
        self.timesteps = validation_timesteps(declared["timesteps"], sources.num_train_timesteps)

    def batch(self, j: int) -> batches.MicroBatch:
        """Held-out sample j (in held-out order): its latent mean at every timestep, with its fixed noise."""
        sources, data, i = self.sources, self.sources.data, self.held_out[j]
        if sources.latents is not None:
            mean = sources.latents.distribution(i)[0]
        else:
            mean = self.encode_live(batches.image_batch([data.pixels(i)], sources.vae_channels))[0][0].transpose(1, 2, 0)
        latent = ((mean.astype(np.float64) - sources.shift_factor) * sources.scaling_factor).astype(np.float32)
        k = len(self.timesteps)
        h, w, c = sources.latent_shape
        caption = data.samples[i]["caption"]
        batch = batches.MicroBatch(captions=[caption] * k)
        batch.latents = torch.from_numpy(np.ascontiguousarray(np.repeat(latent[None], k, axis=0).transpose(0, 3, 1, 2)))
        noise = batches.nhwc_normals(draws.TrainingDraws(self.seed, draws.VALIDATION_NOISE, j), (k, c, h, w))
        batch.noise = torch.from_numpy(np.ascontiguousarray(noise))
        batch.timesteps = torch.tensor(self.timesteps, dtype=torch.int64)
        batch.time_ids = torch.tensor([[data.height, data.width, 0, 0, data.height, data.width]] * k, dtype=torch.float32)
        batches.attach_cached_text(batch, sources)
        batches.attach_conditions(batch, sources, [i] * k)
        return batch

    def measure(self, models: dict[str, torch.nn.Module], loss_of: Callable[[batches.MicroBatch], torch.Tensor]) -> float:
        """The mean over held-out samples, in eval mode (no LoRA dropout) and without gradient."""
        modes = {name: model.training for name, model in models.items()}
        try:
            for model in models.values():
                model.eval()
            with torch.no_grad():
                total = sum(float(loss_of(self.batch(j))) for j in range(len(self.held_out)))
        finally:
            for name, model in models.items():
                model.train(modes[name])
        return total / len(self.held_out)
