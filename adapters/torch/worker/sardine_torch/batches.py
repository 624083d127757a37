"""What one micro-batch trains on, drawn from (seed, step, micro-batch) alone exactly as the tfjs engine draws
it (adapters/tfjs/training/micro-batch.ts): which samples (epochs of seeded shuffles), which captions are
dropped, the latent draws, the noise with its offset, the timesteps, the VAE's draws.

The tfjs engine fills its tensors in NHWC order; the draws are taken in that order here too and only then
permuted to torch's NCHW, so both engines put every value at the same place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import draws
from .files import PreparedData, ShardedReader, read_json


@dataclass(frozen=True)
class Position:
    seed: int
    step: int
    micro: int
    micro_batches: int
    # The global batch: every draw is taken for all of it, whatever the process count.
    batch_size: int
    # This process's slice of the global batch (data-parallel training): rows [first, first + rows).
    first: int = 0
    rows: int | None = None

    @property
    def own(self) -> slice:
        return slice(self.first, self.first + (self.batch_size if self.rows is None else self.rows))


class EpochOrders:
    """The seeded permutation of each epoch, computed once (the two latest kept)."""

    def __init__(self) -> None:
        self.orders: dict[int, np.ndarray] = {}

    def order(self, seed: int, epoch: int, count: int) -> np.ndarray:
        known = self.orders.get(epoch)
        if known is None:
            known = draws.permutation(draws.TrainingDraws(seed, draws.DATA_ORDER, epoch), count)
            self.orders.pop(epoch - 2, None)
            self.orders[epoch] = known
        return known


def sample_indices(at: Position, count: int, orders: EpochOrders) -> list[int]:
    out = []
    for b in range(at.batch_size):
        index = (at.step * at.micro_batches + at.micro) * at.batch_size + b
        out.append(int(orders.order(at.seed, index // count, count)[index % count]))
    return out


def dropped_captions(at: Position, captions: Sequence[str], dropout: float) -> list[str]:
    dropped = draws.TrainingDraws(at.seed, draws.CAPTION_DROPOUT, at.step, at.micro).chances(dropout, len(captions))
    return ["" if d else c for c, d in zip(captions, dropped)]


def nhwc_normals(stream: draws.TrainingDraws, shape: tuple[int, int, int, int]) -> np.ndarray:
    """Normals for an NCHW tensor of `shape`, drawn in NHWC order (as the tfjs engine lays them out)."""
    b, c, h, w = shape
    return stream.normals(b * h * w * c).reshape(b, h, w, c).transpose(0, 3, 1, 2)


def noise_with_offset(at: Position, shape: tuple[int, int, int, int], offset: float) -> np.ndarray:
    """N(0, I) plus offset · N(0, 1) per row and channel (rounded once, as micro-batch.ts does)."""
    noise = nhwc_normals(draws.TrainingDraws(at.seed, draws.NOISE, at.step, at.micro), shape)
    if offset == 0:
        return np.ascontiguousarray(noise)
    b, c = shape[0], shape[1]
    shift = draws.TrainingDraws(at.seed, draws.NOISE_OFFSET, at.step, at.micro).normals(b * c).reshape(b, c, 1, 1)
    return (noise.astype(np.float64) + offset * shift.astype(np.float64)).astype(np.float32)


def image_batch(pixels: Sequence[np.ndarray], channels: int) -> np.ndarray:
    """Prepared samples (HWC) as an NCHW batch for a VAE with `channels` inputs (single-band SAR repeated)."""
    batch = np.stack(pixels)
    if batch.shape[-1] != channels:
        if batch.shape[-1] != 1:
            raise ValueError(f"a {batch.shape[-1]}-channel sample cannot feed a VAE with {channels} input channels")
        batch = np.repeat(batch, channels, axis=-1)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class LatentCache:
    """An encode-latents step's output: each sample's latent distribution (NHWC mean and log-variance)."""

    def __init__(self, folder: str) -> None:
        self.index = read_json(Path(folder) / "latents.json")
        self.reader = ShardedReader(folder)
        self.shape = tuple(self.index["shape"])

    def distribution(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        entry = self.index["samples"][i]
        return self.reader.read(entry["mean"]), self.reader.read(entry["logvar"])


class TextCache:
    """An encode-text step's output: each caption's conditioning."""

    def __init__(self, folder: str) -> None:
        self.index = read_json(Path(folder) / "text.json")
        self.reader = ShardedReader(folder)
        self.by_caption = {c["caption"]: c for c in self.index["captions"]}

    def read(self, caption: str) -> tuple[np.ndarray, np.ndarray | None]:
        entry = self.by_caption.get(caption)
        if entry is None:
            raise ValueError(f"the text cache has no embedding for the caption {caption!r}")
        pooled = entry["pooled"]
        return self.reader.read(entry["prompt"]), None if pooled is None else self.reader.read(pooled)


@dataclass
class MicroBatch:
    captions: list[str]
    images: torch.Tensor | None = None
    # Diffusion objective: clean scaled latents, noise, timesteps, SDXL time ids, cached conditioning.
    latents: torch.Tensor | None = None
    noise: torch.Tensor | None = None
    timesteps: torch.Tensor | None = None
    time_ids: torch.Tensor | None = None
    cached_prompt: torch.Tensor | None = None
    cached_pooled: torch.Tensor | None = None
    # VAE objective: the draws of the reparameterised latents.
    vae_draws: torch.Tensor | None = None
    # Each row's conditioning image (NCHW, [0, 1]) when a ControlNet trains.
    conditions: torch.Tensor | None = None


@dataclass
class Sources:
    data: PreparedData
    latents: LatentCache | None
    text: TextCache | None
    vae_channels: int
    latent_shape: tuple[int, int, int]  # h, w, c
    scaling_factor: float
    shift_factor: float
    num_train_timesteps: int
    # The samples that train (indices into data.samples) when some are held out (train.validationLoss).
    members: list[int] | None = None
    # A ControlNet trains: batches bring each row's conditioning image.
    conditions: bool = False


def open_caches(data: PreparedData, latents_dir: str | None, text_dir: str | None, sdxl: bool,
                base: str) -> tuple[LatentCache | None, TextCache | None]:
    """The latent and text caches of a prepared dataset (None where the run encodes live), checked against it."""
    latent_cache = LatentCache(latents_dir) if latents_dir is not None else None
    if latent_cache is not None and [s["id"] for s in latent_cache.index["samples"]] != [s["id"] for s in data.samples]:
        raise ValueError(f"{latents_dir}/latents.json: does not list the samples of the prepared data in order (stale cache?)")
    text_cache = TextCache(text_dir) if text_dir is not None else None
    if text_cache is not None and text_cache.index["conditioning"] != ("sdxl" if sdxl else "sd"):
        raise ValueError(f"{text_dir}/text.json: holds {text_cache.index['conditioning']} conditioning for this base ({base})")
    return latent_cache, text_cache


def sample_latents(mean: np.ndarray, logvar: np.ndarray, draw: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """(mean + exp(logvar / 2)·ε − shift)·scale in float64, rounded once (as micro-batch.ts's sampleScaled)."""
    m = mean.astype(np.float64)
    return ((m + np.exp(0.5 * logvar.astype(np.float64)) * draw.astype(np.float64) - shift) * scale).astype(np.float32)


def attach_cached_text(batch: MicroBatch, sources: Sources) -> None:
    """The encode-text cache's conditioning of the batch's captions, when there is a cache."""
    if sources.text is None:
        return
    rows = [sources.text.read(caption) for caption in batch.captions]
    batch.cached_prompt = torch.from_numpy(np.stack([r[0] for r in rows]))
    if rows[0][1] is not None:
        batch.cached_pooled = torch.from_numpy(np.stack([r[1] for r in rows]))


def attach_conditions(batch: MicroBatch, sources: Sources, indices: Sequence[int]) -> None:
    """The rows' conditioning images (NCHW, [0, 1]), when a ControlNet trains."""
    if sources.conditions:
        batch.conditions = torch.from_numpy(np.ascontiguousarray(np.stack([sources.data.condition(i) for i in indices]).transpose(0, 3, 1, 2)))


def load_micro_batch(
    at: Position,
    sources: Sources,
    needs: dict[str, Any],
    orders: EpochOrders,
    encode_live: Any,
) -> MicroBatch:
    """This process's rows of the micro-batch at `at`, on the CPU: every draw is taken for the global batch and
    sliced, so a data-parallel run trains on exactly the samples and draws of a one-process run.
    `encode_live(images NCHW)` gives (mean, logvar) NCHW numpy arrays from the VAE as it is when no latent
    cache is used."""
    data = sources.data
    members = sources.members
    own = at.own
    everyone = sample_indices(at, len(data.samples), orders) if members is None else [members[i] for i in sample_indices(at, len(members), orders)]
    captions = dropped_captions(at, [data.samples[i]["caption"] for i in everyone], needs["captionDropout"])[own]
    indices = everyone[own]
    batch = MicroBatch(captions=captions)
    images = None
    if needs["reconstruction"] or (needs["diffusion"] and sources.latents is None):
        images = image_batch([data.pixels(i) for i in indices], sources.vae_channels)
        batch.images = torch.from_numpy(images)
    h, w, c = sources.latent_shape
    shape = (at.batch_size, c, h, w)
    if needs["diffusion"]:
        if sources.latents is not None:
            pairs = [sources.latents.distribution(i) for i in indices]
            mean = np.stack([p[0] for p in pairs])
            logvar = np.stack([p[1] for p in pairs])
        else:
            mean_nchw, logvar_nchw = encode_live(images)
            mean, logvar = mean_nchw.transpose(0, 2, 3, 1), logvar_nchw.transpose(0, 2, 3, 1)
        everyone_shape = (at.batch_size, *mean.shape[1:])
        eps = draws.TrainingDraws(at.seed, draws.LATENT_SAMPLE, at.step, at.micro).normals(int(np.prod(everyone_shape))).reshape(everyone_shape)[own]
        latents = sample_latents(mean, logvar, eps, sources.scaling_factor, sources.shift_factor)
        batch.latents = torch.from_numpy(np.ascontiguousarray(latents.transpose(0, 3, 1, 2)))
        batch.noise = torch.from_numpy(np.ascontiguousarray(noise_with_offset(at, shape, needs["noiseOffset"])[own]))
        t = draws.TrainingDraws(at.seed, draws.TIMESTEPS, at.step, at.micro).integers(0, sources.num_train_timesteps - 1, at.batch_size)[own]
        batch.timesteps = torch.from_numpy(np.ascontiguousarray(t))
        batch.time_ids = torch.tensor([[data.height, data.width, 0, 0, data.height, data.width]] * len(indices), dtype=torch.float32)
        attach_cached_text(batch, sources)
        attach_conditions(batch, sources, indices)
    if needs["reconstruction"]:
        vae_draws = nhwc_normals(draws.TrainingDraws(at.seed, draws.VAE_SAMPLE, at.step, at.micro), shape)[own]
        batch.vae_draws = torch.from_numpy(np.ascontiguousarray(vae_draws))
    return batch
